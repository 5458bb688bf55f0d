//! Checkpoints: one safetensors file with the classifier's weights, Adam's
//! moments, and in its metadata the training state, the run's configuration
//! and its history up to that epoch. Written atomically, so an interrupted
//! run always leaves the previous good file in place; and since the file
//! carries its own configuration and history, it can prove which run it
//! belongs to and what the history was when it was written.

use super::callbacks::BestTracker;
use super::classifier::Classifier;
use super::config::TrainConfig;
use super::divergence::first_non_finite;
use super::optimizer::Adam;
use super::schedule::ReduceLrOnPlateau;
use super::splits::SplitCounts;
use crate::error::{Error, Result};
use crate::io::safetensors_io::{read_metadata, read_safetensors_with_metadata};
use crate::io::{StorageDtype, TensorMap, write_safetensors};
use crate::report::history::History;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where the loop stands; stored in the checkpoint's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub optimizer_step: u32,
    pub lr: f64,
    /// The best epoch by the run's `--monitor`, and early stopping's state.
    #[serde(default)]
    pub best: BestTracker,
    pub plateau: ReduceLrOnPlateau,
    /// Images per class of each split when the run started or last resumed,
    /// so that `--resume` can say when the data changed (absent in older
    /// checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<SplitCounts>,
    /// Epochs of random draws (shuffle order, augmentations, dropout masks)
    /// that the weights this run started from were trained on: those of the
    /// `--init` run (and of its own `--init` run, …). This run's epoch `e`
    /// draws as epoch `draw_offset + e`, so it never replays the draws its
    /// starting weights have seen (they would score as if memorised).
    #[serde(default)]
    pub draw_offset: usize,
    /// Checkpoints written before `--monitor` kept only the best val_loss
    /// here; read to fill in `best`, never written.
    #[serde(default, skip_serializing)]
    best_val_loss: Option<f64>,
}

impl TrainState {
    /// The state before the first epoch of a run starting at rate `lr`.
    pub fn new(lr: f64, plateau: ReduceLrOnPlateau) -> TrainState {
        TrainState { epoch: 0, optimizer_step: 0, lr, best: BestTracker::default(), plateau, data: None, draw_offset: 0, best_val_loss: None }
    }

    /// Whether early stopping ended the run.
    pub fn stopped(&self) -> bool {
        self.best.stopped_epoch.is_some()
    }

    /// Fills in `best` from an older checkpoint's best val_loss: the best
    /// epoch is the first of `history` with that val_loss (or the last one).
    fn upgrade(&mut self, history: Option<&History>) {
        if let Some(v) = self.best_val_loss.take()
            && self.best.best_epoch.is_none()
            && self.epoch > 0
        {
            let epoch = history.and_then(|h| h.epochs.iter().find(|r| r.val_loss == v)).map_or(self.epoch, |r| r.epoch);
            self.best = BestTracker { best: Some(v), best_epoch: Some(epoch), wait: self.epoch - epoch, stopped_epoch: None };
        }
    }
}

pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";

const STATE_KEY: &str = "incept_train_state";
const CONFIG_KEY: &str = "incept_run_config";
const HISTORY_KEY: &str = "incept_history";

/// A checkpoint read back.
pub struct Checkpoint {
    pub tensors: TensorMap,
    pub state: TrainState,
    /// The configuration of the run that wrote it (absent in checkpoints
    /// written before incept stored it).
    pub config: Option<TrainConfig>,
    /// The history up to `state.epoch` (absent in older checkpoints).
    pub history: Option<History>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.into() }
}

pub fn save(path: &Path, model: &Classifier, optimizer: &Adam, state: &TrainState, cfg: &TrainConfig, history: &History) -> Result<()> {
    let mut tensors = model.to_tensor_map()?;
    tensors.extend(optimizer.state()?);
    save_tensors(path, &tensors, state, cfg, history)
}

/// Writes a checkpoint of `tensors` (weights, and Adam's moments when there
/// are any) with the state, configuration and history in its metadata.
/// Refuses, naming the tensor, to write a non-finite number: a diverged
/// model never becomes `best` or `last`.
pub fn save_tensors(path: &Path, tensors: &TensorMap, state: &TrainState, cfg: &TrainConfig, history: &History) -> Result<()> {
    if let Some((name, i, v)) = first_non_finite(tensors) {
        return Err(bad(
            path,
            format!("not written: tensor '{name}' holds {v} at index {i}; training diverged (lower --lr {} or the class weights) and a checkpoint never holds a non-finite number", cfg.lr),
        ));
    }
    let meta = BTreeMap::from([
        (STATE_KEY.to_string(), to_json(path, state)?),
        (CONFIG_KEY.to_string(), to_json(path, cfg)?),
        (HISTORY_KEY.to_string(), history.to_json()),
    ]);
    write_safetensors(path, tensors, StorageDtype::F32, &meta)?;
    Ok(())
}

