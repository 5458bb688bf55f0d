//! Elementwise kernels (`shaders/elementwise.wgsl`): ReLU and ReLU6 and their
//! backwards, add, scale and in-place axpy for gradient accumulation.
//! ReLU, ReLU6, their backwards and add have vec4 twins, used whenever the
//! length is divisible by 4 ([`Lanes::for_len`]); `*_with` runs a chosen one
//! (the kernel lab compares them).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(RELU_FORWARD, "elementwise.wgsl", "relu_forward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU_FORWARD_VEC4, "elementwise.wgsl", "relu_forward_vec4", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU_BACKWARD, "elementwise.wgsl", "relu_backward", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU_BACKWARD_VEC4, "elementwise.wgsl", "relu_backward_vec4", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU6_FORWARD, "elementwise.wgsl", "relu6_forward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU6_FORWARD_VEC4, "elementwise.wgsl", "relu6_forward_vec4", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU6_BACKWARD, "elementwise.wgsl", "relu6_backward", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU6_BACKWARD_VEC4, "elementwise.wgsl", "relu6_backward_vec4", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(ADD, "elementwise.wgsl", "add", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(ADD_VEC4, "elementwise.wgsl", "add_vec4", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(SCALE, "elementwise.wgsl", "scale", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(AXPY_INPLACE, "elementwise.wgsl", "axpy_inplace", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(MUL_BY_SCALAR, "elementwise.wgsl", "mul_by_scalar", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;

kernel_params! {
    struct Params {
        n: u32,
        alpha: f32,
    }
}

/// Elements one invocation handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// One f32.
    Scalar,
    /// One vec4 (16-byte loads and stores); lengths divisible by 4 only.
    Vec4,
}

impl Lanes {
    pub const ALL: [Lanes; 2] = [Lanes::Scalar, Lanes::Vec4];

    /// The widest that divides `n`: what the ops without `_with` run.
    pub fn for_len(n: usize) -> Lanes {
        if n.is_multiple_of(4) { Lanes::Vec4 } else { Lanes::Scalar }
    }

    pub fn handles(self, n: usize) -> bool {
        self == Lanes::Scalar || n.is_multiple_of(4)
    }

    pub fn width(self) -> usize {
        match self {
            Lanes::Scalar => 1,
            Lanes::Vec4 => 4,
        }
    }
}

/// An op's scalar kernel and its vec4 twin.
struct Twins {
    name: &'static str,
    scalar: &'static Kernel,
    vec4: &'static Kernel,
}

const RELU_TWINS: Twins = Twins { name: "relu", scalar: &RELU_FORWARD, vec4: &RELU_FORWARD_VEC4 };
const RELU_BACKWARD_TWINS: Twins = Twins { name: "relu_backward", scalar: &RELU_BACKWARD, vec4: &RELU_BACKWARD_VEC4 };
const RELU6_TWINS: Twins = Twins { name: "relu6", scalar: &RELU6_FORWARD, vec4: &RELU6_FORWARD_VEC4 };
const RELU6_BACKWARD_TWINS: Twins = Twins { name: "relu6_backward", scalar: &RELU6_BACKWARD, vec4: &RELU6_BACKWARD_VEC4 };
const ADD_TWINS: Twins = Twins { name: "add", scalar: &ADD, vec4: &ADD_VEC4 };

fn groups(gpu: &Gpu, n: usize) -> [u32; 3] {
    gpu.groups_1d((n as u32).div_ceil(WORKGROUP))
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape(format!("{op}: shapes {:?} and {:?} differ", a.shape(), b.shape())));
    }
    Ok(())
}

fn unary(k: &Kernel, x: &Tensor, alpha: f32) -> Result<Tensor> {
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
    let p = Params { n: x.numel() as u32, alpha };
    gpu.launch(k, &[], &p, &[x], &[&y], groups(gpu, x.numel()))?;
    Ok(y)
}

