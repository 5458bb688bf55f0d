//! Channel concatenation and slicing of NHWC tensors (`shaders/concat.wgsl`).
//! Inference paths avoid these copies by writing each branch straight into
//! its channel slice (`conv::conv2d_into`, `pool::max_pool2d_into`); the
//! trainable tail uses them because its backward needs the slices apart.

use crate::error::{Error, Result};
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(COPY_CHANNELS, "concat.wgsl", "copy_channels", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;

kernel_params! {
    struct Params {
        rows: u32,
        width: u32,
        src_stride: u32,
        dst_stride: u32,
        src_offset: u32,
        dst_offset: u32,
    }
}

fn split_last(t: &Tensor) -> Result<(usize, usize)> {
    let c = *t.shape().last().ok_or_else(|| Error::Shape("a scalar has no channels to slice".into()))?;
    Ok((t.numel() / c.max(1), c))
}

fn copy(src: &Tensor, dst: &Tensor, rows: usize, width: usize, src_offset: usize, dst_offset: usize) -> Result<()> {
    if src.dtype() != DType::F32 || dst.dtype() != DType::F32 {
        return Err(Error::Shape(format!("channel copies are f32 only: {:?} {:?} into {:?} {:?}", src.dtype(), src.shape(), dst.dtype(), dst.shape())));
    }
    let p = Params {
        rows: rows as u32,
        width: width as u32,
        src_stride: *src.shape().last().unwrap() as u32,
        dst_stride: *dst.shape().last().unwrap() as u32,
        src_offset: src_offset as u32,
        dst_offset: dst_offset as u32,
    };
    let gpu = src.gpu();
    gpu.launch(&COPY_CHANNELS, &[], &p, &[src], &[dst], gpu.groups_1d(((rows * width) as u32).div_ceil(WORKGROUP)))
}

/// Concatenates along the last axis; all other dimensions must agree.
pub fn concat_channels(parts: &[&Tensor]) -> Result<Tensor> {
    let first = parts.first().ok_or_else(|| Error::Shape("concat_channels of no tensors".into()))?;
    let lead = &first.shape()[..first.shape().len() - 1];
    for p in parts {
        if p.shape().len() != first.shape().len() || &p.shape()[..lead.len()] != lead {
            return Err(Error::Shape(format!("concat_channels: shapes {:?} and {:?} differ outside the channel axis", first.shape(), p.shape())));
        }
    }
    let total: usize = parts.iter().map(|p| *p.shape().last().unwrap()).sum();
    let mut shape = lead.to_vec();
    shape.push(total);
    let out = Tensor::empty(first.gpu(), &shape, DType::F32)?;
    let mut offset = 0;
    for p in parts {
        let (rows, width) = split_last(p)?;
        copy(p, &out, rows, width, 0, offset)?;
        offset += width;
    }
    Ok(out)
}

/// Channels `[offset, offset + width)` of `x` as a new tensor.
pub fn slice_channels(x: &Tensor, offset: usize, width: usize) -> Result<Tensor> {
    let (rows, c) = split_last(x)?;
    if offset + width > c {
        return Err(Error::Shape(format!("slice_channels: [{offset}, {}) is outside the {c} channels of {:?}", offset + width, x.shape())));
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap() = width;
    let out = Tensor::empty(x.gpu(), &shape, DType::F32)?;
    copy(x, &out, rows, width, offset, 0)?;
    Ok(out)
}

/// Copies all of `src`'s channels into channels `[offset, offset + c)` of
/// the wider `dst` (same leading dimensions).
pub fn write_channels(src: &Tensor, dst: &Tensor, offset: usize) -> Result<()> {
    let (rows, width) = split_last(src)?;
    let (dst_rows, dst_c) = split_last(dst)?;
    if rows != dst_rows || offset + width > dst_c {
        return Err(Error::Shape(format!(
            "write_channels: {:?} does not fit at channel {offset} of {:?}",
            src.shape(),
            dst.shape()
        )));
    }
    copy(src, dst, rows, width, 0, offset)
}

/// Concatenates along the first (batch) axis; the other dimensions must agree.
pub fn concat_batch(parts: &[&Tensor]) -> Result<Tensor> {
    let first = parts.first().ok_or_else(|| Error::Shape("concat_batch of no tensors".into()))?;
    let tail = &first.shape()[1..];
    if let Some(p) = parts.iter().find(|p| p.shape().get(1..) != Some(tail)) {
        return Err(Error::Shape(format!("concat_batch: shapes {:?} and {:?} differ after the batch axis", first.shape(), p.shape())));
    }
    if let Some(p) = parts.iter().find(|p| p.dtype() != first.dtype()) {
        return Err(Error::Shape(format!("concat_batch: a {:?} and a {:?} tensor", first.dtype(), p.dtype())));
    }
    let mut shape = first.shape().to_vec();
    shape[0] = parts.iter().map(|p| p.shape()[0]).sum();
    let out = Tensor::empty(first.gpu(), &shape, first.dtype())?;
    let mut offset = 0;
    for p in parts {
        out.copy_region_from(p, offset)?;
        offset += p.byte_size();
    }
    Ok(out)
}
