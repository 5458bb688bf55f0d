//! EfficientNet-Lite0's pretrained state dict (the PyTorch reference layout of
//! lukemelas/EfficientNet-PyTorch as efficientnet-lite-pytorch 0.1.0 builds it:
//! `_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, …, `_conv_head`, `_bn1`, `_fc`)
//! mapped onto Keras-style names and layouts.
//!
//! Names follow Keras's EfficientNet: `stem_conv`, `stem_bn`, then per block
//! `block{stage}{letter}_expand_conv`, `_expand_bn` (absent in block1a, whose
//! expansion ratio is 1), `_dwconv`, `_bn`, `_project_conv`, `_project_bn`, then
//! `top_conv`, `top_bn`; BatchNorm variables gamma, beta, moving_mean,
//! moving_variance (torch's weight, bias, running_mean, running_var). Layouts:
//! convolutions OIHW → HWIO `kernel`, depthwise `[C,1,k,k]` → `[k,k,C,1]`
//! `depthwise_kernel`, the classifier `_fc.weight` `[1000,1280]` → `[1280,1000]`.
//! The architecture itself is incept's graph (src/models/efficientnet_lite0_graph.rs),
//! whose weight table lists the layers in the reference's module order.

use super::torch_pth::{LegacyStateDict, read_legacy_state_dict};
use super::{HostTensor, TensorMap};
use crate::error::{Error, Result};
use crate::models::Backbone;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// ImageNet-1k classes of the pretrained classifier.
pub const CLASSES: usize = 1000;

/// How a torch tensor becomes its Keras counterpart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// `[O,I,kh,kw]` → `[kh,kw,I,O]`.
    Conv,
    /// `[C,1,k,k]` → `[k,k,C,1]`.
    Depthwise,
    /// Unchanged (BatchNorm vectors, the classifier's bias).
    Same,
    /// `[rows, cols]` → `[cols, rows]` (the classifier's weight).
    Transpose,
}

/// Where a torch tensor goes.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Base(String),
    HeadKernel,
    HeadBias,
}

struct Entry {
    torch: String,
    torch_shape: Vec<usize>,
    layout: Layout,
    target: Target,
}

