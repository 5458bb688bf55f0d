//! Profile reports: a device profile ([`gpu::Profile`](crate::gpu::Profile))
//! summed per kernel variant, per kernel family and per model layer, with
//! the time outside kernels broken down, printed as tables, written as JSON
//! (`profile.json`) and drawn as a bar chart (`profile.png`, see
//! `profile_chart`).
//!
//! Accounting: the wall time is measured on the host from the start of the
//! session to its end; kernel time by the GPU; every host category by
//! exclusive spans (the device layer's own, and the caller's
//! [`HOST_WORK`](crate::gpu::profile::HOST_WORK) span around the work it
//! profiles: ops, autograd, the training loop). The waits for the GPU
//! contain the kernels, so the reported parts are the kernels, the waits
//! outside them, and every other category, each measured. What no span
//! measured, the wall time minus every category, is reported as
//! [`UNACCOUNTED`], and the check is on it: at most
//! [`ACCOUNTING_TOLERANCE`] of the wall time, and no more kernel time than
//! the waits that contain it. Host work outside every span, spans that
//! overlap or a category left out of the sum shows up there.

use crate::error::{Error, Result};
use crate::gpu::profile::{DispatchRecord, Profile, Timing, WAITS};
use crate::io::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

pub const PROFILE_JSON: &str = "profile.json";
pub const PROFILE_PNG: &str = "profile.png";
/// Largest share of the wall time that may go unaccounted, and by which
/// kernel time may exceed the waits that contain it.
pub const ACCOUNTING_TOLERANCE: f64 = 0.05;
/// The part for GPU waits that kernels do not fill.
pub const GPU_OUTSIDE_KERNELS: &str = "GPU waits outside kernels";
/// The wall time that no host span measured.
pub const UNACCOUNTED: &str = "unaccounted (outside every span)";
/// Characters of a name in the printed tables.
const NAME_WIDTH: usize = 72;
/// The layer name of dispatches recorded outside every profile scope.
pub const NO_LAYER: &str = "(no layer)";

/// A profile summed for comparison across runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileReport {
    /// What was profiled, e.g. "fine-tune step".
    pub label: String,
    pub adapter: String,
    pub timing: Timing,
    pub timing_note: String,
    pub steps: usize,
    /// Host wall time of the whole session.
    pub wall_ms: f64,
    pub step_ms: f64,
    pub dispatches: usize,
    pub submits: usize,
    pub kernel_ms: f64,
    /// The measured time outside kernels, by part, largest first.
    pub outside: Vec<Part>,
    pub accounting: Accounting,
    /// Per kernel variant (file, entry point, override constants), by time.
    pub variants: Vec<Row>,
    /// Per kernel family (WGSL file), by time.
    pub families: Vec<Row>,
    /// Per model layer (profile scope), by time.
    pub layers: Vec<Row>,
}

/// A share of the wall time outside kernels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    pub ms: f64,
    /// Of the wall time.
    pub share: f64,
}

/// How much of the wall time the spans measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// Every host category summed (the waits include the kernels): kernels
    /// plus every outside part.
    pub measured_ms: f64,
    pub wall_ms: f64,
    /// Wall minus measured: time outside every span (negative only when spans overlap).
    pub unaccounted_ms: f64,
    /// |unaccounted| / wall.
    pub unaccounted_share: f64,
    /// The waits for the GPU, which contain the kernels.
    pub waits_ms: f64,
    /// Unaccounted share within [`ACCOUNTING_TOLERANCE`], and kernel time
    /// no more than the waits plus that share of the wall time.
    pub within_tolerance: bool,
}

/// Where a row's byte count comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BytesSource {
    /// The ops' own estimates of the bytes read and written.
    Op,
    /// The sizes of the bound buffers.
    Bindings,
    /// Some dispatches of each.
    Mixed,
}

/// Totals over the session of the dispatches sharing a key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub calls: usize,
    pub ms: f64,
    /// Of the wall time.
    pub share: f64,
    pub flops: f64,
    pub bytes: f64,
    pub bytes_source: BytesSource,
    /// 0 when the dispatches report no FLOPs.
    pub gflops_per_s: f64,
    pub gb_per_s: f64,
}

