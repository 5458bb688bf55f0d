//! Everything before the first epoch of a new or resumed run, in an order
//! that writes nothing until every argument, the dataset, the sizes and the
//! weights have been checked, and that leaves the run directory agreeing
//! with itself: run.json, the last checkpoint (which carries its own
//! configuration and history) and the history files.

use super::checkpoint::{self, BEST, LAST, TrainState};
use super::classifier::Classifier;
use super::config::TrainConfig;
use super::memory;
use super::optimizer::Adam;
use super::run_dir::{self, RunDir};
use super::schedule::ReduceLrOnPlateau;
use super::{init, stages};
use crate::data::loader::LoaderConfig;
use crate::error::{Error, Result};
use crate::io::keras_weights;
use crate::gpu::Gpu;
use crate::ops::optim::AdamConfig;
use crate::report::history::History;
use crate::report::plots;
use std::path::Path;

pub use super::splits::Splits;

/// A run ready for its next epoch.
pub struct Start {
    pub cfg: TrainConfig,
    pub run: RunDir,
    pub splits: Splits,
    pub model: Classifier,
    pub optimizer: Adam,
    pub history: History,
    pub state: TrainState,
}

fn fresh_state(cfg: &TrainConfig) -> TrainState {
    TrainState::new(cfg.lr, ReduceLrOnPlateau::new(&cfg.callbacks))
}

fn adam(model: &Classifier, lr: f64) -> Result<Adam> {
    Adam::new(model.trainable_params(), AdamConfig { lr: lr as f32, ..AdamConfig::default() })
}

/// Checks everything that needs the adapter but writes nothing: sizes,
/// then the model of the first epoch (weights file or `--init` run,
/// `--unfreeze-last`, the stage), then its activations. Returns the model
/// and the state of its first epoch.
fn check_and_build(gpu: &Gpu, cfg: &TrainConfig) -> Result<(Classifier, TrainState)> {
    memory::check_training_fits(gpu, cfg, LoaderConfig::new(cfg.image_size, cfg.batch).prefetch)?;
    let first = stages::model_config(cfg, 0);
    let mut state = fresh_state(cfg);
    let model = match &cfg.init {
        Some(dir) => {
            let (weights, drawn) = init::init_weights(dir, cfg)?;
            state.draw_offset = drawn;
            Classifier::from_tensor_map(gpu, &first, &weights)?
        }
        None => Classifier::new(gpu, &first)?,
    };
    memory::check_activations_fit(gpu, cfg.batch, cfg.image_size, &model.base.output_shapes(1, cfg.image_size, cfg.image_size)?)?;
    Ok((model, state))
}

/// A new run in `out`: refuses a directory that holds a run unless
/// `overwrite`. Nothing is written (not even the directory) until every
/// check has passed.
pub fn new_run(gpu: &Gpu, cfg: TrainConfig, out: &Path, overwrite: bool) -> Result<Start> {
    cfg.validate()?;
    if run_dir::holds_run(out) && !overwrite {
        return Err(run_dir::refuse_existing(out));
    }
    let (splits, split_record) = Splits::for_new_run(&cfg)?;
    let (model, mut state) = check_and_build(gpu, &cfg)?;
    let optimizer = adam(&model, cfg.lr)?;
    let run = RunDir::create(out, overwrite)?;
    // The split before run.json: a directory that holds a run has its split.
    if let Some(record) = &split_record {
        record.save(run.for_writing()?)?;
        println!(
            "validation: {} of train/ ({} images; {} train), stratified by class, seed {}; recorded in {}",
            record.validation_split,
            record.valid.len(),
            record.train.len(),
            record.seed,
            run.join(super::split_record::SPLIT_JSON).display()
        );
    }
    run.save_config(&cfg)?;
    state.data = Some(splits.counts());
    Ok(Start { cfg, run, splits, model, optimizer, history: History::default(), state })
}

