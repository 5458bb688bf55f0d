//! Size checks made before anything large is allocated: every size that the
//! flags set (batch × image size, head widths, the base's activations) is
//! compared with the adapter's buffer limits and with the host memory that
//! is actually available (MemAvailable, and the address-space limit when
//! one is set), so an oversized flag is an error naming the flag, the bytes
//! needed and the limit, instead of an abort or a machine that swaps.
//!
//! Host figures are estimates that err on the generous side of what incept
//! holds at once; on a CPU adapter (lavapipe) device buffers live in host
//! memory too and are counted there. What the host has is `crate::host_memory`'s.

use super::config::TrainConfig;
use super::head;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::host_memory::check_host;

const F32: u128 = 4;

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Errors unless one buffer of `bytes` fits the adapter's buffer limit and,
/// when a kernel binds it whole, its storage-binding limit; `what` names
/// the flag(s) that set the size.
pub fn check_buffer(gpu: &Gpu, what: impl Fn() -> String, bytes: u128, bound: bool) -> Result<()> {
    let limits = gpu.limits();
    let binding = bound.then_some(("max_storage_buffer_binding_size", limits.max_storage_buffer_binding_size));
    for (limit_name, limit) in [("max_buffer_size", limits.max_buffer_size)].into_iter().chain(binding) {
        if bytes > limit as u128 {
            return Err(Error::Limit { what: what(), bytes: saturate(bytes), limit_name, limit });
        }
    }
    Ok(())
}

/// Bytes of one batch of input images [batch, size, size, 3] in f32.
fn batch_bytes(batch: usize, image_size: usize) -> u128 {
    batch as u128 * image_size as u128 * image_size as u128 * 3 * F32
}

/// Checks a training configuration before the model, the head or the loader
/// allocate: the input batch and every head kernel against the adapter's
/// limits, then everything together against host memory. `prefetch` is the
/// loader's number of batches decoded ahead.
pub fn check_training_fits(gpu: &Gpu, cfg: &TrainConfig, prefetch: usize) -> Result<()> {
    let (b, s) = (cfg.batch, cfg.image_size);
    let batch_flags = || format!("--batch {b} × --image-size {s}");
    let input = batch_bytes(b, s);
    // The input is only copied from (the base slices it into chunks), never bound whole.
    check_buffer(gpu, || format!("{}: one batch of input images [{b}, {s}, {s}, 3]", batch_flags()), input, false)?;
    let mut head_params: u128 = 0;
    let features = cfg.backbone.feature_channels();
    for (name, shape) in head::weight_shapes(features, &cfg.head, cfg.classes.len()) {
        let n: u128 = shape.iter().map(|&d| d as u128).product();
        head_params += n;
        check_buffer(gpu, || format!("--head {}: Dense weight '{name}' {shape:?}", cfg.head_flag()), n * F32, true)?;
    }
    let widest = cfg.head.iter().copied().max().unwrap_or(0).max(features);
    check_buffer(gpu, || format!("--batch {b} × --head {}: a Dense layer's output [{b}, {widest}]", cfg.head_flag()), b as u128 * widest as u128 * F32, true)?;
    let base = cfg.backbone.parameter_count() as u128 * F32;
    // Host: decoded batches in flight (prefetch + the one in use + the one
    // being uploaded); the head generated on the host, then its weights and
    // both Adam moments read back for every checkpoint; the base likewise.
    let mut parts = vec![
        (format!("input batches ({})", batch_flags()), (prefetch as u128 + 2) * input),
        (format!("head weights and checkpoints (--head {})", cfg.head_flag()), 5 * head_params * F32),
        ("base weights and checkpoints".into(), 3 * base),
    ];
    if gpu.is_cpu() {
        // Device memory is host memory: the batch, the head's weights,
        // gradients and moments, and the base.
        parts.push((format!("device copy of one batch ({})", batch_flags()), input));
        parts.push((format!("device head (--head {})", cfg.head_flag()), 4 * head_params * F32));
        parts.push(("device base".into(), 3 * base));
    }
    check_host(&parts)
}

/// Checks the base's per-image activations for `image_size` (the layer
/// output shapes for one image) against the storage-binding limit: the base
/// splits a batch into chunks, but one image's largest activation must fit.
/// On a CPU adapter the chunk of activations that fits one binding is also
/// checked against host memory.
pub fn check_activations_fit(gpu: &Gpu, batch: usize, image_size: usize, per_image_shapes: &[[usize; 4]]) -> Result<()> {
    let Some(largest) = per_image_shapes.iter().max_by_key(|s| s[1] as u128 * s[2] as u128 * s[3] as u128) else { return Ok(()) };
    let bytes = largest[1] as u128 * largest[2] as u128 * largest[3] as u128 * F32;
    check_buffer(gpu, || format!("--image-size {image_size}: one image's largest activation {largest:?}"), bytes, true)?;
    if gpu.is_cpu() {
        // A chunk's largest activation fills at most one binding; a block's
        // input, output and branch outputs are alive together.
        let binding = gpu.limits().max_storage_buffer_binding_size as u128;
        let chunk = binding.min(bytes * batch as u128);
        check_host(&[(format!("base activations of one batch chunk (--batch {batch} × --image-size {image_size})"), 4 * chunk)])?;
    }
    Ok(())
}

/// Checks the input batches of `predict` and `evaluate` (`--batch` images
/// of the run's size, `--tta` copies of each).
pub fn check_inference_fits(gpu: &Gpu, batch: usize, image_size: usize, tta: usize) -> Result<()> {
    check_images_fit(gpu, &format!("--batch {batch}"), batch, &format!("the run's image size {image_size}"), image_size, tta)
}

/// Checks the input batches of any command that runs the base on images:
/// `batch_flag` (`--batch 8`) images of `size_flag` (`--image-size 299`, or
/// the run's) side `image_size`, `copies` of each (`--tta`; 1 otherwise),
/// against the adapter's buffer limit and the host memory, before anything
/// is allocated; errors name the flags and the bytes.
pub fn check_images_fit(gpu: &Gpu, batch_flag: &str, batch: usize, size_flag: &str, image_size: usize, copies: usize) -> Result<()> {
    let input = batch_bytes(batch, image_size);
    let what = || format!("{batch_flag} × {size_flag}: one batch of input images [{batch}, {image_size}, {image_size}, 3]");
    check_buffer(gpu, what, input, false)?;
    let held = if gpu.is_cpu() { 3 } else { 2 };
    let tta = if copies > 1 { format!(" × --tta {copies}") } else { String::new() };
    check_host(&[(format!("input batches ({batch_flag} × {size_flag}{tta})"), held * input * copies.max(1) as u128)])
}
