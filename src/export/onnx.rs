//! ONNX export: the base's layer graph walked in creation order, one ONNX
//! node per layer (NCHW, as ONNX's Conv and pooling operators are), then the
//! head: GlobalAveragePool → Flatten → Gemm (→ Relu) … → Softmax.
//!
//! - Input `input`, float32, `[batch, S, S, 3]` NHWC as incept takes it
//!   (a Transpose to NCHW opens the graph), or `[batch, 3, S, S]` with NCHW;
//!   `batch` is a symbolic dimension. The input is preprocessed already
//!   (see [`super::ExportModel::metadata`], stored in `metadata_props`).
//! - Output `probabilities`, float32, `[batch, classes]`.
//! - A BatchNormalization whose conv feeds only it is folded into the conv
//!   (inference mode, moving statistics): W'[o] = W[o]·s, b = beta − mean·s,
//!   s = 1/sqrt(var + eps). Any other BatchNormalization is its own node.
//! - Keras padding becomes explicit pads (TF 'same': the smaller half before);
//!   AveragePool excludes the padding, as Keras does.
//!
//! Dropout is the identity at inference and is left out.

use super::onnx_proto::{
    AttributeProto, AttributeType, Dimension, DimensionValue, FLOAT, GraphProto, INT64, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use super::ExportModel;
use crate::error::{Error, Result};
use crate::io::HostTensor;
use crate::models::graph::{BatchNormSpec, LayerKind};
use crate::ops::window::Window2d;
use crate::models::keras_names::dense_name;
use prost::Message;

/// The operator set the graph is written against (Softmax on one axis needs ≥ 13).
pub const OPSET: i64 = 17;
/// IR version 8 is the one that goes with opset 17.
pub const IR_VERSION: i64 = 8;
pub const INPUT: &str = "input";
pub const OUTPUT: &str = "probabilities";
/// The symbolic batch dimension of the input and output.
pub const BATCH_DIM: &str = "batch";

/// An encoded ONNX model and what it holds.
pub struct OnnxModel {
    pub bytes: Vec<u8>,
    pub nodes: usize,
    /// BatchNormalization layers folded into their convolution.
    pub folded_batchnorms: usize,
    /// Values in the initializers (after folding).
    pub parameters: usize,
    pub input_shape: [String; 4],
    pub output_shape: [String; 2],
}

/// Builds the ONNX model of `model`: NHWC input, or NCHW with `nchw`.
pub fn to_onnx(model: &ExportModel, nchw: bool) -> Result<OnnxModel> {
    let s = model.image_size;
    let graph = &model.graph;
    let shapes = graph.output_shapes(1, s, s, 3)?;
    let mut b = Builder::default();
    let mut tensor: Vec<Option<String>> = vec![None; graph.layers.len()];
    let mut folded_batchnorms = 0;
    let input_shape = if nchw { [BATCH_DIM.to_string(), "3".into(), s.to_string(), s.to_string()] } else { [BATCH_DIM.to_string(), s.to_string(), s.to_string(), "3".into()] };

    for (l, layer) in graph.layers.iter().enumerate() {
        if tensor[l].is_some() {
            continue; // a BatchNormalization folded into the conv before it
        }
        let input = |k: usize| -> Result<String> {
            let producer = layer.inputs.get(k).ok_or_else(|| Error::Invalid(format!("layer {} has no input {k}", layer.name)))?;
            tensor[*producer].clone().ok_or_else(|| Error::Invalid(format!("layer {} reads a layer not yet exported", layer.name)))
        };
        let in_shape = |k: usize| layer.inputs.get(k).map(|&p| shapes[p]);
        let name = layer.name.clone();
        let out = match &layer.kind {
            LayerKind::Input => {
                if nchw {
                    INPUT.to_string()
                } else {
                    b.node("Transpose", "input_to_nchw", vec![INPUT.into()], "input_nchw", vec![ints("perm", &[0, 3, 1, 2])]);
                    "input_nchw".to_string()
                }
            }
            LayerKind::Conv2d { win, .. } | LayerKind::DepthwiseConv2d { win } => {
                let [_, h, w, cin] = in_shape(0).ok_or_else(|| Error::Invalid(format!("layer {name} has no input")))?;
                let depthwise = matches!(layer.kind, LayerKind::DepthwiseConv2d { .. });
                let (var, cout) = match layer.kind {
                    LayerKind::Conv2d { filters, .. } => ("kernel", filters),
                    _ => ("depthwise_kernel", cin),
                };
                let kernel = model.base_weight(&format!("{name}/{var}"))?;
                let expected = if depthwise { [win.kh, win.kw, cin, 1] } else { [win.kh, win.kw, cin, cout] };
                if kernel.shape != expected {
                    return Err(Error::Shape(format!("weight '{name}/{var}' has shape {:?}, expected {expected:?}", kernel.shape)));
                }
                let mut consumers = graph.consumers(l);
                let bn = match (consumers.next(), consumers.next()) {
                    (Some(c), None) => match graph.layers[c].kind {
                        LayerKind::BatchNorm(spec) => Some((c, spec)),
                        _ => None,
                    },
                    _ => None,
                };
                let (scale, bias) = match bn {
                    Some((c, spec)) => {
                        let (scale, bias) = fold(model, &graph.layers[c].name, &spec, cout)?;
                        (Some(scale), Some(bias))
                    }
                    None => (None, None),
                };
                // ONNX's depthwise convolution is a grouped one: `cin` groups of one channel, weight [cin, 1, kh, kw].
                let (dims, data) = if depthwise {
                    ([cin, 1, win.kh, win.kw], depthwise_to_c1hw(kernel, scale.as_deref()))
                } else {
                    ([cout, cin, win.kh, win.kw], hwio_to_oihw(kernel, scale.as_deref()))
                };
                let weight = b.init(format!("{name}/{var}"), &dims, &data);
                let mut inputs = vec![input(0)?, weight];
                if let Some(bias) = bias {
                    inputs.push(b.init(format!("{name}/bias"), &[cout], &bias));
                }
                let mut attrs = vec![
                    ints("kernel_shape", &[win.kh as i64, win.kw as i64]),
                    ints("strides", &[win.stride_h as i64, win.stride_w as i64]),
                    ints("pads", &pads(win, h, w)?),
                ];
                if depthwise {
                    attrs.push(int("group", cin as i64));
                }
                let out = bn.map_or(name.clone(), |(c, _)| graph.layers[c].name.clone());
                b.node("Conv", &name, inputs, &out, attrs);
                if let Some((c, _)) = bn {
                    tensor[c] = Some(out.clone());
                    folded_batchnorms += 1;
                }
                out
            }
            LayerKind::BatchNorm(spec) => {
                let c = in_shape(0).map_or(0, |s| s[3]);
                let get = |var: &str| -> Result<&HostTensor> {
                    let t = model.base_weight(&format!("{name}/{var}"))?;
                    if t.shape != [c] {
                        return Err(Error::Shape(format!("weight '{name}/{var}' has shape {:?}, expected [{c}]", t.shape)));
                    }
                    Ok(t)
                };
                let gamma = if spec.scale { get("gamma")?.data.clone() } else { vec![1.0; c] };
                let (beta, mean, var) = (get("beta")?, get("moving_mean")?, get("moving_variance")?);
                let inputs = vec![
                    input(0)?,
                    b.init(format!("{name}/gamma"), &[c], &gamma),
                    b.init(format!("{name}/beta"), &[c], &beta.data),
                    b.init(format!("{name}/moving_mean"), &[c], &mean.data),
                    b.init(format!("{name}/moving_variance"), &[c], &var.data),
                ];
                b.node("BatchNormalization", &name, inputs, &name, vec![float("epsilon", spec.epsilon)]);
                name
            }
            LayerKind::Relu => {
                b.node("Relu", &name, vec![input(0)?], &name, vec![]);
                name
            }
            LayerKind::Relu6 => {
                let bounds = [b.init(format!("{name}/min"), &[], &[0.0]), b.init(format!("{name}/max"), &[], &[6.0])];
                b.node("Clip", &name, vec![input(0)?, bounds[0].clone(), bounds[1].clone()], &name, vec![]);
                name
            }
            LayerKind::ZeroPad([top, bottom, left, right]) => {
                // NCHW: [n, c, top, left] before, [n, c, bottom, right] after.
                let amounts = [0, 0, *top, *left, 0, 0, *bottom, *right].map(|p| p as i64);
                let pads = b.init_i64(format!("{name}/pads"), &amounts);
                b.node("Pad", &name, vec![input(0)?, pads], &name, vec![]);
                name
            }
            LayerKind::MaxPool(win) | LayerKind::AvgPool(win) => {
                let [_, h, w, _] = in_shape(0).ok_or_else(|| Error::Invalid(format!("layer {name} has no input")))?;
                let op = if matches!(layer.kind, LayerKind::MaxPool(_)) { "MaxPool" } else { "AveragePool" };
                let attrs = vec![
                    ints("kernel_shape", &[win.kh as i64, win.kw as i64]),
                    ints("strides", &[win.stride_h as i64, win.stride_w as i64]),
                    ints("pads", &pads(win, h, w)?),
                ];
                b.node(op, &name, vec![input(0)?], &name, attrs);
                name
            }
            LayerKind::Concat => {
                let inputs = (0..layer.inputs.len()).map(input).collect::<Result<Vec<_>>>()?;
                b.node("Concat", &name, inputs, &name, vec![int("axis", 1)]);
                name
            }
            LayerKind::Add => {
                let inputs = (0..layer.inputs.len()).map(input).collect::<Result<Vec<_>>>()?;
                b.node("Sum", &name, inputs, &name, vec![]);
                name
            }
        };
        tensor[l] = Some(out);
    }

    // The head.
    let base_out = tensor.last().cloned().flatten().ok_or_else(|| Error::Invalid("the base graph is empty".into()))?;
    b.node("GlobalAveragePool", "global_average_pooling2d", vec![base_out], "global_average_pooling2d_nchw", vec![]);
    let mut x = "global_average_pooling2d".to_string();
    b.node("Flatten", "flatten", vec!["global_average_pooling2d_nchw".into()], &x, vec![int("axis", 1)]);
    let last = model.dense.len() - 1;
    for (k, (kernel, bias)) in model.dense.iter().enumerate() {
        let name = dense_name(k);
        let inputs = vec![x, b.init(format!("{name}/kernel"), &kernel.shape, &kernel.data), b.init(format!("{name}/bias"), &bias.shape, &bias.data)];
        let linear = if k < last { format!("{name}/linear") } else { "logits".to_string() };
        b.node("Gemm", &name, inputs, &linear, vec![]);
        x = if k < last {
            b.node("Relu", &format!("{name}/relu"), vec![linear], &name, vec![]);
            name
        } else {
            b.node("Softmax", "softmax", vec![linear], OUTPUT, vec![int("axis", 1)]);
            OUTPUT.to_string()
        };
    }

    let classes = model.classes.len();
    let output_shape = [BATCH_DIM.to_string(), classes.to_string()];
    let nodes = b.nodes.len();
    let parameters = b.parameters;
    let graph = GraphProto {
        node: b.nodes,
        name: format!("incept_{}_classifier", model.backbone.name()),
        initializer: b.initializers,
        doc_string: format!("{} base + Dense head fine-tuned by incept; classes {:?}", model.backbone.title(), model.classes),
        input: vec![value_info(INPUT, &input_shape)],
        output: vec![value_info(OUTPUT, &output_shape)],
    };
    let layout = if nchw { "NCHW" } else { "NHWC" };
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "incept".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: String::new(),
        model_version: 1,
        doc_string: format!(
            "{} classifier exported by incept. Input '{INPUT}' {layout} float32, preprocessed as: {}. Output '{OUTPUT}': softmax over {classes} classes.",
            model.backbone.title(),
            model.preprocess.formula()
        ),
        graph: Some(graph),
        metadata_props: model.metadata(layout).into_iter().map(|(key, value)| StringStringEntryProto { key, value }).collect(),
    };
    Ok(OnnxModel { bytes: proto.encode_to_vec(), nodes, folded_batchnorms, parameters, input_shape, output_shape })
}

