//! Depthwise convolution: every forward variant against the f64 CPU reference
//! at odd shapes (channels 3, 5, 8, 13, 32; 7×7, 9×6, 17×17 inputs; 3×3, 5×5,
//! 1×1, 3×1 kernels; strides 1 and 2; 'valid', TF 'same' incl. uneven,
//! explicit (0,1,0,1) and (1,2,1,2); batch 1 and 3; with and without scale and
//! bias; each activation); the reference backward against finite differences
//! of the reference forward; every GPU backward kernel against the reference
//! backward; the autograd wrapper end to end; bad input.
use crate::common;
use common::*;
use incept::autograd::{self as ag, Var};
use incept::ops::depthwise::{self as dw, DepthwiseAlgo, DepthwiseGradKernel, DepthwiseSpec};
use incept::ops::{Act, Padding, Window2d};
use incept::reference::{self as r, conv as rc, depthwise as rd, to_f64};
use incept::{DType, Tensor};

use Padding::{Same, Valid};
const PAD_0101: Padding = Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 };
const PAD_1212: Padding = Padding::Explicit { top: 1, bottom: 2, left: 1, right: 2 };

/// Every (kernel, stride, padding) window of the brief: 4 × 2 × 4.
fn windows() -> Vec<Window2d> {
    let mut out = Vec::new();
    for (kh, kw) in [(3, 3), (5, 5), (1, 1), (3, 1)] {
        for stride in [1, 2] {
            for padding in [Valid, Same, PAD_0101, PAD_1212] {
                out.push(Window2d { kh, kw, stride_h: stride, stride_w: stride, padding });
            }
        }
    }
    out
}

const CHANNELS: [usize; 5] = [3, 5, 8, 13, 32];
const SIDES: [(usize, usize); 3] = [(7, 7), (9, 6), (17, 17)];

/// The variants that compute c channels with window `win`.
fn algos(c: usize, win: &Window2d) -> impl Iterator<Item = DepthwiseAlgo> + '_ {
    DepthwiseAlgo::ALL.into_iter().filter(move |a| a.applies_to(c, win))
}

/// Runs one case through every variant and compares with the reference
/// `act(conv · scale + bias)`; returns the reference.
fn check_forward(xs: [usize; 4], win: Window2d, epilogue: (bool, bool, Act), x_scale: f32, seed: u64) -> Vec<f64> {
    let gpu = gpu();
    let [n, h, w, c] = xs;
    let (with_scale, with_bias, act) = epilogue;
    let xh: Vec<f32> = r::random(n * h * w * c, seed, -x_scale, x_scale);
    let x = Tensor::from_slice(&gpu, &xs, &xh).unwrap();
    let (wt, wh) = rand_tensor(&gpu, &[win.kh, win.kw, c, 1], seed + 1);
    let (scale, scale_h) = rand_tensor(&gpu, &[c], seed + 2);
    let (bias, bias_h) = rand_tensor(&gpu, &[c], seed + 3);
    let (y, ys) = rd::depthwise_conv2d(&to_f64(&xh), xs, &to_f64(&wh), &win);
    let (scale_h, bias_h) = (to_f64(&scale_h), to_f64(&bias_h));
    let want = rc::epilogue(&y, c, with_scale.then_some(&scale_h[..]), with_bias.then_some(&bias_h[..]), act);
    let mut ran = 0;
    for algo in algos(c, &win) {
        // Random, not pooled, output: an element a variant skips keeps a wrong value.
        let (out, _) = rand_tensor(&gpu, &ys, seed + 4);
        let spec = DepthwiseSpec {
            scale: with_scale.then_some(&scale),
            bias: with_bias.then_some(&bias),
            act,
            algo: Some(algo),
            ..DepthwiseSpec::new(win)
        };
        dw::depthwise_conv2d_into(&x, &wt, &spec, &out).unwrap();
        let what = format!("{algo:?} x {xs:?} {win:?} scale {with_scale} bias {with_bias} {}", act.name());
        assert_close(&what, &out.to_vec().unwrap(), &want);
        ran += 1;
    }
    assert_eq!(ran, if c % 4 == 0 { 2 } else { 1 }, "variants run on {xs:?}");
    want
}

