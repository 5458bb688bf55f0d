//! The fit loop: epochs of augmented training batches, validation, history,
//! plots, checkpoints (best by `--monitor` and last), ReduceLROnPlateau,
//! early stopping, and a final test evaluation of the best epoch. Setting up
//! or resuming the run is `start`'s job.

use super::callbacks::Monitor;
use super::checkpoint::{self, BEST, LAST};
use super::class_weight;
use super::classifier::Classifier;
use super::config::TrainConfig;
use super::divergence::{self, At};
use super::feature_cache::{self, CacheKey, FeatureCache};
use super::profile::{ProfileSteps, StepProfiler};
use super::stages;
use super::start::Start;
use crate::autograd as ag;
use crate::data::folder::ImageFolder;
use crate::data::loader::{Batch, Loader, LoaderConfig};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::profile::HOST_WORK;
use crate::ops::loss;
use crate::report::ConfusionMatrix;
use crate::report::history::EpochRecord;
use crate::report::predictions::most_probable;
use crate::report::tensorboard::TensorBoard;
use crate::report::roc;
use crate::report::plots;
use crate::tensor::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub epochs: usize,
    pub monitor: Monitor,
    /// The epoch best.safetensors holds (the final model) and its monitored value.
    pub best_epoch: Option<usize>,
    pub best_value: Option<f64>,
    /// The epoch after which early stopping ended the run.
    pub stopped_epoch: Option<usize>,
    pub test_accuracy: Option<f64>,
    pub skipped_files: usize,
    pub seconds_per_epoch: f64,
    pub images_per_second: f64,
}

/// Loss and accuracy over a split (sample-weighted means, as Keras reports
/// them), and the macro one-vs-rest ROC-AUC of its softmax probabilities.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scores {
    pub loss: f64,
    pub accuracy: f64,
    /// `None` when no class has both positives and negatives.
    pub auc: Option<f64>,
    pub images: usize,
    /// Images whose frozen-prefix outputs came from the feature cache.
    pub from_cache: usize,
}

/// Batches between readbacks of the running loss and accuracy. Reading a
/// value waits for the GPU; collecting several steps' results per wait lets
/// the host record the next steps while the GPU still runs earlier ones.
const READBACK_EVERY: usize = 8;

/// One step's results on the device, not yet read back.
struct Pending {
    /// The batch's mean loss [1] and its correct count (u32 [1]).
    loss: Tensor,
    correct: Tensor,
    images: usize,
    /// The sum of the trainable weights after the step's update (training only).
    weights: Option<Tensor>,
    /// 1-based step within the epoch.
    step: usize,
}

/// Sample-weighted running loss and accuracy, fed by GPU scalars that are
/// read back in groups.
#[derive(Default)]
struct Running {
    loss_sum: f64,
    correct: u64,
    images: usize,
    pending: Vec<Pending>,
    /// The first step whose loss or weights were not finite, and what was.
    non_finite: Option<(usize, String)>,
    /// Time spent waiting for the GPU in readbacks.
    gpu_wait: f64,
}

impl Running {
    fn push(&mut self, p: Pending) -> Result<()> {
        self.pending.push(p);
        if self.pending.len() >= READBACK_EVERY { self.read() } else { Ok(()) }
    }

    /// Reads every pending result (one wait for the GPU, then cheap copies),
    /// noting the first step with a non-finite loss or weight.
    fn read(&mut self) -> Result<()> {
        let start = Instant::now();
        for p in std::mem::take(&mut self.pending) {
            let loss = p.loss.scalar()?;
            let weights = p.weights.map(|w| w.scalar()).transpose()?;
            if self.non_finite.is_none() {
                if !loss.is_finite() {
                    self.non_finite = Some((p.step, format!("the loss is {loss}")));
                } else if let Some(w) = weights.filter(|w| !w.is_finite()) {
                    self.non_finite = Some((p.step, format!("the weights are no longer finite after its update (their sum is {w}: a NaN or infinite gradient)")));
                }
            }
            self.loss_sum += loss as f64 * p.images as f64;
            self.correct += p.correct.to_vec_u32()?[0] as u64;
            self.images += p.images;
        }
        self.gpu_wait += start.elapsed().as_secs_f64();
        Ok(())
    }

    fn scores(&self) -> Scores {
        let n = self.images.max(1) as f64;
        Scores { loss: self.loss_sum / n, accuracy: self.correct as f64 / n, auc: None, images: self.images, from_cache: 0 }
    }
}

