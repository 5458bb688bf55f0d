//! Everything that defines a training run, saved as RUN_DIR/run.json so that
//! `--resume`, `predict` and `evaluate` rebuild the same model.

use crate::data::Preprocess;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub data: PathBuf,
    /// Pretrained base weights; `None` trains the base from Keras's random initialisation.
    pub weights: Option<PathBuf>,
    pub image_size: usize,
    pub batch: usize,
    pub epochs: usize,
    pub unfreeze_last: usize,
    pub head: Vec<usize>,
    pub dropout: f32,
    pub lr: f64,
    pub augment: bool,
    pub shear_degrees: f32,
    pub zoom: f32,
    pub horizontal_flip: bool,
    pub preprocess: Preprocess,
    pub seed: u64,
    /// Cache the frozen prefix's outputs of images that are not augmented
    /// (results are the same either way; see `train::feature_cache`). Run
    /// files written before the cache existed load with it on.
    #[serde(default = "on")]
    pub feature_cache: bool,
    /// Class names in label order (sorted folder names of train/).
    pub classes: Vec<String>,
}

fn on() -> bool {
    true
}
