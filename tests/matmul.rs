//! Matrix products: every variant (naive, register-blocked, tiled) against the
//! f64 CPU reference at odd sizes, for plain, transposed and Dense products;
//! the Dense backward formulas against finite differences; shape errors.
use crate::common;
use common::*;
use incept::ops::matmul::{self as mm, Epilogue, Gemm, MatmulAlgo};
use incept::reference::{self as r, matmul as rm};
use incept::Tensor;

const SIZES: [usize; 6] = [1, 3, 17, 33, 65, 130];

/// (m, k, n) triples where every size appears in every position.
fn odd_shapes() -> Vec<(usize, usize, usize)> {
    let mut shapes = Vec::new();
    for (i, &m) in SIZES.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            shapes.push((m, SIZES[(i + j) % SIZES.len()], n));
        }
    }
    shapes
}

#[test]
fn every_variant_matches_reference_at_odd_sizes() {
    let gpu = gpu();
    for (idx, (m, k, n)) in odd_shapes().into_iter().enumerate() {
        let seed = idx as u64 * 10;
        let (a, ah) = rand_tensor(&gpu, &[m, k], seed);
        let (b, bh) = rand_tensor(&gpu, &[k, n], seed + 1);
        let (at, ath) = rand_tensor(&gpu, &[k, m], seed + 2);
        let (bt, bth) = rand_tensor(&gpu, &[n, k], seed + 3);
        let want = rm::matmul(&r::to_f64(&ah), &r::to_f64(&bh), m, k, n);
        let want_tn = rm::matmul_tn(&r::to_f64(&ath), &r::to_f64(&bh), k, m, n);
        let want_nt = rm::matmul_nt(&r::to_f64(&ah), &r::to_f64(&bth), m, k, n);
        for algo in MatmulAlgo::ALL {
            let what = |op: &str| format!("{algo:?} {op} m={m} k={k} n={n}");
            let got = mm::matmul_with(algo, &a, &b).unwrap();
            assert_eq!(got.shape(), [m, n]);
            assert_close(&what("a·b"), &got.to_vec().unwrap(), &want);
            let tn = mm::gemm(algo, &at, &b, Gemm { trans_a: true, ..Gemm::default() }).unwrap();
            assert_close(&what("aᵀ·b"), &tn.to_vec().unwrap(), &want_tn);
            let nt = mm::gemm(algo, &a, &bt, Gemm { trans_b: true, ..Gemm::default() }).unwrap();
            assert_close(&what("a·bᵀ"), &nt.to_vec().unwrap(), &want_nt);
            let both = mm::gemm(algo, &at, &bt, Gemm { trans_a: true, trans_b: true, ..Gemm::default() }).unwrap();
            let want_tt = rm::matmul(&rm::transpose(&r::to_f64(&ath), k, m), &rm::transpose(&r::to_f64(&bth), n, k), m, k, n);
            assert_close(&what("aᵀ·bᵀ"), &both.to_vec().unwrap(), &want_tt);
        }
    }
}

#[test]
fn dense_every_variant_matches_reference() {
    let gpu = gpu();
    for (idx, (m, k, n)) in [(1, 1, 1), (3, 17, 10), (32, 65, 4), (17, 130, 33)].into_iter().enumerate() {
        let seed = 500 + idx as u64 * 10;
        let (x, xh) = rand_tensor(&gpu, &[m, k], seed);
        let (w, wh) = rand_tensor(&gpu, &[k, n], seed + 1);
        let (bias, bh) = rand_tensor(&gpu, &[n], seed + 2);
        for relu in [false, true] {
            let want = rm::dense(&r::to_f64(&xh), &r::to_f64(&wh), &r::to_f64(&bh), m, k, n, relu);
            for algo in MatmulAlgo::ALL {
                let epilogue = if relu { Epilogue::BiasRelu(&bias) } else { Epilogue::Bias(&bias) };
                let y = mm::gemm(algo, &x, &w, Gemm { epilogue, ..Gemm::default() }).unwrap();
                assert_close(&format!("{algo:?} dense relu={relu} {m}x{k}x{n}"), &y.to_vec().unwrap(), &want);
            }
        }
    }
}

