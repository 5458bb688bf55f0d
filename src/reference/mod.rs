//! Plain-Rust CPU references for every kernel (f64 throughout), plus the
//! comparison and finite-difference helpers the tests and benches use.
//! Not used on the training path.

pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod conv_backward;
pub mod depthwise;
pub mod dropout;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod network;
pub mod optim;
pub mod pad;
pub mod pool;
pub mod reduce;

use rand::{Rng, SeedableRng};

/// Deterministic uniform random data in `[lo, hi)`.
pub fn random(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

pub fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Relative L2 error ‖got − want‖ / ‖want‖ (absolute when `want` is zero).
pub fn rel_l2(got: &[f32], want: &[f64]) -> f64 {
    rel_l2_f64(&to_f64(got), want)
}

/// Central finite-difference gradient of the scalar `f` at `x`.
pub fn finite_difference(x: &[f64], eps: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + eps;
            let up = f(&x);
            x[i] = orig - eps;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// Σ g·y: the scalar whose gradient with respect to y is g, used to turn an
/// op's backward into a finite-difference check.
pub fn dot(g: &[f64], y: &[f64]) -> f64 {
    g.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// Relative L2 error between two f64 vectors.
pub fn rel_l2_f64(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "rel_l2: lengths differ");
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (g - w).powi(2);
        den += w * w;
    }
    if den == 0.0 { num.sqrt() } else { (num / den).sqrt() }
}
