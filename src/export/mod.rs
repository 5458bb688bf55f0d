//! Exports a trained run (base + head) to other runtimes: ONNX
//! ([`onnx`]) and TF.js layers models ([`tfjs`]). Everything here works on
//! host tensors and the layer graph; no GPU device is opened.
//!
//! The exported network takes its input already preprocessed, as incept's
//! network does (the preprocessing is not part of the graph); every export
//! records which preprocessing the run used in its metadata.

pub mod onnx;
pub mod onnx_proto;
pub mod tfjs;

use crate::data::Preprocess;
use crate::error::{Error, Result};
use crate::io::TensorMap;
use crate::models::Backbone;
use crate::models::graph::Graph;
use crate::train::checkpoint::{self, BEST, LAST};
use crate::train::run_dir::{self, RUN_CONFIG};
use crate::train::classifier::Classifier;
use crate::models::keras_names::dense_name;
use std::path::{Path, PathBuf};

/// A trained classifier on the host: the base's layer graph and weights, the
/// Dense head, and what the run recorded about its inputs and classes.
pub struct ExportModel {
    pub backbone: Backbone,
    pub graph: Graph,
    /// Base weights with Keras 3 names (`conv2d_5/kernel`, …).
    pub base: TensorMap,
    /// (kernel [in, out], bias [out]) per Dense layer; ReLU after all but the last, softmax after the last.
    pub dense: Vec<(crate::io::HostTensor, crate::io::HostTensor)>,
    pub image_size: usize,
    pub preprocess: Preprocess,
    pub classes: Vec<String>,
    /// The head's Dropout rate (the identity at inference; kept in Keras-style exports).
    pub dropout: f32,
    /// The checkpoint file the weights came from.
    pub source: PathBuf,
}

impl ExportModel {
    /// Reads `run_dir/run.json` and its `best` or `last` checkpoint; checks
    /// every base weight against the backbone's table and the head's layer
    /// sizes against each other and the run's classes. Errors name the file.
    pub fn from_run(run_dir: &Path, which: &str) -> Result<ExportModel> {
        let file = match which {
            "best" => BEST,
            "last" => LAST,
            other => return Err(Error::Invalid(format!("--checkpoint {other}: expected best or last"))),
        };
        if !run_dir.join(RUN_CONFIG).is_file() {
            return Err(Error::Io {
                path: run_dir.display().to_string(),
                reason: format!("not a run directory: no {RUN_CONFIG} (expected a directory written by incept train)"),
            });
        }
        let cfg = run_dir::load_config(run_dir)?;
        let path = run_dir.join(file);
        if !path.is_file() {
            return Err(Error::Io {
                path: path.display().to_string(),
                reason: format!("the run has no {file} checkpoint (has it finished an epoch?)"),
            });
        }
        // The checkpoint must belong to run.json's run (its own copy of the configuration agrees).
        let weights = checkpoint::load_matching(&path, &cfg)?.tensors;
        let in_file = |e: Error| Error::Io { path: path.display().to_string(), reason: e.to_string() };
        // Base table and head shapes, checked as training loads them.
        Classifier::check_tensor_map(&cfg, &weights).map_err(in_file)?;
        let (mut head, base): (TensorMap, TensorMap) =
            weights.into_iter().filter(|(k, _)| !k.starts_with("optimizer/")).partition(|(k, _)| k.starts_with("dense"));
        let mut take = |name: String| head.remove(&name).ok_or_else(|| in_file(Error::Invalid(format!("head weight '{name}' is missing"))));
        let dense = (0..cfg.head.len() + 1)
            .map(|k| Ok((take(format!("{}/kernel", dense_name(k)))?, take(format!("{}/bias", dense_name(k)))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(ExportModel {
            backbone: cfg.backbone,
            graph: cfg.backbone.graph(),
            base,
            dense,
            image_size: cfg.image_size,
            preprocess: cfg.preprocess,
            classes: cfg.classes,
            dropout: cfg.dropout,
            source: path,
        })
    }

    /// Every parameter: base (moving statistics included, as Keras counts) and head.
    pub fn parameters(&self) -> usize {
        self.base.values().map(|t| t.data.len()).sum::<usize>()
            + self.dense.iter().map(|(k, b)| k.data.len() + b.data.len()).sum::<usize>()
    }

    /// Metadata every export carries: preprocessing, classes, input size.
    pub fn metadata(&self, layout: &str) -> Vec<(String, String)> {
        vec![
            ("incept.backbone".into(), self.backbone.name().into()),
            ("incept.preprocess".into(), self.preprocess.name().into()),
            ("incept.preprocess_formula".into(), self.preprocess.formula().into()),
            ("incept.classes".into(), serde_json::Value::from(self.classes.clone()).to_string()),
            ("incept.image_size".into(), self.image_size.to_string()),
            ("incept.input_layout".into(), layout.into()),
            ("incept.source".into(), self.source.display().to_string()),
        ]
    }

    /// The weight `name` of the base; the table was checked in [`ExportModel::from_run`].
    fn base_weight(&self, name: &str) -> Result<&crate::io::HostTensor> {
        self.base.get(name).ok_or_else(|| Error::Invalid(format!("base weight '{name}' is missing")))
    }
}
