//! A Keras file's weighted layers (`io::keras_weights`) mapped onto
//! incept's names: InceptionV3's Conv2D and BatchNormalization layers by
//! the creation counter in their names (the k-th created is `conv2d_k` /
//! `batch_normalization_k`, whatever the file's order; Keras 2's names,
//! counted from 1, rank the same), every shape checked against the layer
//! graph's weight table (`io::keras_inception_v3`), and the tutorial's
//! head, Dense layers in layer order, as `dense`, `dense_1`, … The first
//! mismatch is named with the file and the tensor.

use super::keras_inception_v3::{BN_VARIABLES, bn_name, conv_name, convs};
use crate::models::Backbone;
use super::keras_weights::{KerasFile, WeightedLayer, describe};
use super::{HostTensor, TensorMap};
use crate::error::{Error, Result};
use crate::models::keras_names::dense_name;

/// InceptionV3's weights, and the head's when the file has one.
#[derive(Clone, Debug)]
pub struct Imported {
    /// `conv2d_k/kernel`, `batch_normalization_k/{beta,moving_mean,moving_variance}`.
    pub base: TensorMap,
    /// `dense_j/{kernel,bias}`; empty without a head.
    pub head: TensorMap,
    /// Widths of the head's hidden Dense layers (`--head`).
    pub hidden: Vec<usize>,
    /// Outputs of the last Dense layer (0 without a head).
    pub classes: usize,
}

impl Imported {
    pub fn has_head(&self) -> bool {
        !self.head.is_empty()
    }

    /// Base and head in one map (a checkpoint's weights).
    pub fn all(&self) -> TensorMap {
        self.base.iter().chain(&self.head).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn bad(file: &KerasFile, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: file.path.display().to_string(), reason: reason.to_string() }
}

/// Keras's creation counter in an auto-generated name: `conv2d` → 0,
/// `conv2d_12` → 12; `None` for a name Keras did not generate.
pub fn creation_counter(name: &str, prefix: &str) -> Option<usize> {
    match name.strip_prefix(prefix)? {
        "" => Some(0),
        rest => rest.strip_prefix('_')?.parse().ok(),
    }
}

/// Maps `file`'s layers onto InceptionV3 (+ head); errors name the file and the first layer or tensor that does not fit.
pub fn map_inception_v3(file: &KerasFile) -> Result<Imported> {
    let of = |class: &str| file.layers.iter().filter(|l| l.class == class).collect::<Vec<_>>();
    let (conv_layers, bn_layers, dense_layers) = (of("Conv2D"), of("BatchNormalization"), of("Dense"));
    if let Some(other) = file.layers.iter().find(|l| !matches!(l.class.as_str(), "Conv2D" | "BatchNormalization" | "Dense")) {
        return Err(bad(
            file,
            format!("{} has weights; InceptionV3 with the tutorial's head has weights only in Conv2D, BatchNormalization and Dense layers", describe(other)),
        ));
    }
    let n = convs().len();
    if conv_layers.len() != n || bn_layers.len() != n {
        let names: Vec<String> = file.layers.iter().take(6).map(|l| format!("{} ({})", l.name, l.class)).collect();
        return Err(bad(
            file,
            format!(
                "not Keras InceptionV3: {} Conv2D and {} BatchNormalization layers with weights, expected {n} of each (the file's weighted layers: {}{})",
                conv_layers.len(),
                bn_layers.len(),
                names.join(", "),
                if file.layers.len() > 6 { ", …" } else { "" }
            ),
        ));
    }
    let convs_ranked = rank(file, &conv_layers, "conv2d")?;
    let bns_ranked = rank(file, &bn_layers, "batch_normalization")?;
    let mut base = TensorMap::new();
    for (k, (spec, (conv, bn))) in convs().iter().zip(convs_ranked.iter().zip(&bns_ranked)).enumerate() {
        let kernel = take(file, conv, &["kernel"], &[spec.kernel_shape()], &conv_name(k))?;
        base.insert(format!("{}/kernel", conv_name(k)), kernel.into_iter().next().unwrap_or_else(empty));
        let shapes = vec![vec![spec.cout]; BN_VARIABLES.len()];
        for (var, t) in BN_VARIABLES.iter().zip(take(file, bn, BN_VARIABLES, &shapes, &bn_name(k))?) {
            base.insert(format!("{}/{var}", bn_name(k)), t);
        }
    }
    Backbone::InceptionV3.check_weights(&base).map_err(|e| bad(file, e))?;
    let (head, hidden, classes) = map_head(file, &dense_layers)?;
    for (name, t) in base.iter().chain(&head) {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(bad(file, format!("tensor {name} has a non-finite value ({}) at index {i}", t.data[i])));
        }
    }
    Ok(Imported { base, head, hidden, classes })
}

