//! Softmax and cross-entropy against f64 references (including ±50 logits,
//! which need the max-subtracted log-sum-exp form), with and without
//! per-sample weights, the backward against finite differences, and the
//! correct-prediction count with ties.
use crate::common;
use common::*;
use incept::Tensor;
use incept::ops::loss;
use incept::reference::{self as r, loss as rl};

const SHAPES: [(usize, usize); 12] =
    [(1, 2), (1, 4), (1, 10), (1, 1001), (3, 2), (3, 4), (3, 10), (3, 1001), (32, 2), (32, 4), (32, 10), (32, 1001)];

/// One-hot rows (class chosen by `seed`) or soft rows of positive weights that sum to 1.
fn targets(n: usize, c: usize, seed: u64, soft: bool) -> Vec<f32> {
    let u = r::random(n * c, seed, 0.05, 1.0);
    let mut t = vec![0.0f32; n * c];
    for row in 0..n {
        let cells = &mut t[row * c..(row + 1) * c];
        if soft {
            let total: f32 = u[row * c..(row + 1) * c].iter().sum();
            for (x, &w) in cells.iter_mut().zip(&u[row * c..]) {
                *x = w / total;
            }
        } else {
            cells[(u[row * c] * 7919.0) as usize % c] = 1.0;
        }
    }
    t
}

fn logits(n: usize, c: usize, seed: u64, magnitude: f32) -> Vec<f32> {
    r::random(n * c, seed, -magnitude, magnitude)
}

#[test]
fn forward_matches_reference_including_large_logits() {
    let gpu = gpu();
    for (i, &(n, c)) in SHAPES.iter().enumerate() {
        for (magnitude, soft) in [(3.0f32, true), (50.0, false), (50.0, true)] {
            let seed = 10 * i as u64;
            let (xh, th) = (logits(n, c, seed, magnitude), targets(n, c, seed + 1, soft));
            let x = Tensor::from_slice(&gpu, &[n, c], &xh).unwrap();
            let t = Tensor::from_slice(&gpu, &[n, c], &th).unwrap();
            let (want_loss, want_probs) = rl::softmax_cross_entropy(&r::to_f64(&xh), &r::to_f64(&th), c);
            let (got_loss, got_probs) = loss::softmax_cross_entropy(&x, &t).unwrap();
            let what = format!("[{n}, {c}] ±{magnitude} soft={soft}");
            assert_eq!(got_loss.shape(), &[1]);
            let got_loss = got_loss.scalar().unwrap();
            assert!(got_loss.is_finite(), "{what}: loss {got_loss}");
            assert_close(&format!("loss {what}"), &[got_loss], &[want_loss]);
            assert_close(&format!("probs {what}"), &got_probs.to_vec().unwrap(), &want_probs);
            assert_close(&format!("softmax {what}"), &loss::softmax(&x).unwrap().to_vec().unwrap(), &want_probs);
        }
    }
}

#[test]
fn confident_rows_keep_their_tiny_loss() {
    // Losses far below 1 ulp of the max logit: log(1 + e^-d) ≈ e^-d.
    let gpu = gpu();
    let xh = [30.0f32, -30.0, 5.0, -10.0, 2.0, 2.0];
    let th = [1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0];
    for rows in 1..=3 {
        let x = Tensor::from_slice(&gpu, &[rows, 2], &xh[..2 * rows]).unwrap();
        let t = Tensor::from_slice(&gpu, &[rows, 2], &th[..2 * rows]).unwrap();
        let (want, _) = rl::softmax_cross_entropy(&r::to_f64(&xh[..2 * rows]), &r::to_f64(&th[..2 * rows]), 2);
        let got = loss::softmax_cross_entropy(&x, &t).unwrap().0.scalar().unwrap();
        assert_close(&format!("loss of the first {rows} rows"), &[got], &[want]);
    }
}

#[test]
fn backward_matches_finite_differences() {
    for (n, c, soft) in [(1usize, 2usize, false), (3, 4, true), (5, 10, true), (4, 7, false)] {
        let x = r::to_f64(&logits(n, c, 100 + c as u64, 3.0));
        let t = r::to_f64(&targets(n, c, 200 + c as u64, soft));
        let fd = r::finite_difference(&x, 1e-6, |x| rl::softmax_cross_entropy(x, &t, c).0);
        let probs = rl::softmax(&x, c);
        assert_close_f64(&format!("fd [{n}, {c}]"), &rl::softmax_cross_entropy_backward(&probs, &t, c), &fd, FD_TOL);
    }
}

