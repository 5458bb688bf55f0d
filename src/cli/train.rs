//! `incept train`: the Keras transfer-learning recipe on an image folder.

use clap::Args;
use super::dicom::DicomArgs;
use incept::data::{DicomOptions, Preprocess};
use incept::data::folder::ImageFolder;
use incept::train::fit::{self, RunSummary};
use incept::train::profile::ProfileSteps;
use incept::train::{TrainConfig, run_dir, start};
use incept::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Flags that configure a run have no clap default: `--resume` must know
/// which were given (to refuse a conflicting one), and a new run fills in
/// the defaults named in each help line.
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
    /// Run directory: history, plots, checkpoints. Refused when it holds a run already.
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// With --out: replace the run that directory holds.
    #[arg(long, requires = "out")]
    overwrite: bool,
    /// Continue the run in this directory from its last checkpoint (--epochs may change its length).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Input side in pixels [default: 224].
    #[arg(long)]
    image_size: Option<usize>,
    /// [default: 32]
    #[arg(long)]
    batch: Option<usize>,
    /// [default: 10]
    #[arg(long)]
    epochs: Option<usize>,
    /// Trainable tail of the base: Keras's `model.layers[-N:]` [default: 15].
    #[arg(long)]
    unfreeze_last: Option<usize>,
    /// Hidden Dense layer sizes of the head [default: 512,512].
    #[arg(long, value_delimiter = ',')]
    head: Option<Vec<usize>>,
    /// [default: 0.3]
    #[arg(long)]
    dropout: Option<f32>,
    /// [default: 0.001]
    #[arg(long)]
    lr: Option<f64>,
    /// Disable shear/zoom/flip augmentation.
    #[arg(long)]
    no_augment: bool,
    /// [default: rescale]
    #[arg(long, value_enum)]
    preprocess: Option<Preprocess>,
    /// [default: 0]
    #[arg(long)]
    seed: Option<u64>,
    /// Profile the first training steps (the whole first epoch unless --profile-steps):
    /// time per kernel and layer, and outside kernels; writes RUN/profile.json and RUN/profile.png.
    #[arg(long)]
    profile: bool,
    /// Profile only the first N training steps.
    #[arg(long, requires = "profile")]
    profile_steps: Option<usize>,
    /// Recompute the frozen base's outputs of unaugmented images every epoch
    /// instead of caching them (same results, slower; also on --resume).
    #[arg(long)]
    no_feature_cache: bool,
    #[command(flatten)]
    dicom: DicomArgs,
}

/// `path` made absolute and canonical, so the run does not depend on the
/// working directory; errors name the flag.
fn canonical(flag: &str, path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("{flag}: {e}") })
}

/// The configuration of a new run from the flags, defaults filled in.
fn new_config(args: &TrainArgs, data: &Path) -> Result<TrainConfig> {
    let weights = match (&args.weights, args.random_init) {
        (Some(w), _) => Some(canonical("--weights", w)?),
        (None, true) => None,
        (None, false) => return Err(Error::Invalid("give --weights FILE (pretrained base) or --random-init".into())),
    };
    let data = canonical("--data", data)?;
    let classes = ImageFolder::open(&data.join("train"))?.classes().to_vec();
    Ok(TrainConfig {
        data,
        weights,
        image_size: args.image_size.unwrap_or(224),
        batch: args.batch.unwrap_or(32),
        epochs: args.epochs.unwrap_or(10),
        unfreeze_last: args.unfreeze_last.unwrap_or(15),
        head: args.head.clone().unwrap_or_else(|| vec![512, 512]),
        dropout: args.dropout.unwrap_or(0.3),
        lr: args.lr.unwrap_or(1e-3),
        augment: !args.no_augment,
        shear_degrees: 0.2,
        zoom: 0.2,
        horizontal_flip: true,
        preprocess: args.preprocess.unwrap_or(Preprocess::Rescale),
        seed: args.seed.unwrap_or(0),
        feature_cache: !args.no_feature_cache,
        dicom: args.dicom.over(DicomOptions::default()),
        classes,
    })
}

