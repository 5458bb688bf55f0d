//! Dropout: the GPU mask equals the CPU hash bit for bit, forward and
//! backward share it, its statistics fit the rate, and kept values are
//! scaled by exactly 1/(1 − rate).
use crate::common;
use common::*;
use incept::Tensor;
use incept::ops::dropout::{dropout, dropout_backward};
use incept::reference::{self as r, dropout as rd};

/// Nonzero data, so that a zero output means a dropped element.
fn nonzero(gpu: &incept::Gpu, n: usize, seed: u64) -> (Tensor, Vec<f32>) {
    let data: Vec<f32> =
        r::random(n, seed, 0.5, 1.5).iter().enumerate().map(|(i, &v)| if i % 3 == 0 { -v } else { v }).collect();
    (Tensor::from_slice(gpu, &[n], &data).unwrap(), data)
}

fn mask(y: &[f32]) -> Vec<bool> {
    y.iter().map(|&v| v != 0.0).collect()
}

#[test]
fn mask_matches_cpu_hash_and_backward() {
    let gpu = gpu();
    let seeds = [0u64, 42, 0xdead_beef_1234_5678, u64::MAX];
    for (n, data_seed) in [(1usize, 1u64), (255, 2), (257, 3), (70_001, 4)] {
        let (x, xh) = nonzero(&gpu, n, data_seed);
        let (dy, dyh) = nonzero(&gpu, n, data_seed + 100);
        for (&seed, rate) in seeds.iter().zip([0.1f32, 0.5, 0.9, 0.25]) {
            let y = dropout(&x, rate, seed).unwrap().to_vec().unwrap();
            let dx = dropout_backward(&dy, rate, seed).unwrap().to_vec().unwrap();
            let want: Vec<bool> = (0..n).map(|i| rd::keep(seed, i as u32, rate as f64)).collect();
            assert_eq!(mask(&y), want, "forward mask, n={n} seed={seed:#x} rate={rate}");
            assert_eq!(mask(&dx), want, "backward mask, n={n} seed={seed:#x} rate={rate}");
            assert_close("dropout", &y, &rd::dropout(&r::to_f64(&xh), rate as f64, seed));
            assert_close("dropout_backward", &dx, &rd::dropout(&r::to_f64(&dyh), rate as f64, seed));
        }
    }
}

#[test]
fn kept_fraction_and_scaling() {
    let gpu = gpu();
    let n = 100_000;
    let (x, xh) = nonzero(&gpu, n, 5);
    for (rate, seed) in [(0.1f32, 7u64), (0.5, 8), (0.8, 1 << 40)] {
        let y = dropout(&x, rate, seed).unwrap().to_vec().unwrap();
        let kept = mask(&y).iter().filter(|&&k| k).count() as f64;
        let p = 1.0 - rate as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (kept - n as f64 * p).abs() < 5.0 * sd,
            "rate {rate}: kept {kept} of {n}, expected {} ± {sd:.0}",
            n as f64 * p
        );
        // Kept values are x · scale with scale = 1/(1−rate) rounded to f32, exactly.
        let scale = (1.0 / (1.0 - rate as f64)) as f32;
        for (i, (&got, &v)) in y.iter().zip(&xh).enumerate() {
            assert!(got == 0.0 || got == v * scale, "element {i}: {got} is neither 0 nor {v} · {scale}");
        }
    }
}

#[test]
fn different_seeds_give_independent_masks() {
    let gpu = gpu();
    let n = 100_000;
    let (x, _) = nonzero(&gpu, n, 9);
    let rate = 0.5f32;
    let base = mask(&dropout(&x, rate, 1).unwrap().to_vec().unwrap());
    // Neighbouring seeds, and seeds that differ only in the high 32 bits.
    for other in [2u64, 1 | 1 << 32, 1 << 32] {
        let m = mask(&dropout(&x, rate, other).unwrap().to_vec().unwrap());
        let agree = base.iter().zip(&m).filter(|(a, b)| a == b).count() as f64;
        // Independent masks agree on half the elements at rate 0.5.
        let sd = (n as f64 * 0.25).sqrt();
        assert!((agree - n as f64 / 2.0).abs() < 5.0 * sd, "seed 1 vs {other:#x}: masks agree on {agree} of {n}");
    }
}

#[test]
fn rate_zero_is_identity() {
    let gpu = gpu();
    let (x, xh) = rand_tensor(&gpu, &[3, 5, 7, 11], 10);
    assert_eq!(dropout(&x, 0.0, 123).unwrap().to_vec().unwrap(), xh);
    assert_eq!(dropout_backward(&x, 0.0, 123).unwrap().to_vec().unwrap(), xh);
}

#[test]
fn backward_matches_finite_differences() {
    let x = r::to_f64(&r::random(64, 11, -1.0, 1.0));
    let g = r::to_f64(&r::random(64, 12, -1.0, 1.0));
    let (rate, seed) = (0.3, 99);
    let fd = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &rd::dropout(x, rate, seed)));
    assert_close_f64("dropout fd", &rd::dropout(&g, rate, seed), &fd, FD_TOL);
}

#[test]
fn invalid_rate_and_dtype_are_errors() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[8], 13);
    for rate in [1.0f32, 1.5, -0.1, f32::NAN] {
        let err = dropout(&x, rate, 0).unwrap_err().to_string();
        assert!(err.contains("rate"), "{err}");
        assert!(dropout_backward(&x, rate, 0).is_err());
    }
    let labels = Tensor::from_u32(&gpu, &[3], &[1, 2, 3]).unwrap();
    assert!(dropout(&labels, 0.5, 0).is_err());
}

#[test]
fn dispatch_past_65535_workgroups_is_folded() {
    // More than 65535 · 256 elements, so the grid folds into y.
    let gpu = gpu();
    let n = 65_535 * 256 + 1000;
    let x = Tensor::full(&gpu, &[n], 1.0).unwrap();
    let y = dropout(&x, 0.5, 3).unwrap().to_vec().unwrap();
    let mismatch = (0..n).find(|&i| (y[i] != 0.0) != rd::keep(3, i as u32, 0.5));
    assert_eq!(mismatch, None, "first element whose mask differs from the CPU hash");
}
