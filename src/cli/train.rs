//! `incept train`: the Keras transfer-learning recipe on an image folder.

use clap::Args;
use super::dicom::DicomArgs;
use super::precision::PrecisionArgs;
use incept::data::{DicomOptions, Preprocess};
use incept::data::folder::ImageFolder;
use incept::data::split::stratified_split;
use incept::models::{Backbone, WeightsFile};
use incept::train::callbacks::{CallbackConfig, Monitor};
use incept::train::fit::{self, RunSummary};
use incept::train::profile::ProfileSteps;
use incept::train::config::defaults;
use incept::io::output_paths::{Named, named, refuse_output_inside_inputs};
use incept::train::{TrainConfig, class_weight, run_dir, stages, start};
use incept::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Flags that configure a run have no clap default: `--resume` must know
/// which were given (to refuse a conflicting one), and a new run fills in
/// the defaults named in each help line.
#[derive(Args)]
pub struct TrainArgs {
    /// Dataset root with train/, valid/ (or --validation-split) and optionally test/, one subfolder per class.
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Pretrained base weights (safetensors with Keras names).
    #[arg(long, conflicts_with_all = ["random_init", "init"])]
    weights: Option<PathBuf>,
    /// Train the base from Keras's random initialisation instead of pretrained weights.
    #[arg(long, conflicts_with = "init")]
    random_init: bool,
    /// The base network. With --weights it is the file's (a file of another backbone is
    /// refused); with --init, that run's; with --random-init it picks one [default: inception_v3].
    #[arg(long, value_enum)]
    backbone: Option<Backbone>,
    /// Start from the best weights (base and head) of the run in this directory, with a
    /// fresh optimizer: e.g. stage 1 `--unfreeze-last 0`, then stage 2
    /// `--unfreeze-last 15 --lr 1e-5 --init STAGE1`. Its classes, --head and --preprocess must be this run's.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Two stages in one run: N epochs of the head alone (whole base frozen) at --lr, then
    /// --epochs epochs with --unfreeze-last layers trainable at --fine-tune-lr, with a fresh
    /// Adam (the Keras guide's recipe; resumable in either stage) [default: 0, one stage].
    #[arg(long)]
    head_epochs: Option<usize>,
    /// The second stage's learning rate with --head-epochs [default: --lr / 100; the Keras
    /// guide trains the head at 1e-3, then fine-tunes at 1e-5].
    #[arg(long)]
    fine_tune_lr: Option<f64>,
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
    /// How pixels are scaled [default: what the weights file says it was trained on
    /// (rescale for InceptionV3 and MobileNetV2, lite for EfficientNet-Lite0)].
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
    /// Without DATA/valid: validate on this stratified, seeded fraction of train/ (recorded in RUN/split.json).
    #[arg(long, allow_hyphen_values = true)]
    validation_split: Option<f64>,
    /// What early stopping, ReduceLROnPlateau and the best checkpoint follow [default: val_loss].
    #[arg(long, value_enum)]
    monitor: Option<Monitor>,
    /// Stop when the monitored value has not improved for this many epochs; the final model is the best epoch.
    #[arg(long)]
    early_stopping: Option<usize>,
    /// An improvement must beat the best value so far by more than this (Keras min_delta) [default: 0].
    #[arg(long, requires = "early_stopping", allow_hyphen_values = true)]
    min_delta: Option<f64>,
    /// ReduceLROnPlateau: epochs without improvement before the rate is reduced [default: 10].
    #[arg(long)]
    plateau_patience: Option<usize>,
    /// ReduceLROnPlateau: factor the rate is multiplied by, in (0, 1) [default: 0.1].
    #[arg(long, allow_hyphen_values = true)]
    plateau_factor: Option<f64>,
    /// ReduceLROnPlateau: the lowest rate it reduces to [default: 0].
    #[arg(long, allow_hyphen_values = true)]
    min_lr: Option<f64>,
    /// Weigh each training sample's loss by its class (Keras `class_weight`):
    /// `balanced` (n_samples / (n_classes · count), from train/'s counts),
    /// `CLASS=W,...` by folder name (classes not named weigh 1), or `none`.
    /// Resolved once and stored in run.json; validation loss is unweighted [default: none].
    #[arg(long)]
    class_weight: Option<String>,
    /// Keep every BatchNorm layer of the base in inference mode while training, trainable
    /// ones included: moving statistics, never updated (the Keras guide's
    /// `base_model(x, training=False)`). Without it, trainable BatchNorm layers use batch
    /// statistics, as the tutorial's model does.
    #[arg(long)]
    bn_inference: bool,
    #[command(flatten)]
    dicom: DicomArgs,
    #[command(flatten)]
    precision: PrecisionArgs,
}

