//! `incept bench`: kernel and model throughput tables (measurements, not tests).

use super::precision::PrecisionArgs;
use clap::Subcommand;
use incept::autograd as ag;
use super::base::BaseArgs;
use incept::ops::optim::{AdamConfig, adam_step};
use incept::ops::pool;
use incept::gpu::profile::HOST_WORK;
use incept::report::ProfileReport;
use incept::{Error, Gpu, Result, Tensor};
use incept::io::atomic::check_writable;
use incept::io::write_atomic;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The kernel lab: every variant of a kernel family at every shape of it in the built-in
    /// networks, checked against the family's oracle, then timed (ms, GFLOP/s, GB/s, the adapter's pick).
    Kernels {
        /// Kernel family: conv, conv-backward-input, conv-backward-filter, conv-siblings,
        /// depthwise, depthwise-backward, matmul, batchnorm, batchnorm-backward, pool,
        /// pool-backward or elementwise.
        #[arg(long, default_value = "conv")]
        family: String,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        /// Only this variant (its name in the table, or auto = the adapter's pick); the oracle still runs.
        #[arg(long, visible_alias = "algo")]
        variant: Option<String>,
        /// Minimum seconds of repetitions per row (after one warm-up run).
        #[arg(long, default_value_t = 0.5)]
        min_time: f64,
        /// Only the shapes whose label (as the table prints it) contains this text, e.g. "35x35x288".
        #[arg(long)]
        shape: Option<String>,
        /// Only the first N shapes (quick checks).
        #[arg(long)]
        limit: Option<usize>,
        /// List every family with what it computes and its variants (the oracle first), and exit.
        #[arg(long)]
        list: bool,
        /// Print InceptionV3's conv shapes as CSV (for benches/libtorch/conv_shapes.py) and exit.
        #[arg(long)]
        conv_shapes_csv: bool,
        /// Also measure the adapter's ceilings (a streaming copy and an FMA loop) and draw every
        /// row as a point of a roofline: arithmetic intensity against GFLOP/s, as a PNG.
        #[arg(long)]
        roofline: Option<PathBuf>,
        /// Write the rows as roofline points (intensity, GFLOP/s, share of the roofline) and the ceilings as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Accepted for older scripts: every row is checked against the oracle anyway.
        #[arg(long, hide = true)]
        check: bool,
    },
    /// Images/s of the input pipeline alone (decode, resize, augment, batch) on worker threads,
    /// to see whether training on a fast GPU waits on the host.
    Loader {
        /// A class-per-folder split, e.g. data/fmnist4/train.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Decoding threads (default: one per CPU core).
        #[arg(long)]
        workers: Option<usize>,
        #[arg(long)]
        no_augment: bool,
        #[arg(long, default_value_t = 2)]
        epochs: usize,
    },
    /// Images/s of the base's forward pass (frozen, fused) and of a fine-tune step
    /// (forward in training mode, GAP → Dense head, cross-entropy, backward, Adam).
    Model {
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        #[arg(long, default_value_t = 15)]
        unfreeze_last: usize,
        #[command(flatten)]
        base: BaseArgs,
        /// Timed iterations of each (after one warm-up).
        #[arg(long, default_value_t = 3)]
        iters: usize,
        /// Afterwards, profile one forward and one fine-tune step: time per kernel and layer,
        /// and the time outside kernels (tables, and JSON + PNG in --profile-out).
        #[arg(long)]
        profile: bool,
        /// Directory for profile-forward.{json,png} and profile-finetune.{json,png}.
        #[arg(long, default_value = ".", requires = "profile")]
        profile_out: PathBuf,
        #[command(flatten)]
        precision: PrecisionArgs,
    },
}

