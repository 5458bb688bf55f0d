//! `incept tune`: the conv variant per shape from measurement. Every f32
//! `ConvAlgo` is checked against the oracle and timed at every shape (as
//! the lab does); the fastest that agrees is the shape's choice. Mixed
//! precision is the user's choice (`--precision`), never the tuner's.

use super::conv::{BatchedConv, ConvForward};
use super::{Family, TOLERANCE, error, time_runs};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::conv::ConvAlgo;
use crate::ops::conv_tuning::{TuneFile, TunedConv, cache_identity};
use std::time::Duration;

/// Times every applicable conv variant on each shape and returns the
/// fastest per shape, with the built-in rule's time beside it.
pub fn tune_conv(gpu: &Gpu, shapes: &[BatchedConv], min_time: Duration, mut report: impl FnMut(&BatchedConv, &TunedConv)) -> Result<Vec<TunedConv>> {
    let variants = ConvForward::variants();
    let mut out = Vec::new();
    for s in shapes {
        if s.conv.win.output_size(s.conv.h, s.conv.w).is_err() {
            continue;
        }
        let rule = ConvAlgo::rule(gpu, &s.conv.key()).name();
        let inputs = ConvForward::inputs(gpu, s)?;
        let oracle = ConvForward::oracle(s, &inputs)?;
        let mut best: Option<(&'static str, f64)> = None;
        let mut rule_ms = f64::NAN;
        for v in variants.iter().filter(|v| (v.applies)(s) && (v.available)(gpu) && v.tolerance <= TOLERANCE) {
            if error(&(v.run)(s, &inputs)?, &oracle)? > TOLERANCE {
                continue;
            }
            let ms = time_runs(gpu, min_time, || (v.run)(s, &inputs).map(drop))? * 1e3;
            if v.name == rule {
                rule_ms = ms;
            }
            if best.is_none_or(|(_, b)| ms < b) {
                best = Some((v.name, ms));
            }
        }
        if let Some((algo, ms)) = best {
            let t = TunedConv { key: s.conv.key(), algo: algo.to_string(), ms, rule_ms };
            report(s, &t);
            out.push(t);
        }
    }
    Ok(out)
}

/// The cache file for `gpu` holding `conv` (timed at batch `batch`).
pub fn tune_file(gpu: &Gpu, batch: usize, conv: Vec<TunedConv>) -> TuneFile {
    let (adapter, driver, incept) = cache_identity(gpu);
    TuneFile { adapter, driver, incept, batch, conv }
}