#[test]
fn every_variant_matches_reference_at_odd_shapes() {
    // Every window, each with a channel count, input, batch and epilogue in turn, so
    // every value of each appears with many windows.
    let epilogues = [(false, false, Act::Linear), (true, true, Act::Relu), (true, false, Act::Relu6), (false, true, Act::Linear), (true, true, Act::Relu6), (false, false, Act::Relu)];
    for (i, win) in windows().into_iter().enumerate() {
        let c = CHANNELS[i % CHANNELS.len()];
        let (h, w) = SIDES[i % SIDES.len()];
        let n = [1, 3][i % 2];
        check_forward([n, h, w, c], win, epilogues[i % epilogues.len()], 1.0, 10 * i as u64);
    }
}

#[test]
fn every_channel_count_and_input_with_mobilenet_windows() {
    // MobileNetV2's two windows (3×3 'same' stride 1, 3×3 stride 2 after ZeroPadding2D((0, 1), (0, 1)))
    // and TF 'same' at stride 2 on even inputs (more padding after), at every channel count and input.
    let wins = [Window2d::new(3, 3, 1, Same), Window2d::new(3, 3, 2, PAD_0101), Window2d::new(3, 3, 2, Same), Window2d::new(5, 5, 2, Same)];
    let mut i = 0;
    for c in CHANNELS {
        for (h, w) in SIDES.into_iter().chain([(8, 8)]) {
            check_forward([3, h, w, c], wins[i % wins.len()], (true, true, Act::Relu6), 2.0, 500 + 10 * i as u64);
            i += 1;
        }
    }
}

#[test]
fn every_activation_clips_where_it_should() {
    // Inputs in [-4, 4) and 3×3 / 5×5 filters in [-1, 1): the convolution spans about ±10,
    // so ReLU6 caps some outputs at 6 and zeroes others.
    for (i, act) in Act::ALL.into_iter().enumerate() {
        for (j, (xs, win)) in [([2, 9, 6, 8], Window2d::new(3, 3, 1, Same)), ([1, 17, 17, 32], Window2d::new(5, 5, 2, PAD_1212)), ([3, 7, 7, 13], Window2d::new(3, 3, 2, PAD_0101))]
            .into_iter()
            .enumerate()
        {
            let want = check_forward(xs, win, (false, false, act), 4.0, 900 + 10 * (3 * i + j) as u64);
            let top = want.iter().cloned().fold(f64::MIN, f64::max);
            let bottom = want.iter().cloned().fold(f64::MAX, f64::min);
            match act {
                Act::Linear => assert!(top > 6.0 && bottom < -6.0, "{xs:?}: outputs span [{bottom}, {top}]"),
                Act::Relu => assert!(top > 6.0 && bottom == 0.0),
                Act::Relu6 => assert!(top == 6.0 && bottom == 0.0 && want.iter().filter(|&&v| v == 6.0).count() > 1),
            }
        }
    }
}

#[test]
fn tall_inputs_split_into_several_strips() {
    // Few columns of output and many rows: the strip kernel cuts each column into strips of at
    // least 16 rows, each warming up on the rows above it (stride 1 and 2, 3 and 5 filter rows).
    for (i, (xs, win)) in [
        ([1, 40, 6, 8], Window2d::new(3, 3, 2, PAD_1212)),
        ([2, 37, 5, 32], Window2d::new(5, 5, 1, Same)),
        ([1, 50, 3, 4], Window2d { kh: 3, kw: 1, stride_h: 1, stride_w: 2, padding: PAD_0101 }),
    ]
    .into_iter()
    .enumerate()
    {
        check_forward(xs, win, (true, true, Act::Relu6), 2.0, 1500 + 10 * i as u64);
    }
}

#[test]
fn default_variant_and_plain_op_match_reference() {
    let gpu = gpu();
    for (i, (xs, win)) in [([3, 17, 17, 32], Window2d::new(3, 3, 1, Same)), ([1, 9, 6, 13], Window2d::new(3, 1, 2, PAD_1212))].into_iter().enumerate() {
        let (x, xh) = rand_tensor(&gpu, &xs, 40 + i as u64);
        let (w, wh) = rand_tensor(&gpu, &[win.kh, win.kw, xs[3], 1], 50 + i as u64);
        let y = dw::depthwise_conv2d(&x, &w, &win).unwrap();
        let (want, shape) = rd::depthwise_conv2d(&to_f64(&xh), xs, &to_f64(&wh), &win);
        assert_eq!(y.shape(), shape);
        assert_close(&format!("default {xs:?} {win:?}"), &y.to_vec().unwrap(), &want);
    }
}