/// Runs an op with twins on `inputs` (all of one shape) with `lanes` per invocation.
fn twin(op: &Twins, lanes: Lanes, inputs: &[&Tensor]) -> Result<Tensor> {
    let first = inputs[0];
    for other in &inputs[1..] {
        same_shape(op.name, first, other)?;
    }
    let n = first.numel();
    if !lanes.handles(n) {
        return Err(Error::Shape(format!("{}: vec4 kernels need a length divisible by 4, got {:?}", op.name, first.shape())));
    }
    let k = if lanes == Lanes::Vec4 { op.vec4 } else { op.scalar };
    let gpu = first.gpu();
    let out = Tensor::empty(gpu, first.shape(), DType::F32)?;
    let invocations = n / lanes.width();
    gpu.launch(k, &[], &Params { n: invocations as u32, alpha: 0.0 }, inputs, &[&out], groups(gpu, invocations))?;
    Ok(out)
}

fn launch_binary(k: &Kernel, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let gpu = a.gpu();
    let z = Tensor::empty(gpu, a.shape(), DType::F32)?;
    let p = Params { n: a.numel() as u32, alpha: 0.0 };
    gpu.launch(k, &[], &p, &[a, b], &[&z], groups(gpu, a.numel()))?;
    Ok(z)
}

pub fn relu(x: &Tensor) -> Result<Tensor> {
    relu_with(Lanes::for_len(x.numel()), x)
}

pub fn relu_with(lanes: Lanes, x: &Tensor) -> Result<Tensor> {
    twin(&RELU_TWINS, lanes, &[x])
}

/// Gradient of ReLU from its saved output `y` and the upstream gradient `dy`.
pub fn relu_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    twin(&RELU_BACKWARD_TWINS, Lanes::for_len(y.numel()), &[y, dy])
}

/// min(max(x, 0), 6): Keras `ReLU(max_value=6)` / `Activation('relu6')`.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    relu6_with(Lanes::for_len(x.numel()), x)
}

pub fn relu6_with(lanes: Lanes, x: &Tensor) -> Result<Tensor> {
    twin(&RELU6_TWINS, lanes, &[x])
}

/// Gradient of ReLU6 from its saved output `y` and the upstream gradient `dy`:
/// dy where 0 < y < 6, else 0. At exactly x = 0 or x = 6 (y = 0 or 6) the
/// gradient is 0, as TensorFlow's `Relu6Grad` (it passes dy where 0 < x < 6,
/// and 0 < y < 6 holds exactly there).
pub fn relu6_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    relu6_backward_with(Lanes::for_len(y.numel()), y, dy)
}

pub fn relu6_backward_with(lanes: Lanes, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    twin(&RELU6_BACKWARD_TWINS, lanes, &[y, dy])
}

/// a + b elementwise (residual connections, gradient accumulation).
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    add_with(Lanes::for_len(a.numel()), a, b)
}

pub fn add_with(lanes: Lanes, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    twin(&ADD_TWINS, lanes, &[a, b])
}

pub fn scale(x: &Tensor, alpha: f32) -> Result<Tensor> {
    unary(&SCALE, x, alpha)
}

/// `y += alpha * x`, in place, in recorded order.
pub fn axpy_inplace(y: &Tensor, alpha: f32, x: &Tensor) -> Result<()> {
    same_shape("axpy_inplace", y, x)?;
    let gpu = y.gpu();
    let p = Params { n: y.numel() as u32, alpha };
    gpu.launch(&AXPY_INPLACE, &[], &p, &[x], &[y], groups(gpu, y.numel()))
}

/// `x * s[0]` where `s` is a one-element tensor that stays on the GPU
/// (scales a gradient by an upstream scalar gradient without a readback).
pub fn mul_by_scalar(x: &Tensor, s: &Tensor) -> Result<Tensor> {
    if s.numel() != 1 {
        return Err(Error::Shape(format!("mul_by_scalar: the scalar has shape {:?}, expected one element", s.shape())));
    }
    launch_binary(&MUL_BY_SCALAR, x, s)
}