/// The run's configuration for `--resume`: each flag given must agree with
/// run.json (a resumed run keeps its model, data and schedule), except
/// `--epochs`, which sets a new length.
fn resume_config(args: &TrainArgs, dir: &Path) -> Result<TrainConfig> {
    let mut cfg = run_dir::load_config(dir)?;
    let refuse = |flag: &str, given: String, saved: String| {
        Err(Error::Invalid(format!(
            "--resume {}: {flag} {given} conflicts with the run's {saved} (run.json); a resumed run keeps its configuration, so drop {flag} or start a new run with --out",
            dir.display()
        )))
    };
    macro_rules! same {
        ($flag:literal, $given:expr, $saved:expr) => {
            if let Some(given) = $given
                && given != $saved
            {
                return refuse($flag, format!("{given:?}"), format!("{:?}", $saved));
            }
        };
    }
    same!("--data", args.data.as_deref().map(|d| canonical("--data", d)).transpose()?, cfg.data);
    same!("--weights", args.weights.as_deref().map(|w| canonical("--weights", w).map(Some)).transpose()?, cfg.weights);
    same!("--random-init", args.random_init.then_some(None::<PathBuf>), cfg.weights);
    same!("--image-size", args.image_size, cfg.image_size);
    same!("--batch", args.batch, cfg.batch);
    same!("--unfreeze-last", args.unfreeze_last, cfg.unfreeze_last);
    if let Some(head) = &args.head
        && *head != cfg.head
    {
        let flag = |h: &[usize]| h.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        return refuse("--head", flag(head), flag(&cfg.head));
    }
    same!("--dropout", args.dropout, cfg.dropout);
    same!("--lr", args.lr, cfg.lr);
    same!("--no-augment", args.no_augment.then_some(false), cfg.augment);
    same!("--preprocess", args.preprocess, cfg.preprocess);
    same!("--seed", args.seed, cfg.seed);
    same!("--dicom-window", args.dicom.dicom_window.map(Some), cfg.dicom.window);
    same!("--dicom-frame", args.dicom.dicom_frame.map(Some), cfg.dicom.frame);
    if let Some(epochs) = args.epochs {
        cfg.epochs = epochs;
    }
    // A speed setting only (results are the same either way): applied on resume.
    cfg.feature_cache &= !args.no_feature_cache;
    Ok(cfg)
}

pub fn run(adapter: Option<String>, args: TrainArgs) -> Result<()> {
    // Everything that needs no adapter is checked first.
    let (cfg, target) = match (&args.resume, &args.out, &args.data) {
        (Some(dir), _, _) => (resume_config(&args, dir)?, Target::Resume(dir.clone())),
        (None, Some(out), Some(data)) => {
            if run_dir::holds_run(out) && !args.overwrite {
                return Err(run_dir::refuse_existing(out));
            }
            let cfg = new_config(&args, data)?;
            cfg.validate()?;
            (cfg, Target::New { out: out.clone(), overwrite: args.overwrite })
        }
        _ => return Err(Error::Invalid("give --data DIR --out RUN for a new run, or --resume RUN".into())),
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
    if cfg.dicom != DicomOptions::default() {
        println!("DICOM input: {}", cfg.dicom.describe());
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once); the last checkpoint stays intact");
    })
    .map_err(|e| Error::Invalid(format!("cannot install the Ctrl-C handler: {e}")))?;
    let profile = match (args.profile, args.profile_steps) {
        (false, _) => ProfileSteps::Off,
        (true, None) => ProfileSteps::FirstEpoch,
        (true, Some(n)) => ProfileSteps::First(n),
    };
    let started = match target {
        Target::New { out, overwrite } => start::new_run(&gpu, cfg, &out, overwrite)?,
        Target::Resume(dir) => start::resume(&gpu, &dir, cfg)?,
    };
    // The run directory is locked, cleaned and consistent from here on.
    println!("run {}: epoch {} of {} next", started.run.path().display(), started.state.epoch + 1, started.cfg.epochs);
    let summary = fit::fit(&gpu, started, interrupt, profile)?;
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

enum Target {
    New { out: PathBuf, overwrite: bool },
    Resume(PathBuf),
}