/// Small (x shape, window) cases for finite differences, which cost two forwards per element.
fn small_cases() -> Vec<([usize; 4], Window2d)> {
    vec![
        ([1, 5, 5, 3], Window2d::new(3, 3, 1, Same)),
        ([2, 6, 5, 2], Window2d::new(3, 3, 2, Valid)),
        ([1, 6, 6, 3], Window2d::new(3, 3, 2, Same)),
        ([1, 6, 6, 2], Window2d::new(3, 3, 2, PAD_0101)),
        ([2, 5, 4, 3], Window2d::new(3, 1, 1, PAD_1212)),
        ([1, 7, 6, 2], Window2d::new(5, 5, 2, PAD_1212)),
        ([1, 4, 5, 5], Window2d::new(1, 1, 2, Same)),
    ]
}

#[test]
fn cpu_backward_matches_finite_differences() {
    for (i, (xs, win)) in small_cases().into_iter().enumerate() {
        let seed = 10 * i as u64;
        let [_, h, w, c] = xs;
        let (oh, ow) = win.output_size(h, w).unwrap();
        let x = to_f64(&r::random(xs.iter().product(), seed, -1.0, 1.0));
        let f = to_f64(&r::random(win.kh * win.kw * c, seed + 1, -1.0, 1.0));
        let g = to_f64(&r::random(xs[0] * oh * ow * c, seed + 2, -1.0, 1.0));
        let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &rd::depthwise_conv2d(x, xs, &f, &win).0));
        let dx = rd::depthwise_conv2d_backward_input(&g, &f, xs, &win);
        assert_close_f64(&format!("dx fd {xs:?} {win:?}"), &dx, &fd_x, FD_TOL);
        let fd_f = r::finite_difference(&f, 1e-6, |f| r::dot(&g, &rd::depthwise_conv2d(&x, xs, f, &win).0));
        let df = rd::depthwise_conv2d_backward_filter(&x, xs, &g, &win);
        assert_close_f64(&format!("dw fd {xs:?} {win:?}"), &df, &fd_f, FD_TOL);
    }
}

#[test]
fn gpu_backward_matches_cpu_backward() {
    let gpu = gpu();
    for (i, win) in windows().into_iter().enumerate() {
        let c = CHANNELS[(i + 2) % CHANNELS.len()];
        let (h, w) = SIDES[(i + 1) % SIDES.len()];
        let xs = [[3, 1][i % 2], h, w, c];
        let (oh, ow) = win.output_size(h, w).unwrap();
        let ws = [win.kh, win.kw, c, 1];
        let seed = 2000 + 10 * i as u64;
        let (x, xh) = rand_tensor(&gpu, &xs, seed);
        let (wt, wh) = rand_tensor(&gpu, &ws, seed + 1);
        let (dy, dyh) = rand_tensor(&gpu, &[xs[0], oh, ow, c], seed + 2);
        let want_dx = rd::depthwise_conv2d_backward_input(&to_f64(&dyh), &to_f64(&wh), xs, &win);
        let want_dw = rd::depthwise_conv2d_backward_filter(&to_f64(&xh), xs, &to_f64(&dyh), &win);
        let what = format!("x {xs:?} {win:?}");
        let dx = dw::depthwise_conv2d_backward_input(&dy, &wt, &win, xs).unwrap();
        assert_eq!(dx.shape(), xs);
        assert_close(&format!("dx {what}"), &dx.to_vec().unwrap(), &want_dx);
        let dwt = dw::depthwise_conv2d_backward_filter(&x, &dy, &win, ws).unwrap();
        assert_eq!(dwt.shape(), ws);
        assert_close(&format!("dw {what}"), &dwt.to_vec().unwrap(), &want_dw);
        for kernel in DepthwiseGradKernel::ALL.into_iter().filter(|k| k.applies_to(c)) {
            let dx = dw::depthwise_conv2d_backward_input_using(kernel, &dy, &wt, &win, xs).unwrap();
            assert_close(&format!("dx {kernel:?} {what}"), &dx.to_vec().unwrap(), &want_dx);
            // 1 slice, uneven slices, and more slices than positions (clamped).
            for slices in [1, 3, 7, 10_000] {
                let dwt = dw::depthwise_conv2d_backward_filter_using(kernel, Some(slices), &x, &dy, &win, ws).unwrap();
                assert_close(&format!("dw {kernel:?} slices {slices} {what}"), &dwt.to_vec().unwrap(), &want_dw);
            }
        }
    }
}

