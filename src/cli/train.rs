//! `incept train`: the Keras transfer-learning recipe on an image folder.

use clap::Args;
use incept::data::Preprocess;
use incept::data::folder::ImageFolder;
use incept::train::fit::{self, RunSummary};
use incept::train::TrainConfig;
use incept::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args)]
pub struct TrainArgs {
    /// Dataset root with train/, valid/ and optionally test/, one subfolder per class.
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Pretrained base weights (safetensors with Keras names).
    #[arg(long, conflicts_with = "random_init")]
    weights: Option<PathBuf>,
    /// Train the base from Keras's random initialisation instead of pretrained weights.
    #[arg(long)]
    random_init: bool,
    /// Run directory: history, plots, checkpoints.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Trainable tail of the base: Keras's `model.layers[-N:]`.
    #[arg(long, default_value_t = 15)]
    unfreeze_last: usize,
    /// Hidden Dense layer sizes of the head.
    #[arg(long, value_delimiter = ',', default_value = "512,512")]
    head: Vec<usize>,
    #[arg(long, default_value_t = 0.3)]
    dropout: f32,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Disable shear/zoom/flip augmentation.
    #[arg(long)]
    no_augment: bool,
    #[arg(long, value_enum, default_value_t = Preprocess::Rescale)]
    preprocess: Preprocess,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Recompute the frozen base's outputs of unaugmented images every epoch
    /// instead of caching them (same results, slower; also on --resume).
    #[arg(long)]
    no_feature_cache: bool,
}

pub fn run(adapter: Option<String>, args: TrainArgs) -> Result<()> {
    let (cfg, run_dir, resume) = match &args.resume {
        Some(dir) => {
            let mut cfg = fit::load_config(dir)?;
            cfg.epochs = args.epochs.max(cfg.epochs);
            cfg.feature_cache &= !args.no_feature_cache;
            (cfg, dir.clone(), true)
        }
        None => {
            let data = args.data.clone().expect("clap requires --data");
            let weights = match (&args.weights, args.random_init) {
                (Some(w), _) => Some(w.clone()),
                (None, true) => None,
                (None, false) => {
                    return Err(Error::Invalid("give --weights FILE (pretrained base) or --random-init".into()));
                }
            };
            if args.batch == 0 || args.epochs == 0 {
                return Err(Error::Invalid("--batch and --epochs must be at least 1".into()));
            }
            let classes = ImageFolder::open(&data.join("train"))?.classes().to_vec();
            let cfg = TrainConfig {
                data,
                weights,
                image_size: args.image_size,
                batch: args.batch,
                epochs: args.epochs,
                unfreeze_last: args.unfreeze_last,
                head: args.head.clone(),
                dropout: args.dropout,
                lr: args.lr,
                augment: !args.no_augment,
                shear_degrees: 0.2,
                zoom: 0.2,
                horizontal_flip: true,
                preprocess: args.preprocess,
                seed: args.seed,
                feature_cache: !args.no_feature_cache,
                classes,
            };
            (cfg, args.out.clone().expect("clap requires --out"), false)
        }
    };
    let gpu = super::open_gpu(adapter)?;
    println!(
        "incept train on {}: {} classes {:?}, {}x{} images, batch {}, {} epochs, last {} layers of the base trainable, preprocess {:?}, feature cache {}{}",
        gpu.name(),
        cfg.classes.len(),
        cfg.classes,
        cfg.image_size,
        cfg.image_size,
        cfg.batch,
        cfg.epochs,
        cfg.unfreeze_last,
        cfg.preprocess,
        if cfg.feature_cache { "on" } else { "off" },
        match &cfg.weights {
            Some(w) => format!(", base weights {}", w.display()),
            None => ", randomly initialised base".into(),
        }
    );
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once); the last checkpoint stays intact");
    })
    .map_err(|e| Error::Invalid(format!("cannot install the Ctrl-C handler: {e}")))?;
    let summary = fit::fit(&gpu, cfg, &run_dir, resume, interrupt)?;
    print_summary(&summary);
    Ok(())
}

fn print_summary(s: &RunSummary) {
    println!("\nrun: {}", s.run_dir.display());
    println!("epochs: {}   best val_loss: {:.4}   {:.1} s/epoch   {:.1} images/s (training)", s.epochs, s.best_val_loss, s.seconds_per_epoch, s.images_per_second);
    if let Some(acc) = s.test_accuracy {
        println!("test accuracy (best checkpoint): {acc:.4}");
    }
    if s.skipped_files > 0 {
        println!("skipped unreadable files: {} (see the warnings above)", s.skipped_files);
    }
    println!("plots: {}, {}", s.run_dir.join("loss.png").display(), s.run_dir.join("accuracy.png").display());
    println!("history: {}", s.run_dir.join("history.csv").display());
}
