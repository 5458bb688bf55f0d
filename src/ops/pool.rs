//! Pooling over NHWC tensors (`shaders/pool.wgsl`): max and average pooling
//! with any window, stride and Keras padding, global average pooling, and
//! their backward passes. Backward passes gather per input element, so no
//! float atomics are needed; max pooling's backward first recomputes each
//! window's argmax (the first maximal tap in row-major window order).
//!
//! The forward kernels also read and write f16 tensors (the frozen prefix's
//! storage under `--precision mixed`) through variants of the shader with
//! other element types (`gpu::variant`); `*_into` take any mix of f32 and f16.

use crate::error::{Error, Result};
use crate::gpu::variant::{variant, wgsl_type};
use crate::gpu::{Gpu, Kernel};
use crate::{kernel, kernel_params};
use crate::ops::window::{Padding, Window2d};
use crate::tensor::{DType, Tensor};

kernel!(MAX_POOL_FORWARD, "pool.wgsl", "max_pool_forward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(MAX_POOL_ARGMAX, "pool.wgsl", "max_pool_argmax", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(MAX_POOL_BACKWARD, "pool.wgsl", "max_pool_backward", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(AVG_POOL_FORWARD, "pool.wgsl", "avg_pool_forward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(AVG_POOL_BACKWARD, "pool.wgsl", "avg_pool_backward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(GLOBAL_AVG_POOL, "pool.wgsl", "global_avg_pool", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(GLOBAL_AVG_POOL_BACKWARD, "pool.wgsl", "global_avg_pool_backward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;

kernel_params! {
    struct Params {
        h: u32,
        w: u32,
        c: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        out_channels: u32,
        channel_offset: u32,
        total: u32,
    }
}

/// Geometry of one pooling: input [n, h, w, c] and output [n, oh, ow, c].
struct Geometry {
    x_shape: [usize; 4],
    y_shape: [usize; 4],
    params: Params,
}

impl Geometry {
    fn new(x_shape: [usize; 4], win: &Window2d) -> Result<Geometry> {
        let [n, h, w, c] = x_shape;
        // Keras pads explicitly with zeros that a max pool would take for
        // values (and an average pool count), so such a padding cannot fold
        // into the window as it does for a convolution.
        if let Padding::Explicit { .. } = win.padding {
            return Err(Error::Shape(format!(
                "pooling window {win:?} on input {x_shape:?}: explicit padding {} is for convolutions only (pad with a separate op)",
                win.padding.label()
            )));
        }
        let (oh, ow) = win.output_size(h, w)?;
        let (pad_top, pad_left) = win.pad_before(h, w)?;
        let u = |v: usize| v as u32;
        let params = Params {
            h: u(h),
            w: u(w),
            c: u(c),
            oh: u(oh),
            ow: u(ow),
            kh: u(win.kh),
            kw: u(win.kw),
            stride_h: u(win.stride_h),
            stride_w: u(win.stride_w),
            pad_top: u(pad_top),
            pad_left: u(pad_left),
            out_channels: u(c),
            channel_offset: 0,
            total: u(n * oh * ow * c),
        };
        Ok(Geometry { x_shape, y_shape: [n, oh, ow, c], params })
    }

    /// The same geometry with one invocation per input element (backward gathers).
    fn per_input(&self) -> Params {
        Params { total: self.x_shape.iter().product::<usize>() as u32, ..self.params }
    }
}

fn groups(gpu: &Gpu, total: u32) -> [u32; 3] {
    gpu.groups_1d(total.div_ceil(WORKGROUP))
}

fn launch(k: &Kernel, p: &Params, reads: &[&Tensor], writes: &[&Tensor]) -> Result<()> {
    let gpu = reads[0].gpu();
    gpu.launch(k, &[], p, reads, writes, groups(gpu, p.total))
}

/// The 4-D shape of an f32 tensor, or an error naming the op.
fn nhwc(op: &str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op}: {what} must be f32, got {:?} of shape {:?}", t.dtype(), t.shape())));
    }
    activation(op, what, t)
}

/// The 4-D shape of an f32 or f16 tensor, or an error naming the op.
fn activation(op: &str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    if !matches!(t.dtype(), DType::F32 | DType::F16) {
        return Err(Error::Shape(format!("{op}: {what} must be f32 or f16, got {:?} of shape {:?}", t.dtype(), t.shape())));
    }
    t.dims4().map_err(|_| Error::Shape(format!("{op}: {what} must be 4-D NHWC, got shape {:?}", t.shape())))
}

/// A forward kernel (`base`) for `src` and `dst` of these element types.
fn forward_kernel(base: &'static Kernel, src: DType, dst: DType) -> Result<&'static Kernel> {
    if (src, dst) == (DType::F32, DType::F32) {
        return Ok(base);
    }
    let (s, d) = (wgsl_type(src), wgsl_type(dst));
    variant(
        base,
        &format!("{} ({s} in, {d} out)", base.file),
        &[("alias SrcElem = f32;", format!("alias SrcElem = {s};")), ("alias DstElem = f32;", format!("alias DstElem = {d};"))],
    )
}

fn expect_shape(op: &str, what: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    if t.shape() != want || t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op}: {what} has shape {:?}, expected f32 {want:?}", t.shape())));
    }
    Ok(())
}

pub fn max_pool2d(x: &Tensor, win: &Window2d) -> Result<Tensor> {
    let g = Geometry::new(nhwc("max_pool2d", "input", x)?, win)?;
    let y = Tensor::empty(x.gpu(), &g.y_shape, DType::F32)?;
    launch(&MAX_POOL_FORWARD, &g.params, &[x], &[&y])?;
    Ok(y)
}

