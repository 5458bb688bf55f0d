//! Convolution backward: the f64 CPU backward against finite differences of
//! the f64 forward reference, then the GPU kernels against the CPU backward.
use crate::common;
use common::*;
use incept::ops::conv_backward::{self as cb, FilterGradKernel, InputGradKernel};
use incept::ops::{Padding, Window2d};
use incept::reference::{self as r, conv::conv2d, conv_backward as rcb};

/// (x shape, cout, window) cases: every kernel shape InceptionV3 uses, both paddings, strides 1 and 2.
fn cases() -> Vec<([usize; 4], usize, Window2d)> {
    use Padding::{Same, Valid};
    vec![
        ([1, 7, 7, 3], 4, Window2d::new(3, 3, 1, Same)),
        ([3, 9, 9, 5], 7, Window2d::new(3, 3, 2, Valid)),
        ([2, 8, 8, 17], 19, Window2d::new(1, 1, 1, Valid)),
        ([1, 5, 11, 5], 7, Window2d::new(5, 5, 1, Same)),
        ([3, 8, 8, 3], 4, Window2d::new(3, 3, 2, Same)),
        ([1, 7, 7, 5], 4, Window2d::new(1, 3, 1, Same)),
        ([1, 9, 9, 3], 7, Window2d::new(3, 1, 1, Same)),
        ([2, 7, 9, 3], 4, Window2d::new(1, 7, 1, Same)),
        ([1, 9, 7, 5], 4, Window2d::new(7, 1, 1, Same)),
        ([1, 8, 8, 3], 5, Window2d { kh: 3, kw: 1, stride_h: 2, stride_w: 1, padding: Valid }),
        ([2, 5, 11, 4], 3, Window2d::new(1, 1, 2, Same)),
        // Explicit asymmetric padding (Keras ZeroPadding2D then 'valid').
        ([2, 8, 8, 5], 4, Window2d::new(3, 3, 2, PAD_0101)),
        ([1, 7, 9, 4], 8, Window2d::new(3, 3, 1, PAD_2110)),
        ([3, 6, 7, 3], 5, Window2d { kh: 3, kw: 5, stride_h: 2, stride_w: 1, padding: PAD_2110 }),
    ]
}

/// Keras ZeroPadding2D((0, 1), (0, 1)) (MobileNetV2's stride-2 blocks) and a lopsided one.
const PAD_0101: Padding = Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 };
const PAD_2110: Padding = Padding::Explicit { top: 2, bottom: 1, left: 1, right: 0 };

fn w_shape(xs: [usize; 4], cout: usize, win: &Window2d) -> [usize; 4] {
    [win.kh, win.kw, xs[3], cout]
}

fn dy_shape(xs: [usize; 4], cout: usize, win: &Window2d) -> [usize; 4] {
    let (oh, ow) = win.output_size(xs[1], xs[2]).unwrap();
    [xs[0], oh, ow, cout]
}

