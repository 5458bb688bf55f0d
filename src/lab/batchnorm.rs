//! Lab families `batchnorm` and `batchnorm-backward`: training-mode
//! BatchNorm (batch statistics) at the input shape of every InceptionV3
//! BatchNormalization layer, each without gamma (Keras `scale=False`, as
//! InceptionV3) and with one (`scale=True`, as MobileNetV2 and
//! EfficientNet). Each has one GPU kernel chain, so its oracle is the f64
//! CPU reference.

use super::{Family, Variant, distinct_layer_inputs, read_back};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::graph::LayerKind;
use crate::ops::batchnorm::{self as bn, BatchStats};
use crate::reference::{batchnorm as reference, random};
use crate::tensor::Tensor;

/// InceptionV3's BatchNormalization epsilon, the shapes' own.
const BN_EPSILON: f32 = crate::models::inception_v3_graph::BATCH_NORM.epsilon;

/// NHWC [n, h, w, c], normalised per channel over n·h·w rows, with or without gamma.
#[derive(Clone, Copy, Debug)]
pub struct BnShape {
    pub x: [usize; 4],
    pub gamma: bool,
}

fn shapes(n: usize, image: usize) -> Result<Vec<BnShape>> {
    let inputs = distinct_layer_inputs(n, image, |k| matches!(k, LayerKind::BatchNorm(_)).then_some(()))?;
    Ok(inputs.into_iter().flat_map(|((), x)| [false, true].map(|gamma| BnShape { x, gamma })).collect())
}

fn small_shapes() -> Vec<BnShape> {
    [[2, 5, 3, 7], [3, 9, 11, 40]].into_iter().flat_map(|x| [false, true].map(|gamma| BnShape { x, gamma })).collect()
}

fn label(s: &BnShape) -> String {
    let [n, h, w, c] = s.x;
    format!("{n}x{h}x{w}x{c} {}", if s.gamma { "gamma" } else { "beta only" })
}

fn random_like(gpu: &Gpu, s: &BnShape, shape: &[usize], salt: u64, lo: f32, hi: f32) -> Result<Tensor> {
    let seed = (s.x[1] * 31 + s.x[3]) as u64 * 8 + salt;
    Tensor::from_slice(gpu, shape, &random(shape.iter().product(), seed, lo, hi))
}

fn elements(s: &BnShape) -> usize {
    s.x.iter().product()
}

/// Per-channel vectors read besides the statistics: beta, and gamma when present.
fn affine_vectors(s: &BnShape) -> usize {
    if s.gamma { 2 } else { 1 }
}

/// The gamma input (random in [0.5, 1.5)) when the shape has one.
fn gamma_input(gpu: &Gpu, s: &BnShape) -> Result<Option<Tensor>> {
    s.gamma.then(|| random_like(gpu, s, &[s.x[3]], 3, 0.5, 1.5)).transpose()
}

/// Forward with batch statistics: outputs y and the batch mean and variance.
pub struct BatchNormTrain;

impl Family for BatchNormTrain {
    type Shape = BnShape;
    const NAME: &'static str = "batchnorm";
    const WHAT: &'static str = "BatchNorm training forward (batch mean and variance, then normalise, ·gamma if any, + beta); FLOPs ≈ 7 per element";

