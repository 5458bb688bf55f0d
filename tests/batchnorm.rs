//! BatchNorm with and without gamma (Keras scale=True / scale=False): the f64
//! CPU backward against finite differences of the f64 forward, then every GPU
//! function against the CPU references, autograd end to end, and gamma = 1
//! against no gamma.
use crate::common;
use common::*;
use incept::Tensor;
use incept::autograd::{self as ag, Var};
use incept::ops::batchnorm as bn;
use incept::ops::{Padding, Window2d};
use incept::reference::{self as r, batchnorm as rbn, conv::conv2d};

/// InceptionV3's BatchNormalization epsilon.
const EPS: f32 = 1e-3;

/// Odd shapes: c = 3, 7, 32; batch 1 and 3; 5×7 pixels.
const SHAPES: [[usize; 4]; 6] = [[1, 5, 7, 3], [3, 5, 7, 3], [1, 5, 7, 7], [3, 5, 7, 7], [1, 5, 7, 32], [3, 5, 7, 32]];

fn upload(gpu: &incept::Gpu, shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_slice(gpu, shape, data).unwrap()
}

/// (beta, moving_mean, moving_var) for `c` channels; the variance is positive.
fn channel_params(c: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (r::random(c, seed, -1.0, 1.0), r::random(c, seed + 1, -1.0, 1.0), r::random(c, seed + 2, 0.2, 2.0))
}

/// No gamma, then a random one of either sign.
fn gamma_cases(c: usize, seed: u64) -> [Option<Vec<f32>>; 2] {
    [None, Some(r::random(c, seed, -1.5, 1.5))]
}

fn describe(shape: &[usize], gamma: &Option<Vec<f32>>) -> String {
    format!("{shape:?} {}", if gamma.is_some() { "with gamma" } else { "without gamma" })
}

fn gamma_f64(gamma: &Option<Vec<f32>>) -> Option<Vec<f64>> {
    gamma.as_deref().map(r::to_f64)
}

#[test]
fn cpu_train_backward_matches_finite_differences() {
    for (shape, seed) in [([1usize, 5, 7, 3], 1u64), ([3, 5, 7, 7], 2)] {
        let c = shape[3];
        let n: usize = shape.iter().product();
        for gamma in gamma_cases(c, seed + 3) {
            let what = describe(&shape, &gamma);
            let gamma = gamma_f64(&gamma);
            // Data off zero, so the mean matters.
            let x = r::to_f64(&r::random(n, seed, 0.5, 2.0));
            let beta = r::to_f64(&r::random(c, seed + 1, -1.0, 1.0));
            let g = r::to_f64(&r::random(n, seed + 2, -1.0, 1.0));
            let eps = EPS as f64;
            let forward = |x: &[f64], gamma: Option<&[f64]>, beta: &[f64]| rbn::batchnorm_train(x, gamma, beta, eps).0;
            let (dx, dgamma, dbeta) = rbn::batchnorm_train_backward(&x, &g, gamma.as_deref(), c, eps);
            let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &forward(x, gamma.as_deref(), &beta)));
            assert_close_f64(&format!("train dx fd {what}"), &dx, &fd_x, FD_TOL);
            let fd_beta = r::finite_difference(&beta, 1e-6, |b| r::dot(&g, &forward(&x, gamma.as_deref(), b)));
            assert_close_f64(&format!("train dbeta fd {what}"), &dbeta, &fd_beta, FD_TOL);
            // dgamma: at the given gamma, or at gamma = 1 where there is none.
            let at = gamma.clone().unwrap_or_else(|| vec![1.0; c]);
            let fd_gamma = r::finite_difference(&at, 1e-6, |gm| r::dot(&g, &forward(&x, Some(gm), &beta)));
            assert_close_f64(&format!("train dgamma fd {what}"), &dgamma, &fd_gamma, FD_TOL);
        }
    }
}

