//! The layer graph of EfficientNet-Lite0 without its classifier, as the
//! TensorFlow reference (tensorflow/tpu `efficientnet/lite`) and the PyTorch
//! port on PyPI (`efficientnet-lite-pytorch`) build it, with layer names in
//! the style of Keras's EfficientNet (`stem_conv`, `block2a_expand_conv`,
//! `block2b_add`, `top_conv`, …).
//!
//! Lite differs from EfficientNet-B0: ReLU6 instead of swish, no
//! squeeze-and-excitation, the stem (32 filters) and head (1280) fixed.
//! Convolutions use TF 'same' padding throughout (uneven for stride 2 on an
//! even side: the extra row and column go at the end); BatchNormalization
//! has epsilon 1e-3. Stochastic depth (drop connect), a training-time
//! regulariser of the original, is left out: inference is unchanged.

use super::graph::{BatchNormSpec, Graph, LayerKind};
use crate::ops::window::{Padding, Window2d};

/// EfficientNet-Lite's BatchNormalization: scale=True, epsilon 1e-3, momentum 0.99.
pub const BATCH_NORM: BatchNormSpec = BatchNormSpec { scale: true, epsilon: 1e-3, momentum: 0.99 };

/// One stage of MBConv blocks: `repeats` blocks, the first with `stride`.
struct Stage {
    kernel: usize,
    stride: usize,
    expansion: usize,
    filters: usize,
    repeats: usize,
}

/// EfficientNet-Lite0's seven stages (width and depth coefficients 1.0).
const STAGES: [Stage; 7] = [
    Stage { kernel: 3, stride: 1, expansion: 1, filters: 16, repeats: 1 },
    Stage { kernel: 3, stride: 2, expansion: 6, filters: 24, repeats: 2 },
    Stage { kernel: 5, stride: 2, expansion: 6, filters: 40, repeats: 2 },
    Stage { kernel: 3, stride: 2, expansion: 6, filters: 80, repeats: 3 },
    Stage { kernel: 5, stride: 1, expansion: 6, filters: 112, repeats: 3 },
    Stage { kernel: 5, stride: 2, expansion: 6, filters: 192, repeats: 4 },
    Stage { kernel: 3, stride: 1, expansion: 6, filters: 320, repeats: 1 },
];

/// Channels of the stem and of the head convolution.
const STEM_FILTERS: usize = 32;
const HEAD_FILTERS: usize = 1280;

struct Builder {
    g: Graph,
}

impl Builder {
    fn add(&mut self, name: String, kind: LayerKind, input: usize) -> usize {
        self.g.add(name, kind, vec![input])
    }

    /// Conv2D(use_bias=False) → BatchNormalization, `{prefix}conv`/`{prefix}bn` style names given whole.
    fn conv_bn(&mut self, x: usize, filters: usize, win: Window2d, conv: String, bn: String) -> usize {
        let c = self.add(conv, LayerKind::Conv2d { filters, win }, x);
        self.add(bn, LayerKind::BatchNorm(BATCH_NORM), c)
    }

    /// MBConv: 1×1 expansion (when the ratio is not 1), k×k depthwise, 1×1
    /// linear projection, and the identity skip when stride 1 keeps the width.
    fn mbconv(&mut self, input: usize, in_channels: usize, stage: &Stage, stride: usize, prefix: &str) -> usize {
        let pointwise = Window2d::new(1, 1, 1, Padding::Same);
        let mut x = input;
        if stage.expansion != 1 {
            x = self.conv_bn(x, in_channels * stage.expansion, pointwise, format!("{prefix}expand_conv"), format!("{prefix}expand_bn"));
            x = self.add(format!("{prefix}expand_activation"), LayerKind::Relu6, x);
        }
        let win = Window2d::new(stage.kernel, stage.kernel, stride, Padding::Same);
        x = self.add(format!("{prefix}dwconv"), LayerKind::DepthwiseConv2d { win }, x);
        x = self.add(format!("{prefix}bn"), LayerKind::BatchNorm(BATCH_NORM), x);
        x = self.add(format!("{prefix}activation"), LayerKind::Relu6, x);
        x = self.conv_bn(x, stage.filters, pointwise, format!("{prefix}project_conv"), format!("{prefix}project_bn"));
        if stride == 1 && in_channels == stage.filters {
            x = self.g.add(format!("{prefix}add"), LayerKind::Add, vec![input, x]);
        }
        x
    }
}

/// The 141 layers of EfficientNet-Lite0 up to its head convolution's ReLU6
/// (`top_activation`, 1280 channels), InputLayer first.
pub fn efficientnet_lite0_graph() -> Graph {
    let mut b = Builder { g: Graph::default() };
    let input = b.g.add("input_layer".into(), LayerKind::Input, vec![]);
    let mut x = b.conv_bn(input, STEM_FILTERS, Window2d::new(3, 3, 2, Padding::Same), "stem_conv".into(), "stem_bn".into());
    x = b.add("stem_activation".into(), LayerKind::Relu6, x);
    let mut channels = STEM_FILTERS;
    for (s, stage) in STAGES.iter().enumerate() {
        for r in 0..stage.repeats {
            // Keras's names: block1a, block2a, block2b, … (stage number, then a letter per repeat).
            let prefix = format!("block{}{}_", s + 1, char::from(b'a' + r as u8));
            let stride = if r == 0 { stage.stride } else { 1 };
            x = b.mbconv(x, channels, stage, stride, &prefix);
            channels = stage.filters;
        }
    }
    x = b.conv_bn(x, HEAD_FILTERS, Window2d::new(1, 1, 1, Padding::Same), "top_conv".into(), "top_bn".into());
    b.add("top_activation".into(), LayerKind::Relu6, x);
    b.g
}
