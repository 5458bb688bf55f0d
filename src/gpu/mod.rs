//! The wgpu context: one adapter and device, a buffer pool, a pipeline cache
//! and a pending command encoder that collects many dispatches per submit.
//!
//! Ordering rule: every dispatch, clear and copy goes into the one pending
//! encoder in call order; uploads and readbacks flush it first, so a pooled
//! buffer that is reused can never be overwritten before earlier work ran.
//!
//! The layer knows buffers, not what they hold: launches bind anything that
//! implements [`GpuBuffer`].

mod adapter;
mod buffer;
pub mod coop;
mod kernel;
mod pool;
mod precision;
pub mod profile;
pub mod shader_source;
pub mod variant;

pub use adapter::{describe, list as list_adapters, ADAPTER_ENV};
pub use buffer::{GpuBuffer, PooledBuffer};
pub use kernel::{Kernel, KernelParams, PARAMS_SLOT, ParamsField, ParamsLayout, WORKGROUP_SIZE_OVERRIDE};
pub use pool::PoolStats;
pub use precision::Precision;
pub use profile::{Profile, ProfileScope, ProfileSpan, Timing, Work};

use crate::error::{Error, Result};
use kernel::PipelineCache;
use pool::BufferPool;
use profile::{COMPILING, DispatchRecord, Profiler, READBACKS, RECORDING, SUBMITS, UPLOADS, WAITS};
use std::sync::{Arc, Mutex, OnceLock};

/// Parameter slots per submit; a full ring forces a flush.
const RING_SLOTS: u64 = 4096;
/// Dispatches recorded before an automatic submit, to keep command buffers bounded.
const MAX_PENDING_DISPATCHES: u32 = 2048;

/// Options for opening a device.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name (overrides `INCEPT_ADAPTER`).
    pub adapter: Option<String>,
    /// `Mixed` runs the frozen prefix's convolutions on cooperative
    /// matrices; opening an adapter that cannot is an error (`--precision`).
    pub precision: Precision,
    /// Whether shader modules keep naga's runtime checks; `None` reads
    /// [`SHADER_CHECKS_ENV`], else keeps them (see [`Gpu::shader_checks`]).
    pub shader_checks: Option<bool>,
}

/// Environment variable: `off` builds shader modules without naga's runtime
/// checks (`on`, the default, keeps them); for measuring both, as issue 11 asks.
pub const SHADER_CHECKS_ENV: &str = "INCEPT_SHADER_CHECKS";

/// `INCEPT_SHADER_CHECKS` as a choice, or an error naming it.
fn shader_checks_from_env() -> Result<Option<bool>> {
    match std::env::var(SHADER_CHECKS_ENV).ok().as_deref() {
        None | Some("") => Ok(None),
        Some("on") => Ok(Some(true)),
        Some("off") => Ok(Some(false)),
        Some(other) => Err(Error::Adapter(format!("{SHADER_CHECKS_ENV}={other:?}: expected on or off"))),
    }
}

/// Cheap-to-clone handle to the device context.
#[derive(Clone)]
pub struct Gpu(Arc<GpuInner>);

pub(crate) struct GpuInner {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    description: String,
    /// How the cooperative-matrix kernels run here, or what the adapter lacks for them.
    coop: std::result::Result<coop::CoopConfig, String>,
    precision: Precision,
    pub(crate) pool: Arc<BufferPool>,
    /// Mappable buffers for readbacks, reused by size.
    staging: Mutex<std::collections::HashMap<u64, Vec<wgpu::Buffer>>>,
    pipelines: PipelineCache,
    params_ring: wgpu::Buffer,
    pending: Mutex<Pending>,
    async_error: Arc<Mutex<Option<Error>>>,
    profiler: Profiler,
}

#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    params: Vec<u8>,
    dispatches: u32,
}

impl Pending {
    /// The encoder collecting this submit's work, started on first use.
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()))
    }
}