    fn shapes(n: usize, image: usize) -> Result<Vec<BnShape>> {
        shapes(n, image)
    }
    fn small_shapes() -> Vec<BnShape> {
        small_shapes()
    }
    fn label(s: &BnShape) -> String {
        label(s)
    }
    fn flops(s: &BnShape) -> f64 {
        7.0 * elements(s) as f64
    }
    fn bytes(s: &BnShape) -> f64 {
        // x read, y written; beta (and gamma) read, mean and variance written.
        4.0 * (2 * elements(s) + (2 + affine_vectors(s)) * s.x[3]) as f64
    }
    /// x, beta, then gamma when the shape has one.
    fn inputs(gpu: &Gpu, s: &BnShape) -> Result<Vec<Tensor>> {
        // An offset mean, so the variance is not computed around zero.
        let mut t = vec![random_like(gpu, s, &s.x, 0, 0.5, 3.0)?, random_like(gpu, s, &[s.x[3]], 1, -0.5, 0.5)?];
        t.extend(gamma_input(gpu, s)?);
        Ok(t)
    }
    fn variants() -> Vec<Variant<BnShape>> {
        vec![Variant::new("batch-stats", |_: &BnShape, t: &[Tensor]| {
            let (y, stats) = bn::batchnorm_train(&t[0], t.get(2), &t[1], BN_EPSILON)?;
            Ok(vec![y, stats.mean, stats.var])
        })]
    }
    fn picked(_: &Gpu, _: &BnShape) -> &'static str {
        "batch-stats"
    }
    fn reference(_: &BnShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let (y, mean, var) = reference::batchnorm_train(&t[0], t.get(2).map(Vec::as_slice), &t[1], BN_EPSILON as f64);
        vec![y, mean, var]
    }
    fn oracle(s: &BnShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}

/// Backward through the batch statistics: outputs dx, dbeta, and dgamma when there is a gamma.
pub struct BatchNormBackward;

impl Family for BatchNormBackward {
    type Shape = BnShape;
    const NAME: &'static str = "batchnorm-backward";
    const WHAT: &'static str = "BatchNorm training backward (Σdy, Σdy·x̂, then dx) from x, dy, gamma if any and the batch statistics; FLOPs ≈ 10 per element";

    fn shapes(n: usize, image: usize) -> Result<Vec<BnShape>> {
        shapes(n, image)
    }
    fn small_shapes() -> Vec<BnShape> {
        small_shapes()
    }
    fn label(s: &BnShape) -> String {
        label(s)
    }
    fn flops(s: &BnShape) -> f64 {
        10.0 * elements(s) as f64
    }
    fn bytes(s: &BnShape) -> f64 {
        // x and dy read, dx written; mean and inv_std (and gamma) read, dbeta (and dgamma) written.
        4.0 * (3 * elements(s) + (1 + 2 * affine_vectors(s)) * s.x[3]) as f64
    }
    /// x, dy, the batch statistics of x (mean, var, inv_std), then gamma when the shape has one.
    fn inputs(gpu: &Gpu, s: &BnShape) -> Result<Vec<Tensor>> {
        let x = random_like(gpu, s, &s.x, 0, 0.5, 3.0)?;
        let dy = random_like(gpu, s, &s.x, 2, -1.0, 1.0)?;
        let beta = Tensor::zeros(gpu, &[s.x[3]])?;
        let (_, stats) = bn::batchnorm_train(&x, None, &beta, BN_EPSILON)?;
        let mut t = vec![x, dy, stats.mean, stats.var, stats.inv_std];
        t.extend(gamma_input(gpu, s)?);
        Ok(t)
    }
    fn variants() -> Vec<Variant<BnShape>> {
        vec![Variant::new("batch-stats", |_: &BnShape, t: &[Tensor]| {
            let stats = BatchStats { mean: t[2].clone(), var: t[3].clone(), inv_std: t[4].clone() };
            let (dx, dgamma, dbeta) = bn::batchnorm_train_backward(&t[0], &t[1], t.get(5), &stats)?;
            Ok([Some(dx), Some(dbeta), dgamma].into_iter().flatten().collect())
        })]
    }
    fn picked(_: &Gpu, _: &BnShape) -> &'static str {
        "batch-stats"
    }
    fn reference(s: &BnShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let gamma = t.get(5).map(Vec::as_slice);
        let (dx, dgamma, dbeta) = reference::batchnorm_train_backward(&t[0], &t[1], gamma, s.x[3], BN_EPSILON as f64);
        [Some(dx), Some(dbeta), gamma.map(|_| dgamma)].into_iter().flatten().collect()
    }
    fn oracle(s: &BnShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}
