//! Lab families `batchnorm` and `batchnorm-backward`: training-mode
//! BatchNorm (Keras `scale=False`, batch statistics) at the input shape of
//! every InceptionV3 BatchNormalization layer. Each has one GPU kernel
//! chain, so its oracle is the f64 CPU reference.

use super::{Family, Variant, distinct_layer_inputs, read_back};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::graph::LayerKind;
use crate::ops::batchnorm::{self as bn, BatchStats};
use crate::reference::{batchnorm as reference, random};
use crate::tensor::Tensor;

/// InceptionV3's BatchNormalization epsilon, the shapes' own.
const BN_EPSILON: f32 = crate::models::inception_v3_graph::BATCH_NORM.epsilon;

/// NHWC [n, h, w, c]: normalised per channel over n·h·w rows.
pub type BnShape = [usize; 4];

fn shapes(n: usize, image: usize) -> Result<Vec<BnShape>> {
    Ok(distinct_layer_inputs(n, image, |k| matches!(k, LayerKind::BatchNorm(_)).then_some(()))?.into_iter().map(|((), s)| s).collect())
}

fn small_shapes() -> Vec<BnShape> {
    vec![[2, 5, 3, 7], [3, 9, 11, 40]]
}

fn label(s: &BnShape) -> String {
    format!("{}x{}x{}x{}", s[0], s[1], s[2], s[3])
}

fn random_like(gpu: &Gpu, s: &BnShape, shape: &[usize], salt: u64, lo: f32, hi: f32) -> Result<Tensor> {
    let seed = (s[1] * 31 + s[3]) as u64 * 8 + salt;
    Tensor::from_slice(gpu, shape, &random(shape.iter().product(), seed, lo, hi))
}

fn elements(s: &BnShape) -> usize {
    s.iter().product()
}

/// Forward with batch statistics: outputs y and the batch mean and variance.
pub struct BatchNormTrain;

impl Family for BatchNormTrain {
    type Shape = BnShape;
    const NAME: &'static str = "batchnorm";
    const WHAT: &'static str = "BatchNorm training forward (batch mean and variance, then normalise + beta); FLOPs ≈ 7 per element";

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
        // x read, y written; beta read, mean and variance written.
        4.0 * (2 * elements(s) + 3 * s[3]) as f64
    }
    fn inputs(gpu: &Gpu, s: &BnShape) -> Result<Vec<Tensor>> {
        // An offset mean, so the variance is not computed around zero.
        Ok(vec![random_like(gpu, s, s, 0, 0.5, 3.0)?, random_like(gpu, s, &[s[3]], 1, -0.5, 0.5)?])
    }
    fn variants() -> Vec<Variant<BnShape>> {
        vec![Variant::new("batch-stats", |_: &BnShape, t: &[Tensor]| {
            let (y, stats) = bn::batchnorm_train(&t[0], &t[1], BN_EPSILON)?;
            Ok(vec![y, stats.mean, stats.var])
        })]
    }
    fn picked(_: &Gpu, _: &BnShape) -> &'static str {
        "batch-stats"
    }
    fn reference(_: &BnShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let (y, mean, var) = reference::batchnorm_train(&t[0], &t[1], BN_EPSILON as f64);
        vec![y, mean, var]
    }
    fn oracle(s: &BnShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}

/// Backward through the batch statistics: outputs dx and dbeta.
pub struct BatchNormBackward;

impl Family for BatchNormBackward {
    type Shape = BnShape;
    const NAME: &'static str = "batchnorm-backward";
    const WHAT: &'static str = "BatchNorm training backward (Σdy, Σdy·x̂, then dx) from x, dy and the batch statistics; FLOPs ≈ 10 per element";

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
        // x and dy read, dx written; mean and inv_std read, dbeta written.
        4.0 * (3 * elements(s) + 3 * s[3]) as f64
    }
    /// x, dy and the batch statistics of x (mean, var, inv_std).
    fn inputs(gpu: &Gpu, s: &BnShape) -> Result<Vec<Tensor>> {
        let x = random_like(gpu, s, s, 0, 0.5, 3.0)?;
        let dy = random_like(gpu, s, s, 2, -1.0, 1.0)?;
        let beta = Tensor::zeros(gpu, &[s[3]])?;
        let (_, stats) = bn::batchnorm_train(&x, &beta, BN_EPSILON)?;
        Ok(vec![x, dy, stats.mean, stats.var, stats.inv_std])
    }
    fn variants() -> Vec<Variant<BnShape>> {
        vec![Variant::new("batch-stats", |_: &BnShape, t: &[Tensor]| {
            let stats = BatchStats { mean: t[2].clone(), var: t[3].clone(), inv_std: t[4].clone() };
            let (dx, dbeta) = bn::batchnorm_train_backward(&t[0], &t[1], &stats)?;
            Ok(vec![dx, dbeta])
        })]
    }
    fn picked(_: &Gpu, _: &BnShape) -> &'static str {
        "batch-stats"
    }
    fn reference(s: &BnShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let (dx, dbeta) = reference::batchnorm_train_backward(&t[0], &t[1], s[3], BN_EPSILON as f64);
        vec![dx, dbeta]
    }
    fn oracle(s: &BnShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}