fn to_json(path: &Path, value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| bad(path, format!("cannot encode the checkpoint metadata: {e}")))
}

/// Reads a checkpoint: its tensors and the metadata it carries. Every
/// command that uses a run's model reads it here (predict, evaluate, export,
/// explain, `--resume`, `--init`), so a checkpoint holding a non-finite
/// number is refused here, naming the tensor.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let (tensors, meta) = read_safetensors_with_metadata(path)?;
    if let Some((name, i, v)) = first_non_finite(&tensors) {
        return Err(bad(
            path,
            format!("tensor '{name}' holds {v} at index {i}: the model is not usable (a diverged training run, or a damaged file); train it again"),
        ));
    }
    let state = meta.get(STATE_KEY).ok_or_else(|| bad(path, "not an incept checkpoint (no training state)"))?;
    let mut state: TrainState = serde_json::from_str(state).map_err(|e| bad(path, format!("bad training state: {e}")))?;
    let config = match meta.get(CONFIG_KEY) {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad(path, format!("bad run configuration in the checkpoint: {e}")))?),
        None => None,
    };
    let history = match meta.get(HISTORY_KEY) {
        Some(s) => {
            let h = History::from_json(s).map_err(|e| bad(path, format!("bad history in the checkpoint: {e}")))?;
            if h.epochs.len() != state.epoch {
                return Err(bad(path, format!("its history has {} epochs but its state says {} were completed", h.epochs.len(), state.epoch)));
            }
            Some(h)
        }
        None => None,
    };
    state.upgrade(history.as_ref());
    Ok(Checkpoint { tensors, state, config, history })
}

/// A checkpoint's training state alone, from its header (no tensors read).
pub fn read_state(path: &Path) -> Result<TrainState> {
    let meta = read_metadata(path)?;
    let state = meta.get(STATE_KEY).ok_or_else(|| bad(path, "not an incept checkpoint (no training state)"))?;
    serde_json::from_str(state).map_err(|e| bad(path, format!("bad training state: {e}")))
}

/// Reads a checkpoint of the run configured by `cfg` (its run.json): errors,
/// naming the file and the first field that differs, when the checkpoint
/// says it was written by another configuration. The tensors themselves are
/// checked against `cfg` when a [`Classifier`] is built from them.
pub fn load_matching(path: &Path, cfg: &TrainConfig) -> Result<Checkpoint> {
    let ckpt = load(path)?;
    if let Some(own) = &ckpt.config
        && let Some((field, theirs, ours)) = own.first_difference(cfg)
    {
        return Err(bad(
            path,
            format!("was written by a run with {field} = {theirs}, but run.json says {field} = {ours}; the checkpoint does not belong to this run configuration"),
        ));
    }
    Ok(ckpt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_before_any_best_round_trips_through_json() {
        // Keras's initial best is ±∞, which serde_json writes as null: the
        // state of a run whose epochs were all NaN must still load.
        let mut state = TrainState::new(1e-3, ReduceLrOnPlateau::default());
        state.epoch = 2;
        state.plateau.on_epoch_end(Some(f64::NAN), 1e-3);
        state.best.on_epoch_end(1, Some(f64::NAN), super::super::callbacks::Mode::Min, 0.0, Some(3));
        let json = serde_json::to_string(&state).unwrap();
        let back: TrainState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.plateau, state.plateau);
        assert_eq!(back.best, state.best);
        assert_eq!(back.best.best_epoch, Some(1));
        assert!(!json.contains("best_val_loss"), "{json}");
    }

    #[test]
    fn an_older_state_with_best_val_loss_finds_its_best_epoch() {
        let old = r#"{"epoch":3,"optimizer_step":9,"lr":0.001,"best_val_loss":0.5,
            "plateau":{"factor":0.1,"patience":10,"min_delta":0.0001,"cooldown":0,"min_lr":0.0,"best":0.5,"wait":1,"cooldown_counter":0}}"#;
        let mut state: TrainState = serde_json::from_str(old).unwrap();
        let mut history = History::new();
        for (e, v) in [(1, 0.7), (2, 0.5), (3, 0.6)] {
            let r = crate::report::history::EpochRecord {
                epoch: e,
                loss: 1.0,
                accuracy: 0.5,
                val_loss: v,
                val_accuracy: 0.5,
                lr: 1e-3,
                seconds: 1.0,
                images_per_second: 1.0,
                val_auc: None,
            };
            history.append(r).unwrap();
        }
        state.upgrade(Some(&history));
        assert_eq!(state.best, BestTracker { best: Some(0.5), best_epoch: Some(2), wait: 1, stopped_epoch: None });
    }
}
