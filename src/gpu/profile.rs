//! Profiling sessions: [`Gpu::start_profile`](super::Gpu::start_profile) …
//! [`Gpu::finish_profile`](super::Gpu::finish_profile) time every dispatch on
//! the GPU, and the host's time in the device layer by category.
//!
//! - GPU time ([`Timing::Timestamps`]): every dispatch is its own compute
//!   pass, so its pass writes a timestamp at its beginning and its end (no
//!   timestamps inside passes needed); each submit resolves its queries into
//!   a buffer that is read back when the profile is collected. Adapters
//!   without `TIMESTAMP_QUERY` get [`Timing::WallClock`]: each dispatch is
//!   submitted alone and timed on the host from submit to completion.
//! - Host time: exclusive spans per category ([`RECORDING`], [`COMPILING`],
//!   [`SUBMITS`], [`UPLOADS`], [`READBACKS`], [`WAITS`], or a caller's own,
//!   [`HOST_WORK`] around the whole of what it profiles); a span opened
//!   inside another pauses the outer one, so categories never overlap.
//! - While profiling, every submit is waited for. The GPU then runs only
//!   while the host waits, so kernel time is part of [`WAITS`] and the
//!   categories of a profile add up to its wall time without overlap, less
//!   the time outside every span (which the report shows as unaccounted).
//!   (An unprofiled run can overlap host recording with GPU work and be a
//!   little faster.)
//!
//! Off by default; when off, each hook costs one relaxed atomic load.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Host time spent recording work: validation, bind groups, passes, clears, copies.
pub const RECORDING: &str = "host recording";
/// Host time spent compiling pipelines (the first use of each kernel variant).
pub const COMPILING: &str = "pipeline compilation";
/// Host time spent preparing submits: kernel parameters, timestamp resolves, finishing encoders.
pub const SUBMITS: &str = "submit preparation";
/// Host time spent in uploads of host data into buffers.
pub const UPLOADS: &str = "uploads";
/// Host time spent in readbacks, apart from waiting for the GPU.
pub const READBACKS: &str = "readbacks";
/// Host time from each submit to its completion, and in waits for the
/// device; the GPU runs only then, so the kernel time lies inside it.
pub const WAITS: &str = "waits for the GPU";
/// Host time of the profiled work outside the device layer (ops, autograd,
/// the training loop): the caller opens a span of it around what it profiles,
/// so that this time is measured rather than inferred from the wall time.
pub const HOST_WORK: &str = "host work outside the device layer";

/// How a profile measured GPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Timing {
    /// GPU timestamps at the beginning and end of each dispatch's pass.
    Timestamps,
    /// Host wall clock from submit to completion, one dispatch per submit.
    WallClock,
}

impl Timing {
    pub fn describe(self) -> &'static str {
        match self {
            Timing::Timestamps => "GPU timestamp queries at the beginning and end of each dispatch",
            Timing::WallClock => {
                "per-submit host wall clock, one dispatch per submit (the adapter lacks TIMESTAMP_QUERY); \
                 kernel times include submit latency"
            }
        }
    }

    fn code(self) -> u8 {
        match self {
            Timing::Timestamps => 1,
            Timing::WallClock => 2,
        }
    }
}

/// Arithmetic and memory traffic of one dispatch, as its op counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    /// Floating-point operations (a multiply-add is 2); 0 when unknown.
    pub flops: f64,
    /// Bytes read and written; `None`: the sizes of the bound buffers.
    pub bytes: Option<f64>,
}

impl Work {
    pub fn new(flops: f64, bytes: f64) -> Work {
        Work { flops, bytes: Some(bytes) }
    }
}

/// One profiled dispatch.
#[derive(Clone, Debug)]
pub struct DispatchRecord {
    /// Kernel family: the WGSL file.
    pub file: &'static str,
    pub entry: &'static str,
    /// Override constants as `NAME=value` separated by spaces; empty for none.
    pub variant: String,
    /// The innermost profile scope (a model layer) when the dispatch was recorded.
    pub scope: Option<Arc<str>>,
    pub flops: f64,
    pub bytes: f64,
    /// True when `bytes` is the op's own estimate, false for the bound buffers' sizes.
    pub bytes_estimated: bool,
    /// GPU time in nanoseconds.
    pub gpu_ns: f64,
}