impl Gpu {
    /// Opens the chosen adapter with its own limits (not WebGPU's defaults).
    pub fn new(opts: &GpuOptions) -> Result<Gpu> {
        let instance = adapter::instance();
        let adapter = adapter::choose(&instance, opts.adapter.as_deref())?;
        let info = adapter.get_info();
        let description = adapter::describe(&adapter);
        let limits = adapter.limits();
        let coop = coop::mixed_precision_support(&coop::CoopCaps::of(&adapter));
        // Checks stay on unless asked off: on lavapipe the whole model is within
        // noise either way (BENCHMARKS.md, 2026-12-02), and no GPU has been
        // measured both ways yet.
        let shader_checks = match opts.shader_checks {
            Some(on) => on,
            None => shader_checks_from_env()?.unwrap_or(true),
        };
        if let (Precision::Mixed, Err(why)) = (opts.precision, &coop) {
            return Err(Error::Adapter(format!("--precision mixed: adapter {} cannot run the mixed-precision kernels: {why}; use --precision f32", info.name)));
        }
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::SUBGROUP
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let features = adapter.features() & wanted;
        let experimental_features = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: wgpu's experimental features may have bugs; the only one
            // requested is cooperative matrices, used by conv2d_coop.wgsl alone
            // (f32 shader modules do not change: naga declares the capabilities a
            // module uses, not those the device allows).
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("incept"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Adapter(format!("{}: could not open device: {e}", info.name)))?;

        let async_error = Arc::new(Mutex::new(None));
        let slot = async_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let err = match e {
                wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory { what: "a GPU resource".into(), bytes: 0 },
                other => Error::Gpu(other.to_string()),
            };
            slot.lock().unwrap().get_or_insert(err);
        }));
        let slot = async_error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            slot.lock().unwrap().get_or_insert(Error::DeviceLost(format!("{reason:?}: {msg}")));
        });
        let params_ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel parameters"),
            size: RING_SLOTS * PARAMS_SLOT,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Gpu(Arc::new(GpuInner {
            device,
            queue,
            info,
            limits,
            features,
            description,
            coop,
            precision: opts.precision,
            pool: Arc::new(BufferPool::default()),
            staging: Mutex::default(),
            pipelines: PipelineCache::new(shader_checks),
            params_ring,
            pending: Mutex::new(Pending::default()),
            async_error,
            profiler: Profiler::default(),
        })))
    }

    /// A process-wide device opened with default options (tests, benches, CLI).
    pub fn shared() -> Result<Gpu> {
        static SHARED: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Gpu::new(&GpuOptions::default()).map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::Adapter)
    }

    pub fn name(&self) -> &str {
        &self.0.info.name
    }
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.0.info
    }
    /// The multi-line description `incept devices` prints.
    pub fn description(&self) -> &str {
        &self.0.description
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.0.limits
    }
    pub fn features(&self) -> wgpu::Features {
        self.0.features
    }
    /// The fragment and subgroup size the cooperative-matrix kernels are
    /// built with, or what the adapter lacks to run them (see
    /// [`coop::mixed_precision_support`]).
    pub fn coop_support(&self) -> std::result::Result<coop::CoopConfig, &str> {
        self.0.coop.as_ref().copied().map_err(String::as_str)
    }
    /// The precision the device was opened with (`GpuOptions::precision`).
    pub fn precision(&self) -> Precision {
        self.0.precision
    }
    /// Whether shader modules carry naga's runtime checks (bounds clamping
    /// where the driver has no robust access of its own, loop bounding,
    /// division guards); off only when asked (`INCEPT_SHADER_CHECKS=off`).
    pub fn shader_checks(&self) -> bool {
        self.0.pipelines.checked()
    }
    /// The adapter's name as reports head it: with "(shader checks off)"
    /// when they are, so figures measured that way say so.
    pub fn heading(&self) -> String {
        format!("{}{}", self.name(), if self.shader_checks() { "" } else { " (shader checks off)" })
    }
    /// True on CPU adapters (lavapipe, WARP): kernels pick barrier-free,
    /// register-blocked variants there and shared-memory tiles elsewhere.
    pub fn is_cpu(&self) -> bool {
        self.0.info.device_type == wgpu::DeviceType::Cpu
    }
    pub fn pool_stats(&self) -> PoolStats {
        self.0.pool.stats()
    }
    /// Starts a new peak of `pool_stats().peak_bytes_in_use` from the bytes in use now.
    pub fn reset_peak_memory(&self) {
        self.0.pool.reset_peak()
    }
    /// Frees idle pooled buffers.
    pub fn trim_pool(&self) {
        self.0.pool.trim()
    }

    /// Workgroup counts for `n` workgroups laid out in 1-D, folded into y when
    /// `n` exceeds the per-dimension limit. Shaders recover the linear index
    /// as `wid.x + wid.y * nwg.x` and must skip indices past their work.
    pub fn groups_1d(&self, n: u32) -> [u32; 3] {
        let max = self.0.limits.max_compute_workgroups_per_dimension;
        if n <= max { [n, 1, 1] } else { [max, n.div_ceil(max), 1] }
    }

    /// Allocates an uninitialised buffer of `bytes` from the pool.
    pub(crate) fn alloc(&self, bytes: u64, what: &dyn Fn() -> String) -> Result<PooledBuffer> {
        let buffer = self.alloc_raw(bytes, what)?;
        Ok(PooledBuffer::new(buffer, self.0.pool.clone()))
    }

    fn alloc_raw(&self, bytes: u64, what: &dyn Fn() -> String) -> Result<wgpu::Buffer> {
        let size = bytes.max(4).next_multiple_of(4);
        let limit = self.0.limits.max_buffer_size;
        if size > limit {
            return Err(Error::Limit { what: what(), bytes: size, limit_name: "max_buffer_size", limit });
        }
        if let Some(b) = self.0.pool.take(size) {
            return Ok(b);
        }
        let scope = self.0.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(Error::OutOfMemory { what: what(), bytes: size });
        }
        self.0.pool.record_allocation(size);
        Ok(buf)
    }

    /// Records one dispatch of `kernel` into the pending encoder.
    ///
    /// `params` is the kernel's uniform struct (≤ 256 bytes, WGSL layout);
    /// `constants` selects the pipeline variant (WGSL `override`s).
    pub fn launch<P: bytemuck::Pod, B: GpuBuffer + ?Sized>(
        &self,
        kernel: &Kernel,
        constants: &[(&'static str, f64)],
        params: &P,
        reads: &[&B],
        writes: &[&B],
        groups: [u32; 3],
    ) -> Result<()> {
        self.with_work(Work::default()).launch(kernel, constants, params, reads, writes, groups)
    }

    /// A launcher that tells the profiler what its dispatch computes:
    /// `gpu.with_work(Work::new(flops, bytes)).launch(…)`.
    pub fn with_work(&self, work: Work) -> Launcher<'_> {
        Launcher { gpu: self, work }
    }

    /// Records a zero fill of a buffer.
    pub(crate) fn clear(&self, b: &(impl GpuBuffer + ?Sized)) {
        let _span = self.0.profiler.span(RECORDING);
        self.0.pending.lock().unwrap().encoder(&self.0.device).clear_buffer(b.buffer(), 0, None);
    }

    /// Records a buffer-to-buffer copy of `bytes` bytes.
    pub(crate) fn copy(&self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, bytes: u64) {
        let _span = self.0.profiler.span(RECORDING);
        let mut pending = self.0.pending.lock().unwrap();
        pending.encoder(&self.0.device).copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes);
    }

    /// Submits all recorded work (does not wait for it, except while profiling).
    pub fn flush(&self) -> Result<()> {
        let mut pending = self.0.pending.lock().unwrap();
        self.submit_locked(&mut pending).map(drop)
    }

    /// Submits the pending encoder; returns the nanoseconds from submit to
    /// completion, which only a profiling session waits for (0 otherwise).
    fn submit_locked(&self, pending: &mut Pending) -> Result<f64> {
        let _span = self.0.profiler.span(SUBMITS);
        if !pending.params.is_empty() {
            self.0.queue.write_buffer(&self.0.params_ring, 0, &pending.params);
            pending.params.clear();
        }
        pending.dispatches = 0;
        let mut waited = 0.0;
        if let Some(mut enc) = pending.encoder.take() {
            self.0.profiler.resolve(&self.0.device, &mut enc);
            waited = self.0.profiler.submit(&self.0.device, &self.0.queue, enc.finish())?;
        }
        self.check_errors()?;
        Ok(waited)
    }
    /// Returns the first asynchronous error (validation, OOM, device loss) seen.
    pub fn check_errors(&self) -> Result<()> {
        match self.0.async_error.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until all submitted work has finished.
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        let _span = self.0.profiler.span(WAITS);
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        self.check_errors()
    }

    /// Writes host data into a buffer, after all previously recorded work.
    pub(crate) fn write(&self, buf: &wgpu::Buffer, data: &[u8]) -> Result<()> {
        let _span = self.0.profiler.span(UPLOADS);
        self.flush()?;
        self.0.queue.write_buffer(buf, 0, data);
        Ok(())
    }

    /// Copies `bytes` bytes of a buffer back to the host, after all recorded work.
    pub(crate) fn read(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let _span = self.0.profiler.span(READBACKS);
        let size = bytes.max(4).next_multiple_of(4);
        let reused = self.0.staging.lock().unwrap().get_mut(&size).and_then(Vec::pop);
        let staging = reused.unwrap_or_else(|| {
            self.0.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        self.copy(buf, 0, &staging, 0, size);
        self.flush()?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for a readback: {e}")))?;
        self.check_errors()?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("mapping a readback buffer: {e}")))?;
        let mut out = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("reading a mapped buffer: {e}")))?
            .to_vec();
        staging.unmap();
        self.0.staging.lock().unwrap().entry(size).or_default().push(staging);
        out.truncate(bytes as usize);
        Ok(out)
    }
}