impl ProfileReport {
    /// Sums `profile`, which covered `steps` steps (at least 1).
    pub fn new(profile: &Profile, label: &str, adapter: &str, steps: usize) -> ProfileReport {
        let wall_ns = profile.wall_ns.max(1.0);
        let kernel_ns = profile.kernel_ns();
        let waits_ns = profile.host(WAITS);
        let part = |name: &str, ns: f64| Part { name: name.into(), ms: ns / 1e6, share: ns / wall_ns };
        let mut outside = vec![part(GPU_OUTSIDE_KERNELS, waits_ns - kernel_ns)];
        outside.extend(profile.host_ns.iter().filter(|(c, _)| *c != WAITS).map(|(c, ns)| part(c, *ns)));
        outside.sort_by(|a, b| b.ms.total_cmp(&a.ms));

        let measured_ns: f64 = profile.host_ns.iter().map(|(_, ns)| ns).sum();
        let unaccounted_ns = wall_ns - measured_ns;
        let unaccounted_share = unaccounted_ns.abs() / wall_ns;
        let within_tolerance = unaccounted_share <= ACCOUNTING_TOLERANCE && kernel_ns <= waits_ns + ACCOUNTING_TOLERANCE * wall_ns;
        let steps = steps.max(1);
        ProfileReport {
            label: label.into(),
            adapter: adapter.into(),
            timing: profile.timing,
            timing_note: profile.timing.describe().into(),
            steps,
            wall_ms: wall_ns / 1e6,
            step_ms: wall_ns / 1e6 / steps as f64,
            dispatches: profile.dispatches.len(),
            submits: profile.submits,
            kernel_ms: kernel_ns / 1e6,
            outside,
            accounting: Accounting {
                measured_ms: measured_ns / 1e6,
                wall_ms: wall_ns / 1e6,
                unaccounted_ms: unaccounted_ns / 1e6,
                unaccounted_share,
                waits_ms: waits_ns / 1e6,
                within_tolerance,
            },
            variants: rows(profile, wall_ns, variant_name),
            families: rows(profile, wall_ns, |d| family_name(d).to_string()),
            layers: rows(profile, wall_ns, |d| d.scope.as_deref().unwrap_or(NO_LAYER).to_string()),
        }
    }

    /// Share of the wall time spent in kernels.
    pub fn kernel_share(&self) -> f64 {
        self.kernel_ms / self.wall_ms.max(f64::MIN_POSITIVE)
    }