pub fn run(adapter: Option<String>, cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Kernels { list: true, .. } => list_families(),
        BenchCommand::Kernels { conv_shapes_csv: true, image_size, .. } => list_conv_shapes(image_size),
        BenchCommand::Kernels { family, batch, image_size, variant, min_time, shape, limit, roofline, json, .. } => {
            if image_size < 75 {
                return Err(Error::Invalid(format!("--image-size {image_size}: InceptionV3 needs at least 75")));
            }
            if !(min_time >= 0.0 && min_time.is_finite()) {
                return Err(Error::Invalid(format!("--min-time {min_time}: expected a non-negative number of seconds")));
            }
            for path in roofline.iter().chain(&json) {
                check_writable(path)?;
            }
            let gpu = super::open_gpu(adapter)?;
            check_inputs(&gpu, batch, image_size)?;
            let min_time = Duration::from_secs_f64(min_time);
            let opts = incept::lab::LabOptions { batch, image: image_size, variant, min_time, shape, limit };
            let rows = incept::lab::print(&family, &gpu, &opts)?;
            if roofline.is_some() || json.is_some() {
                let ceilings = incept::lab::roofline::measure_ceilings(&gpu, min_time)?;
                println!("ceilings on {}: {:.2} GB/s (streaming copy), {:.2} GFLOP/s (FMA loop)", gpu.name(), ceilings.gb_per_s, ceilings.gflops);
                let points = incept::lab::roofline::Roofline::new(gpu.name().to_string(), &family, ceilings, &rows);
                if let Some(path) = &json {
                    write_atomic(path, points.to_json().as_bytes())?;
                    println!("wrote {}", path.display());
                }
                if let Some(path) = &roofline {
                    incept::report::roofline_chart::save_roofline_png(&points, path)?;
                    println!("wrote {}", path.display());
                }
            }
            Ok(())
        }
        BenchCommand::Loader { data, image_size, batch, workers, no_augment, epochs } => loader(&data, image_size, batch, workers, !no_augment, epochs),
        BenchCommand::Model { batch, image_size, unfreeze_last, base, iters, profile, profile_out, precision } => {
            let profile_out = profile.then_some(profile_out);
            let gpu = super::open_gpu_with(adapter, precision.or_default())?;
            check_inputs(&gpu, batch, image_size)?;
            model(&gpu, &ModelBench { batch, image: image_size, unfreeze_last, base, iters }, profile_out.as_deref())
        }
    }
}

/// `--batch` images of `--image-size`, checked against the limits `train` uses before they are allocated.
fn check_inputs(gpu: &Gpu, batch: usize, image_size: usize) -> Result<()> {
    incept::train::memory::check_images_fit(gpu, &format!("--batch {batch}"), batch, &format!("--image-size {image_size}"), image_size, 1)
}

fn list_families() -> Result<()> {
    for (name, what, variants) in incept::lab::list() {
        println!("{name}: {what}");
        println!("  variants: {}", variants.join(", "));
    }
    Ok(())
}

fn list_conv_shapes(image: usize) -> Result<()> {
    println!("h,w,cin,cout,kh,kw,stride,padding");
    for s in incept::lab::conv::inception_v3_conv_shapes(image)? {
        println!("{},{},{},{},{},{},{},{}", s.h, s.w, s.cin, s.cout, s.win.kh, s.win.kw, s.win.stride_h, s.win.padding.label());
    }
    Ok(())
}

/// What `bench model` runs.
struct ModelBench {
    batch: usize,
    image: usize,
    unfreeze_last: usize,
    base: BaseArgs,
    iters: usize,
}

