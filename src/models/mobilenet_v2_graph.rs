//! The layer graph of Keras 3 `applications.MobileNetV2(alpha=1.0,
//! include_top=False)`, built in the order of
//! keras/src/applications/mobilenet_v2.py, with its explicit layer names
//! (`Conv1`, `block_3_expand`, …, `out_relu`).
//!
//! Every stride-2 block pads with ZeroPadding2D(((0, 1), (0, 1))) before a
//! 'valid' depthwise convolution: Keras's `correct_pad` for an even side or
//! an input built without a fixed size (as nsfwjs's 224² model and
//! `MobileNetV2(input_shape=(None, None, 3))` are), so the graph is the same
//! at every input size.

use super::graph::{BatchNormSpec, Graph, LayerKind};
use crate::ops::window::{Padding, Window2d};

/// MobileNetV2's BatchNormalization: scale=True, epsilon 1e-3, momentum 0.999.
pub const BATCH_NORM: BatchNormSpec = BatchNormSpec { scale: true, epsilon: 1e-3, momentum: 0.999 };

/// (output filters, stride, expansion) of the 17 inverted residual blocks, `block_id` 0 … 16.
const BLOCKS: [(usize, usize, usize); 17] = [
    (16, 1, 1),
    (24, 2, 6),
    (24, 1, 6),
    (32, 2, 6),
    (32, 1, 6),
    (32, 1, 6),
    (64, 2, 6),
    (64, 1, 6),
    (64, 1, 6),
    (64, 1, 6),
    (96, 1, 6),
    (96, 1, 6),
    (96, 1, 6),
    (160, 2, 6),
    (160, 1, 6),
    (160, 1, 6),
    (320, 1, 6),
];

struct Builder {
    g: Graph,
}

impl Builder {
    /// Conv2D(use_bias=False) → BatchNormalization, named `conv` and `bn`.
    fn conv_bn(&mut self, x: usize, filters: usize, win: Window2d, conv: String, bn: String) -> usize {
        let c = self.g.add(conv, LayerKind::Conv2d { filters, win }, vec![x]);
        self.g.add(bn, LayerKind::BatchNorm(BATCH_NORM), vec![c])
    }

    fn relu6(&mut self, x: usize, name: String) -> usize {
        self.g.add(name, LayerKind::Relu6, vec![x])
    }

    /// `_inverted_res_block`: 1×1 expansion (not in block 0), 3×3 depthwise,
    /// 1×1 linear projection, and a residual Add where shapes allow.
    fn inverted_residual(&mut self, input: usize, in_channels: usize, block_id: usize) -> usize {
        let (filters, stride, expansion) = BLOCKS[block_id];
        let pointwise = Window2d::new(1, 1, 1, Padding::Same);
        let mut x = input;
        let prefix = if block_id == 0 {
            "expanded_conv_".to_string()
        } else {
            let prefix = format!("block_{block_id}_");
            x = self.conv_bn(x, expansion * in_channels, pointwise, format!("{prefix}expand"), format!("{prefix}expand_BN"));
            x = self.relu6(x, format!("{prefix}expand_relu"));
            prefix
        };
        let depthwise = if stride == 2 {
            x = self.g.add(format!("{prefix}pad"), LayerKind::ZeroPad([0, 1, 0, 1]), vec![x]);
            Window2d::new(3, 3, 2, Padding::Valid)
        } else {
            Window2d::new(3, 3, 1, Padding::Same)
        };
        x = self.g.add(format!("{prefix}depthwise"), LayerKind::DepthwiseConv2d { win: depthwise }, vec![x]);
        x = self.g.add(format!("{prefix}depthwise_BN"), LayerKind::BatchNorm(BATCH_NORM), vec![x]);
        x = self.relu6(x, format!("{prefix}depthwise_relu"));
        x = self.conv_bn(x, filters, pointwise, format!("{prefix}project"), format!("{prefix}project_BN"));
        if in_channels == filters && stride == 1 {
            x = self.g.add(format!("{prefix}add"), LayerKind::Add, vec![input, x]);
        }
        x
    }
}

/// The 154 layers of MobileNetV2 (alpha 1.0) without its top, InputLayer first.
pub fn mobilenet_v2_graph() -> Graph {
    let mut b = Builder { g: Graph::default() };
    let input = b.g.add("input_layer".into(), LayerKind::Input, vec![]);
    let mut x = b.conv_bn(input, 32, Window2d::new(3, 3, 2, Padding::Same), "Conv1".into(), "bn_Conv1".into());
    x = b.relu6(x, "Conv1_relu".into());
    let mut channels = 32;
    for (block_id, &(out_channels, ..)) in BLOCKS.iter().enumerate() {
        x = b.inverted_residual(x, channels, block_id);
        channels = out_channels;
    }
    x = b.conv_bn(x, 1280, Window2d::new(1, 1, 1, Padding::Valid), "Conv_1".into(), "Conv_1_bn".into());
    b.relu6(x, "out_relu".into());
    b.g
}