#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    parameters: usize,
}

impl Builder {
    fn node(&mut self, op: &str, name: &str, input: Vec<String>, output: &str, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto { input, output: vec![output.into()], name: name.into(), op_type: op.into(), domain: String::new(), attribute });
    }

    /// Adds a 1-D int64 initializer (a shape or pad amounts, not a parameter); returns its name.
    fn init_i64(&mut self, name: String, data: &[i64]) -> String {
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds a float32 initializer; returns its name.
    fn init(&mut self, name: String, dims: &[usize], data: &[f32]) -> String {
        self.parameters += data.len();
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }
}

/// (scale, bias) per channel of BatchNormalization `bn` in inference mode, in f64 rounded to f32.
fn fold(model: &ExportModel, bn: &str, spec: &BatchNormSpec, channels: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let get = |var: &str| -> Result<&[f32]> {
        let t = model.base_weight(&format!("{bn}/{var}"))?;
        if t.shape != [channels] {
            return Err(Error::Shape(format!("weight '{bn}/{var}' has shape {:?}, expected [{channels}]", t.shape)));
        }
        Ok(&t.data)
    };
    let gamma = if spec.scale { Some(get("gamma")?) } else { None };
    let (beta, mean, var) = (get("beta")?, get("moving_mean")?, get("moving_variance")?);
    let scale: Vec<f64> =
        (0..channels).map(|c| gamma.map_or(1.0, |g| g[c] as f64) / (var[c] as f64 + spec.epsilon as f64).sqrt()).collect();
    let bias = (0..channels).map(|c| (beta[c] as f64 - mean[c] as f64 * scale[c]) as f32).collect();
    Ok((scale.into_iter().map(|s| s as f32).collect(), bias))
}

