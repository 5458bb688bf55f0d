//! A run directory from a model trained elsewhere (`incept convert keras`
//! of a Keras InceptionV3 + the tutorial's head): run.json and
//! best.safetensors as a run that has not trained an epoch here, so that
//! `predict`, `evaluate`, `export` and `train --init` use it like any run.
//!
//! A Keras file does not know what `incept train` would record: the class
//! names come from `--classes` or a dataset folder (sorted subfolders, as
//! Keras's flow_from_directory), the image size from the model's input
//! shape (or `--image-size`), the preprocessing from what incept's Keras
//! export wrote into the file (or `--preprocess`). The rest is the training
//! defaults, for a later `--init`.

use super::callbacks::CallbackConfig;
use super::checkpoint::{self, BEST, TrainState};
use super::classifier::Classifier;
use super::config::{TrainConfig, defaults};
use super::run_dir::{self, RunDir};
use super::schedule::ReduceLrOnPlateau;
use crate::data::folder::ImageFolder;
use crate::data::{DicomOptions, Preprocess};
use crate::error::{Error, Result};
use crate::io::TensorMap;
use crate::io::keras_import::Imported;
use crate::io::keras_weights::KerasFile;
use crate::models::Backbone;
use crate::report::history::History;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What the command line adds to a Keras file.
#[derive(Clone, Debug, Default)]
pub struct ImportFlags {
    pub classes: Option<Vec<String>>,
    pub data: Option<PathBuf>,
    pub image_size: Option<usize>,
    pub preprocess: Option<Preprocess>,
}

impl ImportFlags {
    /// The flags given, as typed (for the refusal of a file without a head).
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.classes.is_some() {
            out.push("--classes");
        }
        if self.data.is_some() {
            out.push("--data");
        }
        if self.image_size.is_some() {
            out.push("--image-size");
        }
        if self.preprocess.is_some() {
            out.push("--preprocess");
        }
        out
    }
}

fn file_err(file: &KerasFile, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: file.path.display().to_string(), reason: reason.to_string() }
}

fn canonical(flag: &str, path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("{flag}: {e}") })
}