#[test]
fn backward_matches_cpu_backward() {
    let gpu = gpu();
    for (i, &(n, c)) in SHAPES.iter().enumerate() {
        let seed = 300 + 10 * i as u64;
        let (xh, th) = (logits(n, c, seed, 5.0), targets(n, c, seed + 1, i % 2 == 0));
        let x = Tensor::from_slice(&gpu, &[n, c], &xh).unwrap();
        let t = Tensor::from_slice(&gpu, &[n, c], &th).unwrap();
        let (_, probs) = loss::softmax_cross_entropy(&x, &t).unwrap();
        let dx = loss::softmax_cross_entropy_backward(&probs, &t).unwrap();
        let want_probs = rl::softmax(&r::to_f64(&xh), c);
        let want = rl::softmax_cross_entropy_backward(&want_probs, &r::to_f64(&th), c);
        assert_close(&format!("dlogits [{n}, {c}]"), &dx.to_vec().unwrap(), &want);
    }
}

/// Per-sample weights in [0.1, 3), as class weights of imbalanced sets are.
fn sample_weights(n: usize, seed: u64) -> Vec<f32> {
    r::random(n, seed, 0.1, 3.0)
}

#[test]
fn weighted_forward_and_backward_match_reference() {
    let gpu = gpu();
    for (i, &(n, c)) in SHAPES.iter().chain(&[(7, 3), (33, 5)]).enumerate() {
        let seed = 900 + 10 * i as u64;
        let (xh, th, wh) = (logits(n, c, seed, 4.0), targets(n, c, seed + 1, i % 2 == 1), sample_weights(n, seed + 2));
        let x = Tensor::from_slice(&gpu, &[n, c], &xh).unwrap();
        let t = Tensor::from_slice(&gpu, &[n, c], &th).unwrap();
        let w = Tensor::from_slice(&gpu, &[n], &wh).unwrap();
        let (x64, t64, w64) = (r::to_f64(&xh), r::to_f64(&th), r::to_f64(&wh));
        let (want_loss, want_probs) = rl::weighted_softmax_cross_entropy(&x64, &t64, &w64, c);
        let (got_loss, got_probs) = loss::weighted_softmax_cross_entropy(&x, &t, Some(&w)).unwrap();
        assert_close(&format!("weighted loss [{n}, {c}]"), &[got_loss.scalar().unwrap()], &[want_loss]);
        assert_close(&format!("weighted probs [{n}, {c}]"), &got_probs.to_vec().unwrap(), &want_probs);
        let dx = loss::weighted_softmax_cross_entropy_backward(&got_probs, &t, Some(&w)).unwrap();
        let want_dx = rl::weighted_softmax_cross_entropy_backward(&want_probs, &t64, &w64, c);
        assert_close(&format!("weighted dlogits [{n}, {c}]"), &dx.to_vec().unwrap(), &want_dx);
    }
}

#[test]
fn weighted_loss_divides_by_the_batch_size_not_the_weights() {
    // Keras 3 sum_over_batch_size: rows of loss l0, l1 with weights 2, 0 give (2·l0 + 0·l1) / 2.
    let gpu = gpu();
    let (xh, th) = ([1.0f32, -0.5, 0.25, 2.0], [1.0f32, 0.0, 0.0, 1.0]);
    let x = Tensor::from_slice(&gpu, &[2, 2], &xh).unwrap();
    let t = Tensor::from_slice(&gpu, &[2, 2], &th).unwrap();
    let w = Tensor::from_slice(&gpu, &[2], &[2.0, 0.0]).unwrap();
    let row0 = rl::softmax_cross_entropy(&r::to_f64(&xh[..2]), &r::to_f64(&th[..2]), 2).0;
    let got = loss::weighted_softmax_cross_entropy(&x, &t, Some(&w)).unwrap().0.scalar().unwrap();
    assert_close("2·l0 / 2", &[got], &[row0]);
    // Weights of one give the plain loss and gradient bit for bit.
    let ones = Tensor::full(&gpu, &[2], 1.0).unwrap();
    let (plain, probs) = loss::softmax_cross_entropy(&x, &t).unwrap();
    let (weighted, _) = loss::weighted_softmax_cross_entropy(&x, &t, Some(&ones)).unwrap();
    assert_eq!(plain.scalar().unwrap().to_bits(), weighted.scalar().unwrap().to_bits());
    let plain_dx = loss::softmax_cross_entropy_backward(&probs, &t).unwrap().to_vec().unwrap();
    let weighted_dx = loss::weighted_softmax_cross_entropy_backward(&probs, &t, Some(&ones)).unwrap().to_vec().unwrap();
    assert_eq!(plain_dx, weighted_dx);
}

