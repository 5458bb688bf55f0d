//! `incept bench`: kernel and model throughput tables (measurements, not tests).

use clap::Subcommand;
use incept::autograd as ag;
use incept::models::InceptionV3;
use incept::ops::conv::ConvAlgo;
use incept::ops::optim::{AdamConfig, adam_step};
use incept::ops::pool;
use incept::{Error, Gpu, Result, Tensor};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// GFLOP/s of the forward convolution for each distinct InceptionV3 conv shape.
    Kernels {
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        /// Kernel variant: auto (per adapter), direct, blocked, tiled, tiled-large or winograd
        /// (3×3 stride-1 shapes only; the others are listed as skipped).
        #[arg(long, default_value = "auto")]
        algo: String,
        /// Minimum seconds of repetitions per shape (after one warm-up run).
        #[arg(long, default_value_t = 0.5)]
        min_time: f64,
        /// Only the first N shapes (quick checks).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the shapes as CSV (for benches/libtorch/conv_shapes.py) and exit.
        #[arg(long)]
        list: bool,
        /// Also compare each output with the Direct oracle (relative L2 column).
        #[arg(long)]
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
    /// Images/s of the InceptionV3 forward pass (frozen, fused) and of a fine-tune step
    /// (forward in training mode, GAP → Dense head, cross-entropy, backward, Adam).
    Model {
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        #[arg(long, default_value_t = 15)]
        unfreeze_last: usize,
        /// Weights (safetensors); random Keras initialisation when absent (same speed).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Timed iterations of each (after one warm-up).
        #[arg(long, default_value_t = 3)]
        iters: usize,
    },
}

pub fn run(adapter: Option<String>, cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Kernels { list: true, image_size, .. } => list_conv_shapes(image_size),
        BenchCommand::Kernels { batch, image_size, algo, min_time, limit, check, .. } => {
            kernels(&super::open_gpu(adapter)?, batch, image_size, &algo, min_time, limit, check)
        }
        BenchCommand::Loader { data, image_size, batch, workers, no_augment, epochs } => loader(&data, image_size, batch, workers, !no_augment, epochs),
        BenchCommand::Model { batch, image_size, unfreeze_last, weights, iters } => {
            model(&super::open_gpu(adapter)?, batch, image_size, unfreeze_last, weights, iters)
        }
    }
}

fn list_conv_shapes(image: usize) -> Result<()> {
    println!("h,w,cin,cout,kh,kw,stride,padding");
    for s in incept::bench::inception_v3_conv_shapes(image) {
        let pad = if s.win.padding == incept::ops::Padding::Same { "same" } else { "valid" };
        println!("{},{},{},{},{},{},{},{pad}", s.h, s.w, s.cin, s.cout, s.win.kh, s.win.kw, s.win.stride_h);
    }
    Ok(())
}

fn kernels(gpu: &Gpu, batch: usize, image: usize, algo: &str, min_time: f64, limit: Option<usize>, check: bool) -> Result<()> {
    if image < 75 {
        return Err(Error::Invalid(format!("--image-size {image}: InceptionV3 needs at least 75")));
    }
    let algo = match algo {
        "auto" => None,
        name => Some(
            ConvAlgo::from_name(name)
                .ok_or_else(|| Error::Invalid(format!("--algo {name:?}: expected auto or one of {}", ConvAlgo::NAMES)))?,
        ),
    };
    let mut shapes = incept::bench::inception_v3_conv_shapes(image);
    shapes.truncate(limit.unwrap_or(shapes.len()));
    let (skipped, shapes): (Vec<_>, Vec<_>) = shapes.into_iter().partition(|s| algo.is_some_and(|a| !a.supports(&s.win)));
    let variant = algo.map_or("auto (the dispatcher's choice per shape)".into(), |a| format!("{a:?}"));
    println!("adapter: {}", gpu.name());
    println!("conv2d forward (+ReLU), batch {batch}, {image}x{image} input, {variant}, {} distinct shapes", shapes.len());
    for s in &skipped {
        println!("skipped ({variant} cannot compute this window): {}", s.label());
    }
    println!("{:<3} {:<36} {:>10} {:>9}", "#", "input HxWxCin  kernel stride pad -> Cout", "ms", "GFLOP/s");
    let mut i = 0;
    let rows = incept::bench::bench_conv(gpu, &shapes, batch, algo, Duration::from_secs_f64(min_time), check, |r| {
        i += 1;
        let err = r.error.map_or(String::new(), |e| format!("  vs oracle {e:.1e}"));
        println!("{:<3} {:<36} {:>10.2} {:>9.2}{err}", i, r.shape.label(), r.seconds * 1e3, r.gflops);
    })?;
    if let Some(worst) = rows.iter().filter_map(|r| r.error).reduce(f64::max) {
        println!("largest relative L2 error against the Direct oracle: {worst:.2e}");
        if worst > 1e-4 {
            return Err(Error::Invalid(format!("{variant} disagrees with the Direct oracle (relative L2 {worst:.2e} > 1e-4)")));
        }
    }
    let (flops, secs) = rows.iter().fold((0.0, 0.0), |(f, t), r| (f + r.shape.flops(batch), t + r.seconds));
    println!("total: {:.2} GFLOP in {:.1} ms = {:.2} GFLOP/s", flops / 1e9, secs * 1e3, flops / secs / 1e9);
    Ok(())
}

fn model(gpu: &Gpu, batch: usize, image: usize, unfreeze_last: usize, weights: Option<PathBuf>, iters: usize) -> Result<()> {
    let net = match &weights {
        Some(p) => InceptionV3::from_safetensors(gpu, p, unfreeze_last)?,
        None => InceptionV3::random(gpu, 0, unfreeze_last)?,
    };
    let n = batch * image * image * 3;
    let x = Tensor::from_slice(gpu, &[batch, image, image, 3], &incept::reference::random(n, 1, 0.0, 1.0))?;
    println!("adapter: {}", gpu.name());
    println!("InceptionV3 batch {batch}, {image}x{image}, last {unfreeze_last} layers trainable");

    let time = |label: &str, iters: usize, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        f()?;
        gpu.synchronize()?;
        let start = Instant::now();
        for _ in 0..iters.max(1) {
            f()?;
        }
        gpu.synchronize()?;
        let per = start.elapsed().as_secs_f64() / iters.max(1) as f64;
        println!("{label:<34} {:>9.1} ms/batch {:>9.1} images/s", per * 1e3, batch as f64 / per);
        Ok(())
    };
    time("forward (inference, fused)", iters, &mut || {
        let y = net.infer_layers(&x, &["mixed10"])?;
        drop(pool::global_avg_pool(&y[0])?);
        Ok(())
    })?;

    // A fine-tune step as the Keras recipe runs it: head GAP → Dense(4) → softmax CE, Adam on every trainable weight.
    let classes = 4;
    let head_w = ag::Var::parameter(Tensor::from_slice(gpu, &[2048, classes], &incept::reference::random(2048 * classes, 2, -0.05, 0.05))?, true);
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
    time("fine-tune step (fwd+bwd+Adam)", iters, &mut || {
        step += 1;
        let y = net.forward(&x, true)?;
        let logits = ag::dense(&ag::global_avg_pool(&y)?, &head_w, &head_b, false)?;
        let (loss, _) = ag::softmax_cross_entropy(&logits, &targets)?;
        let grads = loss.backward()?;
        for (p, (m, v)) in params.iter().zip(&state) {
            if let Some(g) = grads.get(p) {
                adam_step(p.value(), g, m, v, &AdamConfig::default(), step)?;
            }
        }
        Ok(())
    })?;
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