/// What a session measured.
#[derive(Clone, Debug)]
pub struct Profile {
    pub timing: Timing,
    /// Host wall time from start to finish, in nanoseconds.
    pub wall_ns: f64,
    /// Exclusive host time per category in nanoseconds, in order of first use.
    /// [`WAITS`] contains the GPU's time; the rest of the wall time was spent
    /// outside the device layer (ops, autograd, data loading).
    pub host_ns: Vec<(&'static str, f64)>,
    pub dispatches: Vec<DispatchRecord>,
    pub submits: usize,
}

impl Profile {
    /// Host time of one category in nanoseconds (0 when never used).
    pub fn host(&self, category: &str) -> f64 {
        self.host_ns.iter().find(|(c, _)| *c == category).map_or(0.0, |(_, ns)| *ns)
    }
    /// Sum of the dispatches' GPU times in nanoseconds.
    pub fn kernel_ns(&self) -> f64 {
        self.dispatches.iter().map(|d| d.gpu_ns).sum()
    }
}

/// The session state a `Gpu` carries: off unless a session runs.
#[derive(Default)]
pub(crate) struct Profiler {
    /// 0: off, else `Timing::code`.
    state: AtomicU8,
    session: Mutex<Option<Session>>,
}

struct Session {
    timing: Timing,
    started: Instant,
    records: Vec<DispatchRecord>,
    queries: Option<Queries>,
    /// Records of the dispatches in the pending encoder; the k-th writes queries 2k and 2k+1.
    pending: Vec<usize>,
    /// Resolved timestamps on their way back, with the records they time.
    in_flight: Vec<(wgpu::Buffer, Vec<usize>)>,
    host_ns: Vec<(&'static str, f64)>,
    /// Open host spans, innermost last, each with the instant it last resumed.
    spans: Vec<(&'static str, Instant)>,
    scopes: Vec<Arc<str>>,
    submits: usize,
}

struct Queries {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
}

/// Where a recorded dispatch writes its timestamps.
pub(crate) struct Recorded {
    pub index: usize,
    pub queries: Option<(wgpu::QuerySet, u32)>,
}

impl Session {
    /// Adds the time since the innermost span last resumed to its category.
    fn charge(&mut self, now: Instant) {
        if let Some((category, since)) = self.spans.last_mut() {
            let ns = now.duration_since(*since).as_nanos() as f64;
            *since = now;
            let category = *category;
            match self.host_ns.iter_mut().find(|(c, _)| *c == category) {
                Some((_, total)) => *total += ns,
                None => self.host_ns.push((category, ns)),
            }
        }
    }
}

/// An open host span: its category accrues time until it drops.
pub struct ProfileSpan<'a> {
    profiler: &'a Profiler,
    depth: usize,
}

impl Drop for ProfileSpan<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.profiler.session.lock().unwrap().as_mut() {
            let now = Instant::now();
            s.charge(now);
            s.spans.truncate(self.depth - 1);
            if let Some((_, since)) = s.spans.last_mut() {
                *since = now;
            }
        }
    }
}

/// A named scope (a model layer): dispatches recorded while it is the
/// innermost open scope are attributed to it. Inert when profiling is off.
pub struct ProfileScope<'a> {
    profiler: Option<&'a Profiler>,
    depth: usize,
}

impl Drop for ProfileScope<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.profiler
            && let Some(s) = p.session.lock().unwrap().as_mut()
        {
            s.scopes.truncate(self.depth - 1);
        }
    }
}

