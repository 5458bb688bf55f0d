//! Command handlers.

pub mod bench;
pub mod convert;
pub mod data;
pub mod dicom;
pub mod devices;
pub mod explain;
pub mod export;
pub mod features;
pub mod inspect;
pub mod predict;
pub mod summary;
pub mod train;
pub mod tune;

use incept::{Gpu, GpuOptions, Result};

/// Opens the adapter chosen by `--adapter` / `INCEPT_ADAPTER` (or the best one).
pub fn open_gpu(adapter: Option<String>) -> Result<Gpu> {
    Gpu::new(&GpuOptions { adapter })
}
