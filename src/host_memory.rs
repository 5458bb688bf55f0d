//! How much host memory this process may still take, and the check that a
//! size set by user input (a flag, a file's declared contents) fits in it,
//! made before anything that large is allocated: an error naming what set
//! the size, the bytes needed and what is available, instead of an abort or
//! a machine that swaps. Used by the readers in `io` and by `train::memory`.

use crate::error::{Error, Result};

/// Host memory this process may still take, and where that figure comes from.
#[derive(Clone, Copy, Debug)]
pub struct HostMemory {
    pub bytes: u64,
    pub source: &'static str,
}

/// The smaller of the kernel's MemAvailable and the headroom under the
/// process's address-space limit (`ulimit -v`, `prlimit --as`); `None` where
/// neither can be read (not Linux).
pub fn host_memory() -> Option<HostMemory> {
    let kib = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse::<u64>().ok().map(|k| k * 1024)
    };
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| kib(&t, "MemAvailable:"))
        .map(|bytes| HostMemory { bytes, source: "MemAvailable in /proc/meminfo" });
    let address_space = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let soft = limits.lines().find(|l| l.starts_with("Max address space"))?.split_whitespace().nth(3)?.parse::<u64>().ok()?;
        let used = std::fs::read_to_string("/proc/self/status").ok().and_then(|t| kib(&t, "VmSize:")).unwrap_or(0);
        Some(HostMemory { bytes: soft.saturating_sub(used), source: "headroom under the address-space limit (ulimit -v)" })
    });
    match (available, address_space) {
        (Some(a), Some(b)) => Some(if b.bytes < a.bytes { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn gib(bytes: u128) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Errors unless `parts` (label naming the flags, bytes) fit the host's
/// available memory.
pub fn check_host(parts: &[(String, u128)]) -> Result<()> {
    let Some(host) = host_memory() else { return Ok(()) };
    let needed: u128 = parts.iter().map(|(_, b)| b).sum();
    if needed <= host.bytes as u128 {
        return Ok(());
    }
    let breakdown: Vec<String> = parts.iter().filter(|(_, b)| *b > 0).map(|(what, b)| format!("{what}: {} bytes ({:.2} GiB)", b, gib(*b))).collect();
    Err(Error::Invalid(format!(
        "needs about {needed} bytes ({:.2} GiB) of host memory, but {} bytes ({:.2} GiB) are available ({}): {}; use a smaller value for the flag(s) named",
        gib(needed),
        host.bytes,
        gib(host.bytes as u128),
        host.source,
        breakdown.join("; ")
    )))
}

/// The host-memory check of a size that user input sets outside training (a
/// file's declared contents, a flag's buffers): errors, naming `what`, the
/// bytes and what is available, before anything that large is allocated.
pub fn check_host_bytes(what: impl Fn() -> String, bytes: u128) -> Result<()> {
    match host_memory() {
        Some(host) if bytes > host.bytes as u128 => check_host(&[(what(), bytes)]),
        _ => Ok(()),
    }
}
