//! Optimiser steps (`shaders/optim.wgsl`), in place on the parameter and
//! its state tensors, matching Keras 3's Adam and SGD update formulas.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(ADAM, "optim.wgsl", "adam", reads = 1, writes = 3, params = AdamParams, workgroup = WORKGROUP);
kernel!(SGD, "optim.wgsl", "sgd", reads = 1, writes = 1, params = SgdParams, workgroup = WORKGROUP);
kernel!(SGD_MOMENTUM, "optim.wgsl", "sgd_momentum", reads = 1, writes = 2, params = SgdParams, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;

/// Adam hyper-parameters; the default is Keras's.
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }
    }
}

impl AdamConfig {
    /// Bias-corrected step size for 1-based step `t`: lr·sqrt(1 − β2^t)/(1 − β1^t).
    fn alpha(&self, t: u32) -> f64 {
        let t = t as i32;
        self.lr as f64 * (1.0 - (self.beta2 as f64).powi(t)).sqrt() / (1.0 - (self.beta1 as f64).powi(t))
    }

    fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr >= 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.epsilon.is_finite()
            && self.epsilon >= 0.0;
        if !ok {
            return Err(Error::Invalid(format!(
                "adam_step: invalid {self:?} (need lr ≥ 0, β1 and β2 in [0, 1), ε ≥ 0)"
            )));
        }
        Ok(())
    }
}

kernel_params! {
    struct AdamParams {
        n: u32,
        alpha: f32,
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    }
}

kernel_params! {
    struct SgdParams {
        n: u32,
        lr: f32,
        momentum: f32,
    }
}

fn groups(gpu: &Gpu, n: usize) -> [u32; 3] {
    gpu.groups_1d((n as u32).div_ceil(WORKGROUP))
}

/// Checks that every tensor is f32 with the parameter's (non-empty) shape.
fn check(op: &str, param: &Tensor, others: &[(&str, &Tensor)]) -> Result<()> {
    if param.numel() == 0 {
        return Err(Error::Shape(format!("{op}: parameter of shape {:?} is empty", param.shape())));
    }
    for (name, t) in [("param", param)].iter().chain(others) {
        if t.dtype() != DType::F32 {
            return Err(Error::Invalid(format!(
                "{op}: {name} must be f32, got {:?} of shape {:?}",
                t.dtype(),
                t.shape()
            )));
        }
        if t.shape() != param.shape() {
            return Err(Error::Shape(format!("{op}: {name} {:?} does not match param {:?}", t.shape(), param.shape())));
        }
    }
    Ok(())
}

/// One Adam step (Keras 3) at 1-based step `step`, updating `param`, `m` and `v` in place.
pub fn adam_step(param: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, cfg: &AdamConfig, step: u32) -> Result<()> {
    check("adam_step", param, &[("grad", grad), ("m", m), ("v", v)])?;
    cfg.validate()?;
    if step == 0 {
        return Err(Error::Invalid("adam_step: step is 1-based, got 0".into()));
    }
    let gpu = param.gpu();
    let p = AdamParams {
        n: param.numel() as u32,
        alpha: cfg.alpha(step) as f32,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        epsilon: cfg.epsilon,
    };
    gpu.launch(&ADAM, &[], &p, &[grad], &[param, m, v], groups(gpu, param.numel()))
}

/// One SGD step (Keras): `param −= lr·grad` without a velocity; with one,
/// `velocity = momentum·velocity − lr·grad; param += velocity`.
/// A nonzero momentum needs a velocity tensor.
pub fn sgd_step(param: &Tensor, grad: &Tensor, velocity: Option<&Tensor>, lr: f32, momentum: f32) -> Result<()> {
    check("sgd_step", param, &[("grad", grad)])?;
    if !lr.is_finite() || lr < 0.0 || !(0.0..=1.0).contains(&momentum) {
        return Err(Error::Invalid(format!(
            "sgd_step: need lr ≥ 0 and momentum in [0, 1], got lr {lr}, momentum {momentum}"
        )));
    }
    let gpu = param.gpu();
    let p = SgdParams { n: param.numel() as u32, lr, momentum };
    match velocity {
        Some(vel) => {
            check("sgd_step", param, &[("velocity", vel)])?;
            gpu.launch(&SGD_MOMENTUM, &[], &p, &[grad], &[param, vel], groups(gpu, param.numel()))
        }
        None if momentum != 0.0 => {
            Err(Error::Invalid(format!("sgd_step: momentum {momentum} needs a velocity tensor")))
        }
        None => gpu.launch(&SGD, &[], &p, &[grad], &[param], groups(gpu, param.numel())),
    }
}
