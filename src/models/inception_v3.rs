//! Keras InceptionV3 (include_top=False) on the GPU, layer for layer.
//!
//! The model walks its Keras layer graph in creation order. "Unfreeze the
//! last N layers" marks `model.layers[-N:]` (Keras order) trainable; a layer
//! whose output depends on a trainable weight is differentiated through the
//! autograd tape, everything else runs as the frozen prefix:
//! - conv → BatchNorm (moving statistics) → ReLU is one fused kernel with the
//!   BatchNorm folded into a per-channel scale and bias;
//! - branches of a frozen Concatenate write straight into their channel slice
//!   of the block output, so concatenation copies nothing;
//! - no activation is kept past its last consumer;
//! - when one image batch would exceed the adapter's storage-binding limit,
//!   the frozen prefix runs in batch chunks and only its boundary outputs are
//!   joined.
//!
//! BatchNormalization follows Keras: batch statistics (and a moving-average
//! update with momentum 0.99) only when training AND the layer is trainable,
//! moving statistics otherwise; epsilon 1e-3.

use super::graph::{Graph, LayerKind};
use super::inception_v3_graph::inception_v3_graph;
use crate::autograd::{self as ag, Var};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::keras_inception_v3::{bn_name, check_weights, conv_name};
use crate::io::{HostTensor, TensorMap};
use crate::ops::{batchnorm, concat, conv, pool};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// Keras BatchNormalization defaults used by InceptionV3.
pub const BN_EPSILON: f32 = 1e-3;
pub const BN_MOMENTUM: f32 = 0.99;

enum Params {
    None,
    Conv { kernel: Var },
    BatchNorm { beta: Var, moving_mean: Tensor, moving_var: Tensor, folded: Option<(Tensor, Tensor)> },
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

pub struct InceptionV3 {
    graph: Graph,
    /// Keras `model.layers` order (creation indices).
    keras_order: Vec<usize>,
    /// Per creation index: Keras's `layer.trainable`.
    trainable: Vec<bool>,
    params: Vec<Params>,
    gpu: Gpu,
    /// Overrides the adapter's storage-binding limit when splitting batches.
    binding_limit: Option<u64>,
}

/// How a layer's output is held during a forward pass.
#[derive(Clone)]
enum Value {
    Var(Var),
    /// Channels `[offset, offset + width)` of the root concatenation `root`.
    Slice { root: usize, offset: usize, width: usize },
}

impl InceptionV3 {
    /// Builds the model from Keras-named weights (Keras 3 or Keras 2 numbering),
    /// with the last `unfreeze_last` Keras layers trainable.
    pub fn from_tensor_map(gpu: &Gpu, weights: &TensorMap, unfreeze_last: usize) -> Result<InceptionV3> {
        let weights = keras3_names(weights)?;
        check_weights(&weights)?;
        let graph = inception_v3_graph();
        let keras_order = graph.keras_order();
        if unfreeze_last > keras_order.len() {
            return Err(Error::Invalid(format!(
                "--unfreeze-last {unfreeze_last}: InceptionV3 without top has {} layers",
                keras_order.len()
            )));
        }
        let mut trainable = vec![false; graph.layers.len()];
        for &l in &keras_order[keras_order.len() - unfreeze_last..] {
            trainable[l] = true;
        }
        let upload = |name: &str| -> Result<Tensor> {
            let t = &weights[name];
            Tensor::from_slice(gpu, &t.shape, &t.data)
        };
        let (mut conv_k, mut bn_k) = (0, 0);
        let mut params = Vec::with_capacity(graph.layers.len());
        for (l, layer) in graph.layers.iter().enumerate() {
            params.push(match layer.kind {
                LayerKind::Conv2d { .. } => {
                    let kernel = Var::parameter(upload(&format!("{}/kernel", conv_name(conv_k)))?, trainable[l]);
                    conv_k += 1;
                    Params::Conv { kernel }
                }
                LayerKind::BatchNorm => {
                    let name = bn_name(bn_k);
                    bn_k += 1;
                    let beta = upload(&format!("{name}/beta"))?;
                    let moving_mean = upload(&format!("{name}/moving_mean"))?;
                    let moving_var = upload(&format!("{name}/moving_variance"))?;
                    // Frozen statistics never change: fold them once.
                    let folded = if trainable[l] {
                        None
                    } else {
                        Some(batchnorm::fold_batchnorm(&beta, &moving_mean, &moving_var, BN_EPSILON)?)
                    };
                    Params::BatchNorm { beta: Var::parameter(beta, trainable[l]), moving_mean, moving_var, folded }
                }
                _ => Params::None,
            });
        }
        Ok(InceptionV3 { graph, keras_order, trainable, params, gpu: gpu.clone(), binding_limit: None })
    }

