//! The weights of Keras InceptionV3 without its top (`include_top=False`),
//! as Keras 3 names them, read off the layer graph
//! (src/models/inception_v3_graph.rs, the one description of the architecture).
//!
//! `keras/src/applications/inception_v3.py` builds the network from 94 calls
//! of `conv2d_bn` (Conv2D without bias → BatchNormalization(scale=False) →
//! ReLU). Keras names layers by a per-class counter at creation, so the k-th
//! call creates `conv2d_k` and `batch_normalization_k` (Keras 3 drops the
//! `_0`: `conv2d`, `conv2d_1`, … `conv2d_93`; Keras 2 counts from 1:
//! `conv2d_1` … `conv2d_94`). [`convs`] lists the calls in that creation order.
//!
//! Weight files do NOT store layers in creation order: Keras sorts
//! `model.layers` by graph depth (mixed0's four branches interleave), and
//! TF.js manifests are sorted by name. Importers therefore rank a file's
//! convolutions by their creation counter and check each one against this
//! table: kernel shape, stride, padding, and where its input comes from.

use crate::models::graph::{Graph, LayerKind};
use crate::models::inception_v3_graph::inception_v3_graph;
use crate::ops::Padding;
use std::sync::LazyLock;

/// One `conv2d_bn` call: a `kh`×`kw` convolution from `cin` to `cout`
/// channels (HWIO kernel `[kh, kw, cin, cout]`), followed by BatchNormalization
/// with `cout` channels (beta, moving_mean, moving_variance; no gamma).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub kh: usize,
    pub kw: usize,
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
    pub padding: Padding,
    /// Where the input comes from: `input` (the image), `convJ` (the ReLU
    /// after conv J), `mixedN` (a block output), `max(…)` / `avg(…)` (a
    /// pooling of one of those).
    pub input: String,
}

/// Keras's parameter count for InceptionV3 with `include_top=False`
/// (trainable and non-trainable, i.e. including the moving statistics).
pub const TOTAL_PARAMETERS: usize = 21_802_784;

struct Table {
    convs: Vec<ConvSpec>,
    blocks: Vec<(String, usize)>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| table(&inception_v3_graph()));

/// The 94 `conv2d_bn` calls of InceptionV3 in creation order (index = Keras 3 number).
pub fn convs() -> &'static [ConvSpec] {
    &TABLE.convs
}

/// Number of convolutions (and of BatchNormalizations) up to `mixed10`.
pub fn num_convs() -> usize {
    TABLE.convs.len()
}

/// The block each run of convolutions belongs to: (name, index of its first
/// conv), from `stem` to `mixed10`.
pub fn blocks() -> &'static [(String, usize)] {
    &TABLE.blocks
}

/// The block that conv `k` belongs to.
pub fn block_of(k: usize) -> &'static str {
    TABLE.blocks.iter().rev().find(|(_, first)| *first <= k).map_or("stem", |(name, _)| name.as_str())
}

/// Reads the conv table off the graph. The stem is the chain of layers
/// before the first fork; after it, a conv belongs to the first `mixedN`
/// concatenation created after it.
fn table(graph: &Graph) -> Table {
    // The graph is a constant of the program (its shapes are tested), so this cannot fail at 299².
    let shapes = graph.output_shapes(1, 299, 299, 3).expect("InceptionV3's own graph has valid shapes at 299x299");
    let mut ordinal = vec![None; graph.layers.len()];
    let mut k = 0;
    for (l, layer) in graph.layers.iter().enumerate() {
        if matches!(layer.kind, LayerKind::Conv2d { .. }) {
            ordinal[l] = Some(k);
            k += 1;
        }
    }
    let describe = |mut l: usize| -> String {
        let mut wrap = Vec::new();
        loop {
            let layer = &graph.layers[l];
            let inner = match layer.kind {
                LayerKind::Input => "input".to_string(),
                LayerKind::Concat => layer.name.clone(),
                LayerKind::Conv2d { .. } => format!("conv{}", ordinal[l].unwrap_or(0)),
                LayerKind::MaxPool(_) | LayerKind::AvgPool(_) => {
                    wrap.push(if matches!(layer.kind, LayerKind::MaxPool(_)) { "max" } else { "avg" });
                    l = layer.inputs[0];
                    continue;
                }
                // The ReLU and BatchNorm after a conv stand for it (the other
                // kinds are not in InceptionV3; they would stand for what they read).
                LayerKind::Relu | LayerKind::BatchNorm(_) | LayerKind::Add | LayerKind::DepthwiseConv2d { .. } | LayerKind::Relu6 | LayerKind::ZeroPad(_) => {
                    l = layer.inputs[0];
                    continue;
                }
            };
            return wrap.iter().rev().fold(inner, |acc, f| format!("{f}({acc})"));
        }
    };
    let first_fork = (0..graph.layers.len()).find(|&l| graph.consumers(l).count() > 1).unwrap_or(graph.layers.len());
    let is_block = |name: &str| name.strip_prefix("mixed").is_some_and(|n| n.parse::<usize>().is_ok());
    let mut convs = Vec::new();
    let mut blocks: Vec<(String, usize)> = Vec::new();
    for (l, layer) in graph.layers.iter().enumerate() {
        let LayerKind::Conv2d { filters, win } = layer.kind else { continue };
        let block = if l < first_fork {
            "stem".to_string()
        } else {
            graph.layers[l..].iter().find(|b| matches!(b.kind, LayerKind::Concat) && is_block(&b.name)).map_or("stem".into(), |b| b.name.clone())
        };
        if blocks.last().is_none_or(|(name, _)| *name != block) {
            blocks.push((block, convs.len()));
        }
        convs.push(ConvSpec {
            kh: win.kh,
            kw: win.kw,
            cin: shapes[layer.inputs[0]][3],
            cout: filters,
            stride: win.stride_h,
            padding: win.padding,
            input: describe(layer.inputs[0]),
        });
    }
    Table { convs, blocks }
}

/// Keras 3 name of the k-th Conv2D layer: `conv2d`, `conv2d_1`, …
pub fn conv_name(k: usize) -> String {
    if k == 0 { "conv2d".to_string() } else { format!("conv2d_{k}") }
}

/// Keras 3 name of the k-th BatchNormalization layer.
pub fn bn_name(k: usize) -> String {
    if k == 0 { "batch_normalization".to_string() } else { format!("batch_normalization_{k}") }
}

/// The BatchNormalization variables of InceptionV3 (scale=False: no gamma).
pub const BN_VARIABLES: &[&str] = crate::models::inception_v3_graph::BATCH_NORM.variables();

impl ConvSpec {
    /// HWIO kernel shape.
    pub fn kernel_shape(&self) -> Vec<usize> {
        vec![self.kh, self.kw, self.cin, self.cout]
    }

    /// Kernel elements plus the three BatchNormalization vectors.
    pub fn parameters(&self) -> usize {
        self.kh * self.kw * self.cin * self.cout + BN_VARIABLES.len() * self.cout
    }
}

/// Total parameters the table describes (Keras counts moving statistics too).
pub fn parameter_count() -> usize {
    convs().iter().map(ConvSpec::parameters).sum()
}

