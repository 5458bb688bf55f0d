//! Command handlers.

pub mod base;
pub mod bench;
pub mod classify;
pub mod convert;
pub mod data;
pub mod dicom;
pub mod devices;
pub mod explain;
pub mod export;
pub mod features;
pub mod inspect;
pub mod precision;
pub mod predict;
pub mod report;
pub mod summary;
pub mod train;
pub mod tune;

use incept::gpu::Precision;
use incept::{Gpu, GpuOptions, Result};

/// Opens the adapter chosen by `--adapter` / `INCEPT_ADAPTER` (or the best one), in f32.
pub fn open_gpu(adapter: Option<String>) -> Result<Gpu> {
    open_gpu_with(adapter, Precision::F32)
}

/// [`open_gpu`] with a `--precision`: `mixed` on an adapter without
/// cooperative matrices is an error naming the flag, the adapter and what it
/// lacks, raised before the command writes anything.
pub fn open_gpu_with(adapter: Option<String>, precision: Precision) -> Result<Gpu> {
    Gpu::new(&GpuOptions { adapter, precision, shader_checks: None })
}