/// Gradient of the mean softmax cross-entropy of `logits` [n, k] against one-hot `labels`: (softmax − t) / n.
fn cross_entropy_grad(logits: &[f64], n: usize, labels: &[usize]) -> Vec<f64> {
    let k = logits.len() / n;
    let mut g = Vec::with_capacity(logits.len());
    for (row, &label) in logits.chunks(k).zip(labels) {
        let top = row.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - top).exp()).collect();
        let sum: f64 = e.iter().sum();
        g.extend(e.iter().enumerate().map(|(j, v)| (v / sum - if j == label { 1.0 } else { 0.0 }) / n as f64));
    }
    g
}

#[test]
fn autograd_wrapper_end_to_end() {
    // x → depthwise 3×3 stride 2 (explicit pad) → depthwise 3×1 'same' → flatten → softmax cross-entropy;
    // x and both filters trainable; gradients against the reference chain rule.
    let gpu = gpu();
    let xs = [2, 9, 8, 8];
    let (win1, win2) = (Window2d::new(3, 3, 2, PAD_0101), Window2d::new(3, 1, 1, Same));
    let (x, xh) = rand_tensor(&gpu, &xs, 31);
    let (w1, w1h) = rand_tensor(&gpu, &[3, 3, 8, 1], 32);
    let (w2, w2h) = rand_tensor(&gpu, &[3, 1, 8, 1], 33);
    let (xv, w1v, w2v) = (Var::parameter(x, true), Var::parameter(w1, true), Var::parameter(w2, true));
    let y1 = ag::depthwise_conv2d(&xv, &w1v, win1).unwrap();
    let y2 = ag::depthwise_conv2d(&y1, &w2v, win2).unwrap();
    let [n, oh, ow, c] = y2.value().dims4().unwrap();
    let logits = ag::reshape(&y2, &[n, oh * ow * c]).unwrap();
    let labels = [3, 17];
    let mut t = vec![0.0; n * oh * ow * c];
    for (b, &l) in labels.iter().enumerate() {
        t[b * oh * ow * c + l] = 1.0;
    }
    let targets = Tensor::from_slice(&gpu, &[n, oh * ow * c], &t).unwrap();
    let (loss, _) = ag::softmax_cross_entropy(&logits, &targets).unwrap();
    let grads = loss.backward().unwrap();

    let (x64, w1_64, w2_64) = (to_f64(&xh), to_f64(&w1h), to_f64(&w2h));
    let (r1, s1) = rd::depthwise_conv2d(&x64, xs, &w1_64, &win1);
    let (r2, _) = rd::depthwise_conv2d(&r1, s1, &w2_64, &win2);
    let g2 = cross_entropy_grad(&r2, n, &labels);
    let want_w2 = rd::depthwise_conv2d_backward_filter(&r1, s1, &g2, &win2);
    let g1 = rd::depthwise_conv2d_backward_input(&g2, &w2_64, s1, &win2);
    let want_w1 = rd::depthwise_conv2d_backward_filter(&x64, xs, &g1, &win1);
    let want_x = rd::depthwise_conv2d_backward_input(&g1, &w1_64, xs, &win1);
    assert_close("dL/dw2", &grads.get(&w2v).unwrap().to_vec().unwrap(), &want_w2);
    assert_close("dL/dw1", &grads.get(&w1v).unwrap().to_vec().unwrap(), &want_w1);
    assert_close("dL/dx", &grads.get(&xv).unwrap().to_vec().unwrap(), &want_x);
}

