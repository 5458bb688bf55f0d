//! The fit loop: epochs of augmented training batches, validation, history,
//! plots, checkpoints (best by val_loss and last), ReduceLROnPlateau, resume,
//! and a final test evaluation.

use super::checkpoint::{self, BEST, LAST, TrainState};
use super::classifier::Classifier;
use super::config::TrainConfig;
use super::feature_cache::{self, CacheKey, FeatureCache};
use super::optimizer::Adam;
use super::schedule::ReduceLrOnPlateau;
use crate::autograd as ag;
use crate::data::augment::Augment;
use crate::data::folder::ImageFolder;
use crate::data::loader::{Batch, Loader, LoaderConfig};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{loss, optim::AdamConfig};
use crate::report::history::{EpochRecord, History};
use crate::report::plots;
use crate::tensor::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub const RUN_CONFIG: &str = "run.json";

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub epochs: usize,
    pub best_val_loss: f64,
    pub test_accuracy: Option<f64>,
    pub skipped_files: usize,
    pub seconds_per_epoch: f64,
    pub images_per_second: f64,
}

/// Loss and accuracy over a split (sample-weighted means, as Keras reports them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scores {
    pub loss: f64,
    pub accuracy: f64,
    pub images: usize,
    /// Images whose frozen-prefix outputs came from the feature cache.
    pub from_cache: usize,
}

/// Batches between readbacks of the running loss and accuracy. Reading a
/// value waits for the GPU; collecting several steps' results per wait lets
/// the host record the next steps while the GPU still runs earlier ones.
const READBACK_EVERY: usize = 8;

/// Sample-weighted running loss and accuracy, fed by GPU scalars that are
/// read back in groups.
#[derive(Default)]
struct Running {
    loss_sum: f64,
    correct: u64,
    images: usize,
    /// (loss [1], correct count u32 [1], batch size) not yet read back.
    pending: Vec<(Tensor, Tensor, usize)>,
    /// Time spent waiting for the GPU in readbacks.
    gpu_wait: f64,
}

impl Running {
    fn push(&mut self, loss: Tensor, correct: Tensor, n: usize) -> Result<()> {
        self.pending.push((loss, correct, n));
        if self.pending.len() >= READBACK_EVERY { self.read() } else { Ok(()) }
    }

    /// Reads every pending result (one wait for the GPU, then cheap copies).
    fn read(&mut self) -> Result<()> {
        let start = Instant::now();
        for (loss, correct, n) in self.pending.drain(..) {
            self.loss_sum += loss.scalar()? as f64 * n as f64;
            self.correct += correct.to_vec_u32()?[0] as u64;
            self.images += n;
        }
        self.gpu_wait += start.elapsed().as_secs_f64();
        Ok(())
    }

    fn scores(&self) -> Scores {
        let n = self.images.max(1) as f64;
        Scores { loss: self.loss_sum / n, accuracy: self.correct as f64 / n, images: self.images, from_cache: 0 }
    }
}

fn loader(folder: ImageFolder, cfg: &TrainConfig, training: bool) -> Result<Loader> {
    let mut lc = LoaderConfig::new(cfg.image_size, cfg.batch);
    lc.preprocess = cfg.preprocess;
    lc.seed = cfg.seed;
    lc.shuffle = training;
    lc.augment = (training && cfg.augment).then_some(Augment {
        shear_range_deg: cfg.shear_degrees,
        zoom_range: cfg.zoom,
        horizontal_flip: cfg.horizontal_flip,
    });
    Loader::new(folder, lc)
}

fn one_hot(gpu: &Gpu, b: &Batch, classes: usize) -> Result<Tensor> {
    Tensor::from_slice(gpu, &[b.len(), classes], &b.one_hot)
}

/// Loss and accuracy of `model` on a split, in inference mode, through
/// `cache` when given (a cache of this split's images).
pub fn evaluate_split(gpu: &Gpu, model: &Classifier, loader: &Loader, classes: usize, mut cache: Option<&mut FeatureCache>) -> Result<Scores> {
    let mut run = Running::default();
    let mut from_cache = 0;
    ag::no_grad(|| -> Result<()> {
        for batch in feature_cache::epoch(loader, 0, cache.as_deref_mut()) {
            let batch = batch?;
            let t = one_hot(gpu, &batch, classes)?;
            let (logits, cached) = feature_cache::logits(model, cache.as_deref_mut(), &batch, false, 0)?;
            from_cache += cached;
            let (l, _) = loss::softmax_cross_entropy(logits.value(), &t)?;
            let correct = loss::correct_count(logits.value(), &t)?;
            run.push(l, correct, batch.len())?;
        }
        run.read()
    })?;
    Ok(Scores { from_cache, ..run.scores() })
}

