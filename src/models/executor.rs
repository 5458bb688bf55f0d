//! The executor: runs any layer graph (src/models/graph.rs) with its
//! Keras-named weights on the GPU, through the autograd tape where a layer
//! depends on a trainable weight and through fused, copy-free kernels
//! everywhere else.
//!
//! Planning follows the graph's edges only:
//! - the *tail* is every layer downstream of a trainable weight; the rest is
//!   the frozen *prefix*, whose outputs read by the tail form its boundary;
//! - a conv whose only consumer is a BatchNorm (moving statistics) whose only
//!   consumer is a ReLU runs as one kernel with the BatchNorm folded into a
//!   per-channel scale and bias (shorter chains conv → ReLU or conv → BN fuse
//!   the same way), when nothing in the chain is differentiated and the whole
//!   chain lies on one side of the prefix/tail split;
//! - with sibling merging on (`INCEPT_SIBLING_CONVS=1`, `set_sibling_merge`),
//!   frozen convolutions that read one input with one window (the 1×1
//!   convolutions opening an Inception block's branches), each the head of
//!   such a fused chain, run as one GEMM over their concatenated filters
//!   (`ops::conv_sibling`), each branch with its own epilogue and destination,
//!   where each of them would run the register-blocked kernel anyway;
//! - inputs of a non-differentiated Concatenate that are produced by a fused
//!   conv, a max pool or another Concatenate write straight into their channel
//!   slice of the outermost concatenation, so concatenation copies nothing;
//! - no value is kept past its last reader;
//! - under `--precision mixed`, values of the frozen prefix that only frozen
//!   fused convolutions (the cooperative-matrix kernel) and pools read are
//!   stored in f16, half the bytes of f32 (`f16_storage`); values the tail,
//!   the caller or any other kernel reads stay f32;
//! - when one batch's largest activation would exceed the storage-binding
//!   limit, the frozen part runs in batch chunks and only its boundary values
//!   are joined;
//! - the same split can be made at any layer instead of at the trainable
//!   weights (`boundary_at`, `forward_from_layer`): everything downstream of
//!   the layer is then differentiated, with the layer's output as a leaf, so
//!   gradients with respect to it can be taken (Grad-CAM, src/explain).
//!
//! BatchNormalization follows Keras: batch statistics (and a moving-average
//! update) only when training AND the layer is trainable, moving statistics
//! otherwise.