impl Profiler {
    pub(crate) fn is_on(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn timing(&self) -> Option<Timing> {
        match self.state.load(Ordering::Relaxed) {
            1 => Some(Timing::Timestamps),
            2 => Some(Timing::WallClock),
            _ => None,
        }
    }

    pub(crate) fn start(&self, device: &wgpu::Device, timing: Timing, max_dispatches: u32) -> Result<()> {
        let mut session = self.session.lock().unwrap();
        if session.is_some() {
            return Err(Error::Invalid("a profiling session is already running on this device".into()));
        }
        let queries = (timing == Timing::Timestamps).then(|| {
            let count = 2 * max_dispatches;
            Queries {
                set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profile timestamps resolved"),
                    size: count as u64 * 8,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
            }
        });
        *session = Some(Session {
            timing,
            started: Instant::now(),
            records: Vec::new(),
            queries,
            pending: Vec::new(),
            in_flight: Vec::new(),
            host_ns: Vec::new(),
            spans: Vec::new(),
            scopes: Vec::new(),
            submits: 0,
        });
        self.state.store(timing.code(), Ordering::Relaxed);
        Ok(())
    }

    /// Opens a host span of `category` (None when off).
    pub(crate) fn span(&self, category: &'static str) -> Option<ProfileSpan<'_>> {
        if !self.is_on() {
            return None;
        }
        let mut guard = self.session.lock().unwrap();
        let s = guard.as_mut()?;
        let now = Instant::now();
        s.charge(now);
        s.spans.push((category, now));
        Some(ProfileSpan { profiler: self, depth: s.spans.len() })
    }

    pub(crate) fn scope(&self, name: &str) -> ProfileScope<'_> {
        if !self.is_on() {
            return ProfileScope { profiler: None, depth: 0 };
        }
        match self.session.lock().unwrap().as_mut() {
            Some(s) => {
                s.scopes.push(name.into());
                ProfileScope { profiler: Some(self), depth: s.scopes.len() }
            }
            None => ProfileScope { profiler: None, depth: 0 },
        }
    }

    pub(crate) fn current_scope(&self) -> Option<Arc<str>> {
        if !self.is_on() {
            return None;
        }
        self.session.lock().unwrap().as_ref()?.scopes.last().cloned()
    }

    /// Records a dispatch about to be encoded; with timestamps, also where its pass writes them.
    pub(crate) fn record(&self, record: DispatchRecord) -> Option<Recorded> {
        let mut guard = self.session.lock().unwrap();
        let s = guard.as_mut()?;
        let index = s.records.len();
        let scope = s.scopes.last().cloned();
        s.records.push(DispatchRecord { scope, ..record });
        let queries = s.queries.as_ref().map(|q| (q.set.clone(), 2 * s.pending.len() as u32));
        if queries.is_some() {
            s.pending.push(index);
        }
        Some(Recorded { index, queries })
    }

    /// Sets a dispatch's GPU time (wall-clock timing).
    pub(crate) fn set_gpu_ns(&self, index: usize, ns: f64) {
        if let Some(r) = self.session.lock().unwrap().as_mut().and_then(|s| s.records.get_mut(index)) {
            r.gpu_ns = ns;
        }
    }

    /// Before an encoder is finished: resolves its timestamps into a buffer to read back later.
    pub(crate) fn resolve(&self, device: &wgpu::Device, encoder: &mut wgpu::CommandEncoder) {
        if !self.is_on() {
            return;
        }
        let mut guard = self.session.lock().unwrap();
        let Some(s) = guard.as_mut() else { return };
        let (Some(q), false) = (&s.queries, s.pending.is_empty()) else { return };
        let count = 2 * s.pending.len() as u32;
        let bytes = count as u64 * 8;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile timestamps readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(&q.set, 0..count, &q.resolve, 0);
        encoder.copy_buffer_to_buffer(&q.resolve, 0, &readback, 0, bytes);
        let records = std::mem::take(&mut s.pending);
        s.in_flight.push((readback, records));
    }

    /// Submits `commands`; while profiling, also waits for them and returns
    /// the nanoseconds from submit to completion (0 when off).
    pub(crate) fn submit(&self, device: &wgpu::Device, queue: &wgpu::Queue, commands: wgpu::CommandBuffer) -> Result<f64> {
        if !self.is_on() {
            queue.submit([commands]);
            return Ok(0.0);
        }
        if let Some(s) = self.session.lock().unwrap().as_mut() {
            s.submits += 1;
        }
        // The GPU may start as soon as `submit` is called: the window opens before it.
        let _span = self.span(WAITS);
        let start = Instant::now();
        let index = queue.submit([commands]);
        device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
            .map_err(|e| Error::Gpu(format!("waiting for a profiled submit: {e}")))?;
        Ok(start.elapsed().as_nanos() as f64)
    }

    /// Ends the session (all work must have been waited for) and reads the timestamps back.
    pub(crate) fn finish(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<Profile> {
        let mut s = {
            let mut guard = self.session.lock().unwrap();
            let s = guard.as_mut().ok_or_else(|| Error::Invalid("finish_profile: no profiling session is running".into()))?;
            s.charge(Instant::now());
            self.state.store(0, Ordering::Relaxed);
            guard.take().expect("checked above")
        };
        let wall_ns = s.started.elapsed().as_nanos() as f64;
        if !s.in_flight.is_empty() {
            let period = queue.get_timestamp_period() as f64;
            let (tx, rx) = std::sync::mpsc::channel();
            for (buffer, _) in &s.in_flight {
                let tx = tx.clone();
                buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
            }
            drop(tx);
            device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Gpu(format!("waiting for the profile's timestamps: {e}")))?;
            for r in rx.iter() {
                r.map_err(|e| Error::Gpu(format!("mapping the profile's timestamps: {e}")))?;
            }
            for (buffer, records) in &s.in_flight {
                let mapped = buffer
                    .slice(..)
                    .get_mapped_range()
                    .map_err(|e| Error::Gpu(format!("reading the profile's timestamps: {e}")))?;
                let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&mapped);
                for (pair, &r) in ticks.chunks_exact(2).zip(records) {
                    s.records[r].gpu_ns = pair[1].saturating_sub(pair[0]) as f64 * period;
                }
            }
        }
        Ok(Profile { timing: s.timing, wall_ns, host_ns: s.host_ns, dispatches: s.records, submits: s.submits })
    }
}
