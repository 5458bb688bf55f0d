//! `Tensor`: a shape and a GPU buffer of f32 data, u32 labels and counters,
//! or f16 activations (the frozen prefix's storage under `--precision
//! mixed`). Activations are NHWC, convolution weights HWIO.
//!
//! Tensors are immutable values shared by reference counting; ops allocate
//! fresh outputs from the device's buffer pool. The few in-place updates
//! (optimiser steps, BatchNorm moving statistics) are explicit kernels.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer, PooledBuffer};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
    /// IEEE half precision, two per 32-bit word; only kernels that declare
    /// `enable f16` read or write it (see `gpu::variant`).
    F16,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> u64 {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
        }
    }
}

/// A pooled buffer (back to the pool when the last tensor using it drops) and its device.
struct Storage {
    buffer: PooledBuffer,
    gpu: Gpu,
}

#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    dtype: DType,
    storage: Arc<Storage>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.shape, self.dtype)
    }
}

impl Tensor {
    /// An uninitialised tensor: the kernel that fills it must write every element.
    pub fn empty(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if dtype == DType::F16 && !gpu.features().contains(wgpu::Features::SHADER_F16) {
            return Err(Error::Adapter(format!("{}: f16 tensors need f16 in shaders (SHADER_F16), which this adapter lacks", gpu.name())));
        }
        let numel: usize = shape.iter().product();
        let buffer = gpu.alloc(numel as u64 * dtype.size(), &|| format!("{dtype:?} tensor of shape {shape:?}"))?;
        Ok(Tensor { shape: shape.to_vec(), dtype, storage: Arc::new(Storage { buffer, gpu: gpu.clone() }) })
    }

    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::empty(gpu, shape, DType::F32)?;
        gpu.clear(&t);
        Ok(t)
    }

    pub fn zeros_u32(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::empty(gpu, shape, DType::U32)?;
        gpu.clear(&t);
        Ok(t)
    }

    pub fn from_slice(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::F32)?;
        gpu.write(t.buffer(), bytemuck::cast_slice(data))?;
        Ok(t)
    }

    pub fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::U32)?;
        gpu.write(t.buffer(), bytemuck::cast_slice(data))?;
        Ok(t)
    }

    /// A tensor with every element equal to `value`.
    pub fn full(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        Tensor::from_slice(gpu, shape, &vec![value; numel])
    }

    /// Overwrites the contents with host data (same length), after all recorded work.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        check_len(&self.shape, data.len())?;
        self.gpu().write(self.buffer(), bytemuck::cast_slice(data))
    }

    /// An f16 tensor holding `data` rounded to the nearest f16.
    pub fn from_slice_f16(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        check_len(shape, data.len())?;
        let t = Tensor::empty(gpu, shape, DType::F16)?;
        let mut halves: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
        // Buffer writes go in whole 32-bit words.
        if halves.len() % 2 == 1 {
            halves.push(half::f16::ZERO);
        }
        gpu.write(t.buffer(), bytemuck::cast_slice(&halves))?;
        Ok(t)
    }

    /// The values of an f32 tensor, or of an f16 one widened to f32.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        if self.dtype == DType::U32 {
            return Err(Error::Invalid(format!("to_vec on a {:?} tensor of shape {:?}", self.dtype, self.shape)));
        }
        let bytes = self.gpu().read(self.buffer(), self.byte_size())?;
        Ok(match self.dtype {
            DType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes).into_iter().map(f32::from).collect(),
            _ => bytemuck::pod_collect_to_vec(&bytes),
        })
    }

    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        if self.dtype != DType::U32 {
            return Err(Error::Invalid(format!("to_vec_u32 on a {:?} tensor of shape {:?}", self.dtype, self.shape)));
        }
        let bytes = self.gpu().read(self.buffer(), self.byte_size())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// The single value of a one-element tensor.
    pub fn scalar(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::Shape(format!("scalar() on a tensor of shape {:?}", self.shape)));
        }
        Ok(self.to_vec()?[0])
    }

    /// Same data, new shape with the same element count (shares the buffer).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::Shape(format!("cannot reshape {:?} ({} elements) to {shape:?} ({n})", self.shape, self.numel())));
        }
        Ok(Tensor { shape: shape.to_vec(), dtype: self.dtype, storage: self.storage.clone() })
    }

    /// A copy in a fresh buffer (for in-place updates that must not touch the original).
    pub fn deep_copy(&self) -> Result<Tensor> {
        let t = Tensor::empty(self.gpu(), &self.shape, self.dtype)?;
        self.gpu().copy(self.buffer(), 0, t.buffer(), 0, self.byte_size().next_multiple_of(4).max(4));
        Ok(t)
    }

    /// Copies `src`'s contents into this tensor (same element count), in recorded order.
    pub fn copy_from(&self, src: &Tensor) -> Result<()> {
        if src.numel() != self.numel() || src.dtype != self.dtype {
            return Err(Error::Shape(format!("copy_from: {:?} {:?} into {:?} {:?}", src.dtype, src.shape, self.dtype, self.shape)));
        }
        if self.numel() > 0 {
            // Copies go in whole words; both buffers are allocated in whole words.
            self.gpu().copy(src.buffer(), 0, self.buffer(), 0, self.byte_size().next_multiple_of(4));
        }
        Ok(())
    }

    /// Copies all of `src` into this tensor's buffer starting at `byte_offset`.
    pub(crate) fn copy_region_from(&self, src: &Tensor, byte_offset: u64) -> Result<()> {
        if byte_offset + src.byte_size() > self.byte_size() {
            return Err(Error::Shape(format!("{:?} does not fit at byte {byte_offset} of {:?}", src.shape, self.shape)));
        }
        if src.numel() > 0 {
            self.gpu().copy(src.buffer(), 0, self.buffer(), byte_offset, src.byte_size());
        }
        Ok(())
    }

    /// Fills this tensor with `src`'s bytes starting at `byte_offset` in `src`.
    pub(crate) fn copy_region_of(&self, src: &Tensor, byte_offset: u64) -> Result<()> {
        if byte_offset + self.byte_size() > src.byte_size() {
            return Err(Error::Shape(format!("{:?} reads past the end of {:?} from byte {byte_offset}", self.shape, src.shape)));
        }
        if self.numel() > 0 {
            self.gpu().copy(src.buffer(), byte_offset, self.buffer(), 0, self.byte_size());
        }
        Ok(())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dims4(&self) -> Result<[usize; 4]> {
        <[usize; 4]>::try_from(self.shape.as_slice())
            .map_err(|_| Error::Shape(format!("expected a 4-D NHWC tensor, got shape {:?}", self.shape)))
    }
    pub fn dims2(&self) -> Result<[usize; 2]> {
        <[usize; 2]>::try_from(self.shape.as_slice())
            .map_err(|_| Error::Shape(format!("expected a 2-D tensor, got shape {:?}", self.shape)))
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn byte_size(&self) -> u64 {
        self.numel() as u64 * self.dtype.size()
    }
    pub fn gpu(&self) -> &Gpu {
        &self.storage.gpu
    }
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.storage.buffer.buffer()
    }
    pub fn same_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }
}

impl GpuBuffer for Tensor {
    fn buffer(&self) -> &wgpu::Buffer {
        Tensor::buffer(self)
    }
    fn byte_size(&self) -> u64 {
        Tensor::byte_size(self)
    }
    fn describe(&self) -> String {
        format!("{:?} tensor of shape {:?}", self.dtype, self.shape)
    }
}

fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != len {
        return Err(Error::Shape(format!("data of length {len} does not fill shape {shape:?} ({n} elements)")));
    }
    Ok(())
}
