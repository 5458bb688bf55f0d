//! Everything that defines a training run, saved as RUN_DIR/run.json so that
//! `--resume`, `predict` and `evaluate` rebuild the same model, and inside
//! every checkpoint so that a checkpoint can prove which run it belongs to.

use super::callbacks::CallbackConfig;
use super::class_weight::ClassWeights;
use crate::data::{Augment, DicomOptions, Preprocess};
use crate::error::{Error, Result};
use crate::gpu::Precision;
use crate::models::Backbone;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `incept train` fills in for a flag not given (the tutorial's recipe,
/// Keras's defaults); also the settings of a run imported from Keras.
pub mod defaults {
    pub const IMAGE_SIZE: usize = 224;
    pub const BATCH: usize = 32;
    pub const EPOCHS: usize = 10;
    pub const UNFREEZE_LAST: usize = 15;
    pub const HEAD: [usize; 2] = [512, 512];
    pub const DROPOUT: f32 = 0.3;
    pub const LR: f64 = 1e-3;
    /// ImageDataGenerator(shear_range=0.2) is in degrees; zoom_range=0.2.
    pub const SHEAR_DEGREES: f32 = 0.2;
    pub const ZOOM: f32 = 0.2;
    pub const SEED: u64 = 0;
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Dataset root, absolute and canonical.
    pub data: PathBuf,
    /// The base network (the weights file's, or `--backbone` with
    /// `--random-init`); runs written before there was a choice are InceptionV3.
    #[serde(default = "inception_v3")]
    pub backbone: Backbone,
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
    /// Validate on this stratified fraction of train/ (recorded in
    /// RUN/split.json) instead of DATA/valid; see `data::split`.
    #[serde(default)]
    pub validation_split: Option<f64>,
    /// `--monitor`, early stopping and ReduceLROnPlateau (flattened: one
    /// run.json field each; older files load with Keras's defaults).
    #[serde(flatten, default)]
    pub callbacks: CallbackConfig,
    /// `--class-weight`, resolved per class when the run was created (see
    /// `train::class_weight`); `None`: unweighted (also for older run files).
    #[serde(default)]
    pub class_weight: Option<ClassWeights>,
    /// `--bn-inference`: every BatchNorm layer, trainable ones included, uses
    /// its moving statistics and never updates them while training (the
    /// Keras guide's `base_model(inputs, training=False)`). Off: trainable
    /// BatchNorm layers use batch statistics (the tutorial's behaviour).
    #[serde(default)]
    pub bn_inference: bool,
    /// `--init RUN`: the run (its directory, canonical) whose best weights,
    /// base and head, this run started from, with a fresh optimizer state.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// `--head-epochs N`: epochs trained first with the whole base frozen at
    /// `lr`, before the `epochs` epochs with `unfreeze_last` trainable at
    /// `fine_tune_lr` (see `train::stages`). 0: one stage.
    #[serde(default)]
    pub head_epochs: usize,
    /// The learning rate of the fine-tuning stage (set when `head_epochs` > 0).
    #[serde(default)]
    pub fine_tune_lr: Option<f64>,
    /// `--precision`: the frozen base's convolutions in f32 or mixed (f16
    /// products, f32 sums, on cooperative matrices); runs written before the
    /// flag existed load as f32. A resumed run keeps it.
    #[serde(default)]
    pub precision: Precision,
}

impl TrainConfig {
    /// Checks every value that does not need the dataset or the adapter, so
    /// a bad flag (or a hand-edited run.json) fails before anything is
    /// allocated or written. Errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        let min = self.backbone.min_size();
        if self.image_size < min {
            return bad(format!("--image-size {}: {} needs at least {min}", self.image_size, self.backbone.title()));
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
        if let Some(f) = self.validation_split {
            crate::data::split::check_fraction(f)?;
        }
        self.callbacks.validate()?;
        self.dicom.validate()?;
        if self.classes.len() < 2 {
            return bad(format!("classes {:?}: a classifier needs at least 2 classes (one subfolder of train/ per class)", self.classes));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.is_empty() || self.classes[..i].contains(c) {
                return bad(format!("classes {:?}: class name {c:?} is empty or repeated", self.classes));
            }
        }
        if let Some(cw) = &self.class_weight {
            cw.validate(self.classes.len())?;
        }
        match (self.head_epochs, self.fine_tune_lr) {
            (0, None) => {}
            (0, Some(lr)) => return bad(format!("--fine-tune-lr {lr}: it sets the second stage's rate, so it needs --head-epochs N (N > 0)")),
            (n, _) if self.unfreeze_last == 0 => {
                return bad(format!("--head-epochs {n} with --unfreeze-last 0: the second stage would train the same head; give --unfreeze-last N > 0"));
            }
            (_, Some(lr)) if lr.is_finite() && lr > 0.0 => {}
            (_, Some(lr)) => return bad(format!("--fine-tune-lr {lr}: expected a positive learning rate")),
            (_, None) => return bad("--head-epochs without --fine-tune-lr: the second stage needs a learning rate".into()),
        }
        Ok(())
    }

    /// Epochs of the whole run: the head-only stage, then the fine-tuning (or only) stage.
    pub fn total_epochs(&self) -> usize {
        self.head_epochs + self.epochs
    }

    /// The run's shear/zoom/flip settings (what training draws from when
    /// `augment` is on; test-time augmentation draws from them too).
    pub fn augmentation(&self) -> Augment {
        Augment { shear_range_deg: self.shear_degrees, zoom_range: self.zoom, horizontal_flip: self.horizontal_flip }
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

fn inception_v3() -> Backbone {
    Backbone::InceptionV3
}