#[test]
fn cpu_inference_backward_matches_finite_differences() {
    for (shape, seed) in [([3usize, 5, 7, 3], 5u64), ([1, 5, 7, 7], 6)] {
        let c = shape[3];
        let n: usize = shape.iter().product();
        for gamma in gamma_cases(c, seed + 4) {
            let what = describe(&shape, &gamma);
            let gamma = gamma_f64(&gamma);
            let x = r::to_f64(&r::random(n, seed, -1.0, 1.0));
            let g = r::to_f64(&r::random(n, seed + 1, -1.0, 1.0));
            let (beta, mean, var) = channel_params(c, seed + 2);
            let (beta, mean, var) = (r::to_f64(&beta), r::to_f64(&mean), r::to_f64(&var));
            let eps = EPS as f64;
            let forward = |x: &[f64], gamma: Option<&[f64]>, beta: &[f64]| rbn::batchnorm_inference(x, gamma, beta, &mean, &var, eps);
            let (dx, dgamma, dbeta) = rbn::batchnorm_inference_backward(&x, &g, gamma.as_deref(), &mean, &var, eps);
            let fd_x = r::finite_difference(&x, 1e-6, |x| r::dot(&g, &forward(x, gamma.as_deref(), &beta)));
            assert_close_f64(&format!("inference dx fd {what}"), &dx, &fd_x, FD_TOL);
            let fd_beta = r::finite_difference(&beta, 1e-6, |b| r::dot(&g, &forward(&x, gamma.as_deref(), b)));
            assert_close_f64(&format!("inference dbeta fd {what}"), &dbeta, &fd_beta, FD_TOL);
            let at = gamma.clone().unwrap_or_else(|| vec![1.0; c]);
            let fd_gamma = r::finite_difference(&at, 1e-6, |gm| r::dot(&g, &forward(&x, Some(gm), &beta)));
            assert_close_f64(&format!("inference dgamma fd {what}"), &dgamma, &fd_gamma, FD_TOL);
        }
    }
}

/// GPU dgamma: present iff gamma is, and then equal to the reference's.
#[track_caller]
fn check_dgamma(what: &str, got: Option<Tensor>, gamma: &Option<Vec<f32>>, want: &[f64]) {
    match (got, gamma) {
        (Some(dgamma), Some(_)) => assert_close(what, &dgamma.to_vec().unwrap(), want),
        (None, None) => {}
        (got, _) => panic!("{what}: dgamma {} but gamma {}", if got.is_some() { "returned" } else { "missing" }, if gamma.is_some() { "given" } else { "absent" }),
    }
}

