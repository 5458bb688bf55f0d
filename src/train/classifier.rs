//! Base + head: the fine-tuned classifier, its weights as one tensor map.

use super::config::TrainConfig;
use super::head::Head;
use crate::autograd::{self as ag, Var};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::io::TensorMap;
use crate::models::InceptionV3;
use crate::tensor::Tensor;

pub struct Classifier {
    pub base: InceptionV3,
    pub head: Head,
}

impl Classifier {
    /// A new classifier: pretrained (or randomly initialised) base, fresh head.
    pub fn new(gpu: &Gpu, cfg: &TrainConfig) -> Result<Classifier> {
        let base = match &cfg.weights {
            Some(path) => InceptionV3::from_safetensors(gpu, path, cfg.unfreeze_last)?,
            None => InceptionV3::random(gpu, cfg.seed, cfg.unfreeze_last)?,
        };
        let head = Head::new(gpu, 2048, &cfg.head, cfg.classes.len(), cfg.dropout, cfg.seed ^ 0x5eed)?;
        Ok(Classifier { base, head })
    }

    /// A classifier from a checkpoint's weights (base with Keras names, head `dense*`).
    pub fn from_tensor_map(gpu: &Gpu, cfg: &TrainConfig, weights: &TensorMap) -> Result<Classifier> {
        let (head_map, base_map): (TensorMap, TensorMap) =
            weights.iter().filter(|(k, _)| !k.starts_with("optimizer/")).map(|(k, v)| (k.clone(), v.clone())).partition(|(k, _)| k.starts_with("dense"));
        let base = InceptionV3::from_tensor_map(gpu, &base_map, cfg.unfreeze_last)?;
        let head = Head::from_tensor_map(gpu, &head_map, cfg.head.len() + 1, cfg.dropout)?;
        Ok(Classifier { base, head })
    }

    /// Logits [N, classes] for NHWC images.
    pub fn logits(&self, images: &Tensor, training: bool, seed: u64) -> Result<Var> {
        let base = self.base.forward(images, training)?;
        let _scope = images.gpu().profile_scope("head");
        self.head.logits(&ag::global_avg_pool(&base)?, training, seed)
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
