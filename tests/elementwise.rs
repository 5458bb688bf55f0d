//! Elementwise kernels against their CPU references; ReLU's backward also
//! against finite differences.
mod common;
use common::*;
use incept::ops::elementwise as ew;
use incept::reference::{self as r, elementwise as re};

#[test]
fn relu_forward_and_backward_match_reference() {
    let gpu = gpu();
    for (n, seed) in [(1usize, 1u64), (255, 2), (257, 3), (70_001, 4)] {
        let (x, xh) = rand_tensor(&gpu, &[n], seed);
        let (dy, dyh) = rand_tensor(&gpu, &[n], seed + 100);
        let y = ew::relu(&x).unwrap();
        let want_y = re::relu(&r::to_f64(&xh));
        assert_close("relu forward", &y.to_vec().unwrap(), &want_y);
        let dx = ew::relu_backward(&y, &dy).unwrap();
        assert_close("relu backward", &dx.to_vec().unwrap(), &re::relu_backward(&want_y, &r::to_f64(&dyh)));
    }
}

#[test]
fn relu_backward_matches_finite_differences() {
    // Inputs kept away from the kink at 0, where the derivative is undefined.
    let x: Vec<f64> = r::random(64, 7, 0.05, 1.0).iter().enumerate().map(|(i, &v)| if i % 2 == 0 { v as f64 } else { -(v as f64) }).collect();
    let g = r::to_f64(&r::random(64, 8, -1.0, 1.0));
    let fd = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &re::relu(x)));
    let analytic = re::relu_backward(&re::relu(&x), &g);
    assert_close_f64("relu fd", &analytic, &fd, FD_TOL);
}

#[test]
fn add_scale_axpy_match_reference() {
    let gpu = gpu();
    let (a, ah) = rand_tensor(&gpu, &[3, 5, 7], 11);
    let (b, bh) = rand_tensor(&gpu, &[3, 5, 7], 12);
    let sum = ew::add(&a, &b).unwrap().to_vec().unwrap();
    let want: Vec<f64> = ah.iter().zip(&bh).map(|(&x, &y)| x as f64 + y as f64).collect();
    assert_close("add", &sum, &want);
    let s = ew::scale(&a, -2.5).unwrap().to_vec().unwrap();
    assert_close("scale", &s, &ah.iter().map(|&x| -2.5 * x as f64).collect::<Vec<_>>());
    let acc = a.deep_copy().unwrap();
    ew::axpy_inplace(&acc, 0.5, &b).unwrap();
    let want: Vec<f64> = ah.iter().zip(&bh).map(|(&x, &y)| x as f64 + 0.5 * y as f64).collect();
    assert_close("axpy", &acc.to_vec().unwrap(), &want);
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let gpu = gpu();
    let (a, _) = rand_tensor(&gpu, &[4], 1);
    let (b, _) = rand_tensor(&gpu, &[5], 2);
    let err = ew::add(&a, &b).unwrap_err().to_string();
    assert!(err.contains("[4]") && err.contains("[5]"), "{err}");
}

#[test]
fn mul_by_scalar_uses_the_gpu_scalar() {
    let gpu = gpu();
    let (x, xh) = rand_tensor(&gpu, &[2, 129], 21);
    let s = incept::Tensor::from_slice(&gpu, &[1], &[-0.75]).unwrap();
    let y = ew::mul_by_scalar(&x, &s).unwrap();
    assert_close("mul_by_scalar", &y.to_vec().unwrap(), &xh.iter().map(|&v| -0.75 * v as f64).collect::<Vec<_>>());
    assert!(ew::mul_by_scalar(&x, &x).is_err());
}
