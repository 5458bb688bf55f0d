//! Adam and both SGD forms over several steps (a fresh random gradient each
//! step) against the f64 Keras formulas.
use crate::common;
use common::*;
use incept::Tensor;
use incept::ops::optim::{AdamConfig, adam_step, sgd_step};
use incept::reference::{self as r, optim as ro};

const STEPS: u32 = 5;
const SIZES: [usize; 4] = [1, 255, 257, 70_001];

/// Compares the parameter's total change (large learning rates keep it well
/// above the f32 rounding of the parameter itself) and the final values.
#[track_caller]
fn assert_param(what: &str, got: &[f32], start: &[f32], want: &[f64]) {
    let got_delta: Vec<f32> = got.iter().zip(start).map(|(&g, &s)| g - s).collect();
    let want_delta: Vec<f64> = want.iter().zip(start).map(|(&w, &s)| w - s as f64).collect();
    assert_close(&format!("{what}: change"), &got_delta, &want_delta);
    assert_close(&format!("{what}: value"), got, want);
}

#[test]
fn adam_matches_reference_over_several_steps() {
    let gpu = gpu();
    let cfg = AdamConfig { lr: 0.05, ..AdamConfig::default() };
    for (k, n) in SIZES.into_iter().enumerate() {
        let seed = 100 * k as u64;
        let (param, p0) = rand_tensor(&gpu, &[n], seed);
        let (m, v) = (Tensor::zeros(&gpu, &[n]).unwrap(), Tensor::zeros(&gpu, &[n]).unwrap());
        let (mut pw, mut mw, mut vw) = (r::to_f64(&p0), vec![0.0; n], vec![0.0; n]);
        for t in 1..=STEPS {
            let (grad, gh) = rand_tensor(&gpu, &[n], seed + t as u64);
            adam_step(&param, &grad, &m, &v, &cfg, t).unwrap();
            ro::adam_step(&mut pw, &r::to_f64(&gh), &mut mw, &mut vw, &cfg, t);
        }
        assert_param(&format!("adam param n={n}"), &param.to_vec().unwrap(), &p0, &pw);
        assert_close(&format!("adam m n={n}"), &m.to_vec().unwrap(), &mw);
        assert_close(&format!("adam v n={n}"), &v.to_vec().unwrap(), &vw);
    }
}

#[test]
fn adam_first_step_moves_by_lr_times_sign() {
    // With zero moments, step 1 is lr·g/(|g| + ε/sqrt(1 − β2)) ≈ lr·sign(g).
    let gpu = gpu();
    let cfg = AdamConfig::default();
    let (param, p0) = rand_tensor(&gpu, &[64], 1);
    let (grad, gh) = rand_tensor(&gpu, &[64], 2);
    let (m, v) = (Tensor::zeros(&gpu, &[64]).unwrap(), Tensor::zeros(&gpu, &[64]).unwrap());
    adam_step(&param, &grad, &m, &v, &cfg, 1).unwrap();
    for ((&p, &p0), &g) in param.to_vec().unwrap().iter().zip(&p0).zip(&gh) {
        let step = (p0 - p) as f64;
        assert!((step - 1e-3 * g.signum() as f64).abs() < 2e-6, "p0 {p0} g {g}: moved by {step}");
    }
}

#[test]
fn sgd_with_and_without_momentum_matches_reference() {
    let gpu = gpu();
    for (k, n) in SIZES.into_iter().enumerate() {
        for momentum in [0.0f32, 0.9] {
            let seed = 1000 + 100 * k as u64;
            let lr = 0.1f32;
            let (param, p0) = rand_tensor(&gpu, &[n], seed);
            let velocity = (momentum != 0.0).then(|| Tensor::zeros(&gpu, &[n]).unwrap());
            let mut pw = r::to_f64(&p0);
            let mut vw = velocity.as_ref().map(|_| vec![0.0; n]);
            for t in 1..=STEPS {
                let (grad, gh) = rand_tensor(&gpu, &[n], seed + t as u64);
                sgd_step(&param, &grad, velocity.as_ref(), lr, momentum).unwrap();
                ro::sgd_step(&mut pw, &r::to_f64(&gh), vw.as_deref_mut(), lr as f64, momentum as f64);
            }
            let what = format!("sgd n={n} momentum={momentum}");
            assert_param(&what, &param.to_vec().unwrap(), &p0, &pw);
            if let (Some(vel), Some(vw)) = (&velocity, &vw) {
                assert_close(&format!("{what} velocity"), &vel.to_vec().unwrap(), vw);
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = gpu();
    let (param, _) = rand_tensor(&gpu, &[4, 3], 1);
    let (grad, _) = rand_tensor(&gpu, &[4, 3], 2);
    let (short, _) = rand_tensor(&gpu, &[12], 3);
    let (m, v) = (Tensor::zeros(&gpu, &[4, 3]).unwrap(), Tensor::zeros(&gpu, &[4, 3]).unwrap());
    let cfg = AdamConfig::default();
    let err = adam_step(&param, &short, &m, &v, &cfg, 1).unwrap_err().to_string();
    assert!(err.contains("[12]") && err.contains("[4, 3]"), "{err}");
    assert!(adam_step(&param, &grad, &m, &short, &cfg, 1).is_err());
    assert!(adam_step(&param, &grad, &m, &v, &cfg, 0).is_err());
    assert!(adam_step(&param, &grad, &m, &v, &AdamConfig { beta1: 1.0, ..cfg }, 1).is_err());
    assert!(adam_step(&param, &grad, &m, &m, &cfg, 1).is_err(), "m and v aliased");
    assert!(sgd_step(&param, &short, None, 0.1, 0.0).is_err());
    assert!(sgd_step(&param, &grad, Some(&short), 0.1, 0.9).is_err());
    assert!(sgd_step(&param, &grad, None, 0.1, 0.9).is_err(), "momentum without a velocity");
    assert!(sgd_step(&param, &grad, Some(&v), 0.1, 1.5).is_err());
    assert!(sgd_step(&param, &grad, None, f32::NAN, 0.0).is_err());
    let empty = Tensor::zeros(&gpu, &[0, 3]).unwrap();
    assert!(sgd_step(&empty, &empty, None, 0.1, 0.0).is_err());
    let labels = Tensor::from_u32(&gpu, &[4, 3], &[0; 12]).unwrap();
    assert!(sgd_step(&param, &labels, None, 0.1, 0.0).is_err());
}
