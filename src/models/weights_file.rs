//! A weights file that says what it is. incept's safetensors weight files
//! carry, in their `__metadata__` string map, the backbone they hold and the
//! preprocessing its weights expect, so every command builds the right
//! network from the file alone. A file may also hold the pretrained
//! classifier on top of the base (EfficientNet-Lite0's ImageNet head) as
//! `predictions/kernel` and `predictions/bias`, with its class names.
//!
//! Files written before the metadata existed (InceptionV3 only) are
//! recognised by their weight names.

use super::backbone::Backbone;
use crate::data::Preprocess;
use crate::error::{Error, Result};
use crate::io::safetensors_io::read_safetensors_with_metadata;
use crate::io::{HostTensor, TensorMap};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metadata key: the backbone's name (`Backbone::name`).
pub const KEY_BACKBONE: &str = "backbone";
/// Metadata key: the preprocessing the weights expect (`Preprocess::name`).
pub const KEY_PREPROCESS: &str = "preprocess";
/// Metadata key: the pretrained head's class names, a JSON array in output order.
pub const KEY_CLASSES: &str = "classes";
/// Metadata key: where the weights came from, in words.
pub const KEY_SOURCE: &str = "source";
/// The pretrained head's Dense layer, named as Keras's applications name their top.
pub const HEAD_LAYER: &str = "predictions";

/// A Dense classifier on the globally averaged base output (softmax after).
#[derive(Clone, Debug)]
pub struct PretrainedHead {
    /// `[features, classes]`, Keras's Dense layout.
    pub kernel: HostTensor,
    /// `[classes]`.
    pub bias: HostTensor,
    /// Names in output order.
    pub classes: Vec<String>,
}

/// What a weights file holds, checked against its backbone's weight table.
#[derive(Clone, Debug)]
pub struct WeightsFile {
    pub path: PathBuf,
    pub backbone: Backbone,
    /// What the file's metadata says (else the backbone's default).
    pub preprocess: Preprocess,
    /// The base's weights, Keras 3 names.
    pub base: TensorMap,
    pub head: Option<PretrainedHead>,
}

impl WeightsFile {
    /// Reads and checks `path`. Errors name the file and the first tensor
    /// or metadata entry that does not fit.
    pub fn read(path: &Path) -> Result<WeightsFile> {
        let (tensors, metadata) = read_safetensors_with_metadata(path)?;
        WeightsFile::from_parts(path, tensors, &metadata).map_err(|e| match e {
            e @ Error::Io { .. } => e,
            e => Error::Io { path: path.display().to_string(), reason: e.to_string() },
        })
    }

    /// [`WeightsFile::read`] when `expected` (from `--backbone`) must match: a file of
    /// another backbone is refused, naming both.
    pub fn read_expecting(path: &Path, expected: Option<Backbone>) -> Result<WeightsFile> {
        let file = WeightsFile::read(path)?;
        if let Some(want) = expected
            && want != file.backbone
        {
            return Err(Error::Io {
                path: path.display().to_string(),
                reason: format!("holds {} weights, but --backbone {} was given", file.backbone.name(), want.name()),
            });
        }
        Ok(file)
    }

    fn from_parts(path: &Path, mut tensors: TensorMap, metadata: &BTreeMap<String, String>) -> Result<WeightsFile> {
        let head_tensors = [format!("{HEAD_LAYER}/kernel"), format!("{HEAD_LAYER}/bias")].map(|n| tensors.remove(&n));
        let backbone = match metadata.get(KEY_BACKBONE) {
            Some(name) => Backbone::from_name(name).map_err(|e| Error::Invalid(format!("metadata '{KEY_BACKBONE}': {e}")))?,
            None => Backbone::recognise(&tensors).ok_or_else(|| {
                Error::Invalid(format!(
                    "the file does not say which backbone it holds (no '{KEY_BACKBONE}' metadata) and its tensors are not the weights of any of {}",
                    Backbone::ALL.map(Backbone::name).join(", ")
                ))
            })?,
        };
        let preprocess = match metadata.get(KEY_PREPROCESS) {
            Some(name) => parse_preprocess(name)?,
            None => backbone.default_preprocess(),
        };
        let base = backbone.canonical_names(&tensors)?;
        let head = match head_tensors {
            [None, None] => None,
            [Some(kernel), Some(bias)] => Some(read_head(kernel, bias, metadata)?),
            _ => return Err(Error::Invalid(format!("the head needs both '{HEAD_LAYER}/kernel' and '{HEAD_LAYER}/bias'; the file has only one"))),
        };
        let file = WeightsFile { path: path.to_path_buf(), backbone, preprocess, base, head };
        file.check()?;
        Ok(file)
    }

