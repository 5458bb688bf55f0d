//! Checkpoints: one safetensors file with the classifier's weights, Adam's
//! moments and the training state in its metadata, written atomically, so
//! an interrupted run always leaves the previous good file in place.

use super::classifier::Classifier;
use super::optimizer::Adam;
use super::schedule::ReduceLrOnPlateau;
use crate::error::{Error, Result};
use crate::io::{StorageDtype, TensorMap, read_safetensors, write_safetensors};
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
    pub best_val_loss: f64,
    pub plateau: ReduceLrOnPlateau,
}

pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";

pub fn save(path: &Path, model: &Classifier, optimizer: &Adam, state: &TrainState) -> Result<()> {
    let mut tensors = model.to_tensor_map()?;
    tensors.extend(optimizer.state()?);
    let meta = BTreeMap::from([("incept_train_state".to_string(), serde_json::to_string(state).expect("state serialises"))]);
    write_safetensors(path, &tensors, StorageDtype::F32, &meta)?;
    Ok(())
}

/// The weights and state of a checkpoint file.
pub fn load(path: &Path) -> Result<(TensorMap, TrainState)> {
    let tensors = read_safetensors(path)?;
    let meta = crate::io::safetensors_io::read_metadata(path)?;
    let state = meta
        .get("incept_train_state")
        .ok_or_else(|| Error::Io { path: path.display().to_string(), reason: "not an incept checkpoint (no training state)".into() })
        .and_then(|s| {
            serde_json::from_str(s).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("bad training state: {e}") })
        })?;
    Ok((tensors, state))
}