#[test]
fn bad_input_is_a_clear_error() {
    let gpu = gpu();
    let win = Window2d::new(3, 3, 1, Same);
    let (x, _) = rand_tensor(&gpu, &[1, 5, 5, 8], 1);
    let (w, _) = rand_tensor(&gpu, &[3, 3, 8, 1], 2);
    let err = |r: incept::Result<Tensor>| r.unwrap_err().to_string();
    let (w_c, _) = rand_tensor(&gpu, &[3, 3, 6, 1], 3);
    let msg = err(dw::depthwise_conv2d(&x, &w_c, &win));
    assert!(msg.contains("6 channels") && msg.contains("has 8"), "{msg}");
    let (w_m, _) = rand_tensor(&gpu, &[3, 3, 8, 2], 4);
    let msg = err(dw::depthwise_conv2d(&x, &w_m, &win));
    assert!(msg.contains("depth_multiplier 2"), "{msg}");
    let msg = err(dw::depthwise_conv2d(&x, &w, &Window2d::new(5, 5, 1, Same)));
    assert!(msg.contains("[3, 3, 8, 1]") && msg.contains("5x5"), "{msg}");
    let (w7, _) = rand_tensor(&gpu, &[7, 7, 8, 1], 11);
    let msg = err(dw::depthwise_conv2d(&x, &w7, &Window2d::new(7, 7, 1, PAD_0101)));
    assert!(msg.contains("smaller") && msg.contains("padded to 6x6"), "{msg}");
    let msg = err(dw::depthwise_conv2d(&x.reshape(&[5, 5, 8]).unwrap(), &w, &win));
    assert!(msg.contains("4-D") && msg.contains("[5, 5, 8]"), "{msg}");
    // f16 tensors are refused, naming the type.
    let x16 = Tensor::from_slice_f16(&gpu, &[1, 5, 5, 8], &x.to_vec().unwrap()).unwrap();
    let msg = err(dw::depthwise_conv2d(&x16, &w, &win));
    assert!(msg.contains("f32") && msg.contains("F16"), "{msg}");
    let out16 = Tensor::empty(&gpu, &[1, 5, 5, 8], DType::F16).unwrap();
    let msg = dw::depthwise_conv2d_into(&x, &w, &DepthwiseSpec::new(win), &out16).unwrap_err().to_string();
    assert!(msg.contains("output") && msg.contains("F16"), "{msg}");
    // Wrong output shape, epilogue vector, variant.
    let out = Tensor::zeros(&gpu, &[1, 4, 5, 8]).unwrap();
    let msg = dw::depthwise_conv2d_into(&x, &w, &DepthwiseSpec::new(win), &out).unwrap_err().to_string();
    assert!(msg.contains("[1, 4, 5, 8]") && msg.contains("[1, 5, 5, 8]"), "{msg}");
    let out = Tensor::zeros(&gpu, &[1, 5, 5, 8]).unwrap();
    let (v5, _) = rand_tensor(&gpu, &[5], 5);
    let msg = dw::depthwise_conv2d_into(&x, &w, &DepthwiseSpec { bias: Some(&v5), ..DepthwiseSpec::new(win) }, &out).unwrap_err().to_string();
    assert!(msg.contains("bias") && msg.contains("[8]"), "{msg}");
    let (x5, _) = rand_tensor(&gpu, &[1, 5, 5, 5], 6);
    let (w5, _) = rand_tensor(&gpu, &[3, 3, 5, 1], 7);
    let out5 = Tensor::zeros(&gpu, &[1, 5, 5, 5]).unwrap();
    let msg = dw::depthwise_conv2d_into(&x5, &w5, &DepthwiseSpec { algo: Some(DepthwiseAlgo::Strip), ..DepthwiseSpec::new(win) }, &out5).unwrap_err().to_string();
    assert!(msg.contains("strip") && msg.contains("5 channels"), "{msg}");
    // Backward: dy of the wrong shape, the vec4 kernel on 5 channels, zero slices.
    let (dy_bad, _) = rand_tensor(&gpu, &[1, 4, 4, 8], 8);
    let msg = err(dw::depthwise_conv2d_backward_input(&dy_bad, &w, &win, [1, 5, 5, 8]));
    assert!(msg.contains("[1, 4, 4, 8]") && msg.contains("[1, 5, 5, 8]"), "{msg}");
    let msg = err(dw::depthwise_conv2d_backward_filter(&x, &dy_bad, &win, [3, 3, 8, 1]));
    assert!(msg.contains("[1, 4, 4, 8]"), "{msg}");
    let (dy5, _) = rand_tensor(&gpu, &[1, 5, 5, 5], 9);
    let msg = err(dw::depthwise_conv2d_backward_input_using(DepthwiseGradKernel::Vec4, &dy5, &w5, &win, [1, 5, 5, 5]));
    assert!(msg.contains("divisible by 4"), "{msg}");
    let (dy, _) = rand_tensor(&gpu, &[1, 5, 5, 8], 10);
    let msg = err(dw::depthwise_conv2d_backward_filter_using(DepthwiseGradKernel::Vec4, Some(0), &x, &dy, &win, [3, 3, 8, 1]));
    assert!(msg.contains("slice"), "{msg}");
    let msg = err(dw::depthwise_conv2d_backward_filter(&x, &dy, &win, [3, 3, 8, 4]));
    assert!(msg.contains("depth_multiplier 4"), "{msg}");
}