/// `path` made absolute and canonical, so the run does not depend on the
/// working directory; errors name the flag.
fn canonical(flag: &str, path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("{flag}: {e}") })
}

/// The configuration of a new run from the flags, defaults filled in.
fn new_config(args: &TrainArgs, data: &Path) -> Result<TrainConfig> {
    let init = args.init.as_deref().map(|d| canonical("--init", d)).transpose()?;
    // The backbone and its preprocessing come from what the base is built from.
    let (weights, backbone, preprocess) = match (&args.weights, args.random_init, &init) {
        (Some(w), _, _) => {
            let path = canonical("--weights", w)?;
            let file = WeightsFile::read_expecting(&path, args.backbone)?;
            (Some(path), file.backbone, file.preprocess)
        }
        // The base comes from the --init run; its run.json says where that run's base came from.
        (None, false, Some(dir)) => {
            let theirs = run_dir::load_config(dir)?;
            if let Some(b) = args.backbone.filter(|&b| b != theirs.backbone) {
                return Err(Error::Invalid(format!("--backbone {b}: the --init run {} is a {} run", dir.display(), theirs.backbone)));
            }
            (theirs.weights, theirs.backbone, theirs.preprocess)
        }
        (None, true, _) => {
            let backbone = args.backbone.unwrap_or(Backbone::InceptionV3);
            (None, backbone, backbone.default_preprocess())
        }
        (None, false, None) => return Err(Error::Invalid("give --weights FILE (pretrained base), --random-init, or --init RUN".into())),
    };
    let data = canonical("--data", data)?;
    let keras = CallbackConfig::default();
    let callbacks = CallbackConfig {
        monitor: args.monitor.unwrap_or(keras.monitor),
        early_stopping: args.early_stopping,
        min_delta: args.min_delta.unwrap_or(keras.min_delta),
        plateau_patience: args.plateau_patience.unwrap_or(keras.plateau_patience),
        plateau_factor: args.plateau_factor.unwrap_or(keras.plateau_factor),
        min_lr: args.min_lr.unwrap_or(keras.min_lr),
    };
    let train = ImageFolder::open(&data.join("train"))?;
    let classes = train.classes().to_vec();
    let lr = args.lr.unwrap_or(defaults::LR);
    let seed = args.seed.unwrap_or(defaults::SEED);
    // Balanced weights count the images the run trains on: with
    // --validation-split, train/ less the part held out (the same seeded draw).
    let counts = match args.validation_split {
        Some(f) => train.subset(&stratified_split(&train, f, seed)?.train)?.class_counts(),
        None => train.class_counts(),
    };
    let class_weight = class_weight::resolve(args.class_weight.as_deref().unwrap_or("none"), &classes, &counts)?;
    Ok(TrainConfig {
        data,
        backbone,
        weights,
        image_size: args.image_size.unwrap_or(defaults::IMAGE_SIZE),
        batch: args.batch.unwrap_or(defaults::BATCH),
        epochs: args.epochs.unwrap_or(defaults::EPOCHS),
        unfreeze_last: args.unfreeze_last.unwrap_or(defaults::UNFREEZE_LAST),
        head: args.head.clone().unwrap_or_else(|| defaults::HEAD.to_vec()),
        dropout: args.dropout.unwrap_or(defaults::DROPOUT),
        lr,
        augment: !args.no_augment,
        shear_degrees: defaults::SHEAR_DEGREES,
        zoom: defaults::ZOOM,
        horizontal_flip: true,
        preprocess: args.preprocess.unwrap_or(preprocess),
        seed,
        feature_cache: !args.no_feature_cache,
        dicom: args.dicom.over(DicomOptions::default()),
        classes,
        validation_split: args.validation_split,
        callbacks,
        class_weight,
        bn_inference: args.bn_inference,
        init,
        head_epochs: args.head_epochs.unwrap_or(0),
        fine_tune_lr: match args.head_epochs {
            Some(n) if n > 0 => Some(args.fine_tune_lr.unwrap_or_else(|| stages::default_fine_tune_lr(lr))),
            _ => args.fine_tune_lr,
        },
        precision: args.precision.or_default(),
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
                return refuse($flag, plain(format!("{given:?}")), plain(format!("{:?}", $saved)));
            }
        };
    }
    same!("--data", args.data.as_deref().map(|d| canonical("--data", d)).transpose()?, cfg.data);
    same!("--weights", args.weights.as_deref().map(|w| canonical("--weights", w).map(Some)).transpose()?, cfg.weights);
    same!("--random-init", args.random_init.then_some(None::<PathBuf>), cfg.weights);
    same!("--backbone", args.backbone.map(Backbone::name), cfg.backbone.name());
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
    same!("--validation-split", args.validation_split.map(Some), cfg.validation_split);
    same!("--monitor", args.monitor, cfg.callbacks.monitor);
    same!("--early-stopping", args.early_stopping.map(Some), cfg.callbacks.early_stopping);
    same!("--min-delta", args.min_delta, cfg.callbacks.min_delta);
    same!("--plateau-patience", args.plateau_patience, cfg.callbacks.plateau_patience);
    same!("--plateau-factor", args.plateau_factor, cfg.callbacks.plateau_factor);
    same!("--min-lr", args.min_lr, cfg.callbacks.min_lr);
    same!("--bn-inference", args.bn_inference.then_some(true), cfg.bn_inference);
    same!("--init", args.init.as_deref().map(|d| canonical("--init", d).map(Some)).transpose()?, cfg.init);
    same!("--head-epochs", args.head_epochs, cfg.head_epochs);
    same!("--fine-tune-lr", args.fine_tune_lr.map(Some), cfg.fine_tune_lr);
    if let Some(given) = &args.class_weight {
        // The rule as given must be the run's; its weights stay those resolved when the run began.
        class_weight::ClassWeightRule::parse(given)?;
        let saved = cfg.class_weight.as_ref().map_or("none", |cw| cw.rule.as_str());
        if given.trim() != saved {
            return refuse("--class-weight", given.clone(), saved.to_string());
        }
    }
    same!("--dicom-window", args.dicom.dicom_window.map(Some), cfg.dicom.window);
    same!("--dicom-frame", args.dicom.dicom_frame.map(Some), cfg.dicom.frame);
    same!("--precision", args.precision.precision, cfg.precision);
    if let Some(epochs) = args.epochs {
        cfg.epochs = epochs;
    }
    // A speed setting only (results are the same either way): applied on resume.
    cfg.feature_cache &= !args.no_feature_cache;
    Ok(cfg)
}

