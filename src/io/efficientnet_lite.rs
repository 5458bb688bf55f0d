//! EfficientNet-Lite0's pretrained state dict (the PyTorch reference layout of
//! lukemelas/EfficientNet-PyTorch as efficientnet-lite-pytorch 0.1.0 builds it:
//! `_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, …, `_conv_head`, `_bn1`, `_fc`)
//! mapped onto Keras-style names and layouts.
//!
//! Names follow Keras's EfficientNet: `stem_conv`, `stem_bn`, then per block
//! `block{stage}{letter}_expand_conv`, `_expand_bn` (absent in block1a, whose
//! expansion ratio is 1), `_dwconv`, `_bn`, `_project_conv`, `_project_bn`, then
//! `top_conv`, `top_bn`; BatchNorm variables gamma, beta, moving_mean,
//! moving_variance (torch's weight, bias, running_mean, running_var). Layouts:
//! convolutions OIHW → HWIO `kernel`, depthwise `[C,1,k,k]` → `[k,k,C,1]`
//! `depthwise_kernel`, the classifier `_fc.weight` `[1000,1280]` → `[1280,1000]`.
//! Lite0 has no squeeze-excite and a fixed 32-channel stem and 1280-channel head
//! (efficientnet-lite-pytorch's `utils.efficientnet_lite`).

use super::torch_pth::{LegacyStateDict, read_legacy_state_dict};
use super::{HostTensor, TensorMap};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One stage of MBConv blocks: the block arguments of efficientnet-lite0
/// (`r1_k3_s11_e1_i32_o16`, …), width and depth multipliers 1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    pub repeats: usize,
    pub kernel: usize,
    /// Stride of the stage's first block; the others have stride 1.
    pub stride: usize,
    pub expand_ratio: usize,
    /// Input channels of the first block; the others take `cout`.
    pub cin: usize,
    pub cout: usize,
}

const fn stage(repeats: usize, kernel: usize, stride: usize, expand_ratio: usize, cin: usize, cout: usize) -> Stage {
    Stage { repeats, kernel, stride, expand_ratio, cin, cout }
}

/// EfficientNet-Lite0's seven stages (Keras names its blocks block1a … block7a after them).
pub const LITE0_STAGES: [Stage; 7] = [
    stage(1, 3, 1, 1, 32, 16),
    stage(2, 3, 2, 6, 16, 24),
    stage(2, 5, 2, 6, 24, 40),
    stage(3, 3, 2, 6, 40, 80),
    stage(3, 5, 1, 6, 80, 112),
    stage(4, 5, 2, 6, 112, 192),
    stage(1, 3, 1, 6, 192, 320),
];
/// Output channels of the 3×3 stride-2 stem convolution.
pub const STEM_CHANNELS: usize = 32;
/// Output channels of the 1×1 head convolution (`top_conv`), the base's feature width.
pub const TOP_CHANNELS: usize = 1280;
/// ImageNet-1k classes of the pretrained classifier.
pub const CLASSES: usize = 1000;

/// How a torch tensor becomes its Keras counterpart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// `[O,I,kh,kw]` → `[kh,kw,I,O]`.
    Conv,
    /// `[C,1,k,k]` → `[k,k,C,1]`.
    Depthwise,
    /// Unchanged (BatchNorm vectors, the classifier's bias).
    Same,
    /// `[rows, cols]` → `[cols, rows]` (the classifier's weight).
    Transpose,
}

/// Where a torch tensor goes.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Base(String),
    HeadKernel,
    HeadBias,
}

struct Entry {
    torch: String,
    torch_shape: Vec<usize>,
    layout: Layout,
    target: Target,
}

