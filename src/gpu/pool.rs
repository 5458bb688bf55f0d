//! Buffer pool: freed buffers go back to a free list keyed by byte
//! size, so a training step with the same shapes allocates nothing after its
//! first iteration.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    stats: Mutex<PoolStats>,
}

/// Counters for tests and benchmarks: how often the pool had to allocate,
/// and the bytes of buffers handed out and not yet given back (tensors alive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub allocations: u64,
    pub reuses: u64,
    pub bytes_allocated: u64,
    pub bytes_in_use: u64,
    /// The most `bytes_in_use` reached since the device opened or since [`BufferPool::reset_peak`].
    pub peak_bytes_in_use: u64,
}

impl PoolStats {
    fn hand_out(&mut self, size: u64) {
        self.bytes_in_use += size;
        self.peak_bytes_in_use = self.peak_bytes_in_use.max(self.bytes_in_use);
    }
}

impl BufferPool {
    pub(crate) fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        let buf = self.free.lock().unwrap().get_mut(&size).and_then(Vec::pop);
        if buf.is_some() {
            let mut s = self.stats.lock().unwrap();
            s.reuses += 1;
            s.hand_out(size);
        }
        buf
    }

    pub(crate) fn record_allocation(&self, size: u64) {
        let mut s = self.stats.lock().unwrap();
        s.allocations += 1;
        s.bytes_allocated += size;
        s.hand_out(size);
    }

    pub(crate) fn give_back(&self, buf: wgpu::Buffer) {
        let size = buf.size();
        self.free.lock().unwrap().entry(size).or_default().push(buf);
        let mut s = self.stats.lock().unwrap();
        s.bytes_in_use = s.bytes_in_use.saturating_sub(size);
    }

    /// Starts a new peak from the bytes in use now.
    pub(crate) fn reset_peak(&self) {
        let mut s = self.stats.lock().unwrap();
        s.peak_bytes_in_use = s.bytes_in_use;
    }

    pub(crate) fn stats(&self) -> PoolStats {
        *self.stats.lock().unwrap()
    }

    /// Drops every idle buffer (for example after a change of batch size).
    pub(crate) fn trim(&self) {
        self.free.lock().unwrap().clear();
    }
}
