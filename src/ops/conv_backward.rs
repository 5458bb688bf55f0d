//! Convolution backward (`shaders/conv2d_backward.wgsl`): the gradients of a
//! 2-D convolution (x NHWC [n, h, w, cin], w HWIO [kh, kw, cin, cout],
//! dy [n, oh, ow, cout]) with respect to its input and its filter.
//!
//! Backward-input gathers, per input element (by default per block of
//! 4 images × 4 channels), over the taps that reach it; the filter gradient
//! reduces over the n·oh·ow output positions per weight (by default per
//! 4 cin × 4 cout block), split into slices when there are too few weights to
//! fill the device. No atomics, no barriers; the per-element kernels stay as
//! the simple oracles (`*_using`).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Work};
use crate::{kernel, kernel_params};
use crate::ops::window::Window2d;
use crate::tensor::{DType, Tensor};

kernel!(BACKWARD_INPUT, "conv2d_backward.wgsl", "backward_input", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(BACKWARD_INPUT_BLOCKED, "conv2d_backward.wgsl", "backward_input_blocked", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(FILTER_GRAD_PER_WEIGHT, "conv2d_backward.wgsl", "filter_grad_per_weight", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(FILTER_GRAD_BLOCKED, "conv2d_backward.wgsl", "filter_grad_blocked", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(SUM_SLICES, "conv2d_backward.wgsl", "sum_slices", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

const WORKGROUP: u32 = 64;
/// Filter-gradient invocations wanted before the reduction is left unsplit.
const TARGET_INVOCATIONS: usize = 16384;
/// Fewest output positions a slice of the filter-gradient reduction gets.
const MIN_POSITIONS_PER_SLICE: usize = 256;

/// The input-gradient kernels; `Blocked4x4` is the default, `PerElement` the simple oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputGradKernel {
    /// One invocation per dx element.
    PerElement,
    /// One invocation per 4 images × 4 cin at one pixel (the images share their taps).
    Blocked4x4,
}

impl InputGradKernel {
    /// Every kernel, the `PerElement` oracle first (the kernel lab iterates it).
    pub const ALL: [InputGradKernel; 2] = [InputGradKernel::PerElement, InputGradKernel::Blocked4x4];
    /// The one `conv2d_backward_input` uses.
    pub const DEFAULT: InputGradKernel = InputGradKernel::Blocked4x4;

    pub fn name(self) -> &'static str {
        match self {
            InputGradKernel::PerElement => "per-element",
            InputGradKernel::Blocked4x4 => "blocked-4x4",
        }
    }
}

/// The filter-gradient kernels; `Blocked4x4` is the default, `PerWeight` the simple oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterGradKernel {
    /// One invocation per weight element.
    PerWeight,
    /// One invocation per 4 cin × 4 cout block of weights, accumulating in registers.
    Blocked4x4,
}

impl FilterGradKernel {
    /// Every kernel, the `PerWeight` oracle first (the kernel lab iterates it).
    pub const ALL: [FilterGradKernel; 2] = [FilterGradKernel::PerWeight, FilterGradKernel::Blocked4x4];
    /// The one `conv2d_backward_filter` uses.
    pub const DEFAULT: FilterGradKernel = FilterGradKernel::Blocked4x4;

    pub fn name(self) -> &'static str {
        match self {
            FilterGradKernel::PerWeight => "per-weight",
            FilterGradKernel::Blocked4x4 => "blocked-4x4",
        }
    }
}

kernel_params! {
    struct Params {
        n: u32,
        h: u32,
        w: u32,
        cin: u32,
        oh: u32,
        ow: u32,
        cout: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        slices: u32,
        positions_per_slice: u32,
        total: u32,
    }
}

fn to_u32(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Shape(format!("{what}: {v} does not fit the kernels' 32-bit indices")))
}

/// Checks that x [n,h,w,cin], w [kh,kw,cin,cout] and dy agree with the window,
/// and returns the kernel parameters (slices not yet chosen).
fn geometry(op: &str, x: [usize; 4], w: [usize; 4], dy: &[usize], win: &Window2d) -> Result<Params> {
    let [n, h, wi, cin] = x;
    let [kh, kw, wcin, cout] = w;
    if kh != win.kh || kw != win.kw || wcin != cin {
        return Err(Error::Shape(format!(
            "{op}: filter {w:?} does not fit input {x:?} with a {}x{} window",
            win.kh, win.kw
        )));
    }
    let (oh, ow) = win.output_size(h, wi)?;
    let (pad_top, pad_left) = win.pad_before(h, wi)?;
    if dy != [n, oh, ow, cout] {
        return Err(Error::Shape(format!(
            "{op}: dy has shape {dy:?}, but input {x:?}, filter {w:?} and window {win:?} give [{n}, {oh}, {ow}, {cout}]"
        )));
    }
    for (what, v) in [("input elements", n * h * wi * cin), ("dy elements", n * oh * ow * cout), ("filter elements", kh * kw * cin * cout)] {
        to_u32(&format!("{op}: {what}"), v)?;
    }
    Ok(Params {
        n: n as u32,
        h: h as u32,
        w: wi as u32,
        cin: cin as u32,
        oh: oh as u32,
        ow: ow as u32,
        cout: cout as u32,
        kh: kh as u32,
        kw: kw as u32,
        stride_h: win.stride_h as u32,
        stride_w: win.stride_w as u32,
        pad_top: pad_top as u32,
        pad_left: pad_left as u32,
        slices: 1,
        positions_per_slice: 0,
        total: 0,
    })
}

