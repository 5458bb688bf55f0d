//! Zero padding and cropping of NHWC tensors (`shaders/pad.wgsl`): Keras
//! ZeroPadding2D where it cannot be folded into the following convolution's
//! window, and Cropping2D, which is also zero padding's gradient.
//! `pads` is always [top, bottom, left, right].

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
use crate::{kernel, kernel_params};

kernel!(ZERO_PAD2D, "pad.wgsl", "zero_pad2d", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(CROP2D, "pad.wgsl", "crop2d", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;

kernel_params! {
    struct Params {
        height: u32,
        width: u32,
        channels: u32,
        padded_height: u32,
        padded_width: u32,
        top: u32,
        left: u32,
        total: u32,
    }
}

/// The 4-D shape of a non-empty f32 tensor whose padded size fits 32-bit indices.
fn checked_dims(op: &str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op}: {what} must be f32, got {:?} of shape {:?}", t.dtype(), t.shape())));
    }
    let dims = t.dims4().map_err(|_| Error::Shape(format!("{op}: {what} must be NHWC (4-D), got shape {:?}", t.shape())))?;
    if t.numel() == 0 {
        return Err(Error::Shape(format!("{op}: {what} of shape {:?} is empty", t.shape())));
    }
    Ok(dims)
}

/// Launches `kernel` from `src` (interior `[n, h, w, c]` or padded) into a new tensor of `out_shape`.
fn launch(kernel: &crate::gpu::Kernel, op: &str, src: &Tensor, [_, h, w, c]: [usize; 4], pads: [usize; 4], out_shape: [usize; 4]) -> Result<Tensor> {
    let [top, bottom, left, right] = pads;
    let total: usize = out_shape.iter().product();
    let padded = src.numel().max(total);
    if u32::try_from(padded).is_err() {
        return Err(Error::Shape(format!("{op}: {:?} with pads {pads:?} has too many elements for 32-bit indices", src.shape())));
    }
    let p = Params {
        height: h as u32,
        width: w as u32,
        channels: c as u32,
        padded_height: (h + top + bottom) as u32,
        padded_width: (w + left + right) as u32,
        top: top as u32,
        left: left as u32,
        total: total as u32,
    };
    let gpu = src.gpu();
    let out = Tensor::empty(gpu, &out_shape, DType::F32)?;
    gpu.launch(kernel, &[], &p, &[src], &[&out], gpu.groups_1d((total as u32).div_ceil(WORKGROUP)))?;
    Ok(out)
}

/// Keras ZeroPadding2D: `x` [n, h, w, c] inside a border of zeros,
/// `pads` = [top, bottom, left, right] rows and columns; the result is
/// [n, h + top + bottom, w + left + right, c].
pub fn zero_pad2d(x: &Tensor, pads: [usize; 4]) -> Result<Tensor> {
    const OP: &str = "zero_pad2d";
    let [n, h, w, c] = checked_dims(OP, "x", x)?;
    let [top, bottom, left, right] = pads;
    launch(&ZERO_PAD2D, OP, x, [n, h, w, c], pads, [n, h + top + bottom, w + left + right, c])
}

/// Keras Cropping2D: the interior of `dy` [n, h, w, c] without `pads` =
/// [top, bottom, left, right] rows and columns, [n, h − top − bottom,
/// w − left − right, c]. It is also the gradient of [`zero_pad2d`] with the
/// same `pads` (the border's gradient is dropped).
pub fn crop2d(dy: &Tensor, pads: [usize; 4]) -> Result<Tensor> {
    const OP: &str = "crop2d";
    let [n, h, w, c] = checked_dims(OP, "the input", dy)?;
    let [top, bottom, left, right] = pads;
    if top + bottom >= h || left + right >= w {
        return Err(Error::Shape(format!("crop2d: cropping [top, bottom, left, right] = {pads:?} leaves nothing of {:?}", dy.shape())));
    }
    let interior = [n, h - top - bottom, w - left - right, c];
    launch(&CROP2D, OP, dy, interior, pads, interior)
}