#[test]
fn cpu_backward_matches_finite_differences() {
    // Smaller than the GPU cases: finite differences cost two forwards per element.
    use Padding::{Same, Valid};
    let small = [
        ([1, 5, 5, 2], 3, Window2d::new(3, 3, 1, Same)),
        ([2, 6, 5, 2], 2, Window2d::new(3, 3, 2, Valid)),
        ([1, 6, 6, 3], 2, Window2d::new(3, 3, 2, Same)),
        ([1, 5, 7, 2], 3, Window2d::new(1, 7, 1, Same)),
        ([1, 7, 4, 2], 2, Window2d::new(7, 1, 1, Same)),
        ([2, 4, 5, 3], 2, Window2d::new(1, 1, 2, Valid)),
        ([1, 6, 7, 2], 2, Window2d::new(5, 5, 1, Same)),
        ([1, 6, 6, 2], 2, Window2d::new(3, 3, 2, PAD_0101)),
        ([2, 5, 4, 2], 3, Window2d::new(3, 3, 1, PAD_2110)),
    ];
    for (i, (xs, cout, win)) in small.into_iter().enumerate() {
        let seed = 10 * i as u64;
        let ws = w_shape(xs, cout, &win);
        let x = r::to_f64(&r::random(xs.iter().product(), seed, -1.0, 1.0));
        let f = r::to_f64(&r::random(ws.iter().product(), seed + 1, -1.0, 1.0));
        let g = r::to_f64(&r::random(dy_shape(xs, cout, &win).iter().product(), seed + 2, -1.0, 1.0));
        let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &conv2d(x, xs, &f, cout, &win).0));
        let dx = rcb::conv2d_backward_input(&g, &f, xs, cout, &win);
        assert_close_f64(&format!("dx fd {xs:?} {win:?}"), &dx, &fd_x, FD_TOL);
        let fd_f = r::finite_difference(&f, 1e-6, |f| r::dot(&g, &conv2d(&x, xs, f, cout, &win).0));
        let df = rcb::conv2d_backward_filter(&x, xs, &g, cout, &win);
        assert_close_f64(&format!("dw fd {xs:?} {win:?}"), &df, &fd_f, FD_TOL);
    }
}

#[test]
fn gpu_backward_matches_cpu_backward() {
    let gpu = gpu();
    for (i, (xs, cout, win)) in cases().into_iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        let ws = w_shape(xs, cout, &win);
        let (x, xh) = rand_tensor(&gpu, &xs, seed);
        let (w, wh) = rand_tensor(&gpu, &ws, seed + 1);
        let (dy, dyh) = rand_tensor(&gpu, &dy_shape(xs, cout, &win), seed + 2);
        let what = format!("{xs:?} cout {cout} {win:?}");
        let want_dx = rcb::conv2d_backward_input(&r::to_f64(&dyh), &r::to_f64(&wh), xs, cout, &win);
        let dx = cb::conv2d_backward_input(&dy, &w, &win, xs).unwrap();
        assert_eq!(dx.shape(), xs);
        assert_close(&format!("dx {what}"), &dx.to_vec().unwrap(), &want_dx);
        let want_dw = rcb::conv2d_backward_filter(&r::to_f64(&xh), xs, &r::to_f64(&dyh), cout, &win);
        let dw = cb::conv2d_backward_filter(&x, &dy, &win, ws).unwrap();
        assert_eq!(dw.shape(), ws);
        assert_close(&format!("dw {what}"), &dw.to_vec().unwrap(), &want_dw);
    }
}

#[test]
fn every_input_grad_kernel_matches_cpu() {
    let gpu = gpu();
    // Batches of 1, 3, 5 and 8 images: partial and full blocks of 4.
    for (i, (mut xs, cout, win)) in cases().into_iter().enumerate() {
        xs[0] = [1, 3, 5, 8][i % 4];
        let seed = 200 + 10 * i as u64;
        let (w, wh) = rand_tensor(&gpu, &w_shape(xs, cout, &win), seed + 1);
        let (dy, dyh) = rand_tensor(&gpu, &dy_shape(xs, cout, &win), seed + 2);
        let want = rcb::conv2d_backward_input(&r::to_f64(&dyh), &r::to_f64(&wh), xs, cout, &win);
        for kernel in InputGradKernel::ALL {
            let dx = cb::conv2d_backward_input_using(kernel, &dy, &w, &win, xs).unwrap();
            assert_close(&format!("dx {kernel:?} {xs:?} cout {cout} {win:?}"), &dx.to_vec().unwrap(), &want);
        }
    }
}

