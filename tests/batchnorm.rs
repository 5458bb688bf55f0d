//! BatchNorm (scale=False): the f64 CPU backward against finite differences of
//! the f64 forward, then every GPU function against the CPU references.
mod common;
use common::*;
use incept::Tensor;
use incept::ops::batchnorm as bn;
use incept::ops::{Padding, Window2d};
use incept::reference::{self as r, batchnorm as rbn, conv::conv2d};

/// InceptionV3's BatchNormalization epsilon.
const EPS: f32 = 1e-3;

fn upload(gpu: &incept::Gpu, shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_slice(gpu, shape, data).unwrap()
}

/// (beta, moving_mean, moving_var) for `c` channels; the variance is positive.
fn channel_params(c: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (r::random(c, seed, -1.0, 1.0), r::random(c, seed + 1, -1.0, 1.0), r::random(c, seed + 2, 0.2, 2.0))
}

#[test]
fn cpu_train_backward_matches_finite_differences() {
    for (shape, seed) in [([2usize, 3, 3, 4], 1u64), ([1, 5, 2, 3], 2)] {
        let c = shape[3];
        let n: usize = shape.iter().product();
        // Data off zero, so the mean matters.
        let x = r::to_f64(&r::random(n, seed, 0.5, 2.0));
        let beta = r::to_f64(&r::random(c, seed + 1, -1.0, 1.0));
        let g = r::to_f64(&r::random(n, seed + 2, -1.0, 1.0));
        let eps = EPS as f64;
        let (dx, dbeta) = rbn::batchnorm_train_backward(&x, &g, c, eps);
        let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &rbn::batchnorm_train(x, &beta, eps).0));
        assert_close_f64(&format!("train dx fd {shape:?}"), &dx, &fd_x, FD_TOL);
        let fd_beta = r::finite_difference(&beta, 1e-6, |b| r::dot(&g, &rbn::batchnorm_train(&x, b, eps).0));
        assert_close_f64(&format!("train dbeta fd {shape:?}"), &dbeta, &fd_beta, FD_TOL);
    }
}

#[test]
fn cpu_inference_backward_matches_finite_differences() {
    let (shape, c) = ([3usize, 2, 5, 4], 4);
    let n: usize = shape.iter().product();
    let x = r::to_f64(&r::random(n, 5, -1.0, 1.0));
    let g = r::to_f64(&r::random(n, 6, -1.0, 1.0));
    let (beta, mean, var) = channel_params(c, 7);
    let (beta, mean, var) = (r::to_f64(&beta), r::to_f64(&mean), r::to_f64(&var));
    let eps = EPS as f64;
    let (dx, dbeta) = rbn::batchnorm_inference_backward(&g, &var, eps);
    let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &rbn::batchnorm_inference(x, &beta, &mean, &var, eps)));
    assert_close_f64("inference dx fd", &dx, &fd_x, FD_TOL);
    let fd_beta = r::finite_difference(&beta, 1e-6, |b| r::dot(&g, &rbn::batchnorm_inference(&x, b, &mean, &var, eps)));
    assert_close_f64("inference dbeta fd", &dbeta, &fd_beta, FD_TOL);
}

#[test]
fn train_forward_and_backward_match_cpu() {
    let gpu = gpu();
    // M = 55 (one chunk), 147, 243 (uneven chunks), and a [N, C] Dense-style input.
    let shapes: [&[usize]; 4] = [&[1, 5, 11, 7], &[3, 7, 7, 17], &[3, 9, 9, 5], &[37, 19]];
    for (i, shape) in shapes.into_iter().enumerate() {
        let seed = 20 + 10 * i as u64;
        let c = *shape.last().unwrap();
        let (x, xh) = rand_tensor(&gpu, shape, seed);
        let (dy, dyh) = rand_tensor(&gpu, shape, seed + 1);
        let (beta, _) = rand_tensor(&gpu, &[c], seed + 2);
        let beta_h = r::to_f64(&beta.to_vec().unwrap());
        let (y, stats) = bn::batchnorm_train(&x, &beta, EPS).unwrap();
        let (want_y, want_mean, want_var) = rbn::batchnorm_train(&r::to_f64(&xh), &beta_h, EPS as f64);
        assert_close(&format!("train y {shape:?}"), &y.to_vec().unwrap(), &want_y);
        assert_close(&format!("mean {shape:?}"), &stats.mean.to_vec().unwrap(), &want_mean);
        assert_close(&format!("var {shape:?}"), &stats.var.to_vec().unwrap(), &want_var);
        assert_close(&format!("inv_std {shape:?}"), &stats.inv_std.to_vec().unwrap(), &rbn::inv_std(&want_var, EPS as f64));

        let (dx, dbeta) = bn::batchnorm_train_backward(&x, &dy, &stats).unwrap();
        let (want_dx, want_dbeta) = rbn::batchnorm_train_backward(&r::to_f64(&xh), &r::to_f64(&dyh), c, EPS as f64);
        assert_eq!(dx.shape(), shape);
        assert_close(&format!("train dx {shape:?}"), &dx.to_vec().unwrap(), &want_dx);
        assert_close(&format!("train dbeta {shape:?}"), &dbeta.to_vec().unwrap(), &want_dbeta);
    }
}

