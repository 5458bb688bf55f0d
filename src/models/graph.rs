//! A Keras functional graph of named layers: creation order (how Keras
//! numbers the auto-generated names and stores weights) and `model.layers`
//! order (how Keras lists layers, which decides what "the last N layers" are).

use crate::error::{Error, Result};
use crate::ops::window::Window2d;

/// A Keras BatchNormalization layer's settings (axis −1, center=True).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormSpec {
    /// `scale=True`: a learned gamma multiplies the normalised value
    /// (MobileNetV2, EfficientNet); `scale=False`: γ = 1 (InceptionV3).
    pub scale: bool,
    pub epsilon: f32,
    /// Weight of the old moving statistics in their update.
    pub momentum: f32,
}

impl BatchNormSpec {
    /// The variables Keras stores for this layer, in Keras's order.
    pub const fn variables(&self) -> &'static [&'static str] {
        if self.scale { &["gamma", "beta", "moving_mean", "moving_variance"] } else { &["beta", "moving_mean", "moving_variance"] }
    }

    /// The variables training changes by gradient (the rest are moving statistics).
    pub fn trainable_variables(&self) -> &'static [&'static str] {
        if self.scale { &["gamma", "beta"] } else { &["beta"] }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Input,
    /// Conv2D(use_bias=False) with `filters` outputs.
    Conv2d { filters: usize, win: Window2d },
    /// DepthwiseConv2D(depth_multiplier=1, use_bias=False): one `kh`×`kw`
    /// filter per channel.
    DepthwiseConv2d { win: Window2d },
    /// BatchNormalization: (gamma,) beta, moving mean and variance.
    BatchNorm(BatchNormSpec),
    /// Activation('relu').
    Relu,
    /// ReLU(max_value=6): min(max(x, 0), 6).
    Relu6,
    /// ZeroPadding2D(((top, bottom), (left, right))): `[top, bottom, left, right]`.
    ZeroPad([usize; 4]),
    MaxPool(Window2d),
    AvgPool(Window2d),
    /// Concatenate along channels.
    Concat,
    /// Elementwise sum of inputs of one shape (residual connections).
    Add,
}

impl LayerKind {
    /// The Keras class name, as `model.summary()` prints it.
    pub fn keras_class(&self) -> &'static str {
        match self {
            LayerKind::Input => "InputLayer",
            LayerKind::Conv2d { .. } => "Conv2D",
            LayerKind::DepthwiseConv2d { .. } => "DepthwiseConv2D",
            LayerKind::BatchNorm(_) => "BatchNormalization",
            LayerKind::Relu => "Activation",
            LayerKind::Relu6 => "ReLU",
            LayerKind::ZeroPad(_) => "ZeroPadding2D",
            LayerKind::MaxPool(_) => "MaxPooling2D",
            LayerKind::AvgPool(_) => "AveragePooling2D",
            LayerKind::Concat => "Concatenate",
            LayerKind::Add => "Add",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    /// Producers of this layer's inputs, as indices into creation order.
    pub inputs: Vec<usize>,
}

/// Layers in creation order; index = creation index.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub layers: Vec<Layer>,
}

impl Graph {
    /// The name of the last layer, the network's output ("" for an empty graph).
    pub fn output_name(&self) -> String {
        self.layers.last().map(|l| l.name.clone()).unwrap_or_default()
    }

    pub fn add(&mut self, name: String, kind: LayerKind, inputs: Vec<usize>) -> usize {
        self.layers.push(Layer { name, kind, inputs });
        self.layers.len() - 1
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// The layers that read layer `l`'s output, in creation order.
    pub fn consumers(&self, l: usize) -> impl Iterator<Item = usize> + '_ {
        self.layers.iter().enumerate().filter(move |(_, c)| c.inputs.contains(&l)).map(|(i, _)| i)
    }

    /// Sibling convolutions: per layer, the convolutions that read its output
    /// as their only input, grouped by window (in creation order), where a
    /// group has two or more — what one GEMM over their concatenated filters
    /// can compute (e.g. the 1×1 convolutions opening an Inception block's branches).
    pub fn sibling_convs(&self) -> Vec<(Window2d, Vec<usize>)> {
        let mut groups = Vec::new();
        for l in 0..self.layers.len() {
            let mut by_window: Vec<(Window2d, Vec<usize>)> = Vec::new();
            for c in self.consumers(l) {
                let LayerKind::Conv2d { win, .. } = self.layers[c].kind else { continue };
                if self.layers[c].inputs != [l] {
                    continue;
                }
                match by_window.iter_mut().find(|(w, _)| *w == win) {
                    Some((_, convs)) => convs.push(c),
                    None => by_window.push((win, vec![c])),
                }
            }
            groups.extend(by_window.into_iter().filter(|(_, convs)| convs.len() >= 2));
        }
        groups
    }

