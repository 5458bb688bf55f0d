//! Inverted dropout (`shaders/dropout.wgsl`). The mask is a counter-based
//! hash of (seed, element index), recomputed by the backward pass instead of
//! being stored; see the shader header for the exact function.

use crate::error::{Error, Result};
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(DROPOUT, "dropout.wgsl", "dropout", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;

kernel_params! {
    struct Params {
        n: u32,
        seed_lo: u32,
        seed_hi: u32,
        threshold: u32,
        scale: f32,
    }
}

/// `y = x · keep / (1 − rate)`, keep = hash(seed, i) ≥ rate·2³²; `0 ≤ rate < 1`.
pub fn dropout(x: &Tensor, rate: f32, seed: u64) -> Result<Tensor> {
    masked_scale("dropout", x, rate, seed)
}

/// The gradient of `dropout(x, rate, seed)`: the same mask and scaling applied to `dy`.
pub fn dropout_backward(dy: &Tensor, rate: f32, seed: u64) -> Result<Tensor> {
    masked_scale("dropout_backward", dy, rate, seed)
}

/// The smallest hash value that keeps an element: ceil(rate · 2³²), which
/// is below 2³² for every f32 rate < 1.
fn keep_threshold(rate: f32) -> u32 {
    (rate as f64 * 4294967296.0).ceil() as u32
}

fn masked_scale(op: &str, x: &Tensor, rate: f32, seed: u64) -> Result<Tensor> {
    if !(0.0..1.0).contains(&rate) {
        return Err(Error::Invalid(format!("{op}: rate must be in [0, 1), got {rate}")));
    }
    if x.dtype() != DType::F32 {
        return Err(Error::Invalid(format!(
            "{op}: expected an f32 tensor, got {:?} of shape {:?}",
            x.dtype(),
            x.shape()
        )));
    }
    if x.numel() > u32::MAX as usize {
        return Err(Error::Shape(format!("{op}: tensor of shape {:?} has more than 2³² elements", x.shape())));
    }
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
    let p = Params {
        n: x.numel() as u32,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        threshold: keep_threshold(rate),
        scale: (1.0 / (1.0 - rate as f64)) as f32,
    };
    gpu.launch(&DROPOUT, &[], &p, &[x], &[&y], gpu.groups_1d((x.numel() as u32).div_ceil(WORKGROUP)))?;
    Ok(y)
}
