//! Zero padding (Keras ZeroPadding2D) and cropping (Cropping2D, its gradient)
//! against the CPU references on odd shapes with asymmetric pads, the
//! backward against finite differences, and through autograd.
use crate::common;
use common::*;
use incept::autograd::{self as ag, Var};
use incept::ops::pad;
use incept::reference::{self as r, pad as rp};

/// (input NHWC, [top, bottom, left, right]): asymmetric, zeros on some sides,
/// MobileNetV2's ((0, 1), (0, 1)) before strided depthwise convolutions.
const CASES: [([usize; 4], [usize; 4]); 5] = [
    ([1, 5, 7, 3], [1, 2, 0, 3]),
    ([3, 5, 7, 7], [0, 1, 0, 1]),
    ([2, 1, 1, 1], [2, 0, 1, 0]),
    ([1, 4, 3, 33], [3, 3, 2, 2]),
    ([3, 5, 7, 32], [0, 0, 0, 0]),
];

#[test]
fn zero_pad2d_and_crop2d_match_reference() {
    let gpu = gpu();
    for (i, (shape, pads)) in CASES.into_iter().enumerate() {
        let (x, xh) = rand_tensor(&gpu, &shape, 10 + i as u64);
        let y = pad::zero_pad2d(&x, pads).unwrap();
        let (want, want_shape) = rp::zero_pad2d(&r::to_f64(&xh), shape, pads);
        assert_eq!(y.shape(), want_shape, "{shape:?} {pads:?}");
        // Exact: a pure copy, with true zeros in the border.
        assert_eq!(r::to_f64(&y.to_vec().unwrap()), want, "zero_pad2d {shape:?} {pads:?}");

        let (dy, dyh) = rand_tensor(&gpu, &want_shape, 20 + i as u64);
        let dx = pad::crop2d(&dy, pads).unwrap();
        let (want, crop_shape) = rp::crop2d(&r::to_f64(&dyh), want_shape, pads);
        assert_eq!(crop_shape, shape);
        assert_eq!(dx.shape(), shape);
        assert_eq!(r::to_f64(&dx.to_vec().unwrap()), want, "crop2d {want_shape:?} {pads:?}");
    }
}

#[test]
fn crop2d_is_the_gradient_of_zero_pad2d_by_finite_differences() {
    for (i, (shape, pads)) in CASES.into_iter().take(3).enumerate() {
        let x = r::to_f64(&r::random(shape.iter().product(), 30 + i as u64, -1.0, 1.0));
        let (_, padded) = rp::zero_pad2d(&x, shape, pads);
        let g = r::to_f64(&r::random(padded.iter().product(), 40 + i as u64, -1.0, 1.0));
        let fd = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &rp::zero_pad2d(x, shape, pads).0));
        let (analytic, _) = rp::crop2d(&g, padded, pads);
        assert_close_f64(&format!("zero_pad2d fd {shape:?} {pads:?}"), &analytic, &fd, FD_TOL);
    }
}

#[test]
fn autograd_zero_pad2d_backward_matches_reference() {
    let gpu = gpu();
    let (shape, pads) = CASES[0];
    let (x, xh) = rand_tensor(&gpu, &shape, 50);
    let xv = Var::parameter(x, true);
    let y = ag::zero_pad2d(&xv, pads).unwrap();
    let (want_y, padded) = rp::zero_pad2d(&r::to_f64(&xh), shape, pads);
    assert_close("ag::zero_pad2d forward", &y.value().to_vec().unwrap(), &want_y);
    let (loss, dy) = softmax_ce_loss(&gpu, &y);
    let grads = loss.backward().unwrap();
    assert_close("ag::zero_pad2d dx", &grads.get(&xv).unwrap().to_vec().unwrap(), &rp::crop2d(&dy, padded, pads).0);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[2, 3, 4, 5], 1);
    let err = pad::crop2d(&x, [2, 1, 0, 0]).unwrap_err().to_string();
    assert!(err.contains("crop2d") && err.contains("[2, 1, 0, 0]") && err.contains("[2, 3, 4, 5]"), "{err}");
    assert!(pad::crop2d(&x, [0, 0, 4, 0]).is_err());
    let (flat, _) = rand_tensor(&gpu, &[6, 5], 2);
    let err = pad::zero_pad2d(&flat, [1, 1, 1, 1]).unwrap_err().to_string();
    assert!(err.contains("zero_pad2d") && err.contains("4-D") && err.contains("[6, 5]"), "{err}");
    let empty = incept::Tensor::zeros(&gpu, &[0, 3, 3, 2]).unwrap();
    assert!(pad::zero_pad2d(&empty, [1, 1, 1, 1]).is_err());
}