/// Profiling (see [`profile`]).
impl Gpu {
    /// Starts a profiling session with the best timing the adapter offers.
    pub fn start_profile(&self) -> Result<()> {
        let best = if self.0.features.contains(wgpu::Features::TIMESTAMP_QUERY) { Timing::Timestamps } else { Timing::WallClock };
        self.start_profile_with(best)
    }

    /// Starts a profiling session with the given timing, after waiting for
    /// earlier work, so that none of it is counted.
    pub fn start_profile_with(&self, timing: Timing) -> Result<()> {
        if timing == Timing::Timestamps && !self.0.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Invalid(format!("{}: the adapter has no TIMESTAMP_QUERY; profile with wall-clock timing", self.name())));
        }
        self.synchronize()?;
        self.0.profiler.start(&self.0.device, timing, MAX_PENDING_DISPATCHES)
    }

    /// Waits for all recorded work, ends the session and returns what it measured.
    pub fn finish_profile(&self) -> Result<Profile> {
        self.synchronize()?;
        let profile = self.0.profiler.finish(&self.0.device, &self.0.queue)?;
        self.check_errors()?;
        Ok(profile)
    }

    pub fn is_profiling(&self) -> bool {
        self.0.profiler.is_on()
    }

    /// Attributes the dispatches recorded until the guard drops to `name`
    /// (scopes nest; the innermost wins). Inert when not profiling.
    pub fn profile_scope(&self, name: &str) -> ProfileScope<'_> {
        self.0.profiler.scope(name)
    }

    /// The innermost open profile scope (None when not profiling).
    pub fn profile_scope_name(&self) -> Option<Arc<str>> {
        self.0.profiler.current_scope()
    }

    /// Counts the host time until the guard drops under `category` (e.g.
    /// "data loading"), excluding device-layer calls made meanwhile. None when not profiling.
    pub fn profile_span(&self, category: &'static str) -> Option<ProfileSpan<'_>> {
        self.0.profiler.span(category)
    }
}