#[test]
fn weighted_backward_matches_finite_differences() {
    for (n, c, soft) in [(1usize, 2usize, false), (3, 4, true), (5, 10, true), (4, 7, false), (9, 3, false)] {
        let x = r::to_f64(&logits(n, c, 1100 + c as u64, 3.0));
        let t = r::to_f64(&targets(n, c, 1200 + c as u64, soft));
        let w = r::to_f64(&sample_weights(n, 1300 + n as u64));
        let fd = r::finite_difference(&x, 1e-6, |x| rl::weighted_softmax_cross_entropy(x, &t, &w, c).0);
        let probs = rl::softmax(&x, c);
        assert_close_f64(&format!("weighted fd [{n}, {c}]"), &rl::weighted_softmax_cross_entropy_backward(&probs, &t, &w, c), &fd, FD_TOL);
    }
}

#[test]
fn correct_count_matches_reference_with_ties() {
    let gpu = gpu();
    for (i, &(n, c)) in SHAPES.iter().chain(&[(1000, 3)]).enumerate() {
        // Logits from a few integer levels, so rows often tie for the maximum.
        let xh: Vec<f32> = r::random(n * c, 500 + i as u64, 0.0, 3.0).iter().map(|v| v.floor()).collect();
        for th in [targets(n, c, 600 + i as u64, false), targets(n, c, 700 + i as u64, true)] {
            let x = Tensor::from_slice(&gpu, &[n, c], &xh).unwrap();
            let t = Tensor::from_slice(&gpu, &[n, c], &th).unwrap();
            let got = loss::correct_count(&x, &t).unwrap();
            assert_eq!(got.shape(), &[1]);
            assert_eq!(
                got.to_vec_u32().unwrap(),
                vec![rl::correct_count(&r::to_f64(&xh), &r::to_f64(&th), c)],
                "[{n}, {c}]"
            );
        }
    }
    // Ties go to the first index: [2, 5, 5] picks class 1, not class 2.
    let x = Tensor::from_slice(&gpu, &[2, 3], &[2.0, 5.0, 5.0, 2.0, 5.0, 5.0]).unwrap();
    let t = Tensor::from_slice(&gpu, &[2, 3], &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).unwrap();
    assert_eq!(loss::correct_count(&x, &t).unwrap().to_vec_u32().unwrap(), vec![1]);
}

#[test]
fn bad_shapes_are_errors() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[3, 10], 1);
    let (t, _) = rand_tensor(&gpu, &[3, 9], 2);
    let err = loss::softmax_cross_entropy(&x, &t).unwrap_err().to_string();
    assert!(err.contains("[3, 10]") && err.contains("[3, 9]"), "{err}");
    assert!(loss::softmax_cross_entropy_backward(&x, &t).is_err());
    assert!(loss::correct_count(&x, &t).is_err());
    let (flat, _) = rand_tensor(&gpu, &[30], 3);
    assert!(loss::softmax(&flat).is_err());
    assert!(loss::softmax_cross_entropy(&flat, &flat).is_err());
    for shape in [[0usize, 10], [3, 0]] {
        let empty = Tensor::zeros(&gpu, &shape).unwrap();
        assert!(loss::softmax(&empty).is_err(), "{shape:?}");
        assert!(loss::softmax_cross_entropy(&empty, &empty).is_err(), "{shape:?}");
        assert!(loss::correct_count(&empty, &empty).is_err(), "{shape:?}");
    }
    let labels = Tensor::from_u32(&gpu, &[3, 10], &[0; 30]).unwrap();
    assert!(loss::softmax_cross_entropy(&x, &labels).is_err());
    let (t, _) = rand_tensor(&gpu, &[3, 10], 4);
    for shape in [[2usize], [4]] {
        let (w, _) = rand_tensor(&gpu, &shape, 5);
        let err = loss::weighted_softmax_cross_entropy(&x, &t, Some(&w)).unwrap_err().to_string();
        assert!(err.contains("sample weights") && err.contains(&format!("{shape:?}")), "{err}");
        assert!(loss::weighted_softmax_cross_entropy_backward(&x, &t, Some(&w)).is_err());
    }
}
