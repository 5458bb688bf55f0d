//! The kernel lab under `cargo bench`: the same tables as
//! `incept bench kernels --family F`, for every family (or those named),
//! at batch 8 and 75×75 images, each variant checked against its oracle
//! before it is timed.
//!
//!     cargo bench --bench kernels [-- conv matmul …]   (INCEPT_ADAPTER=… picks the adapter)
//!
//! A measurement, not a test: it prints tables and asserts nothing about speed.

use incept::lab::{self, LabOptions};
use incept::{Gpu, Result};
use std::time::Duration;

fn main() -> Result<()> {
    // cargo passes `--bench`; every other argument names a family.
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let families: Vec<&str> = if named.is_empty() { lab::FAMILIES.to_vec() } else { named.iter().map(String::as_str).collect() };
    let gpu = Gpu::shared()?;
    let opts = LabOptions { batch: 8, image: 75, variant: None, min_time: Duration::from_secs_f64(0.1), shape: None, limit: None };
    for family in families {
        lab::print(family, &gpu, &opts)?;
        println!();
    }
    Ok(())
}
