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

/// Counters for tests and benchmarks: how often the pool had to allocate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub allocations: u64,
    pub reuses: u64,
    pub bytes_allocated: u64,
}

impl BufferPool {
    pub(crate) fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        let buf = self.free.lock().unwrap().get_mut(&size).and_then(Vec::pop);
        if buf.is_some() {
            self.stats.lock().unwrap().reuses += 1;
        }
        buf
    }

    pub(crate) fn record_allocation(&self, size: u64) {
        let mut s = self.stats.lock().unwrap();
        s.allocations += 1;
        s.bytes_allocated += size;
    }

    pub(crate) fn give_back(&self, buf: wgpu::Buffer) {
        self.free.lock().unwrap().entry(buf.size()).or_default().push(buf);
    }

    pub(crate) fn stats(&self) -> PoolStats {
        *self.stats.lock().unwrap()
    }

    /// Drops every idle buffer (for example after a change of batch size).
    pub(crate) fn trim(&self) {
        self.free.lock().unwrap().clear();
    }
}