#[test]
fn train_forward_and_backward_match_cpu() {
    let gpu = gpu();
    // The odd shapes, then M = 147 and 243 (uneven chunks), and a [N, C] Dense-style input.
    let extra: [&[usize]; 3] = [&[3, 7, 7, 17], &[3, 9, 9, 5], &[37, 19]];
    let shapes = SHAPES.iter().map(|s| s.as_slice()).chain(extra);
    for (i, shape) in shapes.enumerate() {
        let seed = 20 + 10 * i as u64;
        let c = *shape.last().unwrap();
        let (x, xh) = rand_tensor(&gpu, shape, seed);
        let (dy, dyh) = rand_tensor(&gpu, shape, seed + 1);
        let (beta, beta_h) = rand_tensor(&gpu, &[c], seed + 2);
        for gamma_h in gamma_cases(c, seed + 3) {
            let what = describe(shape, &gamma_h);
            let gamma = gamma_h.as_ref().map(|g| upload(&gpu, &[c], g));
            let gamma_r = gamma_f64(&gamma_h);
            let (y, stats) = bn::batchnorm_train(&x, gamma.as_ref(), &beta, EPS).unwrap();
            let (want_y, want_mean, want_var) = rbn::batchnorm_train(&r::to_f64(&xh), gamma_r.as_deref(), &r::to_f64(&beta_h), EPS as f64);
            assert_close(&format!("train y {what}"), &y.to_vec().unwrap(), &want_y);
            assert_close(&format!("mean {what}"), &stats.mean.to_vec().unwrap(), &want_mean);
            assert_close(&format!("var {what}"), &stats.var.to_vec().unwrap(), &want_var);
            assert_close(&format!("inv_std {what}"), &stats.inv_std.to_vec().unwrap(), &rbn::inv_std(&want_var, EPS as f64));

            let (dx, dgamma, dbeta) = bn::batchnorm_train_backward(&x, &dy, gamma.as_ref(), &stats).unwrap();
            let (want_dx, want_dgamma, want_dbeta) = rbn::batchnorm_train_backward(&r::to_f64(&xh), &r::to_f64(&dyh), gamma_r.as_deref(), c, EPS as f64);
            assert_eq!(dx.shape(), shape);
            assert_close(&format!("train dx {what}"), &dx.to_vec().unwrap(), &want_dx);
            assert_close(&format!("train dbeta {what}"), &dbeta.to_vec().unwrap(), &want_dbeta);
            check_dgamma(&format!("train dgamma {what}"), dgamma, &gamma_h, &want_dgamma);
        }
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
        let gamma_h = r::random(c, seed + 3, 0.5, 1.5);
        let gamma = upload(&gpu, &[c], &gamma_h);
        let (y, stats) = bn::batchnorm_train(&x, Some(&gamma), &beta, EPS).unwrap();
        let (want_y, want_mean, want_var) = rbn::batchnorm_train(&r::to_f64(&xh), Some(&r::to_f64(&gamma_h)), &r::to_f64(&beta_h), EPS as f64);
        let what = format!("{shape:?} data in [{lo}, ..)");
        assert_close(&format!("mean {what}"), &stats.mean.to_vec().unwrap(), &want_mean);
        assert_close(&format!("var {what}"), &stats.var.to_vec().unwrap(), &want_var);
        assert_close(&format!("y {what}"), &y.to_vec().unwrap(), &want_y);
        let (dx, dgamma, dbeta) = bn::batchnorm_train_backward(&x, &dy, Some(&gamma), &stats).unwrap();
        let (want_dx, want_dgamma, want_dbeta) = rbn::batchnorm_train_backward(&r::to_f64(&xh), &r::to_f64(&dyh), Some(&r::to_f64(&gamma_h)), c, EPS as f64);
        assert_close(&format!("dx {what}"), &dx.to_vec().unwrap(), &want_dx);
        assert_close(&format!("dbeta {what}"), &dbeta.to_vec().unwrap(), &want_dbeta);
        assert_close(&format!("dgamma {what}"), &dgamma.unwrap().to_vec().unwrap(), &want_dgamma);
    }
}

