//! Elementwise kernels against their CPU references; the backwards of ReLU,
//! ReLU6 and Add also against finite differences, and through autograd.
use crate::common;
use common::*;
use incept::Tensor;
use incept::autograd::{self as ag, Var};
use incept::ops::elementwise::{self as ew, Lanes};
use incept::reference::{self as r, elementwise as re};

/// Random data spanning [-10, 10): both of ReLU6's bends and values past 6.
fn wide_tensor(gpu: &incept::Gpu, shape: &[usize], seed: u64) -> (Tensor, Vec<f32>) {
    let data = r::random(shape.iter().product(), seed, -10.0, 10.0);
    (Tensor::from_slice(gpu, shape, &data).unwrap(), data)
}

#[test]
fn relu_forward_and_backward_match_reference() {
    let gpu = gpu();
    // Odd lengths run the scalar kernels, 256 and 70 004 their vec4 twins.
    for (n, seed) in [(1usize, 1u64), (255, 2), (257, 3), (70_001, 4), (256, 5), (70_004, 6)] {
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

#[test]
fn relu6_forward_and_backward_match_reference() {
    let gpu = gpu();
    let shapes: [&[usize]; 5] = [&[1], &[255], &[257], &[70_001], &[3, 5, 7, 33]];
    for (i, shape) in shapes.into_iter().enumerate() {
        let seed = 30 + 2 * i as u64;
        let (x, xh) = wide_tensor(&gpu, shape, seed);
        let (dy, dyh) = rand_tensor(&gpu, shape, seed + 1);
        let y = ew::relu6(&x).unwrap();
        assert_eq!(y.shape(), shape);
        let want_y = re::relu6(&r::to_f64(&xh));
        assert_close(&format!("relu6 forward {shape:?}"), &y.to_vec().unwrap(), &want_y);
        let dx = ew::relu6_backward(&y, &dy).unwrap();
        assert_close(&format!("relu6 backward {shape:?}"), &dx.to_vec().unwrap(), &re::relu6_backward(&want_y, &r::to_f64(&dyh)));
    }
}

#[test]
fn relu6_passes_the_gradient_strictly_between_its_bends_as_tensorflow() {
    // TF's Relu6Grad: dy where 0 < x < 6; exactly at 0 and 6 the gradient is 0.
    let gpu = gpu();
    let x = [-1.0f32, -0.0, 0.0, 1e-6, 3.0, 5.999, 6.0, 6.001, 100.0, 2.5, 0.0, 6.0];
    let want_y = [0.0f32, 0.0, 0.0, 1e-6, 3.0, 5.999, 6.0, 6.0, 6.0, 2.5, 0.0, 6.0];
    let want_dx = [0.0f32, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let xt = Tensor::from_slice(&gpu, &[x.len()], &x).unwrap();
    let ones = Tensor::full(&gpu, &[x.len()], 1.0).unwrap();
    for lanes in Lanes::ALL {
        let y = ew::relu6_with(lanes, &xt).unwrap();
        assert_eq!(y.to_vec().unwrap(), want_y, "{lanes:?}");
        let dx = ew::relu6_backward_with(lanes, &y, &ones).unwrap();
        assert_eq!(dx.to_vec().unwrap(), want_dx, "{lanes:?}");
    }
    assert_eq!(re::relu6_backward(&re::relu6(&r::to_f64(&x)), &[1.0; 12]), r::to_f64(&want_dx));
}

#[test]
fn scalar_and_vec4_kernels_agree_with_the_reference() {
    let gpu = gpu();
    let shapes: [&[usize]; 3] = [&[4], &[3, 5, 7, 32], &[70_004]];
    for (i, shape) in shapes.into_iter().enumerate() {
        let seed = 80 + 3 * i as u64;
        let (a, ah) = wide_tensor(&gpu, shape, seed);
        let (b, bh) = wide_tensor(&gpu, shape, seed + 1);
        let (dy, dyh) = rand_tensor(&gpu, shape, seed + 2);
        let (ah, bh, dyh) = (r::to_f64(&ah), r::to_f64(&bh), r::to_f64(&dyh));
        let y6 = re::relu6(&ah);
        let y6t = Tensor::from_slice(&gpu, shape, &y6.iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap();
        for lanes in Lanes::ALL {
            let what = format!("{shape:?} {lanes:?}");
            assert_close(&format!("relu {what}"), &ew::relu_with(lanes, &a).unwrap().to_vec().unwrap(), &re::relu(&ah));
            assert_close(&format!("relu6 {what}"), &ew::relu6_with(lanes, &a).unwrap().to_vec().unwrap(), &y6);
            assert_close(&format!("add {what}"), &ew::add_with(lanes, &a, &b).unwrap().to_vec().unwrap(), &re::add(&ah, &bh));
            let dx = ew::relu6_backward_with(lanes, &y6t, &dy).unwrap();
            assert_close(&format!("relu6 backward {what}"), &dx.to_vec().unwrap(), &re::relu6_backward(&y6, &dyh));
        }
    }
    // vec4 needs a length divisible by 4: an error, not a partial result.
    let (x, _) = rand_tensor(&gpu, &[3, 5], 90);
    let err = ew::relu6_with(Lanes::Vec4, &x).unwrap_err().to_string();
    assert!(err.contains("relu6") && err.contains("[3, 5]"), "{err}");
    assert_eq!(Lanes::for_len(15), Lanes::Scalar);
    assert_eq!(Lanes::for_len(16), Lanes::Vec4);
}

#[test]
fn relu6_backward_matches_finite_differences() {
    // Inputs in [-10, 10) kept 0.05 away from the bends at 0 and 6, where the derivative is undefined.
    let x: Vec<f64> = r::to_f64(&r::random(200, 9, -10.0, 10.0)).into_iter().filter(|v| v.abs() > 0.05 && (v - 6.0).abs() > 0.05).collect();
    assert!(x.iter().any(|&v| v > 6.0) && x.iter().any(|&v| v > 0.0 && v < 6.0) && x.iter().any(|&v| v < 0.0));
    let g = r::to_f64(&r::random(x.len(), 10, -1.0, 1.0));
    let fd = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &re::relu6(x)));
    let analytic = re::relu6_backward(&re::relu6(&x), &g);
    assert_close_f64("relu6 fd", &analytic, &fd, FD_TOL);
}

#[test]
fn add_matches_reference_at_odd_sizes_and_its_backward_finite_differences() {
    let gpu = gpu();
    let shapes: [&[usize]; 4] = [&[1], &[257], &[70_001], &[3, 5, 7, 33]];
    for (i, shape) in shapes.into_iter().enumerate() {
        let (a, ah) = wide_tensor(&gpu, shape, 40 + 2 * i as u64);
        let (b, bh) = wide_tensor(&gpu, shape, 41 + 2 * i as u64);
        let z = ew::add(&a, &b).unwrap();
        assert_eq!(z.shape(), shape);
        assert_close(&format!("add {shape:?}"), &z.to_vec().unwrap(), &re::add(&r::to_f64(&ah), &r::to_f64(&bh)));
    }
    // d/da and d/db of Σ g·(a + b) are both g: what ag::add hands each input.
    let (a, b) = (r::to_f64(&r::random(35, 50, -10.0, 10.0)), r::to_f64(&r::random(35, 51, -10.0, 10.0)));
    let g = r::to_f64(&r::random(35, 52, -1.0, 1.0));
    assert_close_f64("add fd a", &g, &r::finite_difference(&a, 1e-6, |a| r::dot(&g, &re::add(a, &b))), FD_TOL);
    assert_close_f64("add fd b", &g, &r::finite_difference(&b, 1e-6, |b| r::dot(&g, &re::add(&a, b))), FD_TOL);
}

#[test]
fn autograd_add_sends_the_gradient_to_both_inputs_and_twice_to_one_used_twice() {
    let gpu = gpu();
    let shape = [3usize, 5, 7, 3];
    let (a, ah) = wide_tensor(&gpu, &shape, 60);
    let (b, bh) = wide_tensor(&gpu, &shape, 61);
    let (av, bv) = (Var::parameter(a.clone(), true), Var::parameter(b, true));
    let y = ag::add(&av, &bv).unwrap();
    assert_close("ag::add forward", &y.value().to_vec().unwrap(), &re::add(&r::to_f64(&ah), &r::to_f64(&bh)));
    let (loss, dy) = softmax_ce_loss(&gpu, &y);
    let grads = loss.backward().unwrap();
    assert_close("ag::add da", &grads.get(&av).unwrap().to_vec().unwrap(), &dy);
    assert_close("ag::add db", &grads.get(&bv).unwrap().to_vec().unwrap(), &dy);

    // x + x: the gradient arrives along both edges and sums to 2·dy.
    let xv = Var::parameter(a, true);
    let y = ag::add(&xv, &xv).unwrap();
    assert_close("x + x forward", &y.value().to_vec().unwrap(), &re::add(&r::to_f64(&ah), &r::to_f64(&ah)));
    let (loss, dy) = softmax_ce_loss(&gpu, &y);
    let grads = loss.backward().unwrap();
    let twice: Vec<f64> = dy.iter().map(|g| 2.0 * g).collect();
    assert_close("x + x gradient", &grads.get(&xv).unwrap().to_vec().unwrap(), &twice);
}

#[test]
fn autograd_relu6_backward_matches_reference() {
    let gpu = gpu();
    let (x, xh) = wide_tensor(&gpu, &[3, 5, 7, 7], 70);
    let xv = Var::parameter(x, true);
    let y = ag::relu6(&xv).unwrap();
    let want_y = re::relu6(&r::to_f64(&xh));
    assert_close("ag::relu6 forward", &y.value().to_vec().unwrap(), &want_y);
    let (loss, dy) = softmax_ce_loss(&gpu, &y);
    let grads = loss.backward().unwrap();
    assert_close("ag::relu6 dx", &grads.get(&xv).unwrap().to_vec().unwrap(), &re::relu6_backward(&want_y, &dy));
}
