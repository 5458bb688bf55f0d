//! Elementwise kernels (`shaders/elementwise.wgsl`): ReLU and ReLU6 and their
//! backwards, add, scale and in-place axpy for gradient accumulation.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(RELU_FORWARD, "elementwise.wgsl", "relu_forward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU_BACKWARD, "elementwise.wgsl", "relu_backward", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU6_FORWARD, "elementwise.wgsl", "relu6_forward", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(RELU6_BACKWARD, "elementwise.wgsl", "relu6_backward", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(ADD, "elementwise.wgsl", "add", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
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

fn groups(gpu: &Gpu, n: usize) -> [u32; 3] {
    gpu.groups_1d((n as u32).div_ceil(WORKGROUP))
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape(format!("{op}: shapes {:?} and {:?} differ", a.shape(), b.shape())));
    }
    Ok(())
}

fn unary(k: &crate::gpu::Kernel, x: &Tensor, alpha: f32) -> Result<Tensor> {
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
    let p = Params { n: x.numel() as u32, alpha };
    gpu.launch(k, &[], &p, &[x], &[&y], groups(gpu, x.numel()))?;
    Ok(y)
}

fn binary(op: &str, k: &crate::gpu::Kernel, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape(op, a, b)?;
    launch_binary(k, a, b)
}

fn launch_binary(k: &crate::gpu::Kernel, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let gpu = a.gpu();
    let z = Tensor::empty(gpu, a.shape(), DType::F32)?;
    let p = Params { n: a.numel() as u32, alpha: 0.0 };
    gpu.launch(k, &[], &p, &[a, b], &[&z], groups(gpu, a.numel()))?;
    Ok(z)
}

pub fn relu(x: &Tensor) -> Result<Tensor> {
    unary(&RELU_FORWARD, x, 0.0)
}

/// Gradient of ReLU from its saved output `y` and the upstream gradient `dy`.
pub fn relu_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("relu_backward", &RELU_BACKWARD, y, dy)
}

/// min(max(x, 0), 6): Keras `ReLU(max_value=6)` / `Activation('relu6')`.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    unary(&RELU6_FORWARD, x, 0.0)
}

/// Gradient of ReLU6 from its saved output `y` and the upstream gradient `dy`:
/// dy where 0 < y < 6, else 0. At exactly x = 0 or x = 6 (y = 0 or 6) the
/// gradient is 0, as TensorFlow's `Relu6Grad` (it passes dy where 0 < x < 6,
/// and 0 < y < 6 holds exactly there).
pub fn relu6_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("relu6_backward", &RELU6_BACKWARD, y, dy)
}

/// a + b elementwise (residual connections, gradient accumulation).
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("add", &ADD, a, b)
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