const BN_VARS: [(&str, &str); 4] =
    [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")];

/// Every weight of the torch state dict, in the reference model's order,
/// read off incept's EfficientNet-Lite0 graph (its weight table is in the
/// same creation order): Keras layer → torch module by the naming scheme.
fn entries() -> Vec<Entry> {
    let mut blocks: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (name, shape) in Backbone::EfficientNetLite0.weight_table() {
        let Some((layer, var)) = name.split_once('/') else { continue };
        let module = torch_module(layer, &mut blocks);
        let (torch_var, layout) = match var {
            "kernel" => ("weight", Layout::Conv),
            "depthwise_kernel" => ("weight", Layout::Depthwise),
            keras_var => (BN_VARS.iter().find(|(_, k)| *k == keras_var).map_or(keras_var, |(t, _)| *t), Layout::Same),
        };
        let torch_shape = match layout {
            // [kh, kw, I, O] ← [O, I, kh, kw]; [k, k, C, 1] ← [C, 1, k, k].
            Layout::Conv => vec![shape[3], shape[2], shape[0], shape[1]],
            Layout::Depthwise => vec![shape[2], 1, shape[0], shape[1]],
            _ => shape.clone(),
        };
        out.push(Entry { torch: format!("{module}.{torch_var}"), torch_shape, layout, target: Target::Base(name) });
    }
    let features = Backbone::EfficientNetLite0.feature_channels();
    out.push(Entry { torch: "_fc.weight".into(), torch_shape: vec![CLASSES, features], layout: Layout::Transpose, target: Target::HeadKernel });
    out.push(Entry { torch: "_fc.bias".into(), torch_shape: vec![CLASSES], layout: Layout::Same, target: Target::HeadBias });
    out
}

/// The reference's module for a Keras-style layer name: `stem_conv` →
/// `_conv_stem`, `block2b_dwconv` → `_blocks.2._depthwise_conv` (blocks are
/// numbered in the order they first appear), `top_bn` → `_bn1`, ….
fn torch_module(layer: &str, blocks: &mut Vec<String>) -> String {
    let fixed = [("stem_conv", "_conv_stem"), ("stem_bn", "_bn0"), ("top_conv", "_conv_head"), ("top_bn", "_bn1")];
    if let Some((_, module)) = fixed.iter().find(|(keras, _)| *keras == layer) {
        return module.to_string();
    }
    let (block, part) = layer.split_once('_').unwrap_or((layer, ""));
    let index = blocks.iter().position(|b| b == block).unwrap_or_else(|| {
        blocks.push(block.to_string());
        blocks.len() - 1
    });
    let module = match part {
        "expand_conv" => "_expand_conv",
        "expand_bn" => "_bn0",
        "dwconv" => "_depthwise_conv",
        "bn" => "_bn1",
        "project_conv" => "_project_conv",
        "project_bn" => "_bn2",
        other => other,
    };
    format!("_blocks.{index}.{module}")
}

fn keras_shape(layout: Layout, s: &[usize]) -> Vec<usize> {
    match layout {
        Layout::Conv => vec![s[2], s[3], s[1], s[0]],
        Layout::Depthwise => vec![s[2], s[3], s[0], 1],
        Layout::Same => s.to_vec(),
        Layout::Transpose => vec![s[1], s[0]],
    }
}

/// Reorders `data` of torch shape `s` into the Keras layout.
fn convert(layout: Layout, s: &[usize], data: &[f32]) -> Vec<f32> {
    match layout {
        Layout::Same => data.to_vec(),
        Layout::Transpose => {
            let (rows, cols) = (s[0], s[1]);
            (0..cols * rows).map(|k| data[(k % rows) * cols + k / rows]).collect()
        }
        // A depthwise [C,1,k,k] is a conv with I = 1, and [k,k,C,1] its HWIO with O and I swapped:
        // both are out[h][w][c] = in[c][h][w].
        Layout::Conv | Layout::Depthwise => {
            let (o, i, kh, kw) = (s[0], s[1], s[2], s[3]);
            let mut out = vec![0.0; data.len()];
            for oc in 0..o {
                for ic in 0..i {
                    for h in 0..kh {
                        for w in 0..kw {
                            out[((h * kw + w) * i + ic) * o + oc] = data[((oc * i + ic) * kh + h) * kw + w];
                        }
                    }
                }
            }
            out
        }
    }
}

/// Maps the lukemelas-layout state dict of EfficientNet-Lite0 onto incept's names:
/// (base tensors, head (kernel [1280,1000], bias [1000])). Errors name the first key that is
/// missing, unexpected, or of the wrong shape.
pub fn lite0_to_keras(dict: &LegacyStateDict) -> Result<(TensorMap, (HostTensor, HostTensor))> {
    let entries = entries();
    let by_name: HashMap<&str, &Entry> = entries.iter().map(|e| (e.torch.as_str(), e)).collect();
    let mut base = TensorMap::new();
    let (mut kernel, mut bias) = (None, None);
    let mut used = HashSet::new();
    for (name, t) in &dict.tensors {
        let e = by_name
            .get(name.as_str())
            .ok_or_else(|| Error::Invalid(format!("'{name}' {:?} is not a weight of EfficientNet-Lite0", t.shape)))?;
        if !used.insert(name.as_str()) {
            return Err(Error::Invalid(format!("'{name}' appears twice")));
        }
        if t.shape != e.torch_shape || t.data.len() != t.numel() {
            return Err(Error::Shape(format!(
                "'{name}' has shape {:?} ({} values), EfficientNet-Lite0's is {:?}",
                t.shape,
                t.data.len(),
                e.torch_shape
            )));
        }
        let converted =
            HostTensor { shape: keras_shape(e.layout, &t.shape), data: convert(e.layout, &t.shape, &t.data) };
        match &e.target {
            Target::Base(keras) => {
                base.insert(keras.clone(), converted);
            }
            Target::HeadKernel => kernel = Some(converted),
            Target::HeadBias => bias = Some(converted),
        }
    }
    if let Some(e) = entries.iter().find(|e| !used.contains(e.torch.as_str())) {
        return Err(Error::Invalid(format!("'{}' {:?} is missing", e.torch, e.torch_shape)));
    }
    // Only BatchNorm's step counters may be left unread, one per BatchNorm.
    let bn_prefixes: HashSet<String> =
        entries.iter().filter_map(|e| e.torch.strip_suffix(".running_var").map(str::to_string)).collect();
    let mut counted = HashSet::new();
    for name in &dict.skipped {
        let bn = name.strip_suffix(".num_batches_tracked").filter(|bn| bn_prefixes.contains(*bn));
        if bn.is_none() || !counted.insert(name.as_str()) {
            return Err(Error::Invalid(format!(
                "'{name}' is not a float tensor, and not the num_batches_tracked of one of EfficientNet-Lite0's BatchNorms"
            )));
        }
    }
    match (kernel, bias) {
        (Some(kernel), Some(bias)) => Ok((base, (kernel, bias))),
        _ => Err(Error::Invalid("'_fc.weight' or '_fc.bias' is missing".into())),
    }
}

/// `read_legacy_state_dict` then `lite0_to_keras`, with every error naming the file.
pub fn read_lite0(path: &Path) -> Result<(TensorMap, (HostTensor, HostTensor))> {
    let dict = read_legacy_state_dict(path)?;
    lite0_to_keras(&dict).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })
}
