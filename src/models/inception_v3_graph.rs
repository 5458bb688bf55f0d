//! The layer graph of Keras 3 `applications.InceptionV3(include_top=False)`,
//! built in the same order as keras/src/applications/inception_v3.py so that
//! auto-generated names and weight order match Keras exactly.

use super::graph::{BatchNormSpec, Graph, LayerKind, Namer};
use crate::ops::window::{Padding, Window2d};

/// Keras `conv2d_bn`'s BatchNormalization: scale=False (no gamma), epsilon 1e-3, momentum 0.99.
pub const BATCH_NORM: BatchNormSpec = BatchNormSpec { scale: false, epsilon: 1e-3, momentum: 0.99 };

struct Builder {
    g: Graph,
    names: Namer,
}

impl Builder {
    /// Keras `conv2d_bn`: Conv2D(use_bias=False) → BatchNormalization(scale=False) → ReLU.
    fn conv_bn(&mut self, x: usize, filters: usize, kh: usize, kw: usize, stride: usize, padding: Padding) -> usize {
        let win = Window2d { kh, kw, stride_h: stride, stride_w: stride, padding };
        let conv = self.g.add(self.names.next("conv2d"), LayerKind::Conv2d { filters, win }, vec![x]);
        let bn = self.g.add(self.names.next("batch_normalization"), LayerKind::BatchNorm(BATCH_NORM), vec![conv]);
        self.g.add(self.names.next("activation"), LayerKind::Relu, vec![bn])
    }

    fn conv(&mut self, x: usize, filters: usize, kh: usize, kw: usize) -> usize {
        self.conv_bn(x, filters, kh, kw, 1, Padding::Same)
    }

    fn max_pool(&mut self, x: usize) -> usize {
        let name = self.names.next("max_pooling2d");
        self.g.add(name, LayerKind::MaxPool(Window2d::new(3, 3, 2, Padding::Valid)), vec![x])
    }

    fn avg_pool(&mut self, x: usize) -> usize {
        let name = self.names.next("average_pooling2d");
        self.g.add(name, LayerKind::AvgPool(Window2d::new(3, 3, 1, Padding::Same)), vec![x])
    }

    fn concat(&mut self, inputs: Vec<usize>, name: Option<String>) -> usize {
        let name = name.unwrap_or_else(|| self.names.next("concatenate"));
        self.g.add(name, LayerKind::Concat, inputs)
    }
}