#[test]
fn inference_forward_and_backward_match_cpu() {
    let gpu = gpu();
    let extra: [&[usize]; 2] = [&[1, 8, 8, 19], &[2, 5, 11, 4]];
    let shapes = SHAPES.iter().map(|s| s.as_slice()).chain(extra);
    for (i, shape) in shapes.enumerate() {
        let seed = 200 + 10 * i as u64;
        let c = *shape.last().unwrap();
        let (x, xh) = rand_tensor(&gpu, shape, seed);
        let (dy, dyh) = rand_tensor(&gpu, shape, seed + 1);
        let (beta_h, mean_h, var_h) = channel_params(c, seed + 2);
        let (beta, mean, var) = (upload(&gpu, &[c], &beta_h), upload(&gpu, &[c], &mean_h), upload(&gpu, &[c], &var_h));
        let (beta_h, mean_h, var_h) = (r::to_f64(&beta_h), r::to_f64(&mean_h), r::to_f64(&var_h));
        for gamma_h in gamma_cases(c, seed + 5) {
            let what = describe(shape, &gamma_h);
            let gamma = gamma_h.as_ref().map(|g| upload(&gpu, &[c], g));
            let gamma_r = gamma_f64(&gamma_h);
            let y = bn::batchnorm_inference(&x, gamma.as_ref(), &beta, &mean, &var, EPS).unwrap();
            let want_y = rbn::batchnorm_inference(&r::to_f64(&xh), gamma_r.as_deref(), &beta_h, &mean_h, &var_h, EPS as f64);
            assert_close(&format!("inference y {what}"), &y.to_vec().unwrap(), &want_y);
            let (dx, dgamma, dbeta) = bn::batchnorm_inference_backward(&x, &dy, gamma.as_ref(), &mean, &var, EPS).unwrap();
            let (want_dx, want_dgamma, want_dbeta) =
                rbn::batchnorm_inference_backward(&r::to_f64(&xh), &r::to_f64(&dyh), gamma_r.as_deref(), &mean_h, &var_h, EPS as f64);
            assert_close(&format!("inference dx {what}"), &dx.to_vec().unwrap(), &want_dx);
            assert_close(&format!("inference dbeta {what}"), &dbeta.to_vec().unwrap(), &want_dbeta);
            check_dgamma(&format!("inference dgamma {what}"), dgamma, &gamma_h, &want_dgamma);
        }
    }
}

#[test]
fn gamma_of_ones_gives_the_result_without_gamma() {
    let gpu = gpu();
    let shape = [3usize, 5, 7, 7];
    let c = shape[3];
    let (x, _) = rand_tensor(&gpu, &shape, 300);
    let (dy, _) = rand_tensor(&gpu, &shape, 301);
    let (beta_h, mean_h, var_h) = channel_params(c, 302);
    let (beta, mean, var) = (upload(&gpu, &[c], &beta_h), upload(&gpu, &[c], &mean_h), upload(&gpu, &[c], &var_h));
    let ones = Tensor::full(&gpu, &[c], 1.0).unwrap();
    let read = |t: &Tensor| r::to_f64(&t.to_vec().unwrap());

    let (y_none, stats) = bn::batchnorm_train(&x, None, &beta, EPS).unwrap();
    let (y_ones, _) = bn::batchnorm_train(&x, Some(&ones), &beta, EPS).unwrap();
    assert_close("train y", &y_ones.to_vec().unwrap(), &read(&y_none));
    let (dx_none, dgamma_none, dbeta_none) = bn::batchnorm_train_backward(&x, &dy, None, &stats).unwrap();
    let (dx_ones, dgamma_ones, dbeta_ones) = bn::batchnorm_train_backward(&x, &dy, Some(&ones), &stats).unwrap();
    assert!(dgamma_none.is_none() && dgamma_ones.is_some());
    assert_close("train dx", &dx_ones.to_vec().unwrap(), &read(&dx_none));
    assert_close("train dbeta", &dbeta_ones.to_vec().unwrap(), &read(&dbeta_none));

    let y_none = bn::batchnorm_inference(&x, None, &beta, &mean, &var, EPS).unwrap();
    let y_ones = bn::batchnorm_inference(&x, Some(&ones), &beta, &mean, &var, EPS).unwrap();
    assert_close("inference y", &y_ones.to_vec().unwrap(), &read(&y_none));
    let (dx_none, _, dbeta_none) = bn::batchnorm_inference_backward(&x, &dy, None, &mean, &var, EPS).unwrap();
    let (dx_ones, _, dbeta_ones) = bn::batchnorm_inference_backward(&x, &dy, Some(&ones), &mean, &var, EPS).unwrap();
    assert_close("inference dx", &dx_ones.to_vec().unwrap(), &read(&dx_none));
    assert_close("inference dbeta", &dbeta_ones.to_vec().unwrap(), &read(&dbeta_none));

    let (scale_none, bias_none) = bn::fold_batchnorm(None, &beta, &mean, &var, EPS).unwrap();
    let (scale_ones, bias_ones) = bn::fold_batchnorm(Some(&ones), &beta, &mean, &var, EPS).unwrap();
    assert_close("fold scale", &scale_ones.to_vec().unwrap(), &read(&scale_none));
    assert_close("fold bias", &bias_ones.to_vec().unwrap(), &read(&bias_none));
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
    let (conv, _) = conv2d(&x, xs, &f, cout, &win);
    for gamma_h in gamma_cases(cout, 93) {
        let what = describe(&[cout], &gamma_h);
        let gamma = gamma_h.as_ref().map(|g| upload(&gpu, &[cout], g));
        let gamma_r = gamma_f64(&gamma_h);
        let (scale, bias) = bn::fold_batchnorm(gamma.as_ref(), &beta, &mean, &var, EPS).unwrap();
        let (want_scale, want_bias) = rbn::fold_batchnorm(gamma_r.as_deref(), &beta_h, &mean_h, &var_h, EPS as f64);
        let (scale, bias) = (scale.to_vec().unwrap(), bias.to_vec().unwrap());
        assert_close(&format!("fold scale {what}"), &scale, &want_scale);
        assert_close(&format!("fold bias {what}"), &bias, &want_bias);
        let bn_of_conv = rbn::batchnorm_inference(&conv, gamma_r.as_deref(), &beta_h, &mean_h, &var_h, EPS as f64);
        let folded = rbn::channel_affine(&conv, &r::to_f64(&scale), &r::to_f64(&bias));
        assert_close_f64(&format!("conv·scale + bias vs BN(conv) {what}"), &folded, &bn_of_conv, TOL);
    }
}

