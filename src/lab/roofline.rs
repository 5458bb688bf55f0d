//! The roofline of a lab run (`incept bench kernels --roofline FILE.png
//! --json FILE.json`): each (variant, shape) row as a point at its
//! arithmetic intensity (the family's FLOP count over its minimum bytes,
//! the same counts as the table's GFLOP/s and GB/s) and its achieved
//! GFLOP/s, under the two ceilings of the adapter at hand, measured here
//! with the probe kernels of `ops::probe`: bandwidth from a streaming copy,
//! compute from an FMA-bound loop. A point near the slanted line is bound by
//! memory traffic, near the flat one by arithmetic; far below both, by
//! something else (latency, occupancy, the compiler's code).

use super::{Row, time_runs};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::probe;
use crate::tensor::Tensor;
use serde::Serialize;
use std::time::Duration;

/// Values the copy probe streams: 8 Mi f32 (32 MiB) each way, far past any cache.
const COPY_VALUES: usize = 8 << 20;
/// Invocations of the FMA probe (256 Ki), each on one vec4.
const FMA_INVOCATIONS: usize = 256 << 10;
/// The FMA probe's rounds grow until one run takes this much device time,
/// so that dispatch overhead is a small part of it on a fast GPU too.
const FMA_MIN_RUN: f64 = 0.02;
const FMA_MAX_ROUNDS: u32 = 1 << 16;

/// The adapter's measured ceilings.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ceilings {
    /// Peak compute: the FMA probe's GFLOP/s.
    pub gflops: f64,
    /// Bandwidth: the copy probe's GB/s (bytes read + bytes written).
    pub gb_per_s: f64,
}

impl Ceilings {
    /// The roofline at arithmetic intensity `flops_per_byte`.
    pub fn attainable(&self, flops_per_byte: f64) -> f64 {
        self.gflops.min(self.gb_per_s * flops_per_byte)
    }
}

/// Times both probes on `gpu` (after checking their outputs on a slice of the data).
pub fn measure_ceilings(gpu: &Gpu, min_time: Duration) -> Result<Ceilings> {
    let values: Vec<f32> = (0..COPY_VALUES).map(|i| (i % 1009) as f32 * 0.01 - 5.0).collect();
    let x = Tensor::from_slice(gpu, &[COPY_VALUES], &values)?;
    let copy = probe::stream_copy(&x)?.to_vec()?;
    if copy != values {
        return Err(Error::Invalid(format!("the copy probe's output differs from its input on {}", gpu.name())));
    }
    let copy_seconds = time_runs(gpu, min_time, || probe::stream_copy(&x).map(drop))?;
    let gb_per_s = (2 * 4 * COPY_VALUES) as f64 / copy_seconds / 1e9;

    let lanes = 4 * FMA_INVOCATIONS;
    let y = Tensor::from_slice(gpu, &[lanes], &values[..lanes])?;
    let mut rounds = 64;
    check_fma(gpu, &y, &values[..lanes], rounds)?;
    let mut seconds = time_runs(gpu, Duration::ZERO, || probe::fma_peak(&y, rounds).map(drop))?;
    while seconds < FMA_MIN_RUN && rounds < FMA_MAX_ROUNDS {
        rounds *= 4;
        seconds = time_runs(gpu, Duration::ZERO, || probe::fma_peak(&y, rounds).map(drop))?;
    }
    let seconds = time_runs(gpu, min_time, || probe::fma_peak(&y, rounds).map(drop))?;
    let flops = (FMA_INVOCATIONS * probe::FLOPS_PER_ROUND) as f64 * f64::from(rounds);
    Ok(Ceilings { gflops: flops / seconds / 1e9, gb_per_s })
}

/// The FMA probe against its CPU reference on the first values (it must do the work it is timed for).
fn check_fma(gpu: &Gpu, y: &Tensor, values: &[f32], rounds: u32) -> Result<()> {
    let got = probe::fma_peak(y, rounds)?.to_vec()?;
    let checked = 4096.min(values.len());
    let want = probe::fma_peak_reference(&values[..checked], rounds);
    let got: Vec<f64> = got[..checked].iter().map(|&v| f64::from(v)).collect();
    let error = crate::reference::rel_l2_f64(&got, &want);
    if !(error < 1e-4) {
        return Err(Error::Invalid(format!("the FMA probe disagrees with its CPU reference on {} (relative L2 {error:.1e})", gpu.name())));
    }
    Ok(())
}

/// One row of the lab as a point of the roofline.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub variant: String,
    pub shape: String,
    pub flops: f64,
    /// Minimum bytes moved (inputs read once, outputs written once).
    pub bytes: f64,
    /// FLOPs per byte.
    pub intensity: f64,
    pub seconds: f64,
    pub gflops_per_s: f64,
    /// The share of the roofline at this intensity that the row reached.
    pub of_roofline: f64,
    /// The adapter's selection rule picks this variant for this shape.
    pub picked: bool,
    /// Relative L2 error against the family's oracle.
    pub error: f64,
}

/// What `--json` writes.
#[derive(Debug, Serialize)]
pub struct Roofline {
    pub adapter: String,
    pub family: String,
    pub ceilings: Ceilings,
    pub points: Vec<Point>,
}

impl Roofline {
    /// The rows of a lab run that count FLOPs (families that only move data have none) as points.
    pub fn new(adapter: String, family: &str, ceilings: Ceilings, rows: &[Row]) -> Roofline {
        let points = rows
            .iter()
            .filter(|r| r.flops > 0.0 && r.bytes > 0.0 && r.seconds > 0.0)
            .map(|r| {
                let intensity = r.flops / r.bytes;
                let gflops_per_s = r.flops / r.seconds / 1e9;
                Point {
                    variant: r.variant.to_string(),
                    shape: r.shape.trim().to_string(),
                    flops: r.flops,
                    bytes: r.bytes,
                    intensity,
                    seconds: r.seconds,
                    gflops_per_s,
                    of_roofline: gflops_per_s / ceilings.attainable(intensity),
                    picked: r.picked,
                    error: r.error,
                }
            })
            .collect();
        Roofline { adapter, family: family.to_string(), ceilings, points }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain numbers and strings always serialise") + "\n"
    }
}