/// The Dense layers of InceptionV3's head, forward and backward, through the
/// public functions (the adapter's preferred variant).
#[test]
fn inception_head_shapes_forward_and_backward() {
    let gpu = gpu();
    for (m, k, n) in [(32, 2048, 512), (32, 512, 512), (32, 512, 10), (32, 512, 4)] {
        let (x, xh) = rand_tensor(&gpu, &[m, k], k as u64);
        let (w, wh) = rand_tensor(&gpu, &[k, n], n as u64);
        let (bias, bh) = rand_tensor(&gpu, &[n], 7);
        let (dy, dyh) = rand_tensor(&gpu, &[m, n], 8);
        let (xd, wd, dyd) = (r::to_f64(&xh), r::to_f64(&wh), r::to_f64(&dyh));
        let y = mm::dense(&x, &w, &bias, true).unwrap();
        let yd = rm::dense(&xd, &wd, &r::to_f64(&bh), m, k, n, true);
        assert_close(&format!("dense {m}x{k}x{n}"), &y.to_vec().unwrap(), &yd);
        // Backward products for the pre-activation gradient dy (ReLU's mask is elementwise's job).
        let dx = mm::matmul_nt(&dy, &w).unwrap();
        assert_close("dx = dy·wᵀ", &dx.to_vec().unwrap(), &rm::matmul_nt(&dyd, &wd, m, n, k));
        let dw = mm::matmul_tn(&x, &dy).unwrap();
        assert_close("dw = xᵀ·dy", &dw.to_vec().unwrap(), &rm::matmul_tn(&xd, &dyd, m, k, n));
        let plain = mm::matmul(&x, &w).unwrap();
        assert_close("x·w", &plain.to_vec().unwrap(), &rm::matmul(&xd, &wd, m, k, n));
    }
}

#[test]
fn dense_backward_matches_finite_differences() {
    let (m, k, n) = (3, 5, 4);
    let x = r::to_f64(&r::random(m * k, 1, -1.0, 1.0));
    let w = r::to_f64(&r::random(k * n, 2, -1.0, 1.0));
    let bias = r::to_f64(&r::random(n, 3, -1.0, 1.0));
    let g = r::to_f64(&r::random(m * n, 4, -1.0, 1.0));
    for relu in [false, true] {
        let y = rm::dense(&x, &w, &bias, m, k, n, relu);
        // Keep pre-activations away from ReLU's kink so finite differences are exact.
        assert!(y.iter().all(|&v| v == 0.0 || v.abs() > 1e-3));
        let grads = rm::dense_backward(&x, &w, &y, &g, [m, k, n], relu);
        let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &rm::dense(x, &w, &bias, m, k, n, relu)));
        let fd_w = r::finite_difference(&w, 1e-6, |w| r::dot(&g, &rm::dense(&x, w, &bias, m, k, n, relu)));
        let fd_b = r::finite_difference(&bias, 1e-6, |b| r::dot(&g, &rm::dense(&x, &w, b, m, k, n, relu)));
        assert_close_f64("dense dx", &grads.dx, &fd_x, FD_TOL);
        assert_close_f64("dense dw", &grads.dw, &fd_w, FD_TOL);
        assert_close_f64("dense dbias", &grads.dbias, &fd_b, FD_TOL);
    }
}

#[test]
fn algo_choice_follows_adapter_type() {
    let gpu = gpu();
    let want = if gpu.is_cpu() { MatmulAlgo::RegisterBlocked } else { MatmulAlgo::Tiled };
    assert_eq!(MatmulAlgo::for_gpu(&gpu), want);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let gpu = gpu();
    let (a, _) = rand_tensor(&gpu, &[3, 4], 1);
    let (b, _) = rand_tensor(&gpu, &[5, 6], 2);
    let (v, _) = rand_tensor(&gpu, &[4], 3);
    let err = mm::matmul(&a, &b).unwrap_err().to_string();
    assert!(err.contains("[3, 4]") && err.contains("[5, 6]"), "{err}");
    assert!(mm::matmul(&a, &v).is_err(), "1-D operand");
    assert!(mm::matmul_tn(&a, &b).is_err(), "aᵀ·b with 3 ≠ 5 rows");
    assert!(mm::matmul_nt(&a, &b).is_err(), "a·bᵀ with 4 ≠ 6 columns");
    let (w, _) = rand_tensor(&gpu, &[4, 6], 4);
    let err = mm::dense(&a, &w, &v, false).unwrap_err().to_string();
    assert!(err.contains("[4]") && err.contains('6'), "bias length: {err}");
    assert!(mm::dense(&a, &w, &Tensor::zeros(&gpu, &[1, 6]).unwrap(), true).is_err(), "2-D bias");
}
