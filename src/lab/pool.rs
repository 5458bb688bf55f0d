//! Lab families `pool` and `pool-backward`: max and average pooling at every
//! distinct InceptionV3 pooling layer (its kind, window and input shape).
//! One GPU kernel each, so the oracle is the f64 CPU reference.

use super::{Family, Variant, distinct_layer_inputs, read_back};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::graph::LayerKind;
use crate::ops::pool;
use crate::ops::window::{Padding, Window2d};
use crate::reference::{pool as reference, random};
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// One pooling layer: kind, window and NHWC input shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub kind: PoolKind,
    pub win: Window2d,
    pub x: [usize; 4],
}

impl PoolShape {
    fn y(&self) -> [usize; 4] {
        let [n, h, w, c] = self.x;
        let (oh, ow) = self.win.output_size(h, w).expect("pool shapes come from a valid layer graph");
        [n, oh, ow, c]
    }

    fn random(&self, gpu: &Gpu, shape: [usize; 4], salt: u64) -> Result<Tensor> {
        let seed = (self.x[1] * 31 + self.x[3]) as u64 * 8 + salt;
        Tensor::from_slice(gpu, &shape, &random(shape.iter().product(), seed, -1.0, 1.0))
    }
}

fn shapes(n: usize, image: usize) -> Result<Vec<PoolShape>> {
    let select = |k: &LayerKind| match *k {
        LayerKind::MaxPool(win) => Some((PoolKind::Max, win)),
        LayerKind::AvgPool(win) => Some((PoolKind::Avg, win)),
        _ => None,
    };
    Ok(distinct_layer_inputs(n, image, select)?.into_iter().map(|((kind, win), x)| PoolShape { kind, win, x }).collect())
}

fn small_shapes() -> Vec<PoolShape> {
    vec![
        PoolShape { kind: PoolKind::Max, win: Window2d::new(3, 3, 2, Padding::Valid), x: [2, 9, 8, 5] },
        PoolShape { kind: PoolKind::Avg, win: Window2d::new(3, 3, 1, Padding::Same), x: [3, 7, 6, 5] },
    ]
}

fn label(s: &PoolShape) -> String {
    let kind = match s.kind {
        PoolKind::Max => "max",
        PoolKind::Avg => "avg",
    };
    let pad = s.win.padding.label();
    let [n, h, w, c] = s.x;
    format!("{kind} n{n} {h}x{w}x{c} {}x{} s{} {pad}", s.win.kh, s.win.kw, s.win.stride_h)
}

/// Window taps summed or compared: one operation per tap per output.
fn flops(s: &PoolShape) -> f64 {
    (s.y().iter().product::<usize>() * s.win.kh * s.win.kw) as f64
}

fn numel(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

/// Pooling forward.
pub struct PoolForward;

impl Family for PoolForward {
    type Shape = PoolShape;
    const NAME: &'static str = "pool";
    const WHAT: &'static str = "max / average pooling forward (Keras padding; average over in-bounds taps); FLOPs = taps per output";

    fn shapes(n: usize, image: usize) -> Result<Vec<PoolShape>> {
        shapes(n, image)
    }
    fn small_shapes() -> Vec<PoolShape> {
        small_shapes()
    }
    fn label(s: &PoolShape) -> String {
        label(s)
    }
    fn flops(s: &PoolShape) -> f64 {
        flops(s)
    }
    fn bytes(s: &PoolShape) -> f64 {
        4.0 * (numel(s.x) + numel(s.y())) as f64
    }
    fn inputs(gpu: &Gpu, s: &PoolShape) -> Result<Vec<Tensor>> {
        Ok(vec![s.random(gpu, s.x, 0)?])
    }
    fn variants() -> Vec<Variant<PoolShape>> {
        vec![Variant::new("gather", |s: &PoolShape, t: &[Tensor]| {
            Ok(vec![match s.kind {
                PoolKind::Max => pool::max_pool2d(&t[0], &s.win)?,
                PoolKind::Avg => pool::avg_pool2d(&t[0], &s.win)?,
            }])
        })]
    }
    fn picked(_: &Gpu, _: &PoolShape) -> &'static str {
        "gather"
    }
    fn reference(s: &PoolShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let (y, _) = match s.kind {
            PoolKind::Max => reference::max_pool2d(&t[0], s.x, &s.win),
            PoolKind::Avg => reference::avg_pool2d(&t[0], s.x, &s.win),
        };
        vec![y]
    }
    fn oracle(s: &PoolShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}

/// Pooling backward (max: recomputed argmax, then a gather per input element).
pub struct PoolBackward;

impl Family for PoolBackward {
    type Shape = PoolShape;
    const NAME: &'static str = "pool-backward";
    const WHAT: &'static str = "max / average pooling backward, gathered per input element (max recomputes the argmax); FLOPs = taps per output";

    fn shapes(n: usize, image: usize) -> Result<Vec<PoolShape>> {
        shapes(n, image)
    }
    fn small_shapes() -> Vec<PoolShape> {
        small_shapes()
    }
    fn label(s: &PoolShape) -> String {
        label(s)
    }
    fn flops(s: &PoolShape) -> f64 {
        flops(s)
    }
    fn bytes(s: &PoolShape) -> f64 {
        // dy read, dx written; max pooling also reads x.
        let x_read = if s.kind == PoolKind::Max { numel(s.x) } else { 0 };
        4.0 * (x_read + numel(s.y()) + numel(s.x)) as f64
    }
    /// x and dy.
    fn inputs(gpu: &Gpu, s: &PoolShape) -> Result<Vec<Tensor>> {
        Ok(vec![s.random(gpu, s.x, 0)?, s.random(gpu, s.y(), 1)?])
    }
    fn variants() -> Vec<Variant<PoolShape>> {
        vec![Variant::new("gather", |s: &PoolShape, t: &[Tensor]| {
            Ok(vec![match s.kind {
                PoolKind::Max => pool::max_pool2d_backward(&t[0], &t[1], &s.win)?,
                PoolKind::Avg => pool::avg_pool2d_backward(&t[1], &s.win, s.x)?,
            }])
        })]
    }
    fn picked(_: &Gpu, _: &PoolShape) -> &'static str {
        "gather"
    }
    fn reference(s: &PoolShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![match s.kind {
            PoolKind::Max => reference::max_pool2d_backward(&t[0], s.x, &t[1], &s.win),
            PoolKind::Avg => reference::avg_pool2d_backward(&t[1], &s.win, s.x),
        }]
    }
    fn oracle(s: &PoolShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}
