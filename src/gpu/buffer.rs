//! What the device layer binds, clears and pools: GPU buffers. Anything that
//! owns one (a `Tensor`, for instance) implements [`GpuBuffer`]; the device
//! layer never needs to know what the bytes mean.

use super::pool::BufferPool;
use std::sync::Arc;

/// A buffer that can be bound to a kernel.
pub trait GpuBuffer {
    fn buffer(&self) -> &wgpu::Buffer;
    /// Bytes that hold data (the allocation may be a little larger).
    fn byte_size(&self) -> u64;
    /// What the buffer holds, for error messages (e.g. "tensor of shape [2, 3]").
    fn describe(&self) -> String;
}

/// A buffer from the device's pool that goes back to the pool when dropped.
pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    pub(crate) fn new(buffer: wgpu::Buffer, pool: Arc<BufferPool>) -> PooledBuffer {
        PooledBuffer { buffer: Some(buffer), pool }
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give_back(b);
        }
    }
}