/// Whether a storage binding of `bytes` bytes (`what`, for the error) fits
/// the adapter's `max_storage_buffer_binding_size`.
pub fn check_binding(limits: &wgpu::Limits, what: impl FnOnce() -> String, bytes: u64) -> Result<()> {
    let limit = limits.max_storage_buffer_binding_size;
    if bytes > limit {
        return Err(Error::Limit { what: what(), bytes, limit_name: "max_storage_buffer_binding_size", limit });
    }
    Ok(())
}

/// A dispatch with what it computes attached, from [`Gpu::with_work`].
pub struct Launcher<'a> {
    gpu: &'a Gpu,
    work: Work,
}

impl Launcher<'_> {
    /// [`Gpu::launch`], telling the profiler the dispatch's work.
    pub fn launch<P: bytemuck::Pod, B: GpuBuffer + ?Sized>(
        &self,
        kernel: &Kernel,
        constants: &[(&'static str, f64)],
        params: &P,
        reads: &[&B],
        writes: &[&B],
        groups: [u32; 3],
    ) -> Result<()> {
        let inner = &self.gpu.0;
        let _span = inner.profiler.span(RECORDING);
        let bytes = bytemuck::bytes_of(params);
        if bytes.len() as u64 > PARAMS_SLOT {
            return Err(Error::Invalid(format!("{}: parameters are {} bytes, at most {PARAMS_SLOT}", kernel.entry, bytes.len())));
        }
        if reads.len() as u32 != kernel.reads || writes.len() as u32 != kernel.writes {
            return Err(Error::Invalid(format!(
                "{}: expects {} inputs and {} outputs, got {} and {}",
                kernel.entry, kernel.reads, kernel.writes, reads.len(), writes.len()
            )));
        }
        for b in reads.iter().chain(writes) {
            check_binding(&inner.limits, || format!("{}: {}", kernel.entry, b.describe()), b.byte_size())?;
        }
        for (i, w) in writes.iter().enumerate() {
            let aliased = reads.iter().chain(&writes[..i]).any(|o| o.buffer() == w.buffer());
            if aliased {
                return Err(Error::Invalid(format!("{}: an output ({}) is also bound as another argument", kernel.entry, w.describe())));
            }
        }
        let max_groups = inner.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max_groups) {
            return Err(Error::Limit {
                what: format!("{}: dispatch of {groups:?} workgroups", kernel.entry),
                bytes: *groups.iter().max().unwrap() as u64,
                limit_name: "max_compute_workgroups_per_dimension",
                limit: max_groups as u64,
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = match inner.pipelines.cached(kernel, constants) {
            Some(p) => p,
            None => {
                let _span = inner.profiler.span(COMPILING);
                inner.pipelines.get(&inner.device, kernel, constants)?
            }
        };
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &inner.params_ring,
                offset: 0,
                size: Some(std::num::NonZeroU64::new(PARAMS_SLOT).unwrap()),
            }),
        }];
        for (i, b) in reads.iter().chain(writes).enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: 1 + i as u32, resource: b.buffer().as_entire_binding() });
        }
        let bind_group = inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.layout,
            entries: &entries,
        });

        let gpu = self.gpu;
        let mut pending = inner.pending.lock().unwrap();
        if pending.params.len() as u64 >= RING_SLOTS * PARAMS_SLOT || pending.dispatches >= MAX_PENDING_DISPATCHES {
            gpu.submit_locked(&mut pending)?;
        }
        let wall_clock = inner.profiler.timing() == Some(Timing::WallClock);
        if wall_clock && pending.encoder.is_some() {
            // Earlier clears and copies go first, so that the dispatch's submit holds only it.
            gpu.submit_locked(&mut pending)?;
        }
        let recorded = if inner.profiler.is_on() { inner.profiler.record(self.record(kernel, constants, reads, writes)) } else { None };
        let offset = pending.params.len();
        pending.params.extend_from_slice(bytes);
        pending.params.resize(offset + PARAMS_SLOT as usize, 0);
        pending.dispatches += 1;
        let encoder = pending.encoder(&inner.device);
        let queries = recorded.as_ref().and_then(|r| r.queries.as_ref());
        let timestamp_writes = queries.map(|(set, first)| wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: Some(*first),
            end_of_pass_write_index: Some(first + 1),
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(kernel.entry), timestamp_writes });
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset as u32]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        drop(pass);
        if let (true, Some(r)) = (wall_clock, &recorded) {
            let ns = gpu.submit_locked(&mut pending)?;
            inner.profiler.set_gpu_ns(r.index, ns);
        }
        Ok(())
    }

    /// The profile's record of this dispatch (its scope and time are filled in by the profiler).
    fn record<B: GpuBuffer + ?Sized>(&self, kernel: &Kernel, constants: &[(&'static str, f64)], reads: &[&B], writes: &[&B]) -> DispatchRecord {
        let bound: u64 = reads.iter().chain(writes).map(|b| b.byte_size()).sum();
        let variant: Vec<String> = constants.iter().map(|(name, v)| format!("{name}={v}")).collect();
        DispatchRecord {
            file: kernel.file,
            entry: kernel.entry,
            variant: variant.join(" "),
            scope: None,
            flops: self.work.flops,
            bytes: self.work.bytes.unwrap_or(bound as f64),
            bytes_estimated: self.work.bytes.is_some(),
            gpu_ns: 0.0,
        }
    }
}
