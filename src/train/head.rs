//! The tutorial's classification head on top of the base:
//! GlobalAveragePooling2D → Flatten → [Dense(u, relu) → Dropout(rate)]* → Dense(C, softmax).
//! (Flatten after global pooling is the identity on [N, 2048].) Softmax is
//! fused into the loss; `logits` returns the pre-softmax values.

use crate::autograd::{self as ag, Var};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::{HostTensor, TensorMap};
use crate::models::keras_names::dense_name;
use crate::tensor::Tensor;
use rand::{Rng, SeedableRng};

pub struct Head {
    /// (kernel [in, out], bias [out]) per Dense layer, the last one producing the classes.
    dense: Vec<(Var, Var)>,
    dropout: f32,
}

/// Names and shapes of the head's weights, in layer order: for each Dense
/// layer from `in_features` through `hidden` to `classes`, its kernel
/// [in, out] then its bias [out].
pub fn weight_shapes(in_features: usize, hidden: &[usize], classes: usize) -> Vec<(String, Vec<usize>)> {
    let mut sizes = vec![in_features];
    sizes.extend(hidden);
    sizes.push(classes);
    let mut out = Vec::with_capacity(2 * (sizes.len() - 1));
    for (k, pair) in sizes.windows(2).enumerate() {
        out.push((format!("{}/kernel", dense_name(k)), vec![pair[0], pair[1]]));
        out.push((format!("{}/bias", dense_name(k)), vec![pair[1]]));
    }
    out
}

impl Head {
    /// Keras initialisation: Glorot-uniform kernels, zero biases.
    pub fn new(gpu: &Gpu, in_features: usize, hidden: &[usize], classes: usize, dropout: f32, seed: u64) -> Result<Head> {
        if classes < 2 {
            return Err(Error::Invalid(format!("the head needs at least 2 classes, got {classes}")));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(Error::Invalid(format!("--dropout {dropout}: expected a rate in [0, 1)")));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut map = TensorMap::new();
        for (name, shape) in weight_shapes(in_features, hidden, classes) {
            let data = match shape[..] {
                [fan_in, fan_out] => {
                    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                    (0..fan_in * fan_out).map(|_| rng.random_range(-limit..limit)).collect()
                }
                _ => vec![0.0; shape.iter().product()],
            };
            map.insert(name, HostTensor { shape, data });
        }
        Head::from_tensor_map(gpu, &map, hidden.len() + 1, dropout)
    }

    /// Loads `layers` Dense layers named `dense`, `dense_1`, … from `map`.
    pub fn from_tensor_map(gpu: &Gpu, map: &TensorMap, layers: usize, dropout: f32) -> Result<Head> {
        let get = |name: String| -> Result<Tensor> {
            let t = map.get(&name).ok_or_else(|| Error::Invalid(format!("head weight '{name}' is missing")))?;
            Tensor::from_slice(gpu, &t.shape, &t.data)
        };
        let mut dense: Vec<(Var, Var)> = Vec::with_capacity(layers);
        for k in 0..layers {
            let kernel = get(format!("{}/kernel", dense_name(k)))?;
            let bias = get(format!("{}/bias", dense_name(k)))?;
            let [fan_in, fan_out] = kernel.dims2()?;
            if bias.shape() != [fan_out] {
                return Err(Error::Shape(format!("head weight '{}/bias' has shape {:?}, expected [{fan_out}]", dense_name(k), bias.shape())));
            }
            if let Some((prev, _)) = dense.last() {
                let prev_out = prev.shape()[1];
                if prev_out != fan_in {
                    return Err(Error::Shape(format!("head weight '{}/kernel' takes {fan_in} inputs, the layer before gives {prev_out}", dense_name(k))));
                }
            }
            dense.push((Var::parameter(kernel, true), Var::parameter(bias, true)));
        }
        Ok(Head { dense, dropout })
    }

    pub fn classes(&self) -> usize {
        self.dense.last().map_or(0, |(w, _)| w.shape()[1])
    }

    /// Logits from pooled features [N, in]; dropout only when `training`,
    /// with masks derived from `seed` (a fresh one each step).
    pub fn logits(&self, features: &Var, training: bool, seed: u64) -> Result<Var> {
        let mut y = features.clone();
        let last = self.dense.len() - 1;
        for (k, (w, b)) in self.dense.iter().enumerate() {
            y = ag::dense(&y, w, b, k < last)?;
            if k < last && training && self.dropout > 0.0 {
                y = ag::dropout(&y, self.dropout, seed.wrapping_mul(31).wrapping_add(k as u64))?;
            }
        }
        Ok(y)
    }

    /// The trainable weights with their Keras names.
    pub fn params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (k, (w, b)) in self.dense.iter().enumerate() {
            out.push((format!("{}/kernel", dense_name(k)), w.clone()));
            out.push((format!("{}/bias", dense_name(k)), b.clone()));
        }
        out
    }
}
