//! Everything that defines a training run, saved as RUN_DIR/run.json so that
//! `--resume`, `predict` and `evaluate` rebuild the same model, and inside
//! every checkpoint so that a checkpoint can prove which run it belongs to.

use crate::data::{DicomOptions, Preprocess};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// InceptionV3's smallest input side (Keras's `input_shape` minimum).
pub const MIN_IMAGE_SIZE: usize = 75;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Dataset root, absolute and canonical.
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
    /// How DICOM files are read (`--dicom-window`, `--dicom-frame`), for
    /// training and for predict/evaluate; runs written before DICOM input load
    /// with the defaults.
    #[serde(default)]
    pub dicom: DicomOptions,
    /// Class names in label order (sorted folder names of train/).
    pub classes: Vec<String>,
}

impl TrainConfig {
    /// Checks every value that does not need the dataset or the adapter, so
    /// a bad flag (or a hand-edited run.json) fails before anything is
    /// allocated or written. Errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.image_size < MIN_IMAGE_SIZE {
            return bad(format!("--image-size {}: InceptionV3 needs at least {MIN_IMAGE_SIZE}", self.image_size));
        }
        if self.batch == 0 {
            return bad("--batch 0: a batch needs at least 1 image".into());
        }
        if self.epochs == 0 {
            return bad("--epochs 0: train at least 1 epoch".into());
        }
        if let Some(k) = self.head.iter().position(|&w| w == 0) {
            return bad(format!("--head {}: hidden layer {} has 0 units; every hidden Dense layer needs at least 1", self.head_flag(), k + 1));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad(format!("--dropout {}: expected a rate in [0, 1)", self.dropout));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr {}: expected a positive learning rate", self.lr));
        }
        if !(self.shear_degrees.is_finite() && self.shear_degrees >= 0.0 && self.zoom.is_finite() && (0.0..1.0).contains(&self.zoom)) {
            return bad(format!("shear {} / zoom {}: expected a shear ≥ 0 degrees and a zoom range in [0, 1)", self.shear_degrees, self.zoom));
        }
        self.dicom.validate()?;
        if self.classes.len() < 2 {
            return bad(format!("classes {:?}: a classifier needs at least 2 classes (one subfolder of train/ per class)", self.classes));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.is_empty() || self.classes[..i].contains(c) {
                return bad(format!("classes {:?}: class name {c:?} is empty or repeated", self.classes));
            }
        }
        Ok(())
    }

    /// `--head` as it is typed: `512,512`.
    pub fn head_flag(&self) -> String {
        self.head.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
    }

    /// The first field (in run.json's order) whose value differs from
    /// `other`'s, as (name, ours, theirs). `epochs` is the run's target, not
    /// part of the model, and may grow on `--resume`; `feature_cache` changes
    /// speed, not results, and may be turned off on `--resume`: neither is compared.
    pub fn first_difference(&self, other: &TrainConfig) -> Option<(String, String, String)> {
        let fields = |c: &TrainConfig| match serde_json::to_value(c) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let (ours, theirs) = (fields(self), fields(other));
        ours.iter().filter(|(k, _)| !matches!(k.as_str(), "epochs" | "feature_cache")).find_map(|(k, v)| {
            let t = theirs.get(k).cloned().unwrap_or(serde_json::Value::Null);
            (*v != t).then(|| (k.clone(), v.to_string(), t.to_string()))
        })
    }
}

fn on() -> bool {
    true
}