fn loader(folder: ImageFolder, cfg: &TrainConfig, training: bool) -> Result<Loader> {
    let mut lc = LoaderConfig::new(cfg.image_size, cfg.batch);
    lc.preprocess = cfg.preprocess;
    lc.dicom = cfg.dicom;
    lc.seed = cfg.seed;
    lc.shuffle = training;
    lc.augment = (training && cfg.augment).then(|| cfg.augmentation());
    Loader::new(folder, lc)
}

fn one_hot(gpu: &Gpu, b: &Batch, classes: usize) -> Result<Tensor> {
    Tensor::from_slice(gpu, &[b.len(), classes], &b.one_hot)
}

/// Loss, accuracy and AUC of `model` on a split, in inference mode, through
/// `cache` when given (a cache of this split's images). The probabilities
/// stay on the device until the split is done, then are read back at once.
/// Also returns the split's confusion matrix (argmax predictions) over `class_names`.
pub fn evaluate_split(
    gpu: &Gpu,
    model: &Classifier,
    loader: &Loader,
    class_names: &[String],
    mut cache: Option<&mut FeatureCache>,
) -> Result<(Scores, ConfusionMatrix)> {
    let classes = class_names.len();
    let mut run = Running::default();
    let mut from_cache = 0;
    let mut probabilities = Vec::new();
    let mut labels = Vec::new();
    ag::no_grad(|| -> Result<()> {
        for (step, batch) in feature_cache::epoch(loader, 0, cache.as_deref_mut()).enumerate() {
            let batch = batch?;
            let t = one_hot(gpu, &batch, classes)?;
            let (logits, cached) = feature_cache::logits(model, cache.as_deref_mut(), &batch, false, 0)?;
            from_cache += cached;
            let (l, _) = loss::softmax_cross_entropy(logits.value(), &t)?;
            let correct = loss::correct_count(logits.value(), &t)?;
            probabilities.push(loss::softmax(logits.value())?);
            labels.extend_from_slice(&batch.labels);
            run.push(Pending { loss: l, correct, images: batch.len(), weights: None, step: step + 1 })?;
        }
        run.read()
    })?;
    let mut p = Vec::with_capacity(labels.len() * classes);
    for t in &probabilities {
        p.extend(t.to_vec()?);
    }
    let auc = roc::macro_auc(&roc::one_vs_rest_auc(&p, &labels, classes));
    let mut confusion = ConfusionMatrix::new(class_names.to_vec());
    for (row, &label) in p.chunks_exact(classes).zip(&labels) {
        confusion.add(label, most_probable(row))?;
    }
    Ok((Scores { from_cache, auc, ..run.scores() }, confusion))
}

