//! BatchNorm without gamma (Keras `scale=False`), `shaders/batchnorm.wgsl`.
//!
//! Data is any tensor whose last axis is the channel, viewed as [M, C]
//! (NHWC: M = n·h·w): y = (x − mean)·inv_std + beta, inv_std = 1/sqrt(var + eps).
//! Training uses the batch statistics (biased variance, as Keras), inference
//! the moving ones. Per-channel reductions are barrier-free: partial results
//! per chunk of rows, then one invocation per channel combines the chunks
//! (Chan's merge for the variance, so a large mean costs no precision).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(MOMENTS_PARTIAL, "batchnorm.wgsl", "moments_partial", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(MOMENTS_COMBINE, "batchnorm.wgsl", "moments_combine", reads = 2, writes = 3, params = Params, workgroup = WORKGROUP);
kernel!(NORMALIZE, "batchnorm.wgsl", "normalize", reads = 4, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(INV_STD, "batchnorm.wgsl", "inv_std", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(FOLD, "batchnorm.wgsl", "fold", reads = 3, writes = 2, params = Params, workgroup = WORKGROUP);
kernel!(UPDATE_MOVING, "batchnorm.wgsl", "update_moving", reads = 2, writes = 2, params = Params, workgroup = WORKGROUP);
kernel!(GRAD_SUMS_PARTIAL, "batchnorm.wgsl", "grad_sums_partial", reads = 3, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(BACKWARD_COEFFS, "batchnorm.wgsl", "backward_coeffs", reads = 2, writes = 2, params = Params, workgroup = WORKGROUP);
kernel!(BACKWARD_DX, "batchnorm.wgsl", "backward_dx", reads = 5, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(SUM_PARTIAL, "batchnorm.wgsl", "sum_partial", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(SUM_COMBINE, "batchnorm.wgsl", "sum_combine", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(SCALE_CHANNELS, "batchnorm.wgsl", "scale_channels", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);

const WORKGROUP: u32 = 64;
/// (chunk, channel) invocations wanted for the partial reductions.
const TARGET_INVOCATIONS: usize = 16384;
/// Fewest rows a chunk gets.
const MIN_ROWS_PER_CHUNK: usize = 64;

/// Batch statistics of one training step, each [C].
#[derive(Clone, Debug)]
pub struct BatchStats {
    pub mean: Tensor,
    /// Biased batch variance (divided by M), as Keras.
    pub var: Tensor,
    pub inv_std: Tensor,
}

kernel_params! {
    struct Params {
        rows: u32,
        channels: u32,
        rows_per_chunk: u32,
        chunks: u32,
        eps: f32,
        momentum: f32,
        total: u32,
        pad: u32,
    }
}

/// The [M, C] view of a tensor and how its rows are cut into chunks.
#[derive(Clone, Copy)]
struct Layout {
    rows: usize,
    channels: usize,
    rows_per_chunk: usize,
    chunks: usize,
}

impl Layout {
    fn of(op: &str, x: &Tensor) -> Result<Layout> {
        let channels = x.shape().last().copied().unwrap_or(0);
        if channels == 0 || x.numel() == 0 {
            return Err(Error::Shape(format!("{op}: cannot normalize a tensor of shape {:?} (no channels or no rows)", x.shape())));
        }
        if u32::try_from(x.numel()).is_err() {
            return Err(Error::Shape(format!("{op}: {:?} has too many elements for 32-bit indices", x.shape())));
        }
        let rows = x.numel() / channels;
        let wanted = TARGET_INVOCATIONS.div_ceil(channels).min(rows.div_ceil(MIN_ROWS_PER_CHUNK)).max(1);
        let rows_per_chunk = rows.div_ceil(wanted);
        Ok(Layout { rows, channels, rows_per_chunk, chunks: rows.div_ceil(rows_per_chunk) })
    }

    fn params(&self, total: usize) -> Params {
        Params {
            rows: self.rows as u32,
            channels: self.channels as u32,
            rows_per_chunk: self.rows_per_chunk as u32,
            chunks: self.chunks as u32,
            eps: 0.0,
            momentum: 0.0,
            total: total as u32,
            pad: 0,
        }
    }

    fn per_channel(&self, op: &str, name: &str, t: &Tensor) -> Result<()> {
        if t.shape() != [self.channels] {
            return Err(Error::Shape(format!("{op}: {name} has shape {:?}, expected [{}]", t.shape(), self.channels)));
        }
        Ok(())
    }

    fn stats(&self, op: &str, stats: &BatchStats) -> Result<()> {
        self.per_channel(op, "stats.mean", &stats.mean)?;
        self.per_channel(op, "stats.var", &stats.var)?;
        self.per_channel(op, "stats.inv_std", &stats.inv_std)
    }
}

fn same_shape(op: &str, x: &Tensor, dy: &Tensor) -> Result<()> {
    if x.shape() != dy.shape() {
        return Err(Error::Shape(format!("{op}: dy has shape {:?} but x has {:?}", dy.shape(), x.shape())));
    }
    Ok(())
}

/// Per-channel vector shape checks for ops without a data tensor.
fn channel_vectors(op: &str, named: &[(&str, &Tensor)]) -> Result<usize> {
    let c = named[0].1.numel();
    for (name, t) in named {
        if t.shape() != [c] || c == 0 {
            let shapes: Vec<String> = named.iter().map(|(n, t)| format!("{n} {:?}", t.shape())).collect();
            return Err(Error::Shape(format!("{op}: expected equal non-empty [C] vectors, got {}; {name} differs", shapes.join(", "))));
        }
    }
    Ok(c)
}

fn launch(gpu: &Gpu, k: &Kernel, p: &Params, reads: &[&Tensor], writes: &[&Tensor]) -> Result<()> {
    gpu.launch(k, &[], p, reads, writes, gpu.groups_1d(p.total.div_ceil(WORKGROUP)))
}

fn channel_params(c: usize) -> Params {
    Params { rows: 0, channels: c as u32, rows_per_chunk: 0, chunks: 0, eps: 0.0, momentum: 0.0, total: c as u32, pad: 0 }
}

/// inv_std = 1/sqrt(var + eps) per channel.
fn inv_std_of(var: &Tensor, eps: f32) -> Result<Tensor> {
    let gpu = var.gpu();
    let out = Tensor::empty(gpu, var.shape(), DType::F32)?;
    let p = Params { eps, ..channel_params(var.numel()) };
    launch(gpu, &INV_STD, &p, &[var], &[&out])?;
    Ok(out)
}

/// Σ over rows per channel.
fn channel_sums(l: &Layout, dy: &Tensor) -> Result<Tensor> {
    let gpu = dy.gpu();
    let partial = Tensor::empty(gpu, &[l.chunks, l.channels], DType::F32)?;
    launch(gpu, &SUM_PARTIAL, &l.params(l.chunks * l.channels), &[dy], &[&partial])?;
    let out = Tensor::empty(gpu, &[l.channels], DType::F32)?;
    launch(gpu, &SUM_COMBINE, &l.params(l.channels), &[&partial], &[&out])?;
    Ok(out)
}

/// y = (x − mean)·inv_std + beta per channel.
fn normalize(l: &Layout, x: &Tensor, mean: &Tensor, inv_std: &Tensor, beta: &Tensor) -> Result<Tensor> {
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
    launch(gpu, &NORMALIZE, &l.params(x.numel()), &[x, mean, inv_std, beta], &[&y])?;
    Ok(y)
}

/// Inference mode with the moving statistics.
pub fn batchnorm_inference(x: &Tensor, beta: &Tensor, moving_mean: &Tensor, moving_var: &Tensor, eps: f32) -> Result<Tensor> {
    const OP: &str = "batchnorm_inference";
    let l = Layout::of(OP, x)?;
    l.per_channel(OP, "beta", beta)?;
    l.per_channel(OP, "moving_mean", moving_mean)?;
    l.per_channel(OP, "moving_var", moving_var)?;
    normalize(&l, x, moving_mean, &inv_std_of(moving_var, eps)?, beta)
}

/// (scale, bias) per channel so that conv·scale + bias == BN(conv) in inference mode.
pub fn fold_batchnorm(beta: &Tensor, moving_mean: &Tensor, moving_var: &Tensor, eps: f32) -> Result<(Tensor, Tensor)> {
    let c = channel_vectors("fold_batchnorm", &[("beta", beta), ("moving_mean", moving_mean), ("moving_var", moving_var)])?;
    let gpu = beta.gpu();
    let scale = Tensor::empty(gpu, &[c], DType::F32)?;
    let bias = Tensor::empty(gpu, &[c], DType::F32)?;
    let p = Params { eps, ..channel_params(c) };
    launch(gpu, &FOLD, &p, &[beta, moving_mean, moving_var], &[&scale, &bias])?;
    Ok((scale, bias))
}

/// Training mode: normalizes with the batch statistics and returns them.
pub fn batchnorm_train(x: &Tensor, beta: &Tensor, eps: f32) -> Result<(Tensor, BatchStats)> {
    const OP: &str = "batchnorm_train";
    let l = Layout::of(OP, x)?;
    l.per_channel(OP, "beta", beta)?;
    let gpu = x.gpu();
    let partial = Tensor::empty(gpu, &[l.chunks, l.channels, 2], DType::F32)?;
    launch(gpu, &MOMENTS_PARTIAL, &l.params(l.chunks * l.channels), &[x], &[&partial])?;
    let stats = BatchStats {
        mean: Tensor::empty(gpu, &[l.channels], DType::F32)?,
        var: Tensor::empty(gpu, &[l.channels], DType::F32)?,
        inv_std: Tensor::empty(gpu, &[l.channels], DType::F32)?,
    };
    let p = Params { eps, ..l.params(l.channels) };
    launch(gpu, &MOMENTS_COMBINE, &p, &[&partial, x], &[&stats.mean, &stats.var, &stats.inv_std])?;
    let y = normalize(&l, x, &stats.mean, &stats.inv_std, beta)?;
    Ok((y, stats))
}

/// In place: moving = moving·momentum + batch·(1 − momentum) for the mean and
/// the (biased) variance, as Keras 3.
pub fn update_moving_stats(moving_mean: &Tensor, moving_var: &Tensor, stats: &BatchStats, momentum: f32) -> Result<()> {
    let c = channel_vectors(
        "update_moving_stats",
        &[("moving_mean", moving_mean), ("moving_var", moving_var), ("stats.mean", &stats.mean), ("stats.var", &stats.var)],
    )?;
    let gpu = moving_mean.gpu();
    let p = Params { momentum, ..channel_params(c) };
    launch(gpu, &UPDATE_MOVING, &p, &[&stats.mean, &stats.var], &[moving_mean, moving_var])
}

/// Training-mode backward through the batch statistics: (dx, dbeta).
pub fn batchnorm_train_backward(x: &Tensor, dy: &Tensor, stats: &BatchStats) -> Result<(Tensor, Tensor)> {
    const OP: &str = "batchnorm_train_backward";
    let l = Layout::of(OP, x)?;
    same_shape(OP, x, dy)?;
    l.stats(OP, stats)?;
    let gpu = x.gpu();
    let partial = Tensor::empty(gpu, &[l.chunks, l.channels, 2], DType::F32)?;
    launch(gpu, &GRAD_SUMS_PARTIAL, &l.params(l.chunks * l.channels), &[x, dy, &stats.mean], &[&partial])?;
    let dbeta = Tensor::empty(gpu, &[l.channels], DType::F32)?;
    let coeffs = Tensor::empty(gpu, &[l.channels, 2], DType::F32)?;
    launch(gpu, &BACKWARD_COEFFS, &l.params(l.channels), &[&partial, &stats.inv_std], &[&dbeta, &coeffs])?;
    let dx = Tensor::empty(gpu, x.shape(), DType::F32)?;
    launch(gpu, &BACKWARD_DX, &l.params(x.numel()), &[x, dy, &stats.mean, &stats.inv_std, &coeffs], &[&dx])?;
    Ok((dx, dbeta))
}

/// Inference-mode backward (moving statistics are constants): (dx = dy·inv_std, dbeta = Σ dy).
pub fn batchnorm_inference_backward(dy: &Tensor, moving_var: &Tensor, eps: f32) -> Result<(Tensor, Tensor)> {
    const OP: &str = "batchnorm_inference_backward";
    let l = Layout::of(OP, dy)?;
    l.per_channel(OP, "moving_var", moving_var)?;
    let gpu = dy.gpu();
    let dx = Tensor::empty(gpu, dy.shape(), DType::F32)?;
    launch(gpu, &SCALE_CHANNELS, &l.params(dy.numel()), &[dy, &inv_std_of(moving_var, eps)?], &[&dx])?;
    Ok((dx, channel_sums(&l, dy)?))
}