    /// Errors unless the base is exactly the backbone's weights and the head,
    /// if any, reads the base's output channels and names each of its classes.
    pub fn check(&self) -> Result<()> {
        self.backbone.check_weights(&self.base)?;
        let Some(head) = &self.head else { return Ok(()) };
        let features = self.backbone.feature_channels();
        let (kernel, bias) = (&head.kernel, &head.bias);
        let [f, k] = kernel.shape[..] else {
            return Err(Error::Shape(format!("'{HEAD_LAYER}/kernel' has shape {:?}, expected [{features}, classes]", kernel.shape)));
        };
        if f != features || kernel.data.len() != kernel.numel() {
            return Err(Error::Shape(format!(
                "'{HEAD_LAYER}/kernel' has shape {:?}, expected [{features}, classes] ({} output channels)",
                kernel.shape,
                self.backbone.title()
            )));
        }
        if bias.shape != [k] || bias.data.len() != k {
            return Err(Error::Shape(format!("'{HEAD_LAYER}/bias' has shape {:?}, expected [{k}] (the kernel's classes)", bias.shape)));
        }
        if head.classes.len() != k {
            return Err(Error::Invalid(format!("metadata '{KEY_CLASSES}' names {} classes, but the head '{HEAD_LAYER}' has {k}", head.classes.len())));
        }
        Ok(())
    }

    /// Every tensor to write: the base and, when there is one, the head.
    pub fn tensors(&self) -> TensorMap {
        let mut out = self.base.clone();
        if let Some(h) = &self.head {
            out.insert(format!("{HEAD_LAYER}/kernel"), h.kernel.clone());
            out.insert(format!("{HEAD_LAYER}/bias"), h.bias.clone());
        }
        out
    }
}

/// The metadata a weights file of `backbone` carries.
pub fn metadata(backbone: Backbone, preprocess: Preprocess, source: &str, classes: Option<&[String]>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::from([
        (KEY_BACKBONE.to_string(), backbone.name().to_string()),
        (KEY_PREPROCESS.to_string(), preprocess.name().to_string()),
        (KEY_SOURCE.to_string(), source.to_string()),
    ]);
    if let Some(classes) = classes {
        m.insert(KEY_CLASSES.to_string(), serde_json::Value::from(classes.to_vec()).to_string());
    }
    m
}

fn parse_preprocess(name: &str) -> Result<Preprocess> {
    use clap::ValueEnum;
    Preprocess::from_str(name, false).map_err(|_| {
        let names: Vec<&str> = Preprocess::value_variants().iter().map(|p| p.name()).collect();
        Error::Invalid(format!("metadata '{KEY_PREPROCESS}' is '{name}'; expected one of {}", names.join(", ")))
    })
}

fn read_head(kernel: HostTensor, bias: HostTensor, metadata: &BTreeMap<String, String>) -> Result<PretrainedHead> {
    let classes: Vec<String> = match metadata.get(KEY_CLASSES) {
        Some(json) => serde_json::from_str(json).map_err(|e| Error::Invalid(format!("metadata '{KEY_CLASSES}' is not a JSON array of names: {e}")))?,
        None => {
            return Err(Error::Invalid(format!("the file has a head '{HEAD_LAYER}' of {:?} but no '{KEY_CLASSES}' metadata naming its classes", kernel.shape)));
        }
    };
    Ok(PretrainedHead { kernel, bias, classes })
}