/// The run configuration of an imported model; errors name the flag or the file.
pub fn run_config(file: &KerasFile, imported: &Imported, flags: &ImportFlags) -> Result<TrainConfig> {
    let (data, classes) = classes(file, imported, flags)?;
    let preprocess = preprocess(file, flags)?;
    let image_size = image_size(file, flags)?;
    let dropout = match file.config.as_ref().map(|c| c.dropout_rates.as_slice()) {
        Some([first, rest @ ..]) if rest.iter().all(|r| r == first) => *first,
        Some([]) | None => defaults::DROPOUT,
        Some(rates) => return Err(file_err(file, format!("the head's Dropout layers have rates {rates:?}; incept's head has one rate"))),
    };
    let source = canonical("the Keras file", &file.path)?;
    let cfg = TrainConfig {
        data: data.unwrap_or_else(|| source.clone()),
        backbone: Backbone::InceptionV3,
        weights: Some(source),
        image_size,
        batch: defaults::BATCH,
        epochs: defaults::EPOCHS,
        unfreeze_last: defaults::UNFREEZE_LAST,
        head: imported.hidden.clone(),
        dropout,
        lr: defaults::LR,
        augment: true,
        shear_degrees: defaults::SHEAR_DEGREES,
        zoom: defaults::ZOOM,
        horizontal_flip: true,
        preprocess,
        seed: defaults::SEED,
        feature_cache: true,
        dicom: DicomOptions::default(),
        classes,
        validation_split: None,
        callbacks: CallbackConfig::default(),
        class_weight: None,
        bn_inference: false,
        // An imported run's own precision; predict and evaluate take --precision.
        precision: Default::default(),
        init: None,
        head_epochs: 0,
        fine_tune_lr: None,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// (dataset root to record, class names): from `--classes`, `--data` or
/// the file's incept metadata, which must agree with each other and with
/// the head's outputs.
fn classes(file: &KerasFile, imported: &Imported, flags: &ImportFlags) -> Result<(Option<PathBuf>, Vec<String>)> {
    let recorded: Option<Vec<String>> = file.incept.get("classes").and_then(Value::as_array).map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect());
    let (data, given, flag) = match (&flags.classes, &flags.data) {
        (Some(c), _) => (None, Some(c.clone()), "--classes"),
        (None, Some(dir)) => {
            // A dataset root (train/ inside) or one split folder: its class subfolders, sorted.
            let dir = canonical("--data", dir)?;
            let split = if dir.join("train").is_dir() { dir.join("train") } else { dir.clone() };
            (Some(dir), Some(ImageFolder::open(&split)?.classes().to_vec()), "--data")
        }
        (None, None) => (None, None, ""),
    };
    let classes = match (given, recorded) {
        (Some(g), Some(r)) if g != r => {
            return Err(file_err(file, format!("{flag} gives classes {g:?}, but the file's metadata (incept's Keras export) records {r:?}")));
        }
        (Some(g), _) => g,
        (None, Some(r)) => r,
        (None, None) => {
            return Err(file_err(
                file,
                format!("a Keras file does not name its {} classes: give --classes a,b,… (in the head's output order) or --data DIR (its sorted class subfolders, as Keras's flow_from_directory)", imported.classes),
            ));
        }
    };
    if classes.len() != imported.classes {
        let from = if flag.is_empty() { "the file's metadata" } else { flag };
        return Err(file_err(file, format!("{from} gives {} classes {classes:?}, but the head's last Dense layer has {} outputs", classes.len(), imported.classes)));
    }
    Ok((data, classes))
}

fn preprocess(file: &KerasFile, flags: &ImportFlags) -> Result<Preprocess> {
    let recorded = match file.incept.get("preprocess").and_then(Value::as_str) {
        Some("rescale") => Some(Preprocess::Rescale),
        Some("inception") => Some(Preprocess::Inception),
        Some(other) => return Err(file_err(file, format!("its metadata records preprocess '{other}'; expected rescale or inception"))),
        None => None,
    };
    match (flags.preprocess, recorded) {
        (Some(f), Some(r)) if f != r => {
            Err(file_err(file, format!("--preprocess {}: the file's metadata (incept's Keras export) says the model was trained with {}", f.name(), r.name())))
        }
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => Err(file_err(
            file,
            "the file does not record its preprocessing: give --preprocess rescale (x/255, the tutorial's ImageDataGenerator) or --preprocess inception (x/127.5 - 1, keras.applications' preprocess_input), as the model was trained",
        )),
    }
}

fn image_size(file: &KerasFile, flags: &ImportFlags) -> Result<usize> {
    if let Some(s) = flags.image_size {
        return Ok(s);
    }
    if let Some(s) = file.incept.get("image_size").and_then(Value::as_u64) {
        return Ok(s as usize);
    }
    match file.config.as_ref().and_then(|c| c.input_size) {
        Some((h, w)) if h == w => Ok(h),
        Some((h, w)) => Err(file_err(file, format!("the model's input is {h}×{w}; incept takes square images: give --image-size S"))),
        None => Err(file_err(file, "the file does not fix the input size (no model config with an input shape): give --image-size S")),
    }
}

/// Writes run.json and best.safetensors (atomically, best.safetensors
/// first, so a directory that holds run.json holds the whole run) into a
/// new run directory `out`, after checking the weights against `cfg`.
/// Refuses a directory that holds a run already.
pub fn write_run(out: &Path, cfg: &TrainConfig, weights: &TensorMap) -> Result<PathBuf> {
    Classifier::check_tensor_map(cfg, weights)?;
    if run_dir::holds_run(out) {
        return Err(Error::Io { path: out.display().to_string(), reason: "holds a run already (run.json); convert into a new --out directory".into() });
    }
    if out.exists() && !out.is_dir() {
        return Err(Error::Io { path: out.display().to_string(), reason: "exists and is not a directory; a model with a head becomes a run directory".into() });
    }
    let run = RunDir::create(out, false)?;
    let state = TrainState::new(cfg.lr, ReduceLrOnPlateau::new(&cfg.callbacks));
    checkpoint::save_tensors(&run.join(BEST), weights, &state, cfg, &History::default())?;
    run.save_config(cfg)?;
    Ok(run.path().to_path_buf())
}