const BN_VARS: [(&str, &str); 4] =
    [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")];

/// Every weight of the torch state dict, in the reference model's order.
fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    // A convolution (torch module `conv`, Keras layer `keras`) and the BatchNorm after it.
    let mut conv_bn = |conv: &str, shape: [usize; 4], layout: Layout, keras: &str, bn: &str, keras_bn: &str| {
        let var = if layout == Layout::Depthwise { "depthwise_kernel" } else { "kernel" };
        let target = Target::Base(format!("{keras}/{var}"));
        out.push(Entry { torch: format!("{conv}.weight"), torch_shape: shape.to_vec(), layout, target });
        for (torch_var, keras_var) in BN_VARS {
            out.push(Entry {
                torch: format!("{bn}.{torch_var}"),
                torch_shape: vec![shape[0]],
                layout: Layout::Same,
                target: Target::Base(format!("{keras_bn}/{keras_var}")),
            });
        }
    };
    conv_bn("_conv_stem", [STEM_CHANNELS, 3, 3, 3], Layout::Conv, "stem_conv", "_bn0", "stem_bn");
    for (i, b) in lite0_blocks().iter().enumerate() {
        let (t, k) = (format!("_blocks.{i}"), &b.name);
        if b.expanded != b.cin {
            let shape = [b.expanded, b.cin, 1, 1];
            conv_bn(
                &format!("{t}._expand_conv"),
                shape,
                Layout::Conv,
                &format!("{k}_expand_conv"),
                &format!("{t}._bn0"),
                &format!("{k}_expand_bn"),
            );
        }
        let shape = [b.expanded, 1, b.kernel, b.kernel];
        conv_bn(
            &format!("{t}._depthwise_conv"),
            shape,
            Layout::Depthwise,
            &format!("{k}_dwconv"),
            &format!("{t}._bn1"),
            &format!("{k}_bn"),
        );
        let shape = [b.cout, b.expanded, 1, 1];
        conv_bn(
            &format!("{t}._project_conv"),
            shape,
            Layout::Conv,
            &format!("{k}_project_conv"),
            &format!("{t}._bn2"),
            &format!("{k}_project_bn"),
        );
    }
    let last = LITE0_STAGES[LITE0_STAGES.len() - 1].cout;
    conv_bn("_conv_head", [TOP_CHANNELS, last, 1, 1], Layout::Conv, "top_conv", "_bn1", "top_bn");
    let fc = |torch: &str, torch_shape: Vec<usize>, layout, target| Entry {
        torch: torch.into(),
        torch_shape,
        layout,
        target,
    };
    out.push(fc("_fc.weight", vec![CLASSES, TOP_CHANNELS], Layout::Transpose, Target::HeadKernel));
    out.push(fc("_fc.bias", vec![CLASSES], Layout::Same, Target::HeadBias));
    out
}

/// One MBConv block as Keras names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// `block1a`, `block2a`, `block2b`, …
    pub name: String,
    pub kernel: usize,
    pub stride: usize,
    pub cin: usize,
    /// Channels after the expansion (`cin` × expand ratio; `cin` when the ratio is 1).
    pub expanded: usize,
    pub cout: usize,
}

/// Lite0's 16 blocks in order (`_blocks.0` … `_blocks.15`).
pub fn lite0_blocks() -> Vec<Block> {
    let mut out = Vec::new();
    for (s, st) in LITE0_STAGES.iter().enumerate() {
        for r in 0..st.repeats {
            let cin = if r == 0 { st.cin } else { st.cout };
            out.push(Block {
                name: format!("block{}{}", s + 1, (b'a' + r as u8) as char),
                kernel: st.kernel,
                stride: if r == 0 { st.stride } else { 1 },
                cin,
                expanded: cin * st.expand_ratio,
                cout: st.cout,
            });
        }
    }
    out
}

/// The base's weights as `lite0_to_keras` returns them: (Keras name, Keras shape), in
/// the network's order.
pub fn lite0_keras_weights() -> Vec<(String, Vec<usize>)> {
    entries()
        .into_iter()
        .filter_map(|e| match e.target {
            Target::Base(name) => Some((name, keras_shape(e.layout, &e.torch_shape))),
            _ => None,
        })
        .collect()
}

fn keras_shape(layout: Layout, s: &[usize]) -> Vec<usize> {
    match layout {
        Layout::Conv => vec![s[2], s[3], s[1], s[0]],
        Layout::Depthwise => vec![s[2], s[3], s[0], 1],
        Layout::Same => s.to_vec(),
        Layout::Transpose => vec![s[1], s[0]],
    }
}