#[test]
fn every_filter_grad_kernel_and_slicing_matches_cpu() {
    let gpu = gpu();
    for (i, (xs, cout, win)) in cases().into_iter().enumerate().step_by(2) {
        let seed = 300 + 10 * i as u64;
        let ws = w_shape(xs, cout, &win);
        let (x, xh) = rand_tensor(&gpu, &xs, seed);
        let (dy, dyh) = rand_tensor(&gpu, &dy_shape(xs, cout, &win), seed + 2);
        let want = rcb::conv2d_backward_filter(&r::to_f64(&xh), xs, &r::to_f64(&dyh), cout, &win);
        for kernel in FilterGradKernel::ALL {
            // 1 slice, a few uneven slices, and more slices than positions (clamped).
            for slices in [1, 3, 7, 10_000] {
                let dw = cb::conv2d_backward_filter_using(kernel, Some(slices), &x, &dy, &win, ws).unwrap();
                let what = format!("dw {kernel:?} slices {slices} {xs:?} cout {cout} {win:?}");
                assert_close(&what, &dw.to_vec().unwrap(), &want);
            }
        }
    }
}

#[test]
fn wide_pointwise_case_like_inception_top() {
    // The trained 1x1 conv of the top block is 2048 -> 192 on 8x8; here cin 2051
    // (not a multiple of 4), tiny spatial and few outputs.
    let gpu = gpu();
    let (xs, cout, win) = ([2, 3, 3, 2051], 6, Window2d::new(1, 1, 1, Padding::Same));
    let ws = w_shape(xs, cout, &win);
    let (x, xh) = rand_tensor(&gpu, &xs, 901);
    let (w, wh) = rand_tensor(&gpu, &ws, 902);
    let (dy, dyh) = rand_tensor(&gpu, &dy_shape(xs, cout, &win), 903);
    let want_dw = rcb::conv2d_backward_filter(&r::to_f64(&xh), xs, &r::to_f64(&dyh), cout, &win);
    assert_close("wide dw", &cb::conv2d_backward_filter(&x, &dy, &win, ws).unwrap().to_vec().unwrap(), &want_dw);
    let want_dx = rcb::conv2d_backward_input(&r::to_f64(&dyh), &r::to_f64(&wh), xs, cout, &win);
    assert_close("wide dx", &cb::conv2d_backward_input(&dy, &w, &win, xs).unwrap().to_vec().unwrap(), &want_dx);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let gpu = gpu();
    let win = Window2d::new(3, 3, 1, Padding::Same);
    let (x, _) = rand_tensor(&gpu, &[1, 7, 7, 3], 1);
    let (w, _) = rand_tensor(&gpu, &[3, 3, 3, 4], 2);
    let (dy, _) = rand_tensor(&gpu, &[1, 7, 7, 4], 3);
    let (dy_bad, _) = rand_tensor(&gpu, &[1, 5, 5, 4], 4);
    let err = cb::conv2d_backward_input(&dy_bad, &w, &win, [1, 7, 7, 3]).unwrap_err().to_string();
    assert!(err.contains("[1, 5, 5, 4]") && err.contains("[1, 7, 7, 4]"), "{err}");
    let err = cb::conv2d_backward_filter(&x, &dy_bad, &win, [3, 3, 3, 4]).unwrap_err().to_string();
    assert!(err.contains("[1, 5, 5, 4]"), "{err}");
    // Filter that does not match the window or the input channels.
    assert!(cb::conv2d_backward_filter(&x, &dy, &win, [1, 1, 3, 4]).is_err());
    assert!(cb::conv2d_backward_input(&dy, &w, &win, [1, 7, 7, 5]).is_err());
    // 'valid' window larger than the input; non-4-D tensors; zero slices.
    assert!(cb::conv2d_backward_input(&dy, &w, &Window2d::new(9, 9, 1, Padding::Valid), [1, 7, 7, 3]).is_err());
    assert!(cb::conv2d_backward_filter(&x.reshape(&[7, 7, 3]).unwrap(), &dy, &win, [3, 3, 3, 4]).is_err());
    assert!(cb::conv2d_backward_filter_using(FilterGradKernel::Blocked4x4, Some(0), &x, &dy, &win, [3, 3, 3, 4]).is_err());
}