#[test]
fn autograd_trains_gamma_and_beta_end_to_end() {
    let gpu = gpu();
    let shape = [3usize, 5, 7, 7];
    let c = shape[3];
    let (x, xh) = rand_tensor(&gpu, &shape, 400);
    let (beta, beta_h) = rand_tensor(&gpu, &[c], 401);
    let gamma_h = r::random(c, 402, -1.5, 1.5);
    let gamma = upload(&gpu, &[c], &gamma_h);
    let (_, mean_h, var_h) = channel_params(c, 403);
    let (mean, var) = (upload(&gpu, &[c], &mean_h), upload(&gpu, &[c], &var_h));
    let (xr, gr, br) = (r::to_f64(&xh), r::to_f64(&gamma_h), r::to_f64(&beta_h));
    let (mr, vr) = (r::to_f64(&mean_h), r::to_f64(&var_h));

    for training in [true, false] {
        let mode = if training { "train" } else { "inference" };
        let (xv, gv, bv) = (Var::parameter(x.clone(), true), Var::parameter(gamma.clone(), true), Var::parameter(beta.clone(), true));
        let y = if training {
            ag::batch_norm_train(&xv, Some(&gv), &bv, EPS).unwrap().0
        } else {
            ag::batch_norm_inference(&xv, Some(&gv), &bv, &mean, &var, EPS).unwrap()
        };
        let (loss, dy) = softmax_ce_loss(&gpu, &y);
        let grads = loss.backward().unwrap();
        let (want_y, (want_dx, want_dgamma, want_dbeta)) = if training {
            (rbn::batchnorm_train(&xr, Some(&gr), &br, EPS as f64).0, rbn::batchnorm_train_backward(&xr, &dy, Some(&gr), c, EPS as f64))
        } else {
            (rbn::batchnorm_inference(&xr, Some(&gr), &br, &mr, &vr, EPS as f64), rbn::batchnorm_inference_backward(&xr, &dy, Some(&gr), &mr, &vr, EPS as f64))
        };
        assert_close(&format!("{mode} y"), &y.value().to_vec().unwrap(), &want_y);
        assert_close(&format!("{mode} dx"), &grads.get(&xv).unwrap().to_vec().unwrap(), &want_dx);
        assert_close(&format!("{mode} dgamma"), &grads.get(&gv).unwrap().to_vec().unwrap(), &want_dgamma);
        assert_close(&format!("{mode} dbeta"), &grads.get(&bv).unwrap().to_vec().unwrap(), &want_dbeta);
    }

    // A frozen gamma gets no gradient; beta still does.
    let (xv, gv, bv) = (Var::constant(x.clone()), Var::parameter(gamma.clone(), false), Var::parameter(beta.clone(), true));
    let (y, _) = ag::batch_norm_train(&xv, Some(&gv), &bv, EPS).unwrap();
    let grads = softmax_ce_loss(&gpu, &y).0.backward().unwrap();
    assert!(grads.get(&gv).is_none() && grads.get(&bv).is_some());
}