/// Multiply-adds (×2) of either gradient: the forward convolution's count.
fn conv_flops(p: &Params) -> f64 {
    2.0 * (p.n * p.oh * p.ow) as f64 * (p.cout * p.kh * p.kw * p.cin) as f64
}

fn groups(gpu: &Gpu, invocations: u32) -> [u32; 3] {
    gpu.groups_1d(invocations.div_ceil(WORKGROUP))
}

/// dL/dx [n, h, w, cin] = `x_shape` from dy [n, oh, ow, cout] and the filter w [kh, kw, cin, cout].
pub fn conv2d_backward_input(dy: &Tensor, w: &Tensor, win: &Window2d, x_shape: [usize; 4]) -> Result<Tensor> {
    conv2d_backward_input_using(InputGradKernel::DEFAULT, dy, w, win, x_shape)
}

/// `conv2d_backward_input` with a chosen kernel (tests, benches).
pub fn conv2d_backward_input_using(
    kernel: InputGradKernel,
    dy: &Tensor,
    w: &Tensor,
    win: &Window2d,
    x_shape: [usize; 4],
) -> Result<Tensor> {
    let mut p = geometry("conv2d_backward_input", x_shape, w.dims4()?, dy.shape(), win)?;
    let [n, h, wi, cin] = x_shape;
    let (k, invocations) = match kernel {
        InputGradKernel::PerElement => (&BACKWARD_INPUT, n * h * wi * cin),
        InputGradKernel::Blocked4x4 => (&BACKWARD_INPUT_BLOCKED, n.div_ceil(4) * h * wi * cin.div_ceil(4)),
    };
    p.total = invocations as u32;
    let gpu = dy.gpu();
    let dx = Tensor::empty(gpu, &x_shape, DType::F32)?;
    let work = Work::new(conv_flops(&p), (dy.numel() + w.numel() + dx.numel()) as f64 * 4.0);
    gpu.with_work(work).launch(k, &[], &p, &[dy, w], &[&dx], groups(gpu, p.total))?;
    Ok(dx)
}

/// dL/dw [kh, kw, cin, cout] = `w_shape` from the input x [n, h, w, cin] and dy [n, oh, ow, cout].
pub fn conv2d_backward_filter(x: &Tensor, dy: &Tensor, win: &Window2d, w_shape: [usize; 4]) -> Result<Tensor> {
    conv2d_backward_filter_using(FilterGradKernel::DEFAULT, None, x, dy, win, w_shape)
}

/// `conv2d_backward_filter` with a chosen kernel and, optionally, a chosen
/// number of slices of the reduction over output positions (tests, benches).
pub fn conv2d_backward_filter_using(
    kernel: FilterGradKernel,
    slices: Option<usize>,
    x: &Tensor,
    dy: &Tensor,
    win: &Window2d,
    w_shape: [usize; 4],
) -> Result<Tensor> {
    const OP: &str = "conv2d_backward_filter";
    let mut p = geometry(OP, x.dims4()?, w_shape, dy.shape(), win)?;
    let weights = w_shape.iter().product::<usize>();
    let units = match kernel {
        FilterGradKernel::PerWeight => weights,
        FilterGradKernel::Blocked4x4 => w_shape[0] * w_shape[1] * w_shape[2].div_ceil(4) * w_shape[3].div_ceil(4),
    };
    let positions = (p.n * p.oh * p.ow) as usize;
    let wanted = match slices {
        Some(0) => return Err(Error::Invalid(format!("{OP}: the reduction needs at least one slice"))),
        Some(s) => s,
        None => TARGET_INVOCATIONS.div_ceil(units.max(1)).min(positions.div_ceil(MIN_POSITIONS_PER_SLICE)),
    };
    let per_slice = positions.div_ceil(wanted.max(1)).max(1);
    let slices = positions.div_ceil(per_slice).max(1);
    p.slices = to_u32(OP, slices)?;
    p.positions_per_slice = per_slice as u32;
    p.total = to_u32(&format!("{OP}: invocations"), slices * units)?;

    let gpu = x.gpu();
    let k = match kernel {
        FilterGradKernel::PerWeight => &FILTER_GRAD_PER_WEIGHT,
        FilterGradKernel::Blocked4x4 => &FILTER_GRAD_BLOCKED,
    };
    let dw = Tensor::empty(gpu, &w_shape, DType::F32)?;
    let flops = conv_flops(&p);
    let operands = (x.numel() + dy.numel()) as f64 * 4.0;
    if slices == 1 {
        gpu.with_work(Work::new(flops, operands + dw.byte_size() as f64)).launch(k, &[], &p, &[x, dy], &[&dw], groups(gpu, p.total))?;
        return Ok(dw);
    }
    to_u32(&format!("{OP}: partial sums"), slices * weights)?;
    let partial = Tensor::empty(gpu, &[slices, weights], DType::F32)?;
    gpu.with_work(Work::new(flops, operands + partial.byte_size() as f64)).launch(k, &[], &p, &[x, dy], &[&partial], groups(gpu, p.total))?;
    p.total = weights as u32;
    gpu.launch(&SUM_SLICES, &[], &p, &[&partial], &[&dw], groups(gpu, p.total))?;
    Ok(dw)
}