/// The 311 layers of InceptionV3 without its top, InputLayer first.
pub fn inception_v3_graph() -> Graph {
    use Padding::Valid;
    let mut b = Builder { g: Graph::default(), names: Namer::default() };
    let input = b.g.add("input_layer".into(), LayerKind::Input, vec![]);
    let mut x = b.conv_bn(input, 32, 3, 3, 2, Valid);
    x = b.conv_bn(x, 32, 3, 3, 1, Valid);
    x = b.conv(x, 64, 3, 3);
    x = b.max_pool(x);
    x = b.conv_bn(x, 80, 1, 1, 1, Valid);
    x = b.conv_bn(x, 192, 3, 3, 1, Valid);
    x = b.max_pool(x);

    // mixed0, mixed1, mixed2: 35×35 at 299².
    for (i, pool_filters) in [32, 64, 64].into_iter().enumerate() {
        let branch1x1 = b.conv(x, 64, 1, 1);
        let mut branch5x5 = b.conv(x, 48, 1, 1);
        branch5x5 = b.conv(branch5x5, 64, 5, 5);
        let mut dbl = b.conv(x, 64, 1, 1);
        dbl = b.conv(dbl, 96, 3, 3);
        dbl = b.conv(dbl, 96, 3, 3);
        let mut pool = b.avg_pool(x);
        pool = b.conv(pool, pool_filters, 1, 1);
        x = b.concat(vec![branch1x1, branch5x5, dbl, pool], Some(format!("mixed{i}")));
    }

    // mixed3: 17×17.
    let branch3x3 = b.conv_bn(x, 384, 3, 3, 2, Valid);
    let mut dbl = b.conv(x, 64, 1, 1);
    dbl = b.conv(dbl, 96, 3, 3);
    dbl = b.conv_bn(dbl, 96, 3, 3, 2, Valid);
    let pool = b.max_pool(x);
    x = b.concat(vec![branch3x3, dbl, pool], Some("mixed3".into()));

    // mixed4..mixed7.
    for (i, mid) in [128, 160, 160, 192].into_iter().enumerate() {
        let branch1x1 = b.conv(x, 192, 1, 1);
        let mut b7 = b.conv(x, mid, 1, 1);
        b7 = b.conv(b7, mid, 1, 7);
        b7 = b.conv(b7, 192, 7, 1);
        let mut dbl = b.conv(x, mid, 1, 1);
        dbl = b.conv(dbl, mid, 7, 1);
        dbl = b.conv(dbl, mid, 1, 7);
        dbl = b.conv(dbl, mid, 7, 1);
        dbl = b.conv(dbl, 192, 1, 7);
        let mut pool = b.avg_pool(x);
        pool = b.conv(pool, 192, 1, 1);
        x = b.concat(vec![branch1x1, b7, dbl, pool], Some(format!("mixed{}", 4 + i)));
    }

    // mixed8: 8×8.
    let mut branch3x3 = b.conv(x, 192, 1, 1);
    branch3x3 = b.conv_bn(branch3x3, 320, 3, 3, 2, Valid);
    let mut b7x3 = b.conv(x, 192, 1, 1);
    b7x3 = b.conv(b7x3, 192, 1, 7);
    b7x3 = b.conv(b7x3, 192, 7, 1);
    b7x3 = b.conv_bn(b7x3, 192, 3, 3, 2, Valid);
    let pool = b.max_pool(x);
    x = b.concat(vec![branch3x3, b7x3, pool], Some("mixed8".into()));

    // mixed9, mixed10.
    for i in 0..2 {
        let branch1x1 = b.conv(x, 320, 1, 1);
        let branch3x3 = b.conv(x, 384, 1, 1);
        let b3_1 = b.conv(branch3x3, 384, 1, 3);
        let b3_2 = b.conv(branch3x3, 384, 3, 1);
        let branch3x3 = b.concat(vec![b3_1, b3_2], Some(format!("mixed9_{i}")));
        let mut dbl = b.conv(x, 448, 1, 1);
        dbl = b.conv(dbl, 384, 3, 3);
        let d1 = b.conv(dbl, 384, 1, 3);
        let d2 = b.conv(dbl, 384, 3, 1);
        let dbl = b.concat(vec![d1, d2], None);
        let mut pool = b.avg_pool(x);
        pool = b.conv(pool, 192, 1, 1);
        x = b.concat(vec![branch1x1, branch3x3, dbl, pool], Some(format!("mixed{}", 9 + i)));
    }
    b.g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_counts_and_last_15_layers() {
        let g = inception_v3_graph();
        assert_eq!(g.layers.len(), 311);
        assert_eq!(g.layers.iter().filter(|l| matches!(l.kind, LayerKind::Conv2d { .. })).count(), 94);
        let order = g.keras_order();
        assert_eq!(order.len(), 311);
        assert_eq!(g.layers[order[0]].name, "input_layer");
        let last15: Vec<&str> = order[296..].iter().map(|&i| g.layers[i].name.as_str()).collect();
        assert_eq!(
            last15,
            [
                "batch_normalization_88", "batch_normalization_91", "batch_normalization_92", "conv2d_93",
                "batch_normalization_85", "activation_87", "activation_88", "activation_91", "activation_92",
                "batch_normalization_93", "activation_85", "mixed9_1", "concatenate_1", "activation_93", "mixed10",
            ]
        );
    }
}