/// Max pooling written into channels `[channel_offset, channel_offset + c)` of
/// `out` [n, oh, ow, C] (C ≥ channel_offset + c), leaving the other channels
/// untouched: Inception blocks concatenate branches this way without a copy.
/// `x` and `out` may each be f32 or f16.
pub fn max_pool2d_into(x: &Tensor, win: &Window2d, out: &Tensor, channel_offset: usize) -> Result<()> {
    let g = Geometry::new(activation("max_pool2d_into", "input", x)?, win)?;
    let [n, oh, ow, c] = g.y_shape;
    let out_shape = activation("max_pool2d_into", "output", out)?;
    if out_shape[..3] != [n, oh, ow] || channel_offset + c > out_shape[3] {
        return Err(Error::Shape(format!(
            "max_pool2d_into: pooled shape {:?} does not fit at channel offset {channel_offset} of output {out_shape:?}",
            g.y_shape
        )));
    }
    let p = Params { out_channels: out_shape[3] as u32, channel_offset: channel_offset as u32, ..g.params };
    launch(forward_kernel(&MAX_POOL_FORWARD, x.dtype(), out.dtype())?, &p, &[x], &[out])
}

/// Gradient of `max_pool2d` with respect to `x`: each output's gradient goes
/// to the first maximal tap of its window (row-major window order).
pub fn max_pool2d_backward(x: &Tensor, dy: &Tensor, win: &Window2d) -> Result<Tensor> {
    let g = Geometry::new(nhwc("max_pool2d_backward", "input", x)?, win)?;
    expect_shape("max_pool2d_backward", "dy", dy, &g.y_shape)?;
    let gpu = x.gpu();
    let argmax = Tensor::empty(gpu, &g.y_shape, DType::U32)?;
    launch(&MAX_POOL_ARGMAX, &g.params, &[x], &[&argmax])?;
    let dx = Tensor::empty(gpu, &g.x_shape, DType::F32)?;
    launch(&MAX_POOL_BACKWARD, &g.per_input(), &[&argmax, dy], &[&dx])?;
    Ok(dx)
}

/// Keras AveragePooling2D: with 'same' padding each output divides by the
/// number of in-bounds taps of its window, not by kh·kw.
pub fn avg_pool2d(x: &Tensor, win: &Window2d) -> Result<Tensor> {
    let g = Geometry::new(nhwc("avg_pool2d", "input", x)?, win)?;
    let y = Tensor::empty(x.gpu(), &g.y_shape, DType::F32)?;
    launch(&AVG_POOL_FORWARD, &g.params, &[x], &[&y])?;
    Ok(y)
}

/// [`avg_pool2d`] into `out` (the pooled shape); `x` and `out` may each be f32 or f16.
pub fn avg_pool2d_into(x: &Tensor, win: &Window2d, out: &Tensor) -> Result<()> {
    let g = Geometry::new(activation("avg_pool2d_into", "input", x)?, win)?;
    if activation("avg_pool2d_into", "output", out)? != g.y_shape {
        return Err(Error::Shape(format!("avg_pool2d_into: output has shape {:?}, expected {:?}", out.shape(), g.y_shape)));
    }
    launch(forward_kernel(&AVG_POOL_FORWARD, x.dtype(), out.dtype())?, &g.params, &[x], &[out])
}

pub fn avg_pool2d_backward(dy: &Tensor, win: &Window2d, x_shape: [usize; 4]) -> Result<Tensor> {
    let g = Geometry::new(x_shape, win)?;
    expect_shape("avg_pool2d_backward", "dy", dy, &g.y_shape)?;
    let dx = Tensor::empty(dy.gpu(), &x_shape, DType::F32)?;
    launch(&AVG_POOL_BACKWARD, &g.per_input(), &[dy], &[&dx])?;
    Ok(dx)
}

/// Geometry of a global average pool: the whole image is one window.
fn global_geometry(op: &str, x_shape: [usize; 4]) -> Result<Params> {
    let [n, h, w, c] = x_shape;
    if h * w == 0 {
        return Err(Error::Shape(format!("{op}: input {x_shape:?} has no pixels to average")));
    }
    let g = Geometry::new(x_shape, &Window2d::new(h, w, 1, Padding::Valid))?;
    Ok(Params { total: (n * c) as u32, ..g.params })
}

/// Mean over height and width: [n, h, w, c] → [n, c].
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    let x_shape = nhwc("global_avg_pool", "input", x)?;
    let p = global_geometry("global_avg_pool", x_shape)?;
    let y = Tensor::empty(x.gpu(), &[x_shape[0], x_shape[3]], DType::F32)?;
    launch(&GLOBAL_AVG_POOL, &p, &[x], &[&y])?;
    Ok(y)
}

pub fn global_avg_pool_backward(dy: &Tensor, x_shape: [usize; 4]) -> Result<Tensor> {
    let p = global_geometry("global_avg_pool_backward", x_shape)?;
    expect_shape("global_avg_pool_backward", "dy", dy, &[x_shape[0], x_shape[3]])?;
    let dx = Tensor::empty(dy.gpu(), &x_shape, DType::F32)?;
    let p = Params { total: x_shape.iter().product::<usize>() as u32, ..p };
    launch(&GLOBAL_AVG_POOL_BACKWARD, &p, &[dy], &[&dx])?;
    Ok(dx)
}