    /// NHWC output shape of every layer (by creation index) for a batch of
    /// `n` images of `h`×`w`×`channels`.
    pub fn output_shapes(&self, n: usize, h: usize, w: usize, channels: usize) -> Result<Vec<[usize; 4]>> {
        let mut shapes: Vec<[usize; 4]> = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let inputs = layer
                .inputs
                .iter()
                .map(|&i| shapes.get(i).copied().ok_or_else(|| Error::Invalid(format!("layer {} reads layer index {i}, which is not created before it", layer.name))))
                .collect::<Result<Vec<[usize; 4]>>>()?;
            let shape = match (&layer.kind, inputs.first().copied()) {
                (LayerKind::Input, _) => [n, h, w, channels],
                (LayerKind::Conv2d { filters, win }, Some([n, h, w, _])) => {
                    let (oh, ow) = win.output_size(h, w).map_err(|e| self.shape_error(layer, e))?;
                    [n, oh, ow, *filters]
                }
                (LayerKind::DepthwiseConv2d { win } | LayerKind::MaxPool(win) | LayerKind::AvgPool(win), Some([n, h, w, c])) => {
                    let (oh, ow) = win.output_size(h, w).map_err(|e| self.shape_error(layer, e))?;
                    [n, oh, ow, c]
                }
                (LayerKind::Concat, Some([n, h, w, _])) => {
                    if inputs.iter().any(|s| s[..3] != [n, h, w]) {
                        return Err(Error::Shape(format!("{}: cannot concatenate shapes {inputs:?}", layer.name)));
                    }
                    [n, h, w, inputs.iter().map(|s| s[3]).sum()]
                }
                (LayerKind::Add, Some(first)) => {
                    if inputs.iter().any(|s| *s != first) {
                        return Err(Error::Shape(format!("{}: cannot add shapes {inputs:?}", layer.name)));
                    }
                    first
                }
                (LayerKind::ZeroPad([top, bottom, left, right]), Some([n, h, w, c])) => [n, h + top + bottom, w + left + right, c],
                (LayerKind::BatchNorm(_) | LayerKind::Relu | LayerKind::Relu6, Some(s)) => s,
                (_, None) => return Err(Error::Invalid(format!("layer {} has no input", layer.name))),
            };
            shapes.push(shape);
        }
        Ok(shapes)
    }

    fn shape_error(&self, layer: &Layer, e: Error) -> Error {
        Error::Shape(format!("{} ({}): {e}", layer.name, layer.kind.keras_class()))
    }

    /// Keras 3 `model.layers` order for a single-output graph whose output is
    /// the last layer created (keras/src/ops/function.py `map_graph`): a
    /// depth-first walk from the output assigns each layer a visiting index;
    /// a layer's depth is its longest path to the output; layers are listed
    /// by decreasing depth, ties broken by visiting index.
    pub fn keras_order(&self) -> Vec<usize> {
        let n = self.layers.len();
        let output = n - 1;
        // Depth-first traversal from the output, inputs in call order.
        let mut visit_index = vec![usize::MAX; n];
        let mut post_order = Vec::with_capacity(n);
        let mut next = 0;
        // Explicit stack of (layer, next input to explore) to avoid recursion depth issues.
        let mut stack = vec![(output, 0usize)];
        visit_index[output] = next;
        next += 1;
        let mut done = vec![false; n];
        while let Some(&mut (layer, ref mut k)) = stack.last_mut() {
            let inputs = &self.layers[layer].inputs;
            if *k < inputs.len() {
                let child = inputs[*k];
                *k += 1;
                if !done[child] && visit_index[child] == usize::MAX {
                    visit_index[child] = next;
                    next += 1;
                    stack.push((child, 0));
                }
            } else {
                done[layer] = true;
                post_order.push(layer);
                stack.pop();
            }
        }
        // Longest path to the output: consumers come before producers in reversed post-order.
        let mut depth = vec![0usize; n];
        for &layer in post_order.iter().rev() {
            for &input in &self.layers[layer].inputs {
                depth[input] = depth[input].max(depth[layer] + 1);
            }
        }
        let mut order: Vec<usize> = post_order;
        order.sort_by(|&a, &b| depth[b].cmp(&depth[a]).then(visit_index[a].cmp(&visit_index[b])));
        order
    }
}

/// Auto-generated Keras 3 names: `conv2d`, `conv2d_1`, `conv2d_2`, …
#[derive(Default)]
pub struct Namer(std::collections::HashMap<&'static str, usize>);

impl Namer {
    pub fn next(&mut self, prefix: &'static str) -> String {
        let k = self.0.entry(prefix).or_insert(0);
        let name = if *k == 0 { prefix.to_string() } else { format!("{prefix}_{k}") };
        *k += 1;
        name
    }
}