/// A value as the user types it: `Some(0.5)` → `0.5`, `None` → `none`.
fn plain(debug: String) -> String {
    match debug.strip_prefix("Some(").and_then(|v| v.strip_suffix(')')) {
        Some(v) => v.to_string(),
        None if debug == "None" => "none".into(),
        None => debug,
    }
}

/// The precision as the run summary states it.
fn precision_summary(p: incept::gpu::Precision) -> &'static str {
    match p {
        incept::gpu::Precision::F32 => "f32",
        incept::gpu::Precision::Mixed => "mixed (frozen base: f16 products, f32 sums, cooperative matrices; activations stored in f16)",
    }
}

pub fn run(adapter: Option<String>, args: TrainArgs) -> Result<()> {
    // Everything that needs no adapter is checked first.
    let (cfg, target) = match (&args.resume, &args.out, &args.data) {
        (Some(dir), _, _) => {
            let cfg = resume_config(&args, dir)?;
            let target = Target::Resume(dir.clone());
            refuse_output_inside_inputs(&target.outputs(), &inputs(&cfg.data, cfg.weights.as_deref(), cfg.init.as_deref()))?;
            (cfg, target)
        }
        (None, Some(out), Some(data)) => {
            if run_dir::holds_run(out) && !args.overwrite {
                return Err(run_dir::refuse_existing(out));
            }
            // Before the weights file is even read: the run never writes over what it reads.
            let target = Target::New { out: out.clone(), overwrite: args.overwrite };
            refuse_output_inside_inputs(&target.outputs(), &inputs(data, args.weights.as_deref(), args.init.as_deref()))?;
            let cfg = new_config(&args, data)?;
            cfg.validate()?;
            (cfg, target)
        }
        _ => return Err(Error::Invalid("give --data DIR --out RUN for a new run, or --resume RUN".into())),
    };
    let gpu = super::open_gpu_with(adapter, cfg.precision)?;
    println!(
        "incept train on {}: {} base, {} classes {:?}, {}x{} images, batch {}, {} epochs, last {} layers of the base trainable, preprocess {:?}, precision {}, feature cache {}{}{}",
        gpu.name(),
        cfg.backbone.title(),
        cfg.classes.len(),
        cfg.classes,
        cfg.image_size,
        cfg.image_size,
        cfg.batch,
        cfg.total_epochs(),
        cfg.unfreeze_last,
        cfg.preprocess,
        precision_summary(cfg.precision),
        if cfg.feature_cache { "on" } else { "off" },
        if cfg.bn_inference { ", BatchNorm in inference mode (--bn-inference)" } else { "" },
        match &cfg.weights {
            Some(w) => format!(", base weights {}", w.display()),
            None => ", randomly initialised base".into(),
        }
    );
    let c = &cfg.callbacks;
    println!(
        "validation on {}; monitor {} ({}); early stopping {}; ReduceLROnPlateau patience {} factor {} min_lr {}",
        match cfg.validation_split {
            Some(f) => format!("a stratified {f} of train/ (seed {}, like sklearn's train_test_split; not Keras's ImageDataGenerator validation_split, which holds out the first files of each class)", cfg.seed),
            None => "valid/".into(),
        },
        c.monitor.name(),
        if c.monitor.mode() == incept::train::callbacks::Mode::Min { "min" } else { "max" },
        c.early_stopping.map_or("off".into(), |p| format!("patience {p}, min_delta {}, final model = best epoch", c.min_delta)),
        c.plateau_patience,
        c.plateau_factor,
        c.min_lr
    );
    if let Some(dir) = &cfg.init {
        println!("initial weights (base and head): the best checkpoint of {}; fresh optimizer state", dir.display());
    }
    if let Some(plan) = stages::describe(&cfg) {
        println!("{plan}");
    }
    match &cfg.class_weight {
        Some(cw) => println!("class weights (training loss only): {}", cw.describe(&cfg.classes)),
        None => println!("class weights: none (every sample weighs 1)"),
    }
    if cfg.dicom != DicomOptions::default() {
        println!("DICOM input: {}", cfg.dicom.describe());
    }
    println!(
        "each epoch's loss and acc are measured in training mode, as Keras reports them: over the epoch's batches while the weights change, with dropout, augmentation and BatchNorm batch statistics; val_loss and val_acc in inference mode"
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
    if !started.state.stopped() {
        println!("run {}: epoch {} of {} next", started.run.path().display(), started.state.epoch + 1, started.cfg.total_epochs());
    }
    let summary = fit::fit(&gpu, started, interrupt, profile)?;
    print_summary(&summary);
    Ok(())
}

fn print_summary(s: &RunSummary) {
    println!("\nrun: {}", s.run_dir.display());
    let best = match (s.best_epoch, s.best_value) {
        (Some(e), Some(v)) => format!("epoch {e} ({} {v:.4})", s.monitor.name()),
        (Some(e), None) => format!("epoch {e} (no {} improved on it)", s.monitor.name()),
        _ => "none yet".into(),
    };
    let stopped = s.stopped_epoch.map_or(String::new(), |e| format!(" (early stopping after epoch {e})"));
    println!("epochs: {}{stopped}   best: {best}   {:.1} s/epoch   {:.1} images/s (training)", s.epochs, s.seconds_per_epoch, s.images_per_second);
    if let Some(acc) = s.test_accuracy {
        println!("test accuracy (best epoch's checkpoint, the final model): {acc:.4}");
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

impl Target {
    /// The run directory and every file a run writes there.
    fn outputs(&self) -> Vec<Named> {
        match self {
            Target::New { out, .. } => run_dir::run_outputs("--out", out),
            Target::Resume(dir) => run_dir::run_outputs("--resume", dir),
        }
    }
}

/// What a run reads: the data tree (a run inside it would become data), the
/// base weights and the `--init` run's files.
fn inputs(data: &Path, weights: Option<&Path>, init: Option<&Path>) -> Vec<Named> {
    let mut inputs = vec![named("the data tree (--data)", data)];
    inputs.extend(weights.map(|w| named("the base weights (--weights)", w)));
    if let Some(init) = init {
        inputs.extend(run_dir::run_files_as_inputs(init).into_iter().map(|(what, p)| (format!("--init {what}"), p)));
    }
    inputs
}