/// Trains a started run (new or resumed, see [`super::start`]) to its
/// configured number of epochs and returns the summary. `interrupt` is
/// polled between batches: when set, the loop stops without writing
/// anything, leaving the last complete checkpoint in place. `profile` picks
/// the first training steps to profile (see `train::profile`).
pub fn fit(gpu: &Gpu, start: Start, interrupt: Arc<AtomicBool>, profile: ProfileSteps) -> Result<RunSummary> {
    let Start { cfg, run, splits, mut model, mut optimizer, mut history, mut state } = start;
    // For messages and reading; every write goes through `run.for_writing()`,
    // which first checks that the directory is still the one this trainer locked.
    let run_dir = run.path();
    let classes = cfg.classes.len();
    let (train_folder, valid_folder, test_folder) = (splits.train, splits.valid, splits.test);

    let train = loader(train_folder, &cfg, true)?;
    let valid = loader(valid_folder, &cfg, false)?;
    // Validation images are never augmented; training images only without augmentation.
    let cache_key = |model: &Classifier| -> Result<Option<CacheKey>> {
        Ok(match cfg.feature_cache {
            true => Some(CacheKey { image_size: cfg.image_size, preprocess: cfg.preprocess, weights_hash: model.frozen_weights_hash()? }),
            false => None,
        })
    };
    let key = cache_key(&model)?;
    let mut valid_cache = key.map(|k| feature_cache::for_split(gpu, k, &valid));
    let mut train_cache = key.filter(|_| !cfg.augment).map(|k| feature_cache::for_split(gpu, k, &train));
    let mut epoch_seconds = Vec::new();
    let mut rates = Vec::new();
    let first_epoch = state.epoch;
    // The epoch index of the random draws (see `TrainState::draw_offset`).
    let draw_offset = state.draw_offset;
    let draws = |epoch: usize| draw_offset + epoch;
    let monitor = cfg.callbacks.monitor;
    // TensorBoard's logs: first whatever the history holds that they do not
    // (a run resumed after an interruption, or trained before they existed).
    let config_json = serde_json::to_string_pretty(&cfg).map_err(|e| Error::Invalid(format!("cannot encode the run configuration: {e}")))?;
    let mut tensorboard = TensorBoard::open(run_dir)?;
    tensorboard.write_config(run.for_writing()?, state.epoch, &config_json)?;
    tensorboard.write_epochs(run.for_writing()?, &history)?;
    if let Some(stopped) = state.best.stopped_epoch {
        println!("{}: early stopping ended this run after epoch {stopped}; it is finished (start a new run to train further)", run_dir.display());
    }
    for epoch in state.epoch..cfg.total_epochs() {
        if state.stopped() {
            break;
        }
        if stages::fine_tuning_starts(&cfg, epoch) {
            (model, optimizer) = stages::enter_fine_tuning(gpu, &cfg, &model, &mut state)?;
            // The frozen prefix is shorter now: cached boundaries no longer apply.
            let key = cache_key(&model)?;
            valid_cache = key.map(|k| feature_cache::for_split(gpu, k, &valid));
            train_cache = key.filter(|_| !cfg.augment).map(|k| feature_cache::for_split(gpu, k, &train));
            println!("epoch {}: fine-tuning the last {} layers of the base at lr {:.1e} (fresh Adam)", epoch + 1, cfg.unfreeze_last, state.lr);
        }
        let started = Instant::now();
        let bar = ProgressBar::new(train.batches_per_epoch() as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, cfg.total_epochs()));
        let mut running = Running::default();
        let mut data_wait = 0.0;
        let mut from_cache = 0;
        let mut batches = feature_cache::epoch(&train, draws(epoch), train_cache.as_mut());
        let mut profiler = if epoch == first_epoch { StepProfiler::start(gpu, profile)? } else { None };
        for step in 0.. {
            if interrupt.load(Ordering::SeqCst) {
                bar.abandon_with_message("interrupted");
                return Err(Error::Invalid(format!("interrupted; {} holds the last complete epoch", run_dir.join(LAST).display())));
            }
            // The step's host work, measured for the profile (device-layer calls and data loading pause it).
            let step_span = gpu.profile_span(HOST_WORK);
            let waited = Instant::now();
            let next = {
                let _span = gpu.profile_span("data loading");
                batches.next()
            };
            let Some(batch) = next else { break };
            data_wait += waited.elapsed().as_secs_f64();
            let batch = batch?;
            let t = one_hot(gpu, &batch, classes)?;
            let seed = cfg.seed ^ ((draws(epoch) as u64) << 32) ^ step as u64;
            let (logits, cached) = feature_cache::logits(&model, train_cache.as_mut(), &batch, true, seed)?;
            from_cache += cached;
            let (l, correct) = {
                let _scope = gpu.profile_scope("loss");
                let l = class_weight::training_loss(&logits, &t, &batch.labels, cfg.class_weight.as_ref())?;
                (l, loss::correct_count(logits.value(), &t)?)
            };
            let grads = l.backward()?;
            {
                let _scope = gpu.profile_scope("optimizer");
                optimizer.apply(&grads)?;
            }
            let weights = {
                let _scope = gpu.profile_scope("finiteness check");
                divergence::weights_probe(&model.trainable_params())?
            };
            let read_before = running.images;
            running.push(Pending { loss: l.value().clone(), correct, images: batch.len(), weights, step: step + 1 })?;
            if let Some((step, what)) = running.non_finite.take() {
                bar.abandon_with_message("diverged");
                return Err(divergence::diverged(&cfg, At { epoch: epoch + 1, step, steps: train.batches_per_epoch() }, &what, state.lr));
            }
            if running.images != read_before {
                let s = running.scores();
                let rate = s.images as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {:.4} acc {:.4} {:.1} img/s, {from_cache} from the feature cache", s.loss, s.accuracy, rate));
            }
            bar.inc(1);
            drop(step_span);
            if profiler.as_mut().is_some_and(StepProfiler::step_done)
                && let Some(p) = profiler.take()
            {
                let text = p.finish(run.for_writing()?)?;
                bar.suspend(|| println!("{text}"));
            }
        }
        if let Some(p) = profiler.take() {
            let text = p.finish(run.for_writing()?)?;
            bar.suspend(|| println!("{text}"));
        }
        running.read()?;
        let at = |step| At { epoch: epoch + 1, step, steps: train.batches_per_epoch() };
        if let Some((step, what)) = running.non_finite.take() {
            bar.abandon_with_message("diverged");
            return Err(divergence::diverged(&cfg, at(step), &what, state.lr));
        }
        let train_scores = running.scores();
        let train_seconds = started.elapsed().as_secs_f64();
        let (val, val_confusion) = evaluate_split(gpu, &model, &valid, &cfg.classes, valid_cache.as_mut())?;
        if !val.loss.is_finite() {
            bar.abandon_with_message("diverged");
            let steps = train.batches_per_epoch();
            return Err(divergence::diverged(&cfg, at(steps), &format!("the validation loss after it is {}", val.loss), state.lr));
        }
        let seconds = started.elapsed().as_secs_f64();
        let images_per_second = train_scores.images as f64 / train_seconds;
        let cache_note = match key {
            Some(_) => format!("{from_cache} train + {} val images from the feature cache", val.from_cache),
            None => "feature cache off".to_string(),
        };
        let auc_note = val.auc.map_or(String::new(), |a| format!(" val_auc {a:.4}"));
        let line = format!(
            "loss {:.4} acc {:.4} (training mode) val_loss {:.4} val_acc {:.4}{auc_note} lr {:.1e} {:.1} img/s {:.0} s, {cache_note} (waited {:.1} s for data, {:.1} s for the GPU)",
            train_scores.loss, train_scores.accuracy, val.loss, val.accuracy, state.lr, images_per_second, seconds, data_wait, running.gpu_wait
        );
        if bar.is_hidden() {
            // Not a terminal (a log file, CI): one plain line per epoch instead of the bar.
            println!("epoch {}/{} {line}", epoch + 1, cfg.total_epochs());
        }
        bar.finish_with_message(line);
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: train_scores.loss,
            accuracy: train_scores.accuracy,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            lr: state.lr,
            seconds,
            images_per_second,
            val_auc: val.auc,
        };
        let monitored = monitor.value(&record);
        history.append(record)?;
        epoch_seconds.push(seconds);
        rates.push(images_per_second);

        state.epoch = epoch + 1;
        state.optimizer_step = optimizer.step;
        let callbacks = &cfg.callbacks;
        // In a two-stage run early stopping ends only the fine-tuning stage;
        // the head stage always runs its --head-epochs. The best epoch is the run's.
        let patience = callbacks.early_stopping.filter(|_| epoch >= cfg.head_epochs);
        let verdict = state.best.on_epoch_end(epoch + 1, monitored, monitor.mode(), callbacks.min_delta, patience);
        let improved = verdict.best;
        state.lr = state.plateau.on_epoch_end(monitored, state.lr);
        optimizer.config.lr = state.lr as f32;
        // Checkpoints first (best before last, so a resume from last never
        // skips a best), each carrying the history; the history files and
        // plots are views of it, rewritten from the checkpoint on resume.
        // A checkpoint holding a non-finite number is refused (`checkpoint::save_tensors`).
        if improved {
            checkpoint::save(&run.for_writing()?.join(BEST), &model, &optimizer, &state, &cfg, &history)?;
        }
        checkpoint::save(&run.for_writing()?.join(LAST), &model, &optimizer, &state, &cfg, &history)?;
        history.save(run.for_writing()?)?;
        plots::save_plots(&history, run.for_writing()?)?;
        tensorboard.write_epochs(run.for_writing()?, &history)?;
        if improved {
            tensorboard.write_confusion(run.for_writing()?, epoch + 1, &val_confusion)?;
        }
        if verdict.stop {
            println!(
                "early stopping: {} has not improved on epoch {} for {} epoch(s); stopped after epoch {}",
                monitor.name(),
                state.best.best_epoch.unwrap_or(0),
                state.best.wait,
                epoch + 1
            );
        }
    }

    let test_accuracy = match test_folder {
        Some(f) => {
            let best = run_dir.join(BEST);
            let weights = checkpoint::load_matching(&best, &cfg)?.tensors;
            let best = Classifier::from_tensor_map(gpu, &cfg, &weights)
                .map_err(|e| Error::Io { path: best.display().to_string(), reason: e.to_string() })?;
            let test = loader(f, &cfg, false)?;
            Some(evaluate_split(gpu, &best, &test, &cfg.classes, None)?.0.accuracy)
        }
        None => None,
    };
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    Ok(RunSummary {
        run_dir: run_dir.to_path_buf(),
        epochs: state.epoch,
        monitor,
        best_epoch: state.best.best_epoch,
        best_value: state.best.best,
        stopped_epoch: state.best.stopped_epoch,
        test_accuracy,
        skipped_files: train.skipped() + valid.skipped(),
        seconds_per_epoch: mean(&epoch_seconds),
        images_per_second: mean(&rates),
    })
}
