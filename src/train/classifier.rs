//! Base + head: the fine-tuned classifier, its weights as one tensor map.

use super::config::TrainConfig;
use super::head::{self, Head};
use crate::autograd::{self as ag, Var};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::TensorMap;
use crate::io::word_hash::WordHash;
use crate::models::{Base, Boundary, WeightsFile};
use crate::tensor::Tensor;

pub struct Classifier {
    pub base: Base,
    pub head: Head,
    /// Run the base in inference mode even while training (`--bn-inference`):
    /// BatchNorm layers use and keep their moving statistics; dropout in the
    /// head still follows `training`.
    pub bn_inference: bool,
}

impl Classifier {
    /// A new classifier: pretrained (or randomly initialised) base, fresh head.
    pub fn new(gpu: &Gpu, cfg: &TrainConfig) -> Result<Classifier> {
        let base = match &cfg.weights {
            Some(path) => {
                let file = WeightsFile::read_expecting(path, Some(cfg.backbone))?;
                Base::from_tensor_map(gpu, file.backbone, &file.base, cfg.unfreeze_last).map_err(|e| in_file(path, e))?
            }
            None => Base::random(gpu, cfg.backbone, cfg.seed, cfg.unfreeze_last)?,
        };
        let head = Head::new(gpu, cfg.backbone.feature_channels(), &cfg.head, cfg.classes.len(), cfg.dropout, cfg.seed ^ 0x5eed)?;
        Ok(Classifier { base, head, bn_inference: cfg.bn_inference })
    }

    /// A classifier from a checkpoint's weights (base with Keras names, head `dense*`).
    /// Errors unless `weights` holds exactly the head that `cfg` describes.
    pub fn from_tensor_map(gpu: &Gpu, cfg: &TrainConfig, weights: &TensorMap) -> Result<Classifier> {
        let (head_map, base_map) = split(weights);
        check_head(cfg, &head_map)?;
        let base = Base::from_tensor_map(gpu, cfg.backbone, &base_map, cfg.unfreeze_last)?;
        let head = Head::from_tensor_map(gpu, &head_map, cfg.head.len() + 1, cfg.dropout)?;
        Ok(Classifier { base, head, bn_inference: cfg.bn_inference })
    }

    /// Checks, without the adapter, that a checkpoint's `weights` (written
    /// by incept, so with Keras 3 names) are the base and the head of `cfg`,
    /// each with its shape; errors name the tensor.
    pub fn check_tensor_map(cfg: &TrainConfig, weights: &TensorMap) -> Result<()> {
        let (head_map, base_map) = split(weights);
        check_head(cfg, &head_map)?;
        cfg.backbone.check_weights(&base_map)
    }

    /// Logits [N, classes] for NHWC images.
    pub fn logits(&self, images: &Tensor, training: bool, seed: u64) -> Result<Var> {
        let base = self.base.forward(images, self.base_training(training))?;
        let _scope = images.gpu().profile_scope("head");
        self.head.logits(&ag::global_avg_pool(&base)?, training, seed)
    }

    /// Logits from the base's frozen-prefix boundary, exactly as
    /// [`logits`](Self::logits) computes them from the images.
    pub fn logits_from_boundary(&self, boundary: &Boundary, training: bool, seed: u64) -> Result<Var> {
        let features = ag::global_avg_pool(&self.base.forward_from_boundary(boundary, self.base_training(training))?)?;
        self.head.logits(&features, training, seed)
    }

    /// The training mode the base runs in when the classifier's is `training`.
    fn base_training(&self, training: bool) -> bool {
        training && !self.bn_inference
    }

    /// Logits in inference mode from a base boundary at `layer`
    /// ([`Network::boundary_at`](crate::models::Network::boundary_at)), with
    /// that layer's output as a leaf requiring a gradient: (leaf, logits).
    pub fn logits_from_layer(&self, boundary: &Boundary, layer: usize) -> Result<(Var, Var)> {
        let (leaf, base) = self.base.forward_from_layer(boundary, layer)?;
        Ok((leaf, self.head.logits(&ag::global_avg_pool(&base)?, false, 0)?))
    }

    /// A hash of the base weights that training never changes (all but the
    /// trainable weights and the moving statistics of their BatchNorm
    /// layers), names and shapes included: the feature cache's model key.
    pub fn frozen_weights_hash(&self) -> Result<u64> {
        let trainable: Vec<String> = self.base.trainable_params().into_iter().map(|(name, _)| name).collect();
        let changes = |name: &str| {
            let layer = name.rsplit_once('/').map_or(name, |(layer, _)| layer);
            trainable.iter().any(|t| t == name || (name.contains("/moving_") && t == &format!("{layer}/beta")))
        };
        let mut h = WordHash::default();
        for (name, t) in self.base.to_tensor_map()? {
            if changes(&name) {
                continue;
            }
            h.bytes(name.as_bytes());
            t.shape.iter().for_each(|&d| h.bytes(&(d as u64).to_le_bytes()));
            h.bytes(bytemuck::cast_slice(&t.data));
        }
        Ok(h.finish())
    }

    pub fn trainable_params(&self) -> Vec<(String, Var)> {
        let mut p = self.base.trainable_params();
        p.extend(self.head.params());
        p
    }

    /// All weights (base moving statistics included) on the host.
    pub fn to_tensor_map(&self) -> Result<TensorMap> {
        let mut map = self.base.to_tensor_map()?;
        for (name, v) in self.head.params() {
            map.insert(name, crate::io::HostTensor { shape: v.shape().to_vec(), data: v.value().to_vec()? });
        }
        Ok(map)
    }
}

fn in_file(path: &std::path::Path, e: Error) -> Error {
    Error::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// (head `dense*`, base) of a checkpoint's weights, Adam's moments left out.
fn split(weights: &TensorMap) -> (TensorMap, TensorMap) {
    weights.iter().filter(|(k, _)| !k.starts_with("optimizer/")).map(|(k, v)| (k.clone(), v.clone())).partition(|(k, _)| k.starts_with("dense"))
}

/// Errors, naming the tensor, unless `head` holds exactly the Dense weights
/// that `cfg` (its `--head` widths and its classes) describes, each with the
/// shape it implies: a checkpoint from another configuration never loads.
fn check_head(cfg: &TrainConfig, head: &TensorMap) -> Result<()> {
    let expected = head::weight_shapes(cfg.backbone.feature_channels(), &cfg.head, cfg.classes.len());
    let describe = || format!("--head {} with {} classes", cfg.head_flag(), cfg.classes.len());
    for (name, shape) in &expected {
        match head.get(name) {
            None => return Err(Error::Shape(format!("head weight '{name}' {shape:?} is missing ({} expects it)", describe()))),
            Some(t) if &t.shape != shape || t.data.len() != t.numel() => {
                return Err(Error::Shape(format!("head weight '{name}' has shape {:?}, but {} expects {shape:?}", t.shape, describe())));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = head.keys().find(|k| !expected.iter().any(|(n, _)| n == *k)) {
        return Err(Error::Shape(format!("head weight '{extra}' is not part of the head of {}", describe())));
    }
    Ok(())
}