/// Reorders `data` of torch shape `s` into the Keras layout.
fn convert(layout: Layout, s: &[usize], data: &[f32]) -> Vec<f32> {
    match layout {
        Layout::Same => data.to_vec(),
        Layout::Transpose => {
            let (rows, cols) = (s[0], s[1]);
            (0..cols * rows).map(|k| data[(k % rows) * cols + k / rows]).collect()
        }
        // A depthwise [C,1,k,k] is a conv with I = 1, and [k,k,C,1] its HWIO with O and I swapped:
        // both are out[h][w][c] = in[c][h][w].
        Layout::Conv | Layout::Depthwise => {
            let (o, i, kh, kw) = (s[0], s[1], s[2], s[3]);
            let mut out = vec![0.0; data.len()];
            for oc in 0..o {
                for ic in 0..i {
                    for h in 0..kh {
                        for w in 0..kw {
                            out[((h * kw + w) * i + ic) * o + oc] = data[((oc * i + ic) * kh + h) * kw + w];
                        }
                    }
                }
            }
            out
        }
    }
}

/// Maps the lukemelas-layout state dict of EfficientNet-Lite0 onto incept's names:
/// (base tensors, head (kernel [1280,1000], bias [1000])). Errors name the first key that is
/// missing, unexpected, or of the wrong shape.
pub fn lite0_to_keras(dict: &LegacyStateDict) -> Result<(TensorMap, (HostTensor, HostTensor))> {
    let entries = entries();
    let by_name: HashMap<&str, &Entry> = entries.iter().map(|e| (e.torch.as_str(), e)).collect();
    let mut base = TensorMap::new();
    let (mut kernel, mut bias) = (None, None);
    let mut used = HashSet::new();
    for (name, t) in &dict.tensors {
        let e = by_name
            .get(name.as_str())
            .ok_or_else(|| Error::Invalid(format!("'{name}' {:?} is not a weight of EfficientNet-Lite0", t.shape)))?;
        if !used.insert(name.as_str()) {
            return Err(Error::Invalid(format!("'{name}' appears twice")));
        }
        if t.shape != e.torch_shape || t.data.len() != t.numel() {
            return Err(Error::Shape(format!(
                "'{name}' has shape {:?} ({} values), EfficientNet-Lite0's is {:?}",
                t.shape,
                t.data.len(),
                e.torch_shape
            )));
        }
        let converted =
            HostTensor { shape: keras_shape(e.layout, &t.shape), data: convert(e.layout, &t.shape, &t.data) };
        match &e.target {
            Target::Base(keras) => {
                base.insert(keras.clone(), converted);
            }
            Target::HeadKernel => kernel = Some(converted),
            Target::HeadBias => bias = Some(converted),
        }
    }
    if let Some(e) = entries.iter().find(|e| !used.contains(e.torch.as_str())) {
        return Err(Error::Invalid(format!("'{}' {:?} is missing", e.torch, e.torch_shape)));
    }
    // Only BatchNorm's step counters may be left unread, one per BatchNorm.
    let bn_prefixes: HashSet<String> =
        entries.iter().filter_map(|e| e.torch.strip_suffix(".running_var").map(str::to_string)).collect();
    let mut counted = HashSet::new();
    for name in &dict.skipped {
        let bn = name.strip_suffix(".num_batches_tracked").filter(|bn| bn_prefixes.contains(*bn));
        if bn.is_none() || !counted.insert(name.as_str()) {
            return Err(Error::Invalid(format!(
                "'{name}' is not a float tensor, and not the num_batches_tracked of one of EfficientNet-Lite0's BatchNorms"
            )));
        }
    }
    match (kernel, bias) {
        (Some(kernel), Some(bias)) => Ok((base, (kernel, bias))),
        _ => Err(Error::Invalid("'_fc.weight' or '_fc.bias' is missing".into())),
    }
}

/// `read_legacy_state_dict` then `lite0_to_keras`, with every error naming the file.
pub fn read_lite0(path: &Path) -> Result<(TensorMap, (HostTensor, HostTensor))> {
    let dict = read_legacy_state_dict(path)?;
    lite0_to_keras(&dict).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })
}