    /// The tables: summary, measured time outside kernels, the unaccounted time, and
    /// the `top` largest kernel variants, families and layers.
    pub fn to_text(&self, top: usize) -> String {
        let mut s = String::new();
        let steps = if self.steps == 1 { "1 step".to_string() } else { format!("{} steps", self.steps) };
        let _ = writeln!(s, "profile of {} on {}: {steps}, {:.1} ms per step ({:.1} ms in all)", self.label, self.adapter, self.step_ms, self.wall_ms);
        let _ = writeln!(s, "timing: {}; every submit waited for while profiling", self.timing_note);
        let _ = writeln!(s, "kernels: {:.1} ms ({:.1}%) in {} dispatches, {} submits", self.kernel_ms, 100.0 * self.kernel_share(), self.dispatches, self.submits);
        let _ = writeln!(s, "outside kernels (measured):");
        for p in &self.outside {
            let _ = writeln!(s, "  {:<34} {:>10.2} ms {:>6.1}%", p.name, p.ms, 100.0 * p.share);
        }
        let a = &self.accounting;
        let _ = writeln!(
            s,
            "  {:<34} {:>10.2} ms {:>6.1}%\naccounting: kernels + measured parts = {:.2} ms of {:.2} ms wall; unaccounted {:.2}% ({} the {:.0}% limit); kernels {:.2} ms of GPU waits {:.2} ms",
            UNACCOUNTED,
            a.unaccounted_ms,
            100.0 * a.unaccounted_ms / a.wall_ms.max(f64::MIN_POSITIVE),
            a.measured_ms,
            a.wall_ms,
            100.0 * a.unaccounted_share,
            if a.within_tolerance { "within" } else { "OUTSIDE" },
            100.0 * ACCOUNTING_TOLERANCE,
            self.kernel_ms,
            a.waits_ms
        );
        for (title, rows) in [("kernel variants", &self.variants), ("kernel families", &self.families), ("layers", &self.layers)] {
            let _ = writeln!(s, "\ntop {} {title} of {}:", top.min(rows.len()), rows.len());
            let _ = writeln!(s, "{:<3} {:<w$} {:>6} {:>10} {:>7} {:>9} {:>8}", "#", "name", "calls", "ms", "share", "GFLOP/s", "GB/s", w = NAME_WIDTH);
            for (i, r) in rows.iter().take(top).enumerate() {
                let gflops = if r.flops > 0.0 { format!("{:.2}", r.gflops_per_s) } else { "-".into() };
                let mark = match r.bytes_source {
                    BytesSource::Op => "",
                    BytesSource::Bindings => "*",
                    BytesSource::Mixed => "+",
                };
                let _ = writeln!(
                    s,
                    "{:<3} {:<w$} {:>6} {:>10.2} {:>6.1}% {:>9} {:>7.2}{mark:1}",
                    i + 1,
                    shorten(&r.name, NAME_WIDTH),
                    r.calls,
                    r.ms,
                    100.0 * r.share,
                    gflops,
                    r.gb_per_s,
                    w = NAME_WIDTH
                );
            }
        }
        let _ = writeln!(s, "\nms and calls are totals over the profile; GB/s from the ops' own byte counts, * from the bound buffers' sizes, + from both");
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a profile report serialises")
    }

    pub fn from_json(text: &str) -> Result<ProfileReport> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("not a profile report: {e}")))
    }

    /// Writes `path` (JSON) atomically.
    pub fn save_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }

    /// Reads a report written by [`save_json`](Self::save_json).
    pub fn load_json(path: &Path) -> Result<ProfileReport> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("cannot read the profile: {e}") })?;
        ProfileReport::from_json(&text).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })
    }
}

fn family_name(d: &DispatchRecord) -> &'static str {
    d.file.strip_suffix(".wgsl").unwrap_or(d.file)
}

/// `family:entry [CONSTANTS]`.
fn variant_name(d: &DispatchRecord) -> String {
    let family = family_name(d);
    if d.variant.is_empty() { format!("{family}:{}", d.entry) } else { format!("{family}:{} [{}]", d.entry, d.variant) }
}

/// Dispatches summed per `key`, largest time first.
fn rows(profile: &Profile, wall_ns: f64, key: impl Fn(&DispatchRecord) -> String) -> Vec<Row> {
    #[derive(Default)]
    struct Sum {
        calls: usize,
        ns: f64,
        flops: f64,
        bytes: f64,
        estimated: usize,
    }
    let mut sums: HashMap<String, Sum> = HashMap::new();
    for d in &profile.dispatches {
        let s = sums.entry(key(d)).or_default();
        s.calls += 1;
        s.ns += d.gpu_ns;
        s.flops += d.flops;
        s.bytes += d.bytes;
        s.estimated += usize::from(d.bytes_estimated);
    }
    let mut rows: Vec<Row> = sums
        .into_iter()
        .map(|(name, s)| {
            let per_ns = |v: f64| if s.ns > 0.0 { v / s.ns } else { 0.0 };
            Row {
                name,
                calls: s.calls,
                ms: s.ns / 1e6,
                share: s.ns / wall_ns,
                flops: s.flops,
                bytes: s.bytes,
                bytes_source: match s.estimated {
                    0 => BytesSource::Bindings,
                    n if n == s.calls => BytesSource::Op,
                    _ => BytesSource::Mixed,
                },
                gflops_per_s: per_ns(s.flops),
                gb_per_s: per_ns(s.bytes),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// `text` cut to `width` characters, with an ellipsis when cut.
pub(crate) fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}