/// HWIO kernel → OIHW, each output channel multiplied by its `scale`.
fn hwio_to_oihw(kernel: &HostTensor, scale: Option<&[f32]>) -> Vec<f32> {
    let [kh, kw, cin, cout] = [kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3]];
    let mut out = Vec::with_capacity(kernel.data.len());
    for o in 0..cout {
        let s = scale.map_or(1.0, |s| s[o]);
        for i in 0..cin {
            for y in 0..kh {
                for x in 0..kw {
                    out.push(kernel.data[((y * kw + x) * cin + i) * cout + o] * s);
                }
            }
        }
    }
    out
}

/// Depthwise kernel `[kh, kw, c, 1]` → `[c, 1, kh, kw]`, each channel multiplied by its `scale`.
fn depthwise_to_c1hw(kernel: &HostTensor, scale: Option<&[f32]>) -> Vec<f32> {
    let [kh, kw, c] = [kernel.shape[0], kernel.shape[1], kernel.shape[2]];
    let mut out = Vec::with_capacity(kernel.data.len());
    for ch in 0..c {
        let s = scale.map_or(1.0, |s| s[ch]);
        for y in 0..kh {
            for x in 0..kw {
                out.push(kernel.data[(y * kw + x) * c + ch] * s);
            }
        }
    }
    out
}