fn empty() -> HostTensor {
    HostTensor { shape: Vec::new(), data: Vec::new() }
}

/// `layers` sorted by the creation counter in their names (distinct counters required).
fn rank<'a>(file: &KerasFile, layers: &[&'a WeightedLayer], prefix: &str) -> Result<Vec<&'a WeightedLayer>> {
    let mut keyed = Vec::with_capacity(layers.len());
    for l in layers {
        let k = creation_counter(&l.name, prefix).ok_or_else(|| {
            bad(file, format!("{}: the name is not Keras's auto-generated {prefix}_N, so its place in InceptionV3 is unknown", describe(l)))
        })?;
        keyed.push((k, *l));
    }
    keyed.sort_by_key(|(k, _)| *k);
    if let Some(w) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad(file, format!("two {prefix} layers with creation number {}: {} and {}", w[0].0, w[0].1.at, w[1].1.at)));
    }
    Ok(keyed.into_iter().map(|(_, l)| l).collect())
}

/// The variables `names` of `layer`, each with its shape in `shapes`; `target` is incept's layer name, for errors.
fn take(file: &KerasFile, layer: &WeightedLayer, names: &[&str], shapes: &[Vec<usize>], target: &str) -> Result<Vec<HostTensor>> {
    let found: Vec<&str> = layer.vars.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted_found = found.clone();
    sorted_found.sort_unstable();
    let mut sorted_names = names.to_vec();
    sorted_names.sort_unstable();
    if sorted_found != sorted_names {
        return Err(bad(file, format!("{} (incept's {target}) has variables {found:?}, expected {names:?}", describe(layer))));
    }
    names
        .iter()
        .zip(shapes)
        .map(|(var, shape)| {
            let t = layer.vars.iter().find(|(n, _)| n == var).map(|(_, t)| t.clone()).unwrap_or_else(empty);
            if &t.shape != shape {
                return Err(bad(file, format!("{} variable {var} (incept's {target}/{var}) has shape {:?}, expected {shape:?}", describe(layer), t.shape)));
            }
            Ok(t)
        })
        .collect()
}

/// The head's Dense layers in layer order, each reading the one before
/// (the first InceptionV3's pooled features); with a config, its
/// activations must be incept's: ReLU after every hidden layer, softmax last.
fn map_head(file: &KerasFile, dense: &[&WeightedLayer]) -> Result<(TensorMap, Vec<usize>, usize)> {
    // Keras imports are InceptionV3 files: the head reads its pooled mixed10.
    let features = crate::models::Backbone::InceptionV3.feature_channels();
    let mut head = TensorMap::new();
    let mut widths = vec![features];
    for (j, layer) in dense.iter().enumerate() {
        let fan_in = *widths.last().unwrap_or(&features);
        let units = layer.vars.iter().find(|(n, _)| n == "kernel").and_then(|(_, t)| t.shape.get(1).copied()).unwrap_or(0);
        let tensors = take(file, layer, &["kernel", "bias"], &[vec![fan_in, units], vec![units]], &dense_name(j))?;
        if units == 0 {
            return Err(bad(file, format!("{}: a Dense layer with 0 units", describe(layer))));
        }
        for (var, t) in ["kernel", "bias"].iter().zip(tensors) {
            head.insert(format!("{}/{var}", dense_name(j)), t);
        }
        widths.push(units);
    }
    if let (Some(config), false) = (&file.config, dense.is_empty()) {
        let acts = &config.dense_activations;
        let ok = acts.len() == dense.len() && acts.iter().rev().skip(1).all(|a| a == "relu") && acts.last().is_some_and(|a| a == "softmax");
        if !ok {
            return Err(bad(file, format!("the head's Dense activations are {acts:?}; incept's head is Dense(relu), …, Dense(softmax)")));
        }
    }
    let classes = if dense.is_empty() { 0 } else { *widths.last().unwrap_or(&0) };
    if !dense.is_empty() && classes < 2 {
        return Err(bad(file, format!("the head's last Dense layer has {classes} output; a classifier needs at least 2 classes")));
    }
    let hidden = if dense.is_empty() { Vec::new() } else { widths[1..widths.len() - 1].to_vec() };
    Ok((head, hidden, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_counters_read_keras_names() {
        assert_eq!(creation_counter("conv2d", "conv2d"), Some(0));
        assert_eq!(creation_counter("conv2d_93", "conv2d"), Some(93));
        assert_eq!(creation_counter("batch_normalization_5", "batch_normalization"), Some(5));
        assert_eq!(creation_counter("conv2d_transpose", "conv2d"), None);
        assert_eq!(creation_counter("my_conv", "conv2d"), None);
    }
}
