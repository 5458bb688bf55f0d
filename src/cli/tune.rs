//! `incept tune`: measures which conv variant is fastest for each conv shape
//! of a backbone on this adapter and caches the choices on disk (keyed by
//! adapter name, driver version and incept version); convolutions then use
//! them, with the built-in rule for shapes not in the cache. Tuning one
//! backbone keeps the cached choices of the others' shapes.

use clap::Args;
use incept::lab::conv::BatchedConv;
use incept::lab::tune::{tune_conv, tune_file};
use incept::models::Backbone;
use incept::ops::conv_tuning::{CACHE_DIR_ENV, cache_path, load, save};
use incept::{Error, Result};
use std::time::Duration;

#[derive(Args)]
pub struct TuneArgs {
    /// Batch size to time at (the one you train or predict with).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Minimum seconds of repetitions per (shape, variant).
    #[arg(long, default_value_t = 0.1)]
    min_time: f64,
    /// Whose conv shapes to tune.
    #[arg(long, value_enum, default_value_t = Backbone::InceptionV3)]
    backbone: Backbone,
}

pub fn run(adapter: Option<String>, args: TuneArgs) -> Result<()> {
    args.backbone.check_size(args.image_size, args.image_size).map_err(|e| Error::Invalid(format!("--image-size {}: {e}", args.image_size)))?;
    if !(args.min_time >= 0.0 && args.min_time.is_finite()) {
        return Err(Error::Invalid(format!("--min-time {}: expected a non-negative number of seconds", args.min_time)));
    }
    let gpu = super::open_gpu(adapter)?;
    incept::train::memory::check_images_fit(&gpu, &format!("--batch {}", args.batch), args.batch, &format!("--image-size {}", args.image_size), args.image_size, 1)?;
    let path = cache_path(&gpu).ok_or_else(|| Error::Invalid(format!("no cache directory: set {CACHE_DIR_ENV} or HOME")))?;
    let shapes = BatchedConv::of(args.backbone, args.batch, args.image_size)?;
    println!("adapter: {}; tuning {}'s conv2d at batch {}, {}x{} images, {} shapes", gpu.name(), args.backbone.title(), args.batch, args.image_size, args.image_size, shapes.len());
    println!("{:<48} {:<14} {:>10} {:>10}", "shape", "fastest", "ms", "rule ms");
    let tuned = tune_conv(&gpu, &shapes, Duration::from_secs_f64(args.min_time), |s, t| {
        println!("{:<48} {:<14} {:>10.3} {:>10.3}", s.label(), t.algo, t.ms, t.rule_ms);
    })?;
    let (best, rule) = tuned.iter().fold((0.0, 0.0), |(b, r), t| (b + t.ms, r + t.rule_ms));
    println!("total: tuned {best:.2} ms, built-in rule {rule:.2} ms");
    // Another backbone's choices at this batch, from this adapter, stay.
    let mut file = tune_file(&gpu, args.batch, tuned);
    if let Ok(old) = load(&path)
        && (old.adapter.as_str(), old.driver.as_str(), old.incept.as_str(), old.batch) == (file.adapter.as_str(), file.driver.as_str(), file.incept.as_str(), file.batch)
    {
        let kept: Vec<_> = old.conv.into_iter().filter(|t| !file.conv.iter().any(|n| n.key == t.key)).collect();
        file.conv.extend(kept);
    }
    save(&path, &file)?;
    println!("wrote {}", path.display());
    Ok(())
}
