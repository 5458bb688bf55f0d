//! Softmax and categorical cross-entropy (`shaders/loss.wgsl`) for logits
//! and one-hot or soft targets `[N, C]`, optionally weighted per sample
//! (Keras `sample_weight`, which `class_weight` becomes), plus the count of
//! correct predictions. The batch loss stays on the GPU.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::{kernel, kernel_params};
use crate::ops::reduce;
use crate::tensor::{DType, Tensor};

kernel!(SOFTMAX_ROWS, "loss.wgsl", "softmax_rows", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(SOFTMAX_CROSS_ENTROPY_ROWS, "loss.wgsl", "softmax_cross_entropy_rows", reads = 3, writes = 2, params = Params, workgroup = WORKGROUP);
kernel!(SOFTMAX_CROSS_ENTROPY_BACKWARD, "loss.wgsl", "softmax_cross_entropy_backward", reads = 3, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(CORRECT_COUNT, "loss.wgsl", "correct_count", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 64;

kernel_params! {
    struct Params {
        rows: u32,
        cols: u32,
        scale: f32,
    }
}

fn groups(gpu: &Gpu, n: usize) -> [u32; 3] {
    gpu.groups_1d((n as u32).div_ceil(WORKGROUP))
}

/// Checks an `[N, C]` f32 matrix with N, C > 0 and returns (N, C).
fn matrix(op: &str, what: &str, t: &Tensor) -> Result<(usize, usize)> {
    if t.dtype() != DType::F32 {
        return Err(Error::Invalid(format!("{op}: {what} must be f32, got {:?} of shape {:?}", t.dtype(), t.shape())));
    }
    let [n, c] =
        t.dims2().map_err(|_| Error::Shape(format!("{op}: {what} must be [N, C], got shape {:?}", t.shape())))?;
    if n == 0 || c == 0 {
        return Err(Error::Shape(format!("{op}: {what} of shape {:?} is empty", t.shape())));
    }
    Ok((n, c))
}

/// Checks two `[N, C]` matrices of the same shape and returns (N, C).
fn pair(op: &str, a_name: &str, a: &Tensor, b: &Tensor) -> Result<(usize, usize)> {
    let dims = matrix(op, a_name, a)?;
    matrix(op, "targets", b)?;
    if a.shape() != b.shape() {
        return Err(Error::Shape(format!("{op}: {a_name} {:?} and targets {:?} differ", a.shape(), b.shape())));
    }
    Ok(dims)
}

/// Row-wise softmax of `[N, C]` logits.
pub fn softmax(logits: &Tensor) -> Result<Tensor> {
    let (n, c) = matrix("softmax", "logits", logits)?;
    let gpu = logits.gpu();
    let probs = Tensor::empty(gpu, logits.shape(), DType::F32)?;
    let p = Params { rows: n as u32, cols: c as u32, scale: 1.0 };
    gpu.launch(&SOFTMAX_ROWS, &[], &p, &[logits], &[&probs], groups(gpu, n))?;
    Ok(probs)
}

/// Returns (loss `[1]` = batch mean of −Σ t·log softmax(logits), probs `[N, C]`).
pub fn softmax_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    weighted_softmax_cross_entropy(logits, targets, None)
}

/// Returns (loss `[1]` = Σ_n w_n·(−Σ t·log softmax(logits))_n / N, probs
/// `[N, C]`): Keras 3's `sum_over_batch_size` reduction of a loss with
/// `sample_weight` w `[N]` (divided by the batch size, not by Σ w). `None`
/// weighs every sample 1, which is [`softmax_cross_entropy`].
pub fn weighted_softmax_cross_entropy(logits: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let op = "softmax_cross_entropy";
    let (n, c) = pair(op, "logits", logits, targets)?;
    let gpu = logits.gpu();
    let weights = sample_weights(op, gpu, weights, n)?;
    let probs = Tensor::empty(gpu, logits.shape(), DType::F32)?;
    let row_loss = Tensor::empty(gpu, &[n], DType::F32)?;
    let p = Params { rows: n as u32, cols: c as u32, scale: 1.0 };
    gpu.launch(&SOFTMAX_CROSS_ENTROPY_ROWS, &[], &p, &[logits, targets, &weights], &[&probs, &row_loss], groups(gpu, n))?;
    Ok((reduce::mean_all(&row_loss)?, probs))
}

/// Gradient of the mean loss with respect to the logits: (probs − targets) / N.
pub fn softmax_cross_entropy_backward(probs: &Tensor, targets: &Tensor) -> Result<Tensor> {
    weighted_softmax_cross_entropy_backward(probs, targets, None)
}

/// Gradient of [`weighted_softmax_cross_entropy`]'s loss with respect to the
/// logits: (probs − targets)·w_n / N.
pub fn weighted_softmax_cross_entropy_backward(probs: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    let op = "softmax_cross_entropy_backward";
    let (n, c) = pair(op, "probs", probs, targets)?;
    let gpu = probs.gpu();
    let weights = sample_weights(op, gpu, weights, n)?;
    let dlogits = Tensor::empty(gpu, probs.shape(), DType::F32)?;
    let p = Params { rows: n as u32, cols: c as u32, scale: 1.0 / n as f32 };
    gpu.launch(&SOFTMAX_CROSS_ENTROPY_BACKWARD, &[], &p, &[probs, targets, &weights], &[&dlogits], groups(gpu, n * c))?;
    Ok(dlogits)
}

/// The per-sample weights `[rows]` checked, or all ones when none are given.
fn sample_weights(op: &str, gpu: &Gpu, weights: Option<&Tensor>, rows: usize) -> Result<Tensor> {
    let Some(w) = weights else { return Tensor::full(gpu, &[rows], 1.0) };
    if w.dtype() != DType::F32 || w.shape() != [rows] {
        return Err(Error::Shape(format!("{op}: sample weights must be f32 [{rows}] (one per row), got {:?} of shape {:?}", w.dtype(), w.shape())));
    }
    Ok(w.clone())
}

/// u32 `[1]`: the number of rows whose argmax of the logits equals the argmax
/// of the targets (ties go to the first index).
pub fn correct_count(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (n, c) = pair("correct_count", "logits", logits, targets)?;
    let gpu = logits.gpu();
    let count = Tensor::zeros_u32(gpu, &[1])?;
    let p = Params { rows: n as u32, cols: c as u32, scale: 1.0 };
    gpu.launch(&CORRECT_COUNT, &[], &p, &[logits, targets], &[&count], groups(gpu, n))?;
    Ok(count)
}