use super::graph::{BatchNormSpec, Graph, LayerKind};
use crate::autograd::{self as ag, Var};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Precision};
use crate::io::{HostTensor, TensorMap};
use crate::ops::conv_sibling::{self, Destination, SiblingWeights};
use crate::ops::window::{Padding, Window2d};
use crate::ops::{Act, batchnorm, concat, conv, depthwise, pool};
use crate::tensor::{DType, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The Keras weight table of a graph: `(LAYER/VARIABLE, shape)` in creation
/// order — a Conv2D's HWIO `kernel`, a DepthwiseConv2D's `depthwise_kernel`
/// `[kh, kw, channels, 1]`, a BatchNormalization's (`gamma`,) `beta`,
/// `moving_mean` and `moving_variance`.
pub fn weight_table(graph: &Graph, input_channels: usize) -> Result<Vec<(String, Vec<usize>)>> {
    // Channel counts do not depend on the spatial size: a large-enough probe will do.
    let shapes = graph.output_shapes(1, 512, 512, input_channels)?;
    let mut table = Vec::new();
    for layer in &graph.layers {
        let channels_in = || shapes[layer.inputs[0]][3];
        match &layer.kind {
            LayerKind::Conv2d { filters, win } => {
                table.push((format!("{}/kernel", layer.name), vec![win.kh, win.kw, channels_in(), *filters]));
            }
            LayerKind::DepthwiseConv2d { win } => {
                table.push((format!("{}/depthwise_kernel", layer.name), vec![win.kh, win.kw, channels_in(), 1]));
            }
            LayerKind::BatchNorm(spec) => {
                for var in spec.variables() {
                    table.push((format!("{}/{var}", layer.name), vec![channels_in()]));
                }
            }
            _ => {}
        }
    }
    Ok(table)
}

enum Params {
    None,
    /// A Conv2D's `kernel` or a DepthwiseConv2D's `depthwise_kernel` (`var`).
    Conv { var: &'static str, kernel: Var },
    BatchNorm { spec: BatchNormSpec, gamma: Option<Var>, beta: Var, moving_mean: Tensor, moving_var: Tensor, folded: Option<(Tensor, Tensor)> },
}

impl Params {
    /// The weights training changes by gradient, with their variable names.
    fn trainable(&self) -> Vec<(&'static str, &Var)> {
        match self {
            Params::Conv { var, kernel } if kernel.requires_grad() => vec![(*var, kernel)],
            Params::BatchNorm { gamma, beta, .. } if beta.requires_grad() => {
                gamma.iter().map(|g| ("gamma", g)).chain([("beta", beta)]).collect()
            }
            _ => vec![],
        }
    }
}

/// One row of the Keras-style summary.
#[derive(Clone, Debug)]
pub struct LayerSummary {
    pub index: usize,
    pub name: String,
    pub class: &'static str,
    /// NHWC output shape for a batch of one.
    pub output_shape: [usize; 4],
    pub params: usize,
    pub trainable_params: usize,
    pub trainable: bool,
}

/// The frozen prefix's outputs for one batch: the values of the layers
/// that no trainable weight influences and that the trainable tail (or the
/// network's output, when nothing is trainable) reads.
#[derive(Clone, Debug)]
pub struct Boundary {
    /// NHWC shape of the images the boundary was computed from.
    pub input_shape: [usize; 4],
    /// (creation index, value [n, h, w, c]) per boundary layer, in creation order.
    pub tensors: Vec<(usize, Tensor)>,
}

/// A layer graph with its weights on the device, ready to run.
pub struct Network {
    graph: Graph,
    /// Keras `model.layers` order (creation indices).
    keras_order: Vec<usize>,
    /// Per creation index: Keras's `layer.trainable`.
    trainable: Vec<bool>,
    params: Vec<Params>,
    /// Consumers of each layer, by creation index.
    consumers: Vec<Vec<usize>>,
    input_channels: usize,
    gpu: Gpu,
    /// Overrides the adapter's storage-binding limit when splitting batches.
    binding_limit: Option<u64>,
    /// Frozen convolutions that read one input with one window, found at load.
    siblings: Vec<SiblingGroup>,
    /// Whether plans run sibling groups as one merged convolution.
    merge_siblings: bool,
}

/// Frozen convolutions reading one input with one window (at most
/// `conv_sibling::MAX_BRANCHES`, in creation order), each with the frozen
/// BatchNorm that is its only consumer, if any: one GEMM when a plan fuses
/// each into a chain with exactly that BatchNorm.
struct SiblingGroup {
    /// (conv, its BatchNorm) per branch.
    members: Vec<(usize, Option<usize>)>,
    win: Window2d,
    /// The profile scope of the merged convolution: the convs' names joined by '+'.
    name: String,
    /// Concatenated filters and folded BatchNorms, built on first use (frozen weights never change).
    weights: Mutex<Option<Arc<SiblingWeights>>>,
}

/// How a layer's output is held during a forward pass.
#[derive(Clone)]
enum Value {
    Var(Var),
    /// Channels `[offset, offset + width)` of the root concatenation `root`.
    Slice { root: usize, offset: usize, width: usize },
}

/// A conv (Conv2D or DepthwiseConv2D) with the ZeroPadding2D before it and
/// the BatchNorm and ReLU (or ReLU6) after it, where each is the other's
/// only reader, run as one kernel: the padding folded into the conv's
/// window, the BatchNorm into a per-channel scale and bias, the ReLU into
/// the epilogue.
#[derive(Clone, Copy)]
struct Chain {
    pad: Option<usize>,
    conv: usize,
    bn: Option<usize>,
    relu: Option<usize>,
}

impl Chain {
    /// The layer whose value the chain produces.
    fn output(&self) -> usize {
        self.relu.or(self.bn).unwrap_or(self.conv)
    }

    /// The layer whose value the chain reads.
    fn input(&self, graph: &Graph) -> usize {
        graph.layers[self.pad.unwrap_or(self.conv)].inputs[0]
    }

    fn members(&self) -> impl Iterator<Item = usize> {
        [self.pad, Some(self.conv), self.bn, self.relu].into_iter().flatten()
    }
}

#[derive(Clone, Copy)]
enum Pass {
    All,
    /// Only layers that are not differentiated (a chunk of the batch).
    Frozen,
    /// Only differentiated layers, reading the frozen values already present.
    Differentiated,
    /// Only layers that no trainable weight influences, recording or not.
    Prefix,
    /// Only layers downstream of a trainable weight, reading the boundary values present.
    Tail,
}

struct Plan {
    /// The layer's output depends on a trainable weight and recording is on.
    grad: Vec<bool>,
    /// The layer's output depends on a trainable weight.
    tail: Vec<bool>,
    /// For each layer inside a fused chain, the chain.
    chain: Vec<Option<Chain>>,
    /// BatchNorm layers using batch statistics.
    batch_stats: Vec<bool>,
    /// For each chain output computed by a merged sibling group: the group
    /// (index into `Network::siblings`) and whether this layer runs it (its
    /// first output in creation order; the others are then already written).
    sibling: Vec<Option<(usize, bool)>>,
    /// Where a layer writes its output inside a root concatenation.
    dest: Vec<Option<(usize, usize)>>,
    /// The layer's value is stored in f16 (a slice: its root concatenation is).
    half: Vec<bool>,
}

impl Plan {
    /// The chain `l` belongs to, unless `l` is its output (the one that runs it).
    fn inside_chain(&self, l: usize) -> bool {
        self.chain[l].is_some_and(|c| c.output() != l)
    }
}

impl Network {
    /// Loads `graph`'s weights from Keras-named tensors (shapes checked
    /// against the graph), with the last `unfreeze_last` layers of Keras's
    /// `model.layers` order trainable.
    pub fn new(gpu: &Gpu, graph: Graph, input_channels: usize, weights: &TensorMap, unfreeze_last: usize) -> Result<Network> {
        let keras_order = graph.keras_order();
        if unfreeze_last > keras_order.len() {
            return Err(Error::Invalid(format!("--unfreeze-last {unfreeze_last}: the model has {} layers", keras_order.len())));
        }
        let mut trainable = vec![false; graph.layers.len()];
        for &l in &keras_order[keras_order.len() - unfreeze_last..] {
            trainable[l] = true;
        }
        let table: HashMap<String, Vec<usize>> = weight_table(&graph, input_channels)?.into_iter().collect();
        let upload = |name: String| -> Result<Tensor> {
            let t = weights.get(&name).ok_or_else(|| Error::Invalid(format!("weight '{name}' is missing")))?;
            let want = &table[&name];
            if &t.shape != want || t.data.len() != t.numel() {
                return Err(Error::Shape(format!("weight '{name}' has shape {:?} ({} values), expected {want:?}", t.shape, t.data.len())));
            }
            Tensor::from_slice(gpu, &t.shape, &t.data)
        };
        let mut params = Vec::with_capacity(graph.layers.len());
        for (l, layer) in graph.layers.iter().enumerate() {
            params.push(match layer.kind {
                LayerKind::Conv2d { .. } | LayerKind::DepthwiseConv2d { .. } => {
                    let var = if matches!(layer.kind, LayerKind::Conv2d { .. }) { "kernel" } else { "depthwise_kernel" };
                    Params::Conv { var, kernel: Var::parameter(upload(format!("{}/{var}", layer.name))?, trainable[l]) }
                }
                LayerKind::BatchNorm(spec) => {
                    let gamma = if spec.scale { Some(upload(format!("{}/gamma", layer.name))?) } else { None };
                    let beta = upload(format!("{}/beta", layer.name))?;
                    let moving_mean = upload(format!("{}/moving_mean", layer.name))?;
                    let moving_var = upload(format!("{}/moving_variance", layer.name))?;
                    // Frozen statistics never change: fold them once.
                    let folded = if trainable[l] { None } else { Some(fold(&spec, gamma.as_ref(), &beta, &moving_mean, &moving_var)?) };
                    Params::BatchNorm {
                        spec,
                        gamma: gamma.map(|g| Var::parameter(g, trainable[l])),
                        beta: Var::parameter(beta, trainable[l]),
                        moving_mean,
                        moving_var,
                        folded,
                    }
                }
                _ => Params::None,
            });
        }
        let consumers: Vec<Vec<usize>> = (0..graph.layers.len()).map(|l| graph.consumers(l).collect()).collect();
        let siblings = sibling_groups(&graph, &consumers, &trainable);
        Ok(Network {
            graph,
            keras_order,
            trainable,
            params,
            consumers,
            input_channels,
            gpu: gpu.clone(),
            binding_limit: None,
            siblings,
            merge_siblings: conv_sibling::enabled_by_default(),
        })
    }

    /// Runs sibling convolutions as one merged GEMM (by default only with
    /// `INCEPT_SIBLING_CONVS=1`) or each on its own (the oracle).
    pub fn set_sibling_merge(&mut self, on: bool) {
        self.merge_siblings = on;
    }

    /// The sibling groups a forward pass over `n` `h`×`w` images (inference,
    /// nothing recorded) merges: the convolutions' layer names per group.
    pub fn merged_siblings(&self, n: usize, h: usize, w: usize) -> Result<Vec<Vec<String>>> {
        let shapes = self.output_shapes(n, h, w)?;
        let plan = ag::no_grad(|| self.plan(false, &shapes, &[], &[shapes.len() - 1]));
        let mut groups: Vec<Vec<String>> = Vec::new();
        for (g, group) in self.siblings.iter().enumerate() {
            if plan.sibling.iter().any(|s| s.is_some_and(|(i, _)| i == g)) {
                groups.push(group.members.iter().map(|&(conv, _)| self.graph.layers[conv].name.clone()).collect());
            }
        }
        Ok(groups)
    }

    /// Splits batches as if one storage binding could hold only `bytes`
    /// (tests of the chunked path; capped by the adapter's real limit).
    pub fn set_binding_limit(&mut self, bytes: u64) {
        self.binding_limit = Some(bytes);
    }

    /// The largest batch, at most `n`, of `h`×`w` inputs whose every
    /// activation fits one storage binding.
    pub fn images_per_binding(&self, n: usize, h: usize, w: usize) -> Result<usize> {
        self.batch_chunk(&self.output_shapes(1, h, w)?, n)
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Number of Keras layers (InputLayer included).
    pub fn num_layers(&self) -> usize {
        self.keras_order.len()
    }

    /// The trainable weights with their Keras names, in Keras order.
    pub fn trainable_params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for &l in &self.keras_order {
            let layer = &self.graph.layers[l].name;
            for (var, v) in self.params[l].trainable() {
                out.push((format!("{layer}/{var}"), v.clone()));
            }
        }
        out
    }

    /// Every weight (moving statistics included) copied back to the host, Keras names.
    pub fn to_tensor_map(&self) -> Result<TensorMap> {
        let mut map = TensorMap::new();
        let host = |t: &Tensor| -> Result<HostTensor> { Ok(HostTensor { shape: t.shape().to_vec(), data: t.to_vec()? }) };
        for (l, layer) in self.graph.layers.iter().enumerate() {
            match &self.params[l] {
                Params::Conv { var, kernel } => {
                    map.insert(format!("{}/{var}", layer.name), host(kernel.value())?);
                }
                Params::BatchNorm { gamma, beta, moving_mean, moving_var, .. } => {
                    if let Some(gamma) = gamma {
                        map.insert(format!("{}/gamma", layer.name), host(gamma.value())?);
                    }
                    map.insert(format!("{}/beta", layer.name), host(beta.value())?);
                    map.insert(format!("{}/moving_mean", layer.name), host(moving_mean)?);
                    map.insert(format!("{}/moving_variance", layer.name), host(moving_var)?);
                }
                Params::None => {}
            }
        }
        Ok(map)
    }

    /// Output shapes (NHWC, batch n) of every layer for an `h`×`w` input, by creation index.
    pub fn output_shapes(&self, n: usize, h: usize, w: usize) -> Result<Vec<[usize; 4]>> {
        self.graph.output_shapes(n, h, w, self.input_channels)
    }

    /// Keras-style summary rows in `model.layers` order for an `h`×`w` input.
    pub fn summary(&self, h: usize, w: usize) -> Result<Vec<LayerSummary>> {
        let shapes = self.output_shapes(1, h, w)?;
        Ok(self
            .keras_order
            .iter()
            .enumerate()
            .map(|(index, &l)| {
                let layer = &self.graph.layers[l];
                let (params, trainable_params) = match &self.params[l] {
                    Params::Conv { kernel, .. } => {
                        let p = kernel.value().numel();
                        (p, if self.trainable[l] { p } else { 0 })
                    }
                    Params::BatchNorm { spec, beta, .. } => {
                        let c = beta.value().numel();
                        (spec.variables().len() * c, if self.trainable[l] { spec.trainable_variables().len() * c } else { 0 })
                    }
                    Params::None => (0, 0),
                };
                LayerSummary {
                    index,
                    name: layer.name.clone(),
                    class: layer.kind.keras_class(),
                    output_shape: shapes[l],
                    params,
                    trainable_params,
                    trainable: self.trainable[l],
                }
            })
            .collect())
    }

    /// The output of the graph's last layer. With `training`, trainable
    /// BatchNorm layers use and update batch statistics, as Keras does.
    pub fn forward(&self, x: &Tensor, training: bool) -> Result<Var> {
        let out = self.graph.layers.len() - 1;
        let mut outs = self.run(x, training, &[out])?;
        outs.pop().ok_or_else(|| Error::Invalid("the graph produced no output".into()))
    }

    /// The outputs of the named layers in inference mode, without recording.
    pub fn infer_layers(&self, x: &Tensor, names: &[&str]) -> Result<Vec<Tensor>> {
        let ids = names
            .iter()
            .map(|n| self.graph.find(n).ok_or_else(|| Error::Invalid(format!("the model has no layer named '{n}'"))))
            .collect::<Result<Vec<_>>>()?;
        let vars = ag::no_grad(|| self.run(x, false, &ids))?;
        Ok(vars.into_iter().map(|v| v.value().clone()).collect())
    }

    /// Runs the frozen prefix (every layer that no trainable weight
    /// influences) without recording, in batch chunks when needed, and returns
    /// the values the trainable tail reads: the input of
    /// [`forward_from_boundary`](Self::forward_from_boundary). The prefix is
    /// the same in training and inference (frozen BatchNorm layers always use
    /// moving statistics), so a boundary can be computed once per image and reused.
    pub fn frozen_boundary(&self, x: &Tensor) -> Result<Boundary> {
        self.boundary_of(x, &self.tail())
    }

    /// Runs every layer outside `tail` without recording, in batch chunks
    /// when needed, and returns the values that layers in `tail` (or the
    /// network's output, when outside it) read.
    fn boundary_of(&self, x: &Tensor, tail: &[bool]) -> Result<Boundary> {
        let [n, h, w, _] = self.check_input(x)?;
        let shapes = self.output_shapes(n, h, w)?;
        let layers = self.boundary_layers(tail);
        let chunk = self.batch_chunk(&shapes, n)?;
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); layers.len()];
        ag::no_grad(|| -> Result<()> {
            for start in (0..n).step_by(chunk) {
                let len = chunk.min(n - start);
                let xc = if len == n { x.clone() } else { slice_batch(x, start, len)? };
                let chunk_shapes = self.output_shapes(len, h, w)?;
                let plan = self.plan_split(false, &chunk_shapes, &[], &layers, tail.to_vec());
                let mut values = vec![None; shapes.len()];
                self.execute(Some(&xc), &plan, &chunk_shapes, &mut values, &layers, Pass::Prefix)?;
                for (k, &l) in layers.iter().enumerate() {
                    parts[k].push(self.materialize(&values, l)?.value().clone());
                }
            }
            Ok(())
        })?;
        let tensors = layers
            .iter()
            .zip(parts)
            .map(|(&l, ts)| {
                let t = if ts.len() == 1 { ts[0].clone() } else { concat::concat_batch(&ts.iter().collect::<Vec<_>>())? };
                Ok((l, t))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Boundary { input_shape: [n, h, w, self.input_channels], tensors })
    }

    /// Whether layer `l` lies outside `tail` and is read by it (or is the
    /// network's output): a value of the boundary between the two.
    fn is_boundary(&self, l: usize, tail: &[bool]) -> bool {
        !tail[l] && (l == self.graph.layers.len() - 1 || self.consumers[l].iter().any(|&c| tail[c]))
    }

    /// The boundary layers of `tail`, in creation order.
    fn boundary_layers(&self, tail: &[bool]) -> Vec<usize> {
        (0..self.graph.layers.len()).filter(|&l| self.is_boundary(l, tail)).collect()
    }

    /// The output computed from a frozen-prefix boundary, exactly as
    /// [`forward`](Self::forward) computes it from the images (same kernels,
    /// same results). With `training`, trainable BatchNorm layers use and
    /// update batch statistics.
    pub fn forward_from_boundary(&self, boundary: &Boundary, training: bool) -> Result<Var> {
        let given = boundary.tensors.iter().map(|(l, t)| (*l, Var::constant(t.clone()))).collect();
        self.forward_tail(boundary.input_shape, given, training, self.tail())
    }

    /// Per layer: its output depends on `layer`'s output (`layer` itself excluded).
    fn downstream_of(&self, layer: usize) -> Vec<bool> {
        let mut down = vec![false; self.graph.layers.len()];
        for l in layer + 1..down.len() {
            down[l] = self.graph.layers[l].inputs.iter().any(|&i| i == layer || down[i]);
        }
        down
    }

    /// The values that the layers downstream of `layer` (creation index) read,
    /// `layer`'s own output among them, computed without recording: the input
    /// of [`forward_from_layer`](Self::forward_from_layer). Where Inception
    /// branches meet, these include the outputs of sibling branches.
    pub fn boundary_at(&self, x: &Tensor, layer: usize) -> Result<Boundary> {
        if layer >= self.graph.layers.len() {
            return Err(Error::Invalid(format!("layer index {layer}: the model has {} layers", self.graph.layers.len())));
        }
        self.boundary_of(x, &self.downstream_of(layer))
    }

    /// The network's output computed in inference mode from a
    /// [`boundary_at`](Self::boundary_at) `layer`, with `layer`'s output as a
    /// leaf that requires a gradient: returns (that leaf, the output). Every
    /// layer downstream of `layer` is recorded on the tape (while recording),
    /// so the output's gradient with respect to the leaf can be taken.
    pub fn forward_from_layer(&self, boundary: &Boundary, layer: usize) -> Result<(Var, Var)> {
        let mut leaf = None;
        let given = boundary
            .tensors
            .iter()
            .map(|(l, t)| {
                let v = if *l == layer { leaf.insert(Var::parameter(t.clone(), true)).clone() } else { Var::constant(t.clone()) };
                (*l, v)
            })
            .collect();
        let Some(leaf) = leaf else {
            let name = self.graph.layers.get(layer).map_or("?", |l| l.name.as_str());
            return Err(Error::Invalid(format!("the boundary holds no value of layer {name}")));
        };
        let out = self.forward_tail(boundary.input_shape, given, false, self.downstream_of(layer))?;
        Ok((leaf, out))
    }

    /// The output from the values `given` (creation index, value), running the
    /// layers in `tail` only.
    fn forward_tail(&self, input_shape: [usize; 4], given: Vec<(usize, Var)>, training: bool, tail: Vec<bool>) -> Result<Var> {
        let [n, h, w, _] = input_shape;
        let shapes = self.output_shapes(n, h, w)?;
        let out = shapes.len() - 1;
        let given_layers: Vec<usize> = given.iter().map(|(l, _)| *l).collect();
        let mut values = vec![None; shapes.len()];
        for (l, v) in given {
            let want = shapes.get(l).ok_or_else(|| Error::Invalid(format!("boundary layer index {l} is not a layer of the model")))?;
            if v.shape() != want {
                return Err(Error::Shape(format!("boundary value of {} has shape {:?}, expected {want:?}", self.graph.layers[l].name, v.shape())));
            }
            values[l] = Some(Value::Var(v));
        }
        let plan = self.plan_split(training, &shapes, &given_layers, &[out], tail);
        if let Some(missing) = (0..shapes.len()).find(|&l| !given_layers.contains(&l) && self.is_boundary(l, &plan.tail)) {
            return Err(Error::Invalid(format!("the boundary lacks the value of {}", self.graph.layers[missing].name)));
        }
        self.execute(None, &plan, &shapes, &mut values, &[out], Pass::Tail)?;
        self.materialize(&values, out)
    }

    fn check_input(&self, x: &Tensor) -> Result<[usize; 4]> {
        let dims = x.dims4()?;
        if dims[3] != self.input_channels {
            return Err(Error::Shape(format!("the model expects NHWC input with {} channels, got shape {:?}", self.input_channels, x.shape())));
        }
        Ok(dims)
    }

    /// Runs the graph and returns the values of `wanted` (creation indices).
    fn run(&self, x: &Tensor, training: bool, wanted: &[usize]) -> Result<Vec<Var>> {
        let [n, h, w, _] = self.check_input(x)?;
        let shapes = self.output_shapes(n, h, w)?;
        let plan = self.plan(training, &shapes, &[], wanted);
        let chunk = self.batch_chunk(&shapes, n)?;
        if chunk >= n {
            let mut values = vec![None; shapes.len()];
            self.execute(Some(x), &plan, &shapes, &mut values, wanted, Pass::All)?;
            return wanted.iter().map(|&l| self.materialize(&values, l)).collect();
        }
        // The non-differentiated part in batch chunks, then the differentiated rest on the whole batch.
        let boundary: Vec<usize> = (0..shapes.len())
            .filter(|&l| !plan.grad[l] && (wanted.contains(&l) || self.consumers[l].iter().any(|&c| plan.grad[c])))
            .collect();
        let mut parts: HashMap<usize, Vec<Tensor>> = HashMap::new();
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let xc = slice_batch(x, start, len)?;
            let chunk_shapes = self.output_shapes(len, h, w)?;
            let chunk_plan = self.plan(training, &chunk_shapes, &[], &boundary);
            let mut values = vec![None; shapes.len()];
            self.execute(Some(&xc), &chunk_plan, &chunk_shapes, &mut values, &boundary, Pass::Frozen)?;
            for &l in &boundary {
                parts.entry(l).or_default().push(self.materialize(&values, l)?.value().clone());
            }
        }
        let mut values = vec![None; shapes.len()];
        for (l, ts) in parts {
            let refs: Vec<&Tensor> = ts.iter().collect();
            values[l] = Some(Value::Var(Var::constant(concat::concat_batch(&refs)?)));
        }
        let plan = self.plan(training, &shapes, &boundary, wanted);
        self.execute(Some(x), &plan, &shapes, &mut values, wanted, Pass::Differentiated)?;
        wanted.iter().map(|&l| self.materialize(&values, l)).collect()
    }

    /// Largest batch whose biggest activation fits one storage binding.
    fn batch_chunk(&self, shapes: &[[usize; 4]], n: usize) -> Result<usize> {
        let bytes = |s: &[usize; 4]| (s[1] * s[2] * s[3]) as u64 * 4;
        let Some(largest) = shapes.iter().max_by_key(|s| bytes(s)) else { return Ok(n.max(1)) };
        let per_image = bytes(largest).max(1);
        let adapter_limit = self.gpu.limits().max_storage_buffer_binding_size;
        let limit = self.binding_limit.map_or(adapter_limit, |l| l.min(adapter_limit));
        if per_image > limit {
            return Err(Error::Limit {
                what: format!("one image's largest activation {largest:?}"),
                bytes: per_image,
                limit_name: "max_storage_buffer_binding_size",
                limit,
            });
        }
        Ok(((limit / per_image) as usize).clamp(1, n.max(1)))
    }

    /// Per layer: its output depends on a trainable weight (the trainable tail).
    fn tail(&self) -> Vec<bool> {
        let mut tail = vec![false; self.graph.layers.len()];
        for (l, layer) in self.graph.layers.iter().enumerate() {
            let own = match &self.params[l] {
                Params::Conv { kernel, .. } => kernel.requires_grad(),
                Params::BatchNorm { beta, .. } => beta.requires_grad(),
                Params::None => false,
            };
            tail[l] = own || layer.inputs.iter().any(|&i| tail[i]);
        }
        tail
    }

    /// The only consumer of `l`, if it has exactly one and it is of the kind `pred` accepts.
    fn sole_consumer(&self, l: usize, pred: impl Fn(&LayerKind) -> bool) -> Option<usize> {
        match self.consumers[l].as_slice() {
            [c] if pred(&self.graph.layers[*c].kind) => Some(*c),
            _ => None,
        }
    }

    /// Decides per layer: differentiated or frozen, fused, written into a
    /// slice. Layers in `given` already hold their values and write nothing;
    /// layers in `wanted` keep a value of their own.
    fn plan(&self, training: bool, shapes: &[[usize; 4]], given: &[usize], wanted: &[usize]) -> Plan {
        self.plan_split(training, shapes, given, wanted, self.tail())
    }

    /// [`plan`](Self::plan) with `tail` (the layers that are differentiated
    /// while recording) chosen by the caller.
    fn plan_split(&self, training: bool, shapes: &[[usize; 4]], given: &[usize], wanted: &[usize], tail: Vec<bool>) -> Plan {
        let layers = &self.graph.layers;
        let recording = ag::is_recording();
        let grad: Vec<bool> = tail.iter().map(|&t| recording && t).collect();
        let batch_stats: Vec<bool> =
            (0..layers.len()).map(|l| training && self.trainable[l] && matches!(layers[l].kind, LayerKind::BatchNorm(_))).collect();

        let mut chain = vec![None; layers.len()];
        for (l, layer) in layers.iter().enumerate() {
            let valid_window = match layer.kind {
                LayerKind::Conv2d { win, .. } | LayerKind::DepthwiseConv2d { win } => win.padding == Padding::Valid,
                _ => continue,
            };
            if grad[l] {
                continue;
            }
            // Extend pad → conv → BN → ReLU along sole-consumer edges, stopping at a
            // layer that must keep its own value or lies across the prefix/tail split.
            let joins = |next: usize| !grad[next] && tail[next] == tail[l] && !given.contains(&next);
            let ends_here = |at: usize| wanted.contains(&at);
            let input = layer.inputs[0];
            let pad = (valid_window
                && matches!(layers[input].kind, LayerKind::ZeroPad(_))
                && self.consumers[input] == [l]
                && joins(input)
                && !ends_here(input))
            .then_some(input);
            let mut c = Chain { pad, conv: l, bn: None, relu: None };
            let mut at = l;
            if !ends_here(at)
                && let Some(bn) = self.sole_consumer(at, |k| matches!(k, LayerKind::BatchNorm(_))).filter(|&bn| joins(bn) && !batch_stats[bn])
            {
                c.bn = Some(bn);
                at = bn;
            }
            if !ends_here(at)
                && let Some(relu) = self.sole_consumer(at, |k| matches!(k, LayerKind::Relu | LayerKind::Relu6)).filter(|&r| joins(r))
            {
                c.relu = Some(relu);
            }
            for member in c.members() {
                chain[member] = Some(c);
            }
        }

        // Inputs of non-differentiated concatenations write straight into
        // their slice; outer concatenations are planned before the nested ones they contain.
        let mut dest: Vec<Option<(usize, usize)>> = vec![None; layers.len()];
        for (c, layer) in layers.iter().enumerate().rev() {
            if !matches!(layer.kind, LayerKind::Concat) || grad[c] || given.contains(&c) {
                continue;
            }
            let (root, base) = dest[c].unwrap_or((c, 0));
            let mut offset = base;
            for &i in &layer.inputs {
                // Depthwise kernels write whole tensors only.
                let produced_in_place = match layers[i].kind {
                    LayerKind::MaxPool(_) | LayerKind::Concat => !grad[i],
                    _ => chain[i].is_some_and(|ch| ch.output() == i && matches!(layers[ch.conv].kind, LayerKind::Conv2d { .. })),
                };
                let once = self.consumers[i].len() == 1 && layer.inputs.iter().filter(|&&j| j == i).count() == 1;
                if produced_in_place && once && !given.contains(&i) {
                    dest[i] = Some((root, offset));
                }
                offset += shapes[i][3];
            }
        }
        let sibling = self.plan_siblings(&chain, shapes, given);
        let mut plan = Plan { grad, tail, chain, batch_stats, sibling, dest, half: vec![false; layers.len()] };
        if self.gpu.precision() == Precision::Mixed {
            plan.half = self.f16_storage(&plan, given, wanted);
        }
        plan
    }

    /// Which values a plan under `--precision mixed` stores in f16: those of
    /// frozen fused chains, pools and concatenations (not given, not wanted)
    /// whose every reader is a frozen fused chain (run by the
    /// cooperative-matrix kernel, which reads f16) or a frozen pool. A root
    /// concatenation is f16 only if every input of it and of the
    /// concatenations nested in it writes its slice in place (copies into a
    /// slice are f32) and none of them is wanted; its slices share its type.
    /// Chains and pools whose value stays f32 still read f16 inputs where
    /// those are (the cooperative-matrix kernel and the pools take either).
    fn f16_storage(&self, plan: &Plan, given: &[usize], wanted: &[usize]) -> Vec<bool> {
        let layers = &self.graph.layers;
        // Chains of a Conv2D run the cooperative-matrix kernel, which takes f16; depthwise kernels are f32 only.
        let runs_chain = |l: usize| {
            plan.chain[l].is_some_and(|c| c.output() == l && matches!(layers[c.conv].kind, LayerKind::Conv2d { .. })) && plan.sibling[l].is_none()
        };
        let reads_f16 = |r: usize| !plan.tail[r] && (runs_chain(r) || matches!(layers[r].kind, LayerKind::MaxPool(_) | LayerKind::AvgPool(_)));
        let writes_f16 = |l: usize| {
            !plan.tail[l]
                && !given.contains(&l)
                && !wanted.contains(&l)
                && (runs_chain(l) || matches!(layers[l].kind, LayerKind::MaxPool(_) | LayerKind::AvgPool(_) | LayerKind::Concat))
        };
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); layers.len()];
        for r in (0..layers.len()).filter(|r| !given.contains(r)) {
            for i in self.reads(plan, r) {
                readers[i].push(r);
            }
        }
        let root_of = |l: usize| plan.dest[l].map_or(l, |(root, _)| root);
        // A concatenation tree stays f32 if any concatenation in it copies an input or any member is wanted or cannot write f16.
        let mut tree_ok = vec![true; layers.len()];
        for (l, layer) in layers.iter().enumerate() {
            let root = root_of(l);
            if plan.dest[l].is_some() && !writes_f16(l) {
                tree_ok[root] = false;
            }
            if matches!(layer.kind, LayerKind::Concat) && layer.inputs.iter().any(|&i| plan.dest[i].is_none()) {
                tree_ok[root] = false;
            }
        }
        let mut half = vec![false; layers.len()];
        for l in (0..layers.len()).filter(|&l| plan.dest[l].is_none()) {
            let tree = !matches!(layers[l].kind, LayerKind::Concat) || tree_ok[l];
            half[l] = tree && writes_f16(l) && readers[l].iter().all(|&r| reads_f16(r));
        }
        for l in 0..layers.len() {
            half[l] = half[root_of(l)];
        }
        half
    }

    /// The layers whose values a forward pass over `n` `h`×`w` images
    /// (inference, nothing recorded, the frozen prefix's boundary kept as
    /// for `frozen_boundary`) stores in f16 under `--precision mixed`,
    /// whatever precision this device was opened with: Keras names in creation order.
    pub fn f16_storage_layers(&self, n: usize, h: usize, w: usize) -> Result<Vec<String>> {
        let shapes = self.output_shapes(n, h, w)?;
        let tail = self.tail();
        let boundary = self.boundary_layers(&tail);
        let mut plan = ag::no_grad(|| self.plan_split(false, &shapes, &[], &boundary, tail));
        // Mixed precision merges no siblings.
        plan.sibling = vec![None; shapes.len()];
        let half = self.f16_storage(&plan, &[], &boundary);
        Ok(half.iter().enumerate().filter(|&(_, &h)| h).map(|(l, _)| self.graph.layers[l].name.clone()).collect())
    }

    /// The sibling groups that run merged: where merging is on, each member
    /// conv heads a fused chain (hence is not differentiated) with the
    /// group's BatchNorm, none of the chain is given, and each conv alone
    /// would run the register-blocked kernel, whose routed form the merged
    /// kernel is (so the tuning cache, `INCEPT_CONV_ALGO` and the adapter's
    /// rule decide: on GPUs the convs keep their tiled kernels).
    fn plan_siblings(&self, chain: &[Option<Chain>], shapes: &[[usize; 4]], given: &[usize]) -> Vec<Option<(usize, bool)>> {
        let mut sibling = vec![None; chain.len()];
        // The merged GEMM is f32 only: under mixed precision each frozen conv runs the cooperative-matrix kernel.
        if !self.merge_siblings || self.gpu.precision() == Precision::Mixed {
            return sibling;
        }
        for (g, group) in self.siblings.iter().enumerate() {
            let chains: Option<Vec<Chain>> = group.members.iter().map(|&(conv, bn)| chain[conv].filter(|c| c.conv == conv && c.bn == bn)).collect();
            let Some(chains) = chains else { continue };
            let given_member = chains.iter().any(|c| [Some(c.conv), c.bn, c.relu].into_iter().flatten().any(|m| given.contains(&m)));
            let [_, h, w, cin] = shapes[chains[0].input(&self.graph)];
            let widths: Vec<usize> = chains.iter().map(|c| shapes[c.conv][3]).collect();
            if given_member || !conv_sibling::applies(&self.gpu, h, w, cin, &widths, &group.win) {
                continue;
            }
            let first = chains.iter().map(Chain::output).min();
            for c in &chains {
                sibling[c.output()] = Some((g, Some(c.output()) == first));
            }
        }
        sibling
    }

    /// The layers whose values layer `l` reads: a fused chain's output reads
    /// the conv's input (in a merged sibling group, only the output that runs
    /// the group), the other members of the chain read nothing.
    fn reads(&self, plan: &Plan, l: usize) -> Vec<usize> {
        match plan.chain[l] {
            Some(_) if plan.sibling[l].is_some_and(|(_, runs)| !runs) => vec![],
            Some(c) if c.output() == l => vec![c.input(&self.graph)],
            Some(_) => vec![],
            None => self.graph.layers[l].inputs.clone(),
        }
    }

    /// Evaluates the layers that `pass` selects, in creation order, into
    /// `values`. A value is dropped after its last reader unless it is in `keep`.
    #[allow(clippy::too_many_arguments)]
    fn execute(&self, x: Option<&Tensor>, plan: &Plan, shapes: &[[usize; 4]], values: &mut [Option<Value>], keep: &[usize], pass: Pass) -> Result<()> {
        let layers = &self.graph.layers;
        let selected = |l: usize| match pass {
            Pass::All => true,
            Pass::Frozen => !plan.grad[l],
            Pass::Differentiated => plan.grad[l],
            Pass::Prefix => !plan.tail[l],
            Pass::Tail => plan.tail[l],
        };
        let mut remaining = vec![0usize; layers.len()];
        for l in (0..layers.len()).filter(|&l| selected(l)) {
            for i in self.reads(plan, l) {
                remaining[i] += 1;
            }
        }
        for l in 0..layers.len() {
            if !selected(l) {
                continue;
            }
            // Profile scope: the Keras name; a fused chain runs at its last layer and is named by its conv,
            // a merged sibling group by its convs.
            let scope_layer = plan.chain[l].map_or(l, |c| c.conv);
            let _scope = match plan.sibling[l] {
                Some((g, _)) => self.gpu.profile_scope(&self.siblings[g].name),
                None => self.gpu.profile_scope(&layers[scope_layer].name),
            };
            let value = if plan.inside_chain(l) {
                None
            } else if let Some((g, runs)) = plan.sibling[l] {
                if runs {
                    self.sibling_group(g, plan, values, shapes, keep)?;
                }
                None
            } else if let Some(c) = plan.chain[l] {
                let input = self.materialize(values, c.input(&self.graph))?;
                Some(self.fused_chain(c, plan, input.value(), values, shapes)?)
            } else {
                Some(self.layer(l, plan, values, shapes, x)?)
            };
            if let Some(v) = value {
                values[l] = Some(v);
                // A kept slice is copied out now: its concatenation may be freed before the caller reads it.
                if keep.contains(&l) && matches!(values[l], Some(Value::Slice { .. })) {
                    values[l] = Some(Value::Var(self.materialize(values, l)?));
                }
            }
            for i in self.reads(plan, l) {
                remaining[i] -= 1;
                if remaining[i] == 0 && !keep.contains(&i) {
                    values[i] = None;
                }
            }
        }
        Ok(())
    }

    /// One layer on its own (recorded on the tape when it is differentiated).
    fn layer(&self, l: usize, plan: &Plan, values: &mut [Option<Value>], shapes: &[[usize; 4]], x: Option<&Tensor>) -> Result<Value> {
        let layer = &self.graph.layers[l];
        let input = |values: &[Option<Value>]| self.materialize(values, layer.inputs[0]);
        Ok(match (&layer.kind, &self.params[l]) {
            (LayerKind::Input, _) => {
                let x = x.ok_or_else(|| Error::Invalid("the input layer has no image batch in this pass".into()))?;
                Value::Var(Var::constant(x.clone()))
            }
            (LayerKind::Relu, _) => Value::Var(ag::relu(&input(values)?)?),
            (LayerKind::Relu6, _) => Value::Var(ag::relu6(&input(values)?)?),
            (LayerKind::ZeroPad(pads), _) => Value::Var(ag::zero_pad2d(&input(values)?, *pads)?),
            (LayerKind::Conv2d { win, .. }, Params::Conv { kernel, .. }) => Value::Var(ag::conv2d(&input(values)?, kernel, *win)?),
            (LayerKind::DepthwiseConv2d { win }, Params::Conv { kernel, .. }) => Value::Var(ag::depthwise_conv2d(&input(values)?, kernel, *win)?),
            (LayerKind::BatchNorm(_), Params::BatchNorm { spec, gamma, beta, moving_mean, moving_var, .. }) => {
                let x = input(values)?;
                Value::Var(if plan.batch_stats[l] {
                    let (y, stats) = ag::batch_norm_train(&x, gamma.as_ref(), beta, spec.epsilon)?;
                    batchnorm::update_moving_stats(moving_mean, moving_var, &stats, spec.momentum)?;
                    y
                } else {
                    ag::batch_norm_inference(&x, gamma.as_ref(), beta, moving_mean, moving_var, spec.epsilon)?
                })
            }
            (LayerKind::MaxPool(win), _) => {
                let x = input(values)?;
                match plan.dest[l] {
                    Some((root, offset)) => {
                        let out = self.root_tensor(root, plan, values, shapes)?;
                        pool::max_pool2d_into(x.value(), win, &out, offset)?;
                        Value::Slice { root, offset, width: shapes[l][3] }
                    }
                    // f16 in or out (the frozen prefix under mixed precision): nothing to record.
                    None if involves_f16(plan, l, &x) => {
                        let out = Tensor::empty(&self.gpu, &shapes[l], storage_type(plan, l))?;
                        pool::max_pool2d_into(x.value(), win, &out, 0)?;
                        Value::Var(Var::constant(out))
                    }
                    None => Value::Var(ag::max_pool2d(&x, *win)?),
                }
            }
            (LayerKind::AvgPool(win), _) => {
                let x = input(values)?;
                if involves_f16(plan, l, &x) {
                    let out = Tensor::empty(&self.gpu, &shapes[l], storage_type(plan, l))?;
                    pool::avg_pool2d_into(x.value(), win, &out)?;
                    Value::Var(Var::constant(out))
                } else {
                    Value::Var(ag::avg_pool2d(&x, *win)?)
                }
            }
            (LayerKind::Concat, _) => self.concat(l, plan, values, shapes)?,
            (LayerKind::Add, _) => {
                let mut sum = input(values)?;
                for &i in &layer.inputs[1..] {
                    sum = ag::add(&sum, &self.materialize(values, i)?)?;
                }
                Value::Var(sum)
            }
            (kind, _) => return Err(Error::Invalid(format!("layer {} ({}) has no weights loaded", layer.name, kind.keras_class()))),
        })
    }

    /// pad → conv → folded BatchNorm → ReLU (as far as the chain goes) in
    /// one kernel, into a concatenation's slice when planned. Under
    /// `--precision mixed` a Conv2D chain of the frozen prefix runs the
    /// cooperative-matrix kernel (reading and writing f16 where the plan
    /// stores values so); the tail and depthwise convolutions stay f32.
    fn fused_chain(&self, c: Chain, plan: &Plan, x: &Tensor, values: &mut [Option<Value>], shapes: &[[usize; 4]]) -> Result<Value> {
        let (in_tail, dest) = (plan.tail[c.conv], plan.dest[c.output()]);
        let layer = &self.graph.layers[c.conv];
        let Params::Conv { kernel, .. } = &self.params[c.conv] else {
            return Err(Error::Invalid(format!("layer {} ({}) has no kernel loaded", layer.name, layer.kind.keras_class())));
        };
        let folded = match c.bn.map(|bn| &self.params[bn]) {
            None => None,
            Some(Params::BatchNorm { folded: Some((s, b)), .. }) => Some((s.clone(), b.clone())),
            // Trainable BatchNorm in inference mode: its statistics may have moved, fold now.
            Some(Params::BatchNorm { spec, gamma, beta, moving_mean, moving_var, folded: None }) => {
                Some(fold(spec, gamma.as_ref().map(Var::value), beta.value(), moving_mean, moving_var)?)
            }
            Some(_) => return Err(Error::Invalid(format!("the layer after {} is not a BatchNormalization", layer.name))),
        };
        let act = self.chain_act(c);
        let out_of_place = || Tensor::empty(&self.gpu, &shapes[c.output()], storage_type(plan, c.output()));
        match layer.kind {
            LayerKind::Conv2d { win, filters } => {
                let spec = conv::ConvSpec {
                    scale: folded.as_ref().map(|f| &f.0),
                    bias: folded.as_ref().map(|f| &f.1),
                    act,
                    algo: (self.gpu.precision() == Precision::Mixed && !in_tail).then_some(conv::ConvAlgo::Coop),
                    ..conv::ConvSpec::new(self.chain_window(c, win))
                };
                match dest {
                    Some((root, offset)) => {
                        let out = self.root_tensor(root, plan, values, shapes)?;
                        conv::conv2d_into(x, kernel.value(), &spec, &out, offset)?;
                        Ok(Value::Slice { root, offset, width: filters })
                    }
                    None => {
                        let out = out_of_place()?;
                        conv::conv2d_into(x, kernel.value(), &spec, &out, 0)?;
                        Ok(Value::Var(Var::constant(out)))
                    }
                }
            }
            LayerKind::DepthwiseConv2d { win } => {
                let spec = depthwise::DepthwiseSpec {
                    scale: folded.as_ref().map(|f| &f.0),
                    bias: folded.as_ref().map(|f| &f.1),
                    act,
                    ..depthwise::DepthwiseSpec::new(self.chain_window(c, win))
                };
                let out = out_of_place()?;
                depthwise::depthwise_conv2d_into(x, kernel.value(), &spec, &out)?;
                Ok(Value::Var(Var::constant(out)))
            }
            _ => Err(Error::Invalid(format!("layer {} ({}) is not a convolution", layer.name, layer.kind.keras_class()))),
        }
    }

    /// The epilogue of the chain's ReLU or ReLU6, if it has one.
    fn chain_act(&self, c: Chain) -> Act {
        match c.relu.map(|r| &self.graph.layers[r].kind) {
            None => Act::Linear,
            Some(LayerKind::Relu6) => Act::Relu6,
            Some(_) => Act::Relu,
        }
    }

    /// The conv's window with the chain's ZeroPadding2D folded in (the conv is 'valid' then).
    fn chain_window(&self, c: Chain, win: Window2d) -> Window2d {
        match c.pad.map(|p| &self.graph.layers[p].kind) {
            Some(&LayerKind::ZeroPad([top, bottom, left, right])) => Window2d { padding: Padding::Explicit { top, bottom, left, right }, ..win },
            _ => win,
        }
    }

    /// A merged sibling group: one convolution over the concatenated filters,
    /// each branch written to its concatenation slice or a tensor of its own.
    fn sibling_group(&self, g: usize, plan: &Plan, values: &mut [Option<Value>], shapes: &[[usize; 4]], keep: &[usize]) -> Result<()> {
        let group = &self.siblings[g];
        let chains = group
            .members
            .iter()
            .map(|&(conv, _)| plan.chain[conv].ok_or_else(|| Error::Invalid(format!("{}: not planned as a fused chain", self.graph.layers[conv].name))))
            .collect::<Result<Vec<_>>>()?;
        let input = self.materialize(values, chains[0].input(&self.graph))?;
        let mut outs = Vec::with_capacity(chains.len());
        for c in &chains {
            let out = c.output();
            let (tensor, offset) = match plan.dest[out] {
                Some((root, offset)) => {
                    values[out] = Some(Value::Slice { root, offset, width: shapes[out][3] });
                    (self.root_tensor(root, plan, values, shapes)?, offset)
                }
                None => {
                    let t = Tensor::empty(&self.gpu, &shapes[out], DType::F32)?;
                    values[out] = Some(Value::Var(Var::constant(t.clone())));
                    (t, 0)
                }
            };
            outs.push((tensor, offset, self.chain_act(*c)));
        }
        let dests: Vec<Destination> = outs.iter().map(|(out, channel_offset, act)| Destination { out, channel_offset: *channel_offset, act: *act }).collect();
        let weights = self.sibling_weights(group)?;
        conv_sibling::conv2d_siblings(input.value(), &weights, group.win, &dests)?;
        // A kept slice is copied out now: its concatenation may be freed before the caller reads it.
        for c in &chains {
            let out = c.output();
            if keep.contains(&out) && matches!(values[out], Some(Value::Slice { .. })) {
                values[out] = Some(Value::Var(self.materialize(values, out)?));
            }
        }
        Ok(())
    }

    /// A sibling group's concatenated filters and folded BatchNorms, built on first use.
    fn sibling_weights(&self, group: &SiblingGroup) -> Result<Arc<SiblingWeights>> {
        let mut cached = group.weights.lock().map_err(|_| Error::Invalid(format!("{}: a thread panicked building its weights", group.name)))?;
        if let Some(w) = cached.as_ref() {
            return Ok(w.clone());
        }
        let mut branches = Vec::with_capacity(group.members.len());
        for &(conv, bn) in &group.members {
            let Params::Conv { kernel, .. } = &self.params[conv] else {
                return Err(Error::Invalid(format!("layer {} is not a convolution", self.graph.layers[conv].name)));
            };
            let folded = match bn.map(|bn| &self.params[bn]) {
                None => None,
                Some(Params::BatchNorm { folded: Some((s, b)), .. }) => Some((s, b)),
                Some(_) => return Err(Error::Invalid(format!("the layer after {} is not a frozen BatchNormalization", self.graph.layers[conv].name))),
            };
            branches.push((kernel.value(), folded));
        }
        let w = Arc::new(SiblingWeights::concat(&branches)?);
        *cached = Some(w.clone());
        Ok(w)
    }

    /// The output buffer of a root concatenation, allocated on first use.
    fn root_tensor(&self, root: usize, plan: &Plan, values: &mut [Option<Value>], shapes: &[[usize; 4]]) -> Result<Tensor> {
        if let Some(Value::Var(v)) = &values[root] {
            return Ok(v.value().clone());
        }
        let t = Tensor::empty(&self.gpu, &shapes[root], storage_type(plan, root))?;
        values[root] = Some(Value::Var(Var::constant(t.clone())));
        Ok(t)
    }

    fn concat(&self, l: usize, plan: &Plan, values: &mut [Option<Value>], shapes: &[[usize; 4]]) -> Result<Value> {
        let layer = &self.graph.layers[l];
        if plan.grad[l] {
            let parts = layer.inputs.iter().map(|&i| self.materialize(values, i)).collect::<Result<Vec<_>>>()?;
            return Ok(Value::Var(ag::concat_channels(&parts.iter().collect::<Vec<_>>())?));
        }
        let (root, base) = plan.dest[l].unwrap_or((l, 0));
        let out = self.root_tensor(root, plan, values, shapes)?;
        // Inputs that did not write their slice themselves are copied in.
        let mut offset = base;
        for &i in &layer.inputs {
            if plan.dest[i].is_none() {
                concat::write_channels(self.materialize(values, i)?.value(), &out, offset)?;
            }
            offset += shapes[i][3];
        }
        if root != l {
            return Ok(Value::Slice { root, offset: base, width: shapes[l][3] });
        }
        values[l].take().ok_or_else(|| Error::Invalid(format!("{}: its output buffer is gone", layer.name)))
    }

    /// A layer's value as a standalone variable (slices are copied out).
    fn materialize(&self, values: &[Option<Value>], l: usize) -> Result<Var> {
        match &values[l] {
            Some(Value::Var(v)) => Ok(v.clone()),
            Some(Value::Slice { root, offset, width }) => {
                let Some(Value::Var(parent)) = &values[*root] else {
                    return Err(Error::Invalid(format!("layer {} was written into a concatenation that is gone", self.graph.layers[l].name)));
                };
                Ok(Var::constant(concat::slice_channels(parent.value(), *offset, *width)?))
            }
            None => Err(Error::Invalid(format!("layer {} has no value at this point", self.graph.layers[l].name))),
        }
    }
}