#[test]
fn moving_statistics_follow_the_keras_update() {
    let gpu = gpu();
    let c = 17;
    let (x, xh) = rand_tensor(&gpu, &[3, 5, 5, c], 100);
    let (beta, _) = rand_tensor(&gpu, &[c], 101);
    let (_, mm_h, mv_h) = channel_params(c, 102);
    let (mm, mv) = (upload(&gpu, &[c], &mm_h), upload(&gpu, &[c], &mv_h));
    let (_, stats) = bn::batchnorm_train(&x, None, &beta, EPS).unwrap();
    let (mean, var) = rbn::batch_stats(&r::to_f64(&xh), c);
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
    let err = bn::batchnorm_train(&x, None, &v4, EPS).unwrap_err().to_string();
    assert!(err.contains("[4]") && err.contains("[5]"), "{err}");
    let err = bn::batchnorm_train(&x, Some(&v4), &v5, EPS).unwrap_err().to_string();
    assert!(err.contains("gamma") && err.contains("[4]") && err.contains("[5]"), "{err}");
    assert!(bn::batchnorm_inference(&x, None, &v5, &v4, &v5, EPS).is_err());
    assert!(bn::batchnorm_inference(&x, None, &v5, &v5, &v4, EPS).is_err());
    assert!(bn::batchnorm_inference(&x, Some(&v4), &v5, &v5, &v5, EPS).unwrap_err().to_string().contains("gamma"));
    assert!(bn::fold_batchnorm(None, &v5, &v5, &v4, EPS).is_err());
    assert!(bn::fold_batchnorm(Some(&v4), &v5, &v5, &v5, EPS).unwrap_err().to_string().contains("gamma"));
    let (_, stats) = bn::batchnorm_train(&x, None, &v5, EPS).unwrap();
    let err = bn::batchnorm_train_backward(&x, &dy_bad, None, &stats).unwrap_err().to_string();
    assert!(err.contains("[2, 3, 3, 4]") && err.contains("[2, 3, 3, 5]"), "{err}");
    assert!(bn::batchnorm_train_backward(&x, &x, Some(&v4), &stats).unwrap_err().to_string().contains("gamma"));
    let (_, small_stats) = bn::batchnorm_train(&dy_bad, None, &v4, EPS).unwrap();
    assert!(bn::batchnorm_train_backward(&x, &x, None, &small_stats).is_err());
    assert!(bn::update_moving_stats(&v5, &v4, &stats, 0.99).is_err());
    assert!(bn::update_moving_stats(&v4, &v4.deep_copy().unwrap(), &stats, 0.99).is_err());
    assert!(bn::batchnorm_inference_backward(&x, &x, None, &v5, &v4, EPS).is_err());
    assert!(bn::batchnorm_inference_backward(&x, &dy_bad, None, &v5, &v5, EPS).is_err());
    assert!(bn::batchnorm_inference_backward(&x, &x, Some(&v4), &v5, &v5, EPS).unwrap_err().to_string().contains("gamma"));
    // No channels or no rows.
    let empty = Tensor::zeros(&gpu, &[0, 5]).unwrap();
    assert!(bn::batchnorm_train(&empty, None, &v5, EPS).is_err());
}