#[test]
fn statistics_stay_accurate_with_many_rows_and_a_large_mean() {
    let gpu = gpu();
    // M = 3200 and 9248 rows with data in [2, 4), then data in [100, 101): mean/std ≈ 350.
    // (Further out, at [1000, 1001), y is still within 1e-4, but only by 2x: the f32
    // rounding of the mean itself, scaled by inv_std ≈ 3.5, is then most of the budget.)
    for (shape, lo, width, seed) in [([2usize, 40, 40, 3], 2.0f32, 2.0, 60u64), ([32, 17, 17, 8], 2.0, 2.0, 61), ([2, 40, 40, 3], 100.0, 1.0, 62)] {
        let c = shape[3];
        let n: usize = shape.iter().product();
        let xh = r::random(n, seed, lo, lo + width);
        let x = upload(&gpu, &shape, &xh);
        let dyh = r::random(n, seed + 1, -1.0, 1.0);
        let dy = upload(&gpu, &shape, &dyh);
        let beta_h = r::random(c, seed + 2, -1.0, 1.0);
        let beta = upload(&gpu, &[c], &beta_h);
        let (y, stats) = bn::batchnorm_train(&x, &beta, EPS).unwrap();
        let (want_y, want_mean, want_var) = rbn::batchnorm_train(&r::to_f64(&xh), &r::to_f64(&beta_h), EPS as f64);
        let what = format!("{shape:?} data in [{lo}, ..)");
        assert_close(&format!("mean {what}"), &stats.mean.to_vec().unwrap(), &want_mean);
        assert_close(&format!("var {what}"), &stats.var.to_vec().unwrap(), &want_var);
        assert_close(&format!("y {what}"), &y.to_vec().unwrap(), &want_y);
        let (dx, dbeta) = bn::batchnorm_train_backward(&x, &dy, &stats).unwrap();
        let (want_dx, want_dbeta) = rbn::batchnorm_train_backward(&r::to_f64(&xh), &r::to_f64(&dyh), c, EPS as f64);
        assert_close(&format!("dx {what}"), &dx.to_vec().unwrap(), &want_dx);
        assert_close(&format!("dbeta {what}"), &dbeta.to_vec().unwrap(), &want_dbeta);
    }
}

#[test]
fn inference_forward_and_backward_match_cpu() {
    let gpu = gpu();
    let shapes: [&[usize]; 3] = [&[1, 8, 8, 19], &[3, 9, 9, 5], &[2, 5, 11, 4]];
    for (i, shape) in shapes.into_iter().enumerate() {
        let seed = 80 + 10 * i as u64;
        let c = *shape.last().unwrap();
        let (x, xh) = rand_tensor(&gpu, shape, seed);
        let (dy, dyh) = rand_tensor(&gpu, shape, seed + 1);
        let (beta_h, mean_h, var_h) = channel_params(c, seed + 2);
        let (beta, mean, var) = (upload(&gpu, &[c], &beta_h), upload(&gpu, &[c], &mean_h), upload(&gpu, &[c], &var_h));
        let (beta_h, mean_h, var_h) = (r::to_f64(&beta_h), r::to_f64(&mean_h), r::to_f64(&var_h));
        let y = bn::batchnorm_inference(&x, &beta, &mean, &var, EPS).unwrap();
        let want_y = rbn::batchnorm_inference(&r::to_f64(&xh), &beta_h, &mean_h, &var_h, EPS as f64);
        assert_close(&format!("inference y {shape:?}"), &y.to_vec().unwrap(), &want_y);
        let (dx, dbeta) = bn::batchnorm_inference_backward(&dy, &var, EPS).unwrap();
        let (want_dx, want_dbeta) = rbn::batchnorm_inference_backward(&r::to_f64(&dyh), &var_h, EPS as f64);
        assert_close(&format!("inference dx {shape:?}"), &dx.to_vec().unwrap(), &want_dx);
        assert_close(&format!("inference dbeta {shape:?}"), &dbeta.to_vec().unwrap(), &want_dbeta);
    }
}