/// Continues the run in `dir` with `cfg`, which must be its run.json except
/// perhaps for `epochs` (a longer or shorter target, saved to run.json).
/// Starts from the last checkpoint, or from epoch 1 when the run was
/// stopped before its first checkpoint; rewrites the history files and the
/// plots from the checkpoint's own history so that they agree with it.
pub fn resume(gpu: &Gpu, dir: &Path, cfg: TrainConfig) -> Result<Start> {
    let run = RunDir::resume(dir)?;
    let saved = run_dir::load_config(run.path())?;
    let last = run.join(LAST);
    if let Some(source) = saved.weights.as_deref().filter(|w| !last.exists() && saved.init.is_none() && keras_weights::is_keras_file(w)) {
        return Err(Error::Invalid(format!(
            "--resume {}: this run was imported from the Keras file {} (incept convert keras) and has no training to continue; fine-tune it in a new run: incept train --init {} --data DIR --out NEW_RUN",
            dir.display(),
            source.display(),
            dir.display()
        )));
    }
    if let Some((field, _, ours)) = saved.first_difference(&cfg) {
        return Err(Error::Invalid(format!("--resume {}: {field} {ours} differs from the run's run.json", dir.display())));
    }
    cfg.validate()?;
    let splits = Splits::for_run(&cfg, run.path())?;
    let (model, optimizer, history, state) = if last.exists() {
        memory::check_training_fits(gpu, &cfg, LoaderConfig::new(cfg.image_size, cfg.batch).prefetch)?;
        let ckpt = checkpoint::load_matching(&last, &cfg)?;
        let stage = stages::checkpoint_config(&cfg, ckpt.state.epoch);
        let model = Classifier::from_tensor_map(gpu, &stage, &ckpt.tensors).map_err(|e| in_file(&last, e))?;
        memory::check_activations_fit(gpu, cfg.batch, cfg.image_size, &model.base.output_shapes(1, cfg.image_size, cfg.image_size)?)?;
        let mut optimizer = adam(&model, ckpt.state.lr)?;
        optimizer.load_state(&ckpt.tensors, ckpt.state.optimizer_step).map_err(|e| in_file(&last, e))?;
        let history = match ckpt.history {
            Some(h) => h,
            None => {
                let mut h = History::load(run.path())?;
                h.epochs.truncate(ckpt.state.epoch);
                h
            }
        };
        (model, optimizer, history, ckpt.state)
    } else {
        eprintln!("{}: no checkpoint yet (the run stopped during its first epoch); starting again from epoch 1", run.path().display());
        let (model, state) = check_and_build(gpu, &cfg)?;
        let optimizer = adam(&model, cfg.lr)?;
        (model, optimizer, History::default(), state)
    };
    let mut state = state;
    if let Some(before) = &state.data {
        splits.warn_if_changed(before, &cfg.classes);
    }
    state.data = Some(splits.counts());
    if cfg.total_epochs() < state.epoch {
        return Err(Error::Invalid(format!("--epochs {}: the run has completed {} epochs already", cfg.epochs, state.epoch)));
    }
    check_best(&run, &cfg, &state)?;
    if cfg.epochs != saved.epochs {
        println!("{}: the run now ends after {} epochs (run.json said {})", run.path().display(), cfg.epochs, saved.epochs);
        run.save_config(&cfg)?;
    }
    history.save(run.for_writing()?)?;
    if !history.epochs.is_empty() {
        plots::save_plots(&history, run.for_writing()?)?;
    }
    Ok(Start { cfg, run, splits, model, optimizer, history, state })
}

/// Errors at the start, not after an epoch, when best.safetensors is
/// missing (though an epoch has completed) or damaged or of another run.
fn check_best(run: &RunDir, cfg: &TrainConfig, state: &TrainState) -> Result<()> {
    let best = run.join(BEST);
    if !best.exists() {
        return if state.epoch > 0 && state.best.best_epoch.is_some() {
            Err(Error::Io { path: best.display().to_string(), reason: "is missing, though the last checkpoint says an epoch was the best".into() })
        } else {
            Ok(())
        };
    }
    let ckpt = checkpoint::load_matching(&best, cfg)?;
    Classifier::check_tensor_map(cfg, &ckpt.tensors).map_err(|e| in_file(&best, e))
}

/// `e` with the checkpoint file it came from.
fn in_file(path: &Path, e: Error) -> Error {
    Error::Io { path: path.display().to_string(), reason: e.to_string() }
}
