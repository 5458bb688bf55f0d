//! CPU references for `ops::optim`: the Keras 3 update formulas in f64.

use crate::ops::optim::AdamConfig;

/// One Adam step at 1-based step `t`, in place.
pub fn adam_step(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], cfg: &AdamConfig, t: u32) {
    let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.epsilon as f64);
    let alpha = cfg.lr as f64 * (1.0 - b2.powi(t as i32)).sqrt() / (1.0 - b1.powi(t as i32));
    for i in 0..param.len() {
        m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
        v[i] = b2 * v[i] + (1.0 - b2) * grad[i] * grad[i];
        param[i] -= alpha * m[i] / (v[i].sqrt() + eps);
    }
}

/// One SGD step, in place: plain, or with a velocity (`v = momentum·v − lr·g; p += v`).
pub fn sgd_step(param: &mut [f64], grad: &[f64], velocity: Option<&mut [f64]>, lr: f64, momentum: f64) {
    match velocity {
        Some(vel) => {
            for i in 0..param.len() {
                vel[i] = momentum * vel[i] - lr * grad[i];
                param[i] += vel[i];
            }
        }
        None => {
            for i in 0..param.len() {
                param[i] -= lr * grad[i];
            }
        }
    }
}
