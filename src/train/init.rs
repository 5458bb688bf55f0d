//! `--init RUN`: a new run that starts from another run's best weights, base
//! and head, with a fresh optimizer state (stage 2 of the Keras guide's
//! recipe as its own run: `--unfreeze-last 0` first, then
//! `--unfreeze-last 15 --lr 1e-5 --init STAGE1`).
//!
//! The other run's best.safetensors must prove it belongs to that run
//! (`checkpoint::load_matching` against its run.json), and its head must be
//! this run's: the same classes in the same order, the same `--head` widths
//! (every tensor's shape is checked, errors name it), the same preprocessing.

use super::checkpoint::{self, BEST};
use super::classifier::Classifier;
use super::config::TrainConfig;
use super::run_dir;
use crate::error::{Error, Result};
use crate::io::TensorMap;
use std::path::Path;

/// The weights (base and head, no optimizer moments) of `dir`'s best
/// checkpoint, checked to fit `cfg` without the adapter, and the epochs of
/// random draws they were trained on (see `TrainState::draw_offset`).
pub fn init_weights(dir: &Path, cfg: &TrainConfig) -> Result<(TensorMap, usize)> {
    let theirs = run_dir::load_config(dir)?;
    let refuse = |what: String| Err(Error::Invalid(format!("--init {}: {what}", dir.display())));
    if theirs.backbone != cfg.backbone {
        return refuse(format!("it is a {} run, this run's base is {}", theirs.backbone.name(), cfg.backbone.name()));
    }
    if theirs.classes != cfg.classes {
        return refuse(format!("its classes {:?} differ from this run's {:?}; the head would predict the wrong classes", theirs.classes, cfg.classes));
    }
    if theirs.preprocess != cfg.preprocess {
        return refuse(format!("it was trained with --preprocess {:?}, this run uses {:?}", theirs.preprocess, cfg.preprocess));
    }
    let best = dir.join(BEST);
    if !best.exists() {
        return Err(Error::Io { path: best.display().to_string(), reason: "is missing: --init needs a run that has completed an epoch".into() });
    }
    let ckpt = checkpoint::load_matching(&best, &theirs)?;
    let mut weights = ckpt.tensors;
    weights.retain(|name, _| !name.starts_with("optimizer/"));
    Classifier::check_tensor_map(cfg, &weights).map_err(|e| Error::Io { path: best.display().to_string(), reason: format!("--init: {e}") })?;
    // The best weights were trained on the init run's draws up to its best epoch,
    // which came after the draws of its own starting weights.
    let drawn = ckpt.state.draw_offset + ckpt.state.epoch;
    Ok((weights, drawn))
}
