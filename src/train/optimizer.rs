//! Adam over a named parameter list (Keras defaults), with its moment
//! tensors exposed for checkpoints.

use crate::autograd::{Grads, Var};
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap};
use crate::ops::optim::{AdamConfig, adam_step};
use crate::tensor::Tensor;

pub struct Adam {
    pub config: AdamConfig,
    /// Updates applied so far (Keras `optimizer.iterations`).
    pub step: u32,
    params: Vec<(String, Var, Tensor, Tensor)>,
}

impl Adam {
    pub fn new(params: Vec<(String, Var)>, config: AdamConfig) -> Result<Adam> {
        let params = params
            .into_iter()
            .map(|(name, p)| {
                let gpu = p.value().gpu().clone();
                Ok((name, p.clone(), Tensor::zeros(&gpu, p.shape())?, Tensor::zeros(&gpu, p.shape())?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Adam { config, step: 0, params })
    }

    /// One update of every parameter that received a gradient.
    pub fn apply(&mut self, grads: &Grads) -> Result<()> {
        self.step += 1;
        for (_, p, m, v) in &self.params {
            if let Some(g) = grads.get(p) {
                adam_step(p.value(), g, m, v, &self.config, self.step)?;
            }
        }
        Ok(())
    }

    /// Moments as `optimizer/<param>/m|v`.
    pub fn state(&self) -> Result<TensorMap> {
        let mut map = TensorMap::new();
        for (name, _, m, v) in &self.params {
            map.insert(format!("optimizer/{name}/m"), HostTensor { shape: m.shape().to_vec(), data: m.to_vec()? });
            map.insert(format!("optimizer/{name}/v"), HostTensor { shape: v.shape().to_vec(), data: v.to_vec()? });
        }
        Ok(map)
    }

    /// Restores moments saved by [`Adam::state`].
    pub fn load_state(&mut self, map: &TensorMap, step: u32) -> Result<()> {
        for (name, _, m, v) in &self.params {
            for (suffix, t) in [("m", m), ("v", v)] {
                let key = format!("optimizer/{name}/{suffix}");
                let saved = map.get(&key).ok_or_else(|| Error::Invalid(format!("checkpoint lacks '{key}'")))?;
                if saved.shape != t.shape() {
                    return Err(Error::Shape(format!("checkpoint '{key}' has shape {:?}, expected {:?}", saved.shape, t.shape())));
                }
                t.write(&saved.data)?;
            }
        }
        self.step = step;
        Ok(())
    }
}