/// ONNX pads [top, left, bottom, right] for a Keras window on an `h`×`w` input.
/// ONNX `pads` [top, left, bottom, right] of a Keras window: explicit
/// padding as given, TF 'same' with the smaller half first.
fn pads(win: &Window2d, h: usize, w: usize) -> Result<[i64; 4]> {
    let (top, left) = win.pad_before(h, w)?;
    let (th, tw) = win.pad_total(h, w)?;
    Ok([top as i64, left as i64, (th - top) as i64, (tw - left) as i64])
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: Some(AttributeType::Ints as i32), ints: values.to_vec(), ..Default::default() }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: Some(AttributeType::Int as i32), i: Some(value), ..Default::default() }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: Some(AttributeType::Float as i32), f: Some(value), ..Default::default() }
}

/// A float32 tensor of the given dims: numbers are fixed sizes, anything else a symbolic dimension.
fn value_info(name: &str, dims: &[String]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension { value: Some(d.parse::<i64>().map_or_else(|_| DimensionValue::DimParam(d.clone()), DimensionValue::DimValue)) })
        .collect();
    let tensor = type_proto::Tensor { elem_type: Some(FLOAT), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: name.into(), r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)) }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Padding;

    #[test]
    fn same_pads_put_the_smaller_half_first() {
        // 3×3 stride 1: one each side; 1×7: three each side along width; stride 2 on an even input: 0 before, 1 after.
        assert_eq!(pads(&Window2d::new(3, 3, 1, Padding::Same), 35, 35).unwrap(), [1, 1, 1, 1]);
        let w17 = Window2d { kh: 1, kw: 7, stride_h: 1, stride_w: 1, padding: Padding::Same };
        assert_eq!(pads(&w17, 17, 17).unwrap(), [0, 3, 0, 3]);
        assert_eq!(pads(&Window2d::new(3, 3, 2, Padding::Same), 8, 8).unwrap(), [0, 0, 1, 1]);
        assert_eq!(pads(&Window2d::new(3, 3, 2, Padding::Valid), 35, 35).unwrap(), [0, 0, 0, 0]);
    }

    #[test]
    fn explicit_pads_are_written_as_given() {
        // ONNX order: [top, left, bottom, right]; Keras ZeroPadding2D(((top, bottom), (left, right))).
        let mobilenet = Window2d::new(3, 3, 2, Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 });
        assert_eq!(pads(&mobilenet, 112, 112).unwrap(), [0, 0, 1, 1]);
        let odd = Window2d::new(3, 3, 1, Padding::Explicit { top: 2, bottom: 1, left: 1, right: 0 });
        assert_eq!(pads(&odd, 9, 9).unwrap(), [2, 1, 1, 0]);
    }

    #[test]
    fn kernel_transpose_and_scale() {
        // [kh=1, kw=2, cin=2, cout=3], value = index.
        let k = HostTensor { shape: vec![1, 2, 2, 3], data: (0..12).map(|v| v as f32).collect() };
        let out = hwio_to_oihw(&k, Some(&[1.0, 2.0, 3.0]));
        // o=0: (i=0: x=0 → 0, x=1 → 6), (i=1: 3, 9); o=1 scaled by 2: (1, 7, 4, 10)·2.
        assert_eq!(&out[..8], &[0.0, 6.0, 3.0, 9.0, 2.0, 14.0, 8.0, 20.0]);
    }
}