/// The sibling groups the executor may merge: each of the graph's sibling
/// convolutions (`Graph::sibling_convs`) that are frozen, split into groups
/// of at most `conv_sibling::MAX_BRANCHES` (of two or more), each conv with
/// the frozen BatchNorm that is its only consumer, if any.
fn sibling_groups(graph: &Graph, consumers: &[Vec<usize>], trainable: &[bool]) -> Vec<SiblingGroup> {
    let layers = &graph.layers;
    let frozen_bn = |conv: usize| match consumers[conv].as_slice() {
        [bn] if matches!(layers[*bn].kind, LayerKind::BatchNorm(_)) && !trainable[*bn] => Some(*bn),
        _ => None,
    };
    let mut groups = Vec::new();
    for (win, convs) in graph.sibling_convs() {
        let members: Vec<(usize, Option<usize>)> = convs.into_iter().filter(|&c| !trainable[c]).map(|c| (c, frozen_bn(c))).collect();
        for chunk in members.chunks(conv_sibling::MAX_BRANCHES).filter(|m| m.len() >= 2) {
            groups.push(SiblingGroup {
                members: chunk.to_vec(),
                win,
                name: chunk.iter().map(|&(c, _)| layers[c].name.as_str()).collect::<Vec<_>>().join("+"),
                weights: Mutex::new(None),
            });
        }
    }
    groups
}

/// A BatchNormalization in inference mode as a per-channel (scale, bias).
fn fold(spec: &BatchNormSpec, gamma: Option<&Tensor>, beta: &Tensor, moving_mean: &Tensor, moving_var: &Tensor) -> Result<(Tensor, Tensor)> {
    batchnorm::fold_batchnorm(gamma, beta, moving_mean, moving_var, spec.epsilon)
}

/// The element type a plan stores layer `l`'s value in.
fn storage_type(plan: &Plan, l: usize) -> DType {
    if plan.half[l] { DType::F16 } else { DType::F32 }
}

/// Whether layer `l` reads or writes an f16 value (never a differentiated
/// layer: the plan stores f16 only what frozen layers read).
fn involves_f16(plan: &Plan, l: usize, input: &Var) -> bool {
    plan.half[l] || input.value().dtype() == DType::F16
}

/// Images `[start, start + len)` of an NHWC batch.
fn slice_batch(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let [_, h, w, c] = x.dims4()?;
    let per_image = (h * w * c) as u64 * 4;
    let out = Tensor::empty(x.gpu(), &[len, h, w, c], DType::F32)?;
    out.copy_region_of(x, start as u64 * per_image)?;
    Ok(out)
}