    /// Reads a safetensors file of Keras-named weights.
    pub fn from_safetensors(gpu: &Gpu, path: &std::path::Path, unfreeze_last: usize) -> Result<InceptionV3> {
        let weights = crate::io::read_safetensors(path)?;
        InceptionV3::from_tensor_map(gpu, &weights, unfreeze_last).map_err(|e| Error::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Keras's default initialisation (Glorot-uniform kernels, beta 0, moving
    /// mean 0, moving variance 1), for training from scratch.
    pub fn random(gpu: &Gpu, seed: u64, unfreeze_last: usize) -> Result<InceptionV3> {
        InceptionV3::from_tensor_map(gpu, &random_weights(seed), unfreeze_last)
    }

    /// Splits batches as if one storage binding could hold only `bytes`
    /// (tests of the chunked path; capped by the adapter's real limit).
    pub fn set_binding_limit(&mut self, bytes: u64) {
        self.binding_limit = Some(bytes);
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Number of Keras layers (311, InputLayer included).
    pub fn num_layers(&self) -> usize {
        self.keras_order.len()
    }

    /// The trainable weights with their Keras names, in Keras order.
    pub fn trainable_params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for &l in &self.keras_order {
            let name = &self.graph.layers[l].name;
            match &self.params[l] {
                Params::Conv { kernel } if kernel.requires_grad() => out.push((format!("{name}/kernel"), kernel.clone())),
                Params::BatchNorm { beta, .. } if beta.requires_grad() => out.push((format!("{name}/beta"), beta.clone())),
                _ => {}
            }
        }
        out
    }

    /// Every weight (moving statistics included) copied back to the host, Keras 3 names.
    pub fn to_tensor_map(&self) -> Result<TensorMap> {
        let mut map = TensorMap::new();
        let host = |t: &Tensor| -> Result<HostTensor> { Ok(HostTensor { shape: t.shape().to_vec(), data: t.to_vec()? }) };
        for (l, layer) in self.graph.layers.iter().enumerate() {
            match &self.params[l] {
                Params::Conv { kernel } => {
                    map.insert(format!("{}/kernel", layer.name), host(kernel.value())?);
                }
                Params::BatchNorm { beta, moving_mean, moving_var, .. } => {
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
        if h < 75 || w < 75 {
            return Err(Error::Shape(format!("InceptionV3 needs an input of at least 75x75, got {h}x{w}")));
        }
        let mut shapes: Vec<[usize; 4]> = Vec::with_capacity(self.graph.layers.len());
        for layer in &self.graph.layers {
            let input = layer.inputs.first().map(|&i| shapes[i]);
            let s = match (&layer.kind, input) {
                (LayerKind::Input, _) => [n, h, w, 3],
                (LayerKind::Conv2d { filters, win }, Some([n, h, w, _])) => {
                    let (oh, ow) = win.output_size(h, w)?;
                    [n, oh, ow, *filters]
                }
                (LayerKind::MaxPool(win) | LayerKind::AvgPool(win), Some([n, h, w, c])) => {
                    let (oh, ow) = win.output_size(h, w)?;
                    [n, oh, ow, c]
                }
                (LayerKind::Concat, Some([n, h, w, _])) => [n, h, w, layer.inputs.iter().map(|&i| shapes[i][3]).sum()],
                (_, Some(s)) => s,
                (_, None) => unreachable!("only the input layer has no inputs"),
            };
            shapes.push(s);
        }
        Ok(shapes)
    }

    /// Keras-style summary rows in `model.layers` order for an `s`×`s` input.
    pub fn summary(&self, image_size: usize) -> Result<Vec<LayerSummary>> {
        let shapes = self.output_shapes(1, image_size, image_size)?;
        Ok(self
            .keras_order
            .iter()
            .enumerate()
            .map(|(index, &l)| {
                let layer = &self.graph.layers[l];
                let (params, trainable_params) = match (&self.params[l], &layer.kind) {
                    (Params::Conv { kernel }, _) => {
                        let p = kernel.value().numel();
                        (p, if self.trainable[l] { p } else { 0 })
                    }
                    (Params::BatchNorm { beta, .. }, _) => {
                        let c = beta.value().numel();
                        (3 * c, if self.trainable[l] { c } else { 0 })
                    }
                    _ => (0, 0),
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

    /// The mixed10 output (NHWC, 2048 channels). With `training`, trainable
    /// BatchNorm layers use and update batch statistics, as Keras does.
    pub fn forward(&self, x: &Tensor, training: bool) -> Result<Var> {
        let out = self.graph.layers.len() - 1;
        let mut outs = self.run(x, training, &[out])?;
        Ok(outs.pop().expect("one output"))
    }

    /// The outputs of the named layers in inference mode, without recording.
    pub fn infer_layers(&self, x: &Tensor, names: &[&str]) -> Result<Vec<Tensor>> {
        let ids = names
            .iter()
            .map(|n| {
                self.graph.find(n).ok_or_else(|| {
                    Error::Invalid(format!("InceptionV3 has no layer named '{n}' (e.g. mixed0 … mixed10, conv2d_93, activation_93)"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let vars = ag::no_grad(|| self.run(x, false, &ids))?;
        Ok(vars.into_iter().map(|v| v.value().clone()).collect())
    }

    /// Runs the graph and returns the values of `wanted` (creation indices).
    fn run(&self, x: &Tensor, training: bool, wanted: &[usize]) -> Result<Vec<Var>> {
        let [n, h, w, c] = x.dims4()?;
        if c != 3 {
            return Err(Error::Shape(format!("InceptionV3 expects NHWC RGB input, got shape {:?}", x.shape())));
        }
        let shapes = self.output_shapes(n, h, w)?;
        let plan = self.plan(training, &shapes);
        let chunk = self.batch_chunk(&shapes, n)?;
        if chunk >= n {
            let mut values = vec![None; shapes.len()];
            self.execute(x, &plan, &shapes, &mut values, wanted, Pass::All)?;
            return wanted.iter().map(|&l| self.materialize(&values, l)).collect();
        }
        // Frozen prefix in batch chunks, then the differentiated rest on the whole batch.
        let boundary = self.boundary(&plan, wanted);
        let mut parts: HashMap<usize, Vec<Tensor>> = HashMap::new();
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let xc = slice_batch(x, start, len)?;
            let chunk_shapes = self.output_shapes(len, h, w)?;
            let mut values = vec![None; shapes.len()];
            self.execute(&xc, &plan, &chunk_shapes, &mut values, &boundary, Pass::Frozen)?;
            for &l in &boundary {
                parts.entry(l).or_default().push(self.materialize(&values, l)?.value().clone());
            }
        }
        let mut values = vec![None; shapes.len()];
        for (l, ts) in parts {
            let refs: Vec<&Tensor> = ts.iter().collect();
            values[l] = Some(Value::Var(Var::constant(concat::concat_batch(&refs)?)));
        }
        self.execute(x, &plan, &shapes, &mut values, wanted, Pass::Differentiated)?;
        wanted.iter().map(|&l| self.materialize(&values, l)).collect()
    }

    /// Largest batch whose biggest activation fits one storage binding.
    fn batch_chunk(&self, shapes: &[[usize; 4]], n: usize) -> Result<usize> {
        let per_image = shapes.iter().map(|s| (s[1] * s[2] * s[3] * 4) as u64).max().unwrap_or(1);
        let adapter_limit = self.gpu.limits().max_storage_buffer_binding_size;
        let limit = self.binding_limit.map_or(adapter_limit, |l| l.min(adapter_limit));
        if per_image > limit {
            return Err(Error::Limit {
                what: format!("one image's largest InceptionV3 activation {:?}", shapes.iter().max_by_key(|s| s[1] * s[2] * s[3]).unwrap()),
                bytes: per_image,
                limit_name: "max_storage_buffer_binding_size",
                limit,
            });
        }
        Ok(((limit / per_image) as usize).clamp(1, n.max(1)))
    }

    /// Frozen layers whose outputs the differentiated part (or the caller) needs.
    fn boundary(&self, plan: &Plan, wanted: &[usize]) -> Vec<usize> {
        (0..self.graph.layers.len())
            .filter(|&l| !plan.grad[l] && (wanted.contains(&l) || self.consumers(l).any(|c| plan.grad[c])))
            .collect()
    }

    fn consumers(&self, l: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.layers.iter().enumerate().filter(move |(_, c)| c.inputs.contains(&l)).map(|(i, _)| i)
    }

    /// Decides per layer: differentiated or frozen, fused, written into a slice.
    fn plan(&self, training: bool, shapes: &[[usize; 4]]) -> Plan {
        let layers = &self.graph.layers;
        let recording = ag::is_recording();
        let mut grad = vec![false; layers.len()];
        for (l, layer) in layers.iter().enumerate() {
            let own = match &self.params[l] {
                Params::Conv { kernel } => kernel.requires_grad(),
                Params::BatchNorm { beta, .. } => beta.requires_grad(),
                Params::None => false,
            };
            grad[l] = recording && (own || layer.inputs.iter().any(|&i| grad[i]));
        }
        let batch_stats: Vec<bool> = (0..layers.len())
            .map(|l| training && self.trainable[l] && matches!(layers[l].kind, LayerKind::BatchNorm))
            .collect();
        // conv → BN → ReLU fuses when nothing in it is differentiated and the BN uses moving statistics.
        let mut fused = vec![false; layers.len()];
        for (l, layer) in layers.iter().enumerate() {
            if matches!(layer.kind, LayerKind::Conv2d { .. }) && !grad[l + 2] && !batch_stats[l + 1] {
                fused[l] = true;
            }
        }
        // Branch outputs of frozen concatenations go straight into their slice;
        // outer blocks are planned before the nested ones they contain.
        let mut dest: Vec<Option<(usize, usize)>> = vec![None; layers.len()];
        for (c, layer) in layers.iter().enumerate().rev() {
            if !matches!(layer.kind, LayerKind::Concat) || grad[c] {
                continue;
            }
            let (root, base) = dest[c].unwrap_or((c, 0));
            let mut offset = base;
            for &i in &layer.inputs {
                let writes_slice = match layers[i].kind {
                    LayerKind::Relu => fused[i - 2],
                    LayerKind::MaxPool(_) | LayerKind::Concat => !grad[i],
                    _ => false,
                };
                if writes_slice {
                    dest[i] = Some((root, offset));
                }
                offset += shapes[i][3];
            }
        }
        Plan { grad, fused, batch_stats, dest }
    }

    /// The layers whose values layer `l` reads: a fused ReLU reads its conv's
    /// input, the conv and BN inside a fused triple read nothing.
    fn reads(&self, plan: &Plan, l: usize) -> Vec<usize> {
        let layers = &self.graph.layers;
        match layers[l].kind {
            LayerKind::Relu if plan.fused[l - 2] => vec![layers[l - 2].inputs[0]],
            LayerKind::Conv2d { .. } if plan.fused[l] => vec![],
            LayerKind::BatchNorm if plan.fused[l - 1] => vec![],
            _ => layers[l].inputs.clone(),
        }
    }

    /// Evaluates the layers that `pass` selects, in creation order, into
    /// `values`. A value is dropped after its last reader unless it is in `keep`.
    #[allow(clippy::too_many_arguments)]
    fn execute(&self, x: &Tensor, plan: &Plan, shapes: &[[usize; 4]], values: &mut [Option<Value>], keep: &[usize], pass: Pass) -> Result<()> {
        let layers = &self.graph.layers;
        let selected = |l: usize| match pass {
            Pass::All => true,
            Pass::Frozen => !plan.grad[l],
            Pass::Differentiated => plan.grad[l],
        };
        let mut remaining = vec![0usize; layers.len()];
        for l in (0..layers.len()).filter(|&l| selected(l)) {
            for i in self.reads(plan, l) {
                remaining[i] += 1;
            }
        }
        for (l, layer) in layers.iter().enumerate() {
            if !selected(l) {
                continue;
            }
            // Profile scope: the Keras name; a fused conv → BN → ReLU runs at its ReLU and is named by its conv.
            let _scope = self.gpu.profile_scope(match layer.kind { LayerKind::Relu if plan.fused[l - 2] => &layers[l - 2].name, _ => &layer.name });
            let value = match &layer.kind {
                LayerKind::Conv2d { .. } if plan.fused[l] => None,
                LayerKind::BatchNorm if plan.fused[l - 1] => None,
                LayerKind::Input => Some(Value::Var(Var::constant(x.clone()))),
                LayerKind::Relu if plan.fused[l - 2] => {
                    let input = self.materialize(values, layers[l - 2].inputs[0])?;
                    Some(self.fused_conv(l - 2, input.value(), plan.dest[l], values, shapes)?)
                }
                LayerKind::Relu => Some(Value::Var(ag::relu(&self.materialize(values, layer.inputs[0])?)?)),
                LayerKind::Conv2d { win, .. } => {
                    let Params::Conv { kernel } = &self.params[l] else { unreachable!("conv params") };
                    Some(Value::Var(ag::conv2d(&self.materialize(values, layer.inputs[0])?, kernel, *win)?))
                }
                LayerKind::BatchNorm => {
                    let Params::BatchNorm { beta, moving_mean, moving_var, .. } = &self.params[l] else { unreachable!("bn params") };
                    let input = self.materialize(values, layer.inputs[0])?;
                    Some(Value::Var(if plan.batch_stats[l] {
                        let (y, stats) = ag::batch_norm_train(&input, beta, BN_EPSILON)?;
                        batchnorm::update_moving_stats(moving_mean, moving_var, &stats, BN_MOMENTUM)?;
                        y
                    } else {
                        ag::batch_norm_inference(&input, beta, moving_mean, moving_var, BN_EPSILON)?
                    }))
                }
                LayerKind::MaxPool(win) => {
                    let input = self.materialize(values, layer.inputs[0])?;
                    Some(match plan.dest[l] {
                        Some((root, offset)) => {
                            let out = self.root_tensor(root, values, shapes)?;
                            pool::max_pool2d_into(input.value(), win, &out, offset)?;
                            Value::Slice { root, offset, width: shapes[l][3] }
                        }
                        None => Value::Var(ag::max_pool2d(&input, *win)?),
                    })
                }
                LayerKind::AvgPool(win) => Some(Value::Var(ag::avg_pool2d(&self.materialize(values, layer.inputs[0])?, *win)?)),
                LayerKind::Concat => Some(self.concat(l, plan, values, shapes)?),
            };
            if value.is_some() {
                values[l] = value;
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

    /// conv → folded BatchNorm → ReLU in one kernel, into a slice when planned.
    fn fused_conv(&self, conv_l: usize, x: &Tensor, dest: Option<(usize, usize)>, values: &mut [Option<Value>], shapes: &[[usize; 4]]) -> Result<Value> {
        let LayerKind::Conv2d { win, filters } = self.graph.layers[conv_l].kind else { unreachable!() };
        let Params::Conv { kernel } = &self.params[conv_l] else { unreachable!() };
        let Params::BatchNorm { beta, moving_mean, moving_var, folded } = &self.params[conv_l + 1] else { unreachable!() };
        // Trainable BatchNorm in inference mode: its statistics may have moved, fold now.
        let fresh;
        let (scale, bias) = match folded {
            Some((s, b)) => (s, b),
            None => {
                fresh = batchnorm::fold_batchnorm(beta.value(), moving_mean, moving_var, BN_EPSILON)?;
                (&fresh.0, &fresh.1)
            }
        };
        let spec = conv::ConvSpec { scale: Some(scale), bias: Some(bias), relu: true, ..conv::ConvSpec::new(win) };
        match dest {
            Some((root, offset)) => {
                let out = self.root_tensor(root, values, shapes)?;
                conv::conv2d_into(x, kernel.value(), &spec, &out, offset)?;
                Ok(Value::Slice { root, offset, width: filters })
            }
            None => Ok(Value::Var(Var::constant(conv::conv2d_fused(x, kernel.value(), &spec)?))),
        }
    }

    /// The output buffer of a root concatenation, allocated on first use.
    fn root_tensor(&self, root: usize, values: &mut [Option<Value>], shapes: &[[usize; 4]]) -> Result<Tensor> {
        if let Some(Value::Var(v)) = &values[root] {
            return Ok(v.value().clone());
        }
        let t = Tensor::empty(&self.gpu, &shapes[root], crate::tensor::DType::F32)?;
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
        let out = self.root_tensor(root, values, shapes)?;
        // Inputs that did not write their slice themselves are copied in.
        let mut offset = base;
        for &i in &layer.inputs {
            if plan.dest[i].is_none() {
                concat::write_channels(self.materialize(values, i)?.value(), &out, offset)?;
            }
            offset += shapes[i][3];
        }
        Ok(if root == l { values[l].take().expect("allocated above") } else { Value::Slice { root, offset: base, width: shapes[l][3] } })
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

#[derive(Clone, Copy)]
enum Pass {
    All,
    /// Only layers that no trainable weight influences (a chunk of the batch).
    Frozen,
    /// Only the rest, reading the frozen boundary values already present.
    Differentiated,
}

struct Plan {
    /// The layer's output depends on a trainable weight (and recording is on).
    grad: Vec<bool>,
    /// Conv layers fused with their BN and ReLU.
    fused: Vec<bool>,
    /// BatchNorm layers using batch statistics.
    batch_stats: Vec<bool>,
    /// Where a layer writes its output inside a root concatenation.
    dest: Vec<Option<(usize, usize)>>,
}

/// Images `[start, start + len)` of an NHWC batch.
fn slice_batch(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let [_, h, w, c] = x.dims4()?;
    let per_image = (h * w * c) as u64 * 4;
    let out = Tensor::empty(x.gpu(), &[len, h, w, c], crate::tensor::DType::F32)?;
    out.copy_region_of(x, start as u64 * per_image)?;
    Ok(out)
}

/// Accepts Keras 2 numbering (`conv2d_1` … `conv2d_94`) by shifting every
/// index down by one, as Keras's legacy loader maps layers by position.
fn keras3_names(weights: &TensorMap) -> Result<TensorMap> {
    if weights.contains_key("conv2d/kernel") || !weights.contains_key("conv2d_94/kernel") {
        return Ok(weights.clone());
    }
    let mut out = TensorMap::new();
    for (name, t) in weights {
        let (layer, var) = name.split_once('/').ok_or_else(|| Error::Invalid(format!("weight name '{name}' is not LAYER/VARIABLE")))?;
        let renamed = match layer.rsplit_once('_') {
            Some((prefix @ ("conv2d" | "batch_normalization"), k)) => {
                let k: usize = k.parse().map_err(|_| Error::Invalid(format!("weight name '{name}': bad layer number")))?;
                match k {
                    0 => return Err(Error::Invalid(format!("weight '{name}': Keras 2 numbering starts at 1"))),
                    1 => format!("{prefix}/{var}"),
                    k => format!("{prefix}_{}/{var}", k - 1),
                }
            }
            _ => name.clone(),
        };
        out.insert(renamed, t.clone());
    }
    Ok(out)
}

/// Keras default initialisers for every InceptionV3 weight.
pub fn random_weights(seed: u64) -> TensorMap {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut map = TensorMap::new();
    for (name, shape) in crate::io::keras_inception_v3::expected_weights() {
        let n: usize = shape.iter().product();
        let data = if name.ends_with("/kernel") {
            // Glorot uniform: limit sqrt(6 / (fan_in + fan_out)), receptive field counted in both.
            let receptive = shape[0] * shape[1];
            let limit = (6.0 / ((shape[2] + shape[3]) * receptive) as f64).sqrt() as f32;
            (0..n).map(|_| rng.random_range(-limit..limit)).collect()
        } else if name.ends_with("/moving_variance") {
            vec![1.0; n]
        } else {
            vec![0.0; n]
        };
        map.insert(name, HostTensor { shape, data });
    }
    map
}