#[test]
fn folded_scale_and_bias_reproduce_conv_then_batchnorm() {
    let gpu = gpu();
    let (xs, cout, win) = ([2usize, 7, 7, 3], 7, Window2d::new(3, 3, 2, Padding::Valid));
    let x = r::to_f64(&r::random(xs.iter().product(), 90, -1.0, 1.0));
    let f = r::to_f64(&r::random(9 * 3 * cout, 91, -1.0, 1.0));
    let (beta_h, mean_h, var_h) = channel_params(cout, 92);
    let (beta, mean, var) = (upload(&gpu, &[cout], &beta_h), upload(&gpu, &[cout], &mean_h), upload(&gpu, &[cout], &var_h));
    let (beta_h, mean_h, var_h) = (r::to_f64(&beta_h), r::to_f64(&mean_h), r::to_f64(&var_h));
    let (scale, bias) = bn::fold_batchnorm(&beta, &mean, &var, EPS).unwrap();
    let (want_scale, want_bias) = rbn::fold_batchnorm(&beta_h, &mean_h, &var_h, EPS as f64);
    let (scale, bias) = (scale.to_vec().unwrap(), bias.to_vec().unwrap());
    assert_close("fold scale", &scale, &want_scale);
    assert_close("fold bias", &bias, &want_bias);
    let (conv, _) = conv2d(&x, xs, &f, cout, &win);
    let bn_of_conv = rbn::batchnorm_inference(&conv, &beta_h, &mean_h, &var_h, EPS as f64);
    let folded = rbn::channel_affine(&conv, &r::to_f64(&scale), &r::to_f64(&bias));
    assert_close_f64("conv·scale + bias vs BN(conv)", &folded, &bn_of_conv, TOL);
}

#[test]
fn moving_statistics_follow_the_keras_update() {
    let gpu = gpu();
    let c = 17;
    let (x, xh) = rand_tensor(&gpu, &[3, 5, 5, c], 100);
    let (beta, _) = rand_tensor(&gpu, &[c], 101);
    let (_, mm_h, mv_h) = channel_params(c, 102);
    let (mm, mv) = (upload(&gpu, &[c], &mm_h), upload(&gpu, &[c], &mv_h));
    let (_, stats) = bn::batchnorm_train(&x, &beta, EPS).unwrap();
    let (_, mean, var) = rbn::batchnorm_train(&r::to_f64(&xh), &r::to_f64(&beta.to_vec().unwrap()), EPS as f64);
    let momentum = 0.99;
    bn::update_moving_stats(&mm, &mv, &stats, momentum).unwrap();
    let (want_mm, want_mv) = rbn::update_moving_stats(&r::to_f64(&mm_h), &r::to_f64(&mv_h), &mean, &var, momentum as f64);
    assert_close("moving mean", &mm.to_vec().unwrap(), &want_mm);
    assert_close("moving var", &mv.to_vec().unwrap(), &want_mv);
    // A second step keeps accumulating in place.
    bn::update_moving_stats(&mm, &mv, &stats, momentum).unwrap();
    let (want_mm, want_mv) = rbn::update_moving_stats(&want_mm, &want_mv, &mean, &var, momentum as f64);
    assert_close("moving mean, step 2", &mm.to_vec().unwrap(), &want_mm);
    assert_close("moving var, step 2", &mv.to_vec().unwrap(), &want_mv);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[2, 3, 3, 5], 1);
    let (dy_bad, _) = rand_tensor(&gpu, &[2, 3, 3, 4], 2);
    let (v5, _) = rand_tensor(&gpu, &[5], 3);
    let (v4, _) = rand_tensor(&gpu, &[4], 4);
    let err = bn::batchnorm_train(&x, &v4, EPS).unwrap_err().to_string();
    assert!(err.contains("[4]") && err.contains("[5]"), "{err}");
    assert!(bn::batchnorm_inference(&x, &v5, &v4, &v5, EPS).is_err());
    assert!(bn::batchnorm_inference(&x, &v5, &v5, &v4, EPS).is_err());
    assert!(bn::fold_batchnorm(&v5, &v5, &v4, EPS).is_err());
    let (_, stats) = bn::batchnorm_train(&x, &v5, EPS).unwrap();
    let err = bn::batchnorm_train_backward(&x, &dy_bad, &stats).unwrap_err().to_string();
    assert!(err.contains("[2, 3, 3, 4]") && err.contains("[2, 3, 3, 5]"), "{err}");
    let (_, small_stats) = bn::batchnorm_train(&dy_bad, &v4, EPS).unwrap();
    assert!(bn::batchnorm_train_backward(&x, &x, &small_stats).is_err());
    assert!(bn::update_moving_stats(&v5, &v4, &stats, 0.99).is_err());
    assert!(bn::update_moving_stats(&v4, &v4.deep_copy().unwrap(), &stats, 0.99).is_err());
    assert!(bn::batchnorm_inference_backward(&x, &v4, EPS).is_err());
    // No channels or no rows.
    let empty = Tensor::zeros(&gpu, &[0, 5]).unwrap();
    assert!(bn::batchnorm_train(&empty, &v5, EPS).is_err());
}