fn model(gpu: &Gpu, b: &ModelBench, profile_out: Option<&Path>) -> Result<()> {
    let (batch, image) = (b.batch, b.image);
    let net = b.base.load(gpu, b.unfreeze_last)?;
    net.backbone().check_size(image, image)?;
    let n = batch * image * image * 3;
    let x = Tensor::from_slice(gpu, &[batch, image, image, 3], &incept::reference::random(n, 1, 0.0, 1.0))?;
    println!("adapter: {}", gpu.heading());
    println!("{} batch {batch}, {image}x{image}, last {} layers trainable, precision {}", net.backbone().title(), b.unfreeze_last, gpu.precision().name());
    let output = net.graph().output_name();
    let features = net.backbone().feature_channels();

    // Peak: the most bytes of pooled buffers (every tensor, weights included)
    // alive at once during the timed runs, as torch.cuda.max_memory_allocated counts.
    let time = |label: &str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        f()?;
        gpu.synchronize()?;
        gpu.reset_peak_memory();
        let start = Instant::now();
        for _ in 0..b.iters.max(1) {
            f()?;
        }
        gpu.synchronize()?;
        let per = start.elapsed().as_secs_f64() / b.iters.max(1) as f64;
        let peak = gpu.pool_stats().peak_bytes_in_use as f64 / (1u64 << 20) as f64;
        println!("{label:<34} {:>9.1} ms/batch {:>9.1} images/s   peak {peak:.1} MiB", per * 1e3, batch as f64 / per);
        Ok(())
    };
    let mut forward = || -> Result<()> {
        let y = net.infer_layers(&x, &[output.as_str()])?;
        let _scope = gpu.profile_scope("global_average_pooling2d");
        drop(pool::global_avg_pool(&y[0])?);
        Ok(())
    };
    time(FORWARD, &mut forward)?;

    // A fine-tune step as the Keras recipe runs it: head GAP → Dense(4) → softmax CE, Adam on every trainable weight.
    let classes = 4;
    let head_w = ag::Var::parameter(Tensor::from_slice(gpu, &[features, classes], &incept::reference::random(features * classes, 2, -0.05, 0.05))?, true);
    let head_b = ag::Var::parameter(Tensor::zeros(gpu, &[classes])?, true);
    let mut targets = vec![0.0f32; batch * classes];
    for i in 0..batch {
        targets[i * classes + i % classes] = 1.0;
    }
    let targets = Tensor::from_slice(gpu, &[batch, classes], &targets)?;
    let mut params: Vec<ag::Var> = net.trainable_params().into_iter().map(|(_, v)| v).collect();
    params.extend([head_w.clone(), head_b.clone()]);
    let state = params.iter().map(|p| Ok((Tensor::zeros(gpu, p.shape())?, Tensor::zeros(gpu, p.shape())?))).collect::<Result<Vec<_>>>()?;
    let mut step = 0u32;
    let mut fine_tune = || -> Result<()> {
        step += 1;
        let y = net.forward(&x, true)?;
        let loss = {
            let _scope = gpu.profile_scope("head");
            let logits = ag::dense(&ag::global_avg_pool(&y)?, &head_w, &head_b, false)?;
            ag::softmax_cross_entropy(&logits, &targets)?.0
        };
        let grads = loss.backward()?;
        let _scope = gpu.profile_scope("optimizer");
        for (p, (m, v)) in params.iter().zip(&state) {
            if let Some(g) = grads.get(p) {
                adam_step(p.value(), g, m, v, &AdamConfig::default(), step)?;
            }
        }
        Ok(())
    };
    time(FINE_TUNE, &mut fine_tune)?;

    if let Some(dir) = profile_out {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), reason: format!("cannot create the profile directory: {e}") })?;
        profile_once(gpu, FORWARD, &dir.join("profile-forward"), &mut forward)?;
        profile_once(gpu, FINE_TUNE, &dir.join("profile-finetune"), &mut fine_tune)?;
    }
    Ok(())
}

const FORWARD: &str = "forward (inference, fused)";
const FINE_TUNE: &str = "fine-tune step (fwd+bwd+Adam)";
/// Rows of each profile table and bars of each chart.
const PROFILE_TOP: usize = 15;

/// Profiles one run of `f` (already warmed up), prints the tables and writes `stem.json` and `stem.png`.
fn profile_once(gpu: &Gpu, label: &str, stem: &Path, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    gpu.start_profile()?;
    {
        let _span = gpu.profile_span(HOST_WORK);
        f()?;
    }
    let report = ProfileReport::new(&gpu.finish_profile()?, label, gpu.name(), 1);
    println!("\n{}", report.to_text(PROFILE_TOP));
    let (json, png) = (stem.with_extension("json"), stem.with_extension("png"));
    report.save_json(&json)?;
    report.save_chart(&png, PROFILE_TOP)?;
    println!("wrote {} and {}", json.display(), png.display());
    Ok(())
}

fn loader(data: &std::path::Path, image: usize, batch: usize, workers: Option<usize>, augment: bool, epochs: usize) -> Result<()> {
    use incept::data::{Augment, ImageFolder, Loader, LoaderConfig};
    let mut cfg = LoaderConfig::new(image, batch);
    cfg.shuffle = true;
    cfg.augment = augment.then_some(Augment::TUTORIAL);
    if let Some(w) = workers {
        cfg.workers = w;
    }
    let batch_bytes = batch as u128 * image as u128 * image as u128 * 3 * 4;
    incept::host_memory::check_host_bytes(|| format!("--batch {batch} × --image-size {image}: decoded batches in flight"), (cfg.prefetch as u128 + 2) * batch_bytes)?;
    let loader = Loader::new(ImageFolder::open(data)?, cfg)?;
    println!("{}: {} images, {image}x{image}, batch {batch}, {} workers, augmentation {}", data.display(), loader.len(), cfg.workers, if augment { "on" } else { "off" });
    for epoch in 0..epochs.max(1) {
        let start = Instant::now();
        let mut images = 0;
        for b in loader.epoch(epoch) {
            images += b?.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!("epoch {}: {images} images in {:.2} s = {:.0} images/s", epoch + 1, secs, images as f64 / secs);
    }
    Ok(())
}