/// Checks that `dir` can hold the run's outputs before any training starts.
fn prepare_run_dir(dir: &Path) -> Result<()> {
    let err = |e: std::io::Error| Error::Io { path: dir.display().to_string(), reason: format!("cannot write the run directory: {e}") };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(".incept-write-test");
    std::fs::write(&probe, b"ok").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

pub fn save_config(dir: &Path, cfg: &TrainConfig) -> Result<()> {
    let json = serde_json::to_string_pretty(cfg).expect("config serialises");
    crate::io::atomic::write_atomic(&dir.join(RUN_CONFIG), json.as_bytes())
}

pub fn load_config(dir: &Path) -> Result<TrainConfig> {
    let path = dir.join(RUN_CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("cannot read the run configuration: {e}") })?;
    serde_json::from_str(&text).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("bad run configuration: {e}") })
}

/// Trains (or resumes, when `run_dir` holds a run) and returns the summary.
/// `interrupt` is polled between batches: when set, the loop stops without
/// writing anything, leaving the last complete checkpoint in place.
pub fn fit(gpu: &Gpu, cfg: TrainConfig, run_dir: &Path, resume: bool, interrupt: Arc<AtomicBool>) -> Result<RunSummary> {
    let train_folder = ImageFolder::open(&cfg.data.join("train"))?;
    let valid_folder = ImageFolder::open(&cfg.data.join("valid"))?;
    valid_folder.check_same_classes(&train_folder)?;
    let test_folder = match cfg.data.join("test") {
        p if p.is_dir() => {
            let f = ImageFolder::open(&p)?;
            f.check_same_classes(&train_folder)?;
            Some(f)
        }
        _ => None,
    };
    if train_folder.classes() != cfg.classes.as_slice() {
        return Err(Error::Invalid(format!(
            "{}: classes {:?} differ from the run's classes {:?}",
            train_folder.root().display(),
            train_folder.classes(),
            cfg.classes
        )));
    }
    prepare_run_dir(run_dir)?;
    let classes = cfg.classes.len();

    let (model, mut state, mut history, mut optimizer);
    if resume {
        let (weights, saved) = checkpoint::load(&run_dir.join(LAST))?;
        model = Classifier::from_tensor_map(gpu, &cfg, &weights)?;
        optimizer = Adam::new(model.trainable_params(), AdamConfig { lr: saved.lr as f32, ..AdamConfig::default() })?;
        optimizer.load_state(&weights, saved.optimizer_step)?;
        history = History::load(run_dir)?;
        history.epochs.truncate(saved.epoch);
        state = saved;
    } else {
        save_config(run_dir, &cfg)?;
        model = Classifier::new(gpu, &cfg)?;
        optimizer = Adam::new(model.trainable_params(), AdamConfig { lr: cfg.lr as f32, ..AdamConfig::default() })?;
        history = History::default();
        state = TrainState { epoch: 0, optimizer_step: 0, lr: cfg.lr, best_val_loss: f64::INFINITY, plateau: ReduceLrOnPlateau::default() };
    }

    let train = loader(train_folder, &cfg, true)?;
    let valid = loader(valid_folder, &cfg, false)?;
    // Validation images are never augmented; training images only without augmentation.
    let key = match cfg.feature_cache {
        true => Some(CacheKey { image_size: cfg.image_size, preprocess: cfg.preprocess, weights_hash: model.frozen_weights_hash()? }),
        false => None,
    };
    let mut valid_cache = key.map(|k| feature_cache::for_split(gpu, k, &valid));
    let mut train_cache = key.filter(|_| !cfg.augment).map(|k| feature_cache::for_split(gpu, k, &train));
    let mut epoch_seconds = Vec::new();
    let mut rates = Vec::new();
    for epoch in state.epoch..cfg.epochs {
        let started = Instant::now();
        let bar = ProgressBar::new(train.batches_per_epoch() as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
        let mut run = Running::default();
        let mut data_wait = 0.0;
        let mut from_cache = 0;
        let mut batches = feature_cache::epoch(&train, epoch, train_cache.as_mut());
        for step in 0.. {
            if interrupt.load(Ordering::SeqCst) {
                bar.abandon_with_message("interrupted");
                return Err(Error::Invalid(format!("interrupted; {} holds the last complete epoch", run_dir.join(LAST).display())));
            }
            let waited = Instant::now();
            let Some(batch) = batches.next() else { break };
            data_wait += waited.elapsed().as_secs_f64();
            let batch = batch?;
            let t = one_hot(gpu, &batch, classes)?;
            let seed = cfg.seed ^ ((epoch as u64) << 32) ^ step as u64;
            let (logits, cached) = feature_cache::logits(&model, train_cache.as_mut(), &batch, true, seed)?;
            from_cache += cached;
            let (l, _) = ag::softmax_cross_entropy(&logits, &t)?;
            let correct = loss::correct_count(logits.value(), &t)?;
            let grads = l.backward()?;
            optimizer.apply(&grads)?;
            let read_before = run.images;
            run.push(l.value().clone(), correct, batch.len())?;
            if run.images != read_before {
                let s = run.scores();
                let rate = s.images as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {:.4} acc {:.4} {:.1} img/s, {from_cache} from the feature cache", s.loss, s.accuracy, rate));
            }
            bar.inc(1);
        }
        run.read()?;
        let train_scores = run.scores();
        let train_seconds = started.elapsed().as_secs_f64();
        let val = evaluate_split(gpu, &model, &valid, classes, valid_cache.as_mut())?;
        let seconds = started.elapsed().as_secs_f64();
        let images_per_second = train_scores.images as f64 / train_seconds;
        let cache_note = match key {
            Some(_) => format!("{from_cache} train + {} val images from the feature cache", val.from_cache),
            None => "feature cache off".to_string(),
        };
        let line = format!(
            "loss {:.4} acc {:.4} val_loss {:.4} val_acc {:.4} lr {:.1e} {:.1} img/s {:.0} s, {cache_note} (waited {:.1} s for data, {:.1} s for the GPU)",
            train_scores.loss, train_scores.accuracy, val.loss, val.accuracy, state.lr, images_per_second, seconds, data_wait, run.gpu_wait
        );
        if bar.is_hidden() {
            // Not a terminal (a log file, CI): one plain line per epoch instead of the bar.
            println!("epoch {}/{} {line}", epoch + 1, cfg.epochs);
        }
        bar.finish_with_message(line);
        history.append(EpochRecord {
            epoch: epoch + 1,
            loss: train_scores.loss,
            accuracy: train_scores.accuracy,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            lr: state.lr,
            seconds,
            images_per_second,
        })?;
        epoch_seconds.push(seconds);
        rates.push(images_per_second);

        state.epoch = epoch + 1;
        state.optimizer_step = optimizer.step;
        let improved = val.loss < state.best_val_loss;
        if improved {
            state.best_val_loss = val.loss;
        }
        state.lr = state.plateau.on_epoch_end(val.loss, state.lr);
        optimizer.config.lr = state.lr as f32;
        history.save(run_dir)?;
        plots::save_plots(&history, run_dir)?;
        if improved {
            checkpoint::save(&run_dir.join(BEST), &model, &optimizer, &state)?;
        }
        checkpoint::save(&run_dir.join(LAST), &model, &optimizer, &state)?;
    }

    let test_accuracy = match test_folder {
        Some(f) => {
            let (weights, _) = checkpoint::load(&run_dir.join(BEST))?;
            let best = Classifier::from_tensor_map(gpu, &cfg, &weights)?;
            let test = loader(f, &cfg, false)?;
            Some(evaluate_split(gpu, &best, &test, classes, None)?.accuracy)
        }
        None => None,
    };
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    Ok(RunSummary {
        run_dir: run_dir.to_path_buf(),
        epochs: state.epoch,
        best_val_loss: state.best_val_loss,
        test_accuracy,
        skipped_files: train.skipped() + valid.skipped(),
        seconds_per_epoch: mean(&epoch_seconds),
        images_per_second: mean(&rates),
    })
}
