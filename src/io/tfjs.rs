//! TF.js layers models: `model.json` (the Keras topology plus a weights
//! manifest) and the weight bytes, i.e. the manifest's shard files
//! concatenated in manifest order (groups in order, each group's `paths` in
//! order). Weights lie back to back in manifest order, without padding.
//!
//! Storage per weight (logical dtype float32 only):
//! - no `quantization`: little-endian f32;
//! - `quantization: {dtype: "uint8" | "uint16", min, scale}`: value = q·scale + min,
//!   evaluated in f64 and rounded to f32, exactly as tfjs-core's decodeWeights;
//! - `quantization: {dtype: "float16"}`: little-endian IEEE half.
//!
//! `convert_inception_v3` maps a Keras InceptionV3 in this format (any Keras
//! version's layer numbering, any head after `mixed10`) onto Keras 3 names and
//! writes it as safetensors. `named_weights` takes the weights of explicitly
//! named layers (MobileNetV2's `Conv1`, `block_3_expand`, …) and leaves the head out.

use super::keras_inception_v3::{self as inception, BN_VARIABLES, num_convs};
use super::{HostTensor, StorageDtype, TensorMap, write_safetensors};
use crate::error::{Error, Result};
use crate::data::Preprocess;
use crate::models::{Backbone, weights_file};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The parts of `model.json` this module reads.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelJson {
    #[serde(rename = "modelTopology")]
    pub model_topology: Value,
    #[serde(rename = "weightsManifest")]
    pub weights_manifest: Vec<WeightGroup>,
}

/// One manifest group: its shard files and the weights stored across them.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct WeightGroup {
    pub paths: Vec<String>,
    pub weights: Vec<WeightEntry>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct WeightEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Quantization {
    pub dtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_dtype: Option<String>,
}

/// How one weight's values are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    F32,
    F16,
    U8 { min: f64, scale: f64 },
    U16 { min: f64, scale: f64 },
}

impl Encoding {
    fn of(w: &WeightEntry) -> Result<Encoding> {
        let bad = |what: String| Error::Invalid(format!("weight '{}': {what}", w.name));
        if w.dtype != "float32" {
            return Err(bad(format!("dtype '{}' is not supported (only float32 weights)", w.dtype)));
        }
        let Some(q) = &w.quantization else { return Ok(Encoding::F32) };
        if let Some(orig) = q.original_dtype.as_deref().filter(|d| *d != "float32") {
            return Err(bad(format!("quantized from '{orig}', only float32 is supported")));
        }
        let affine = || match (q.min, q.scale) {
            (Some(min), Some(scale)) if min.is_finite() && scale.is_finite() => Ok((min, scale)),
            _ => Err(bad(format!("{} quantization needs finite 'min' and 'scale'", q.dtype))),
        };
        match q.dtype.as_str() {
            "uint8" => affine().map(|(min, scale)| Encoding::U8 { min, scale }),
            "uint16" => affine().map(|(min, scale)| Encoding::U16 { min, scale }),
            "float16" => Ok(Encoding::F16),
            other => Err(bad(format!("unknown quantization dtype '{other}' (expected uint8, uint16 or float16)"))),
        }
    }

    fn bytes_per_value(self) -> usize {
        match self {
            Encoding::F32 => 4,
            Encoding::F16 | Encoding::U16 { .. } => 2,
            Encoding::U8 { .. } => 1,
        }
    }

    fn decode(self, bytes: &[u8]) -> Vec<f32> {
        let affine = |q: f64, min: f64, scale: f64| (q * scale + min) as f32;
        match self {
            Encoding::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Encoding::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Encoding::U8 { min, scale } => bytes.iter().map(|&q| affine(q as f64, min, scale)).collect(),
            Encoding::U16 { min, scale } => {
                bytes.chunks_exact(2).map(|b| affine(u16::from_le_bytes([b[0], b[1]]) as f64, min, scale)).collect()
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Encoding::F32 => "float32",
            Encoding::F16 => "float16",
            Encoding::U8 { .. } => "uint8",
            Encoding::U16 { .. } => "uint16",
        }
    }
}

/// Parses `model.json` text.
pub fn parse_model_json(text: &str) -> Result<ModelJson> {
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("not a TF.js layers model.json: {e}")))
}

/// Decodes every manifest weight from the concatenated weight bytes into f32.
/// Errors name the weight: unsupported dtype, data cut short, a duplicate
/// name, a non-finite value; and unused bytes after the last weight.
pub fn decode_weights(manifest: &[WeightGroup], bytes: &[u8]) -> Result<TensorMap> {
    let mut out = TensorMap::new();
    let mut offset = 0usize;
    for w in manifest.iter().flat_map(|g| &g.weights) {
        let enc = Encoding::of(w)?;
        let numel = w.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let len = numel.and_then(|n| n.checked_mul(enc.bytes_per_value()));
        let (Some(numel), Some(len)) = (numel, len) else {
            return Err(Error::Invalid(format!("weight '{}': shape {:?} is too large", w.name, w.shape)));
        };
        if bytes.len() - offset < len {
            return Err(Error::Invalid(format!(
                "weight '{}' ({:?}, {}) needs bytes {offset}..{} but the weight data ends at {} (truncated, or a shape is wrong)",
                w.name,
                w.shape,
                enc.describe(),
                offset + len,
                bytes.len()
            )));
        }
        let data = enc.decode(&bytes[offset..offset + len]);
        debug_assert_eq!(data.len(), numel);
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("weight '{}' has a non-finite value {} at index {i}", w.name, data[i])));
        }
        if out.insert(w.name.clone(), HostTensor { shape: w.shape.clone(), data }).is_some() {
            return Err(Error::Invalid(format!("weight '{}' appears twice in the manifest", w.name)));
        }
        offset += len;
    }
    if offset != bytes.len() {
        return Err(Error::Invalid(format!(
            "the manifest's weights fill {offset} bytes but the weight data has {} (a shape or dtype is wrong)",
            bytes.len()
        )));
    }
    Ok(out)
}

/// One layer of the Keras topology.
#[derive(Clone, Debug)]
pub struct Layer {
    pub class_name: String,
    pub name: String,
    pub config: Value,
    /// Names of the layers whose outputs this layer consumes.
    pub inbound: Vec<String>,
}

/// A TF.js layers model with its weights decoded.
#[derive(Clone, Debug)]
pub struct TfjsModel {
    pub keras_version: Option<String>,
    /// Layers in the file's order (Keras sorts them by graph depth).
    pub layers: Vec<Layer>,
    pub weights: TensorMap,
}

/// Reads `model.json` and the concatenated weight bytes.
pub fn load_tfjs(model_json: &Path, weights_bin: &Path) -> Result<TfjsModel> {
    let text = std::fs::read_to_string(model_json).map_err(|e| io_err(model_json, e))?;
    let json = parse_model_json(&text).map_err(|e| io_err(model_json, e))?;
    let layers = topology_layers(&json.model_topology).map_err(|e| io_err(model_json, e))?;
    let bytes = super::read_whole_file(weights_bin)?;
    let weights = decode_weights(&json.weights_manifest, &bytes).map_err(|e| io_err(weights_bin, e))?;
    let keras_version = json.model_topology.get("keras_version").and_then(Value::as_str).map(str::to_string);
    Ok(TfjsModel { keras_version, layers, weights })
}

fn io_err(path: &Path, reason: impl fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// The layer list of a functional model's topology, either wrapped as
/// `{model_config: {class_name, config: {layers}}}` or given directly.
pub fn topology_layers(topology: &Value) -> Result<Vec<Layer>> {
    let model = topology.get("model_config").unwrap_or(topology);
    let layers = model.pointer("/config/layers").and_then(Value::as_array).ok_or_else(|| {
        Error::Invalid("modelTopology has no config.layers list (not a functional Keras model?)".into())
    })?;
    layers
        .iter()
        .map(|l| {
            let name = l
                .get("name")
                .or_else(|| l.pointer("/config/name"))
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Invalid("a layer of modelTopology has no name".into()))?;
            let class_name = l.get("class_name").and_then(Value::as_str).unwrap_or("").to_string();
            let mut inbound = Vec::new();
            collect_inbound(l.get("inbound_nodes").unwrap_or(&Value::Null), &mut inbound);
            Ok(Layer { class_name, name: name.to_string(), config: l["config"].clone(), inbound })
        })
        .collect()
}

/// Layer names referenced by `inbound_nodes`: Keras 2 writes
/// `[[["name", node, tensor, {kwargs}], …], …]`, Keras 3
/// `[{args: [{config: {keras_history: ["name", node, tensor]}}]}]`.
fn collect_inbound(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => match (a.first(), a.get(1)) {
            (Some(Value::String(name)), Some(Value::Number(_))) => out.push(name.clone()),
            _ => a.iter().for_each(|x| collect_inbound(x, out)),
        },
        Value::Object(o) => match o.get("keras_history").and_then(|h| h.get(0)).and_then(Value::as_str) {
            Some(name) => out.push(name.to_string()),
            None => o.values().for_each(|x| collect_inbound(x, out)),
        },
        _ => {}
    }
}

/// Value ranges of one converted weight.
#[derive(Clone, Debug)]
pub struct WeightStats {
    pub name: String,
    pub shape: Vec<usize>,
    pub min: f32,
    pub max: f32,
    pub mean: f64,
}

/// What `convert_tfjs` wrote.
#[derive(Clone, Debug)]
pub struct ConversionReport {
    pub out: PathBuf,
    pub backbone: Backbone,
    pub keras_version: Option<String>,
    pub storage: StorageDtype,
    /// Tensors written (376 for InceptionV3 without top).
    pub tensors: usize,
    /// Values written (21,802,784).
    pub parameters: usize,
    pub file_bytes: u64,
    /// Source weights (InceptionV3) or weighted layers (MobileNetV2) left out: the file's own head.
    pub dropped: Vec<String>,
    /// Every written weight in Keras creation order.
    pub stats: Vec<WeightStats>,
}

impl fmt::Display for ConversionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {}: {} base, {} tensors, {} parameters, {} storage, {} bytes (source: Keras {})",
            self.out.display(),
            self.backbone.title(),
            self.tensors,
            self.parameters,
            self.storage.name(),
            self.file_bytes,
            self.keras_version.as_deref().unwrap_or("unknown")
        )?;
        let output = self.backbone.graph().output_name();
        writeln!(f, "dropped {} after {output}: {}", self.dropped.len(), self.dropped.join(", "))?;
        if self.backbone != Backbone::InceptionV3 {
            return Ok(());
        }
        writeln!(
            f,
            "{:<8} {:>11}  {:>19}  {:>17}  {:>17}  {:>17}",
            "block", "parameters", "kernel min/max", "beta", "moving_mean", "moving_variance"
        )?;
        for (i, (block, first)) in inception::blocks().iter().enumerate() {
            let end = inception::blocks().get(i + 1).map_or(num_convs(), |b| b.1);
            let rows = &self.stats[first * 4..end * 4];
            let range = |suffix: &str| {
                let sel = rows.iter().filter(|s| s.name.ends_with(suffix));
                let (lo, hi) =
                    sel.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| (lo.min(s.min), hi.max(s.max)));
                format!("{:>8} {:>8}", short(lo), short(hi))
            };
            let params: usize = rows.iter().map(|s| s.shape.iter().product::<usize>()).sum();
            writeln!(
                f,
                "{block:<8} {params:>11}  {:>19}  {:>17}  {:>17}  {:>17}",
                range("/kernel"),
                range("/beta"),
                range("/moving_mean"),
                range("/moving_variance")
            )?;
        }
        Ok(())
    }
}

/// Three decimals, or two significant digits for values too small for that.
fn short(v: f32) -> String {
    if v != 0.0 && v.abs() < 0.01 { format!("{v:.1e}") } else { format!("{v:.3}") }
}

/// Converts a TF.js layers model of a built-in backbone to a safetensors
/// file of its base with Keras 3 names, in F32 or (with `f16`) F16 storage,
/// the file's own head dropped. The backbone is recognised from the
/// topology: MobileNetV2's layers carry explicit Keras names (`Conv1` …
/// `out_relu`), mapped by name; otherwise InceptionV3, whose auto-named
/// layers are mapped by Keras creation counter, every convolution checked
/// against the Keras table (kernel, stride, padding, input) first. The
/// metadata names the backbone and `preprocess` (what the model was trained
/// on; nsfwjs's models take x/255). The write is atomic.
pub fn convert_tfjs(model_json: &Path, weights_bin: &Path, out: &Path, preprocess: Preprocess, f16: bool) -> Result<ConversionReport> {
    let model = load_tfjs(model_json, weights_bin)?;
    let backbone = if ["Conv1", "out_relu"].iter().all(|n| model.layers.iter().any(|l| l.name == *n)) {
        Backbone::MobileNetV2
    } else {
        Backbone::InceptionV3
    };
    let (weights, dropped) = match backbone {
        Backbone::InceptionV3 => inception_v3_weights(&model),
        other => named_weights(&model, &other.weight_table()),
    }
    .map_err(|e| io_err(model_json, e))?;
    backbone.check_weights(&weights).map_err(|e| io_err(model_json, e))?;
    let storage = if f16 { StorageDtype::F16 } else { StorageDtype::F32 };
    let source = format!("tfjs layers model, keras {}", model.keras_version.as_deref().unwrap_or("unknown"));
    let mut metadata = weights_file::metadata(backbone, preprocess, &source, None);
    if backbone == Backbone::InceptionV3 {
        metadata.insert("model".to_string(), "keras InceptionV3 include_top=False".to_string());
        metadata.insert("names".to_string(), "keras3".to_string());
    }
    let file_bytes = write_safetensors(out, &weights, storage, &metadata)?;
    let stats = backbone
        .weight_table()
        .into_iter()
        .map(|(name, shape)| {
            let d = &weights[&name].data;
            let min = d.iter().copied().fold(f32::INFINITY, f32::min);
            let max = d.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mean = d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
            WeightStats { name, shape, min, max, mean }
        })
        .collect();
    Ok(ConversionReport {
        out: out.to_path_buf(),
        backbone,
        keras_version: model.keras_version,
        storage,
        tensors: weights.len(),
        parameters: weights.values().map(|t| t.data.len()).sum(),
        file_bytes,
        dropped,
        stats,
    })
}

/// Maps the model's weights up to `mixed10` onto Keras 3 names; returns them
/// and the names of the weights left out (those of layers after `mixed10`).
/// The structure is checked first, conv by conv in Keras creation order, so
/// the error names the first convolution that differs from Keras's.
pub fn inception_v3_weights(model: &TfjsModel) -> Result<(TensorMap, Vec<String>)> {
    let graph = Graph::new(&model.layers)?;
    let kept = graph.ancestors("mixed10")?;
    let convs = graph.convs_in_creation_order(&kept)?;
    let conv_index: HashMap<&str, usize> = convs.iter().enumerate().map(|(k, l)| (l.name.as_str(), k)).collect();
    for (k, conv) in convs.iter().enumerate() {
        check_conv(conv, &inception::conv_name(k), &inception::convs()[k], &graph.trace_input(conv, &conv_index))?;
    }
    let bns = graph.bns_by_conv(&kept, &convs, &conv_index)?;
    for (k, bn) in bns.iter().enumerate() {
        check_bn(bn, &inception::bn_name(k))?;
    }

    // Source weights grouped by layer: layer name → variable name → weight name.
    let mut by_layer: HashMap<&str, BTreeMap<&str, &str>> = HashMap::new();
    let mut dropped = Vec::new();
    for name in model.weights.keys() {
        let (layer, var) = graph.layer_of(name)?;
        if kept.contains(layer) {
            by_layer.entry(layer).or_default().insert(var, name);
        } else {
            dropped.push(name.clone());
        }
    }
    let known: BTreeSet<&str> = convs.iter().chain(&bns).map(|l| l.name.as_str()).collect();
    if let Some(layer) = by_layer.keys().find(|l| !known.contains(*l)) {
        let l = graph.layers[layer];
        return Err(Error::Invalid(format!(
            "layer {} ({}) has weights {:?}; up to mixed10 InceptionV3 has weights only in Conv2D and BatchNormalization",
            l.name,
            l.class_name,
            by_layer[layer].keys().collect::<Vec<_>>()
        )));
    }

    // The weights of one layer, checked against the expected variables and shape.
    let take = |layer: &Layer, keras: &str, vars: &[&str], shape: &[usize], out: &mut TensorMap| -> Result<()> {
        let have = by_layer.get(layer.name.as_str()).cloned().unwrap_or_default();
        if !have.keys().eq(vars.iter().collect::<BTreeSet<_>>()) {
            return Err(Error::Invalid(format!(
                "layer {} (Keras 3 {keras}) has weights {:?}, expected {vars:?}",
                layer.name,
                have.keys().collect::<Vec<_>>()
            )));
        }
        for var in vars {
            let t = &model.weights[have[var]];
            if t.shape != shape {
                return Err(Error::Shape(format!(
                    "{}/{var} (Keras 3 {keras}/{var}) has shape {:?}, expected {shape:?}",
                    layer.name, t.shape
                )));
            }
            out.insert(format!("{keras}/{var}"), t.clone());
        }
        Ok(())
    };
    let mut out = TensorMap::new();
    for (k, spec) in inception::convs().iter().enumerate() {
        take(convs[k], &inception::conv_name(k), &["kernel"], &spec.kernel_shape(), &mut out)?;
        take(bns[k], &inception::bn_name(k), BN_VARIABLES, &[spec.cout], &mut out)?;
    }
    Ok((out, dropped))
}

/// The weights of the layers named in `expected` ((Keras name "layer/var", shape) in any order)
/// from a TF.js layers model whose layers carry explicit Keras names (MobileNetV2's Conv1,
/// block_3_expand, …). Returns them plus the names of the model's weighted layers left out
/// (its head), in the topology's order. Errors name the first expected weight that is missing
/// or has the wrong shape; a kept layer with a weight not expected, and a left-out weighted
/// layer that a kept one depends on (a gap in `expected`), are errors too.
pub fn named_weights(model: &TfjsModel, expected: &[(String, Vec<usize>)]) -> Result<(TensorMap, Vec<String>)> {
    let mut out = TensorMap::new();
    let mut kept = BTreeSet::new();
    for (name, shape) in expected {
        let (layer, _) = name
            .rsplit_once('/')
            .ok_or_else(|| Error::Invalid(format!("expected weight '{name}' is not named layer/variable")))?;
        let t = model.weights.get(name).ok_or_else(|| {
            Error::Invalid(format!("the model has no weight '{name}' (expected shape {shape:?})"))
        })?;
        if t.shape != *shape {
            return Err(Error::Shape(format!("weight '{name}' has shape {:?}, expected {shape:?}", t.shape)));
        }
        if out.insert(name.clone(), t.clone()).is_some() {
            return Err(Error::Invalid(format!("weight '{name}' is expected twice")));
        }
        kept.insert(layer);
    }
    let graph = Graph::new(&model.layers)?;
    let mut weighted = BTreeSet::new();
    for name in model.weights.keys() {
        let (layer, _) = graph.layer_of(name)?;
        if kept.contains(layer) && !out.contains_key(name) {
            return Err(Error::Invalid(format!(
                "weight '{name}' of kept layer {layer} is not among the expected weights"
            )));
        }
        weighted.insert(layer);
    }
    if let Some(layer) = kept.iter().find(|l| !graph.layers.contains_key(*l)) {
        return Err(Error::Invalid(format!("expected layer {layer} is not in the topology")));
    }
    let mut upstream = BTreeSet::new();
    for layer in &kept {
        upstream.extend(graph.ancestors(layer)?);
    }
    let dropped: Vec<String> = model
        .layers
        .iter()
        .filter(|l| weighted.contains(l.name.as_str()) && !kept.contains(l.name.as_str()))
        .map(|l| l.name.clone())
        .collect();
    if let Some(layer) = dropped.iter().find(|l| upstream.contains(l.as_str())) {
        return Err(Error::Invalid(format!(
            "layer {layer} has weights that are not expected, yet expected layers depend on it \
             (is a layer missing from the expected list?)"
        )));
    }
    Ok((out, dropped))
}

fn check_conv(layer: &Layer, keras: &str, spec: &inception::ConvSpec, input: &str) -> Result<()> {
    let c = &layer.config;
    let pair = |key: &str| c.get(key).and_then(|v| serde_json::from_value::<[usize; 2]>(v.clone()).ok());
    let padding = spec.padding.keras_name(keras)?;
    let checks: [(&str, String, String); 6] = [
        ("input", input.to_string(), spec.input.to_string()),
        ("filters", format!("{:?}", c.get("filters").and_then(Value::as_u64)), format!("{:?}", Some(spec.cout))),
        ("kernel_size", format!("{:?}", pair("kernel_size")), format!("{:?}", Some([spec.kh, spec.kw]))),
        ("strides", format!("{:?}", pair("strides")), format!("{:?}", Some([spec.stride, spec.stride]))),
        ("padding", format!("{:?}", c.get("padding").and_then(Value::as_str)), format!("{:?}", Some(padding))),
        ("use_bias", format!("{:?}", c.get("use_bias").and_then(Value::as_bool)), format!("{:?}", Some(false))),
    ];
    for (what, got, want) in checks {
        if got != want {
            return Err(Error::Invalid(format!(
                "{} (Keras 3 {keras}): {what} is {got}, expected {want} (file is not Keras InceptionV3, or its layers are numbered out of creation order)",
                layer.name
            )));
        }
    }
    Ok(())
}

fn check_bn(layer: &Layer, keras: &str) -> Result<()> {
    let c = &layer.config;
    let flag = |key: &str| c.get(key).and_then(Value::as_bool);
    let eps = c.get("epsilon").and_then(Value::as_f64);
    if flag("scale") != Some(false) || flag("center") != Some(true) || eps.is_none_or(|e| (e - 1e-3).abs() > 1e-9) {
        return Err(Error::Invalid(format!(
            "{} (Keras 3 {keras}): expected center=True, scale=False, epsilon=0.001 as in Keras InceptionV3, got center={:?} scale={:?} epsilon={eps:?}",
            layer.name,
            flag("center"),
            flag("scale")
        )));
    }
    Ok(())
}

/// The topology as a graph of named layers.
struct Graph<'a> {
    layers: HashMap<&'a str, &'a Layer>,
}

impl<'a> Graph<'a> {
    /// `(layer, variable)` of a weight named "layer/variable"; errors unless the
    /// name has that form and the layer is in the topology.
    fn layer_of<'n>(&self, weight: &'n str) -> Result<(&'n str, &'n str)> {
        let (layer, var) = weight.rsplit_once('/').ok_or_else(|| Error::Invalid(format!("weight '{weight}' is not named layer/variable")))?;
        if !self.layers.contains_key(layer) {
            return Err(Error::Invalid(format!("weight '{weight}' belongs to no layer of the topology")));
        }
        Ok((layer, var))
    }

    fn new(layers: &'a [Layer]) -> Result<Self> {
        let mut map = HashMap::new();
        for l in layers {
            if map.insert(l.name.as_str(), l).is_some() {
                return Err(Error::Invalid(format!("two layers are named '{}'", l.name)));
            }
        }
        for l in layers {
            if let Some(missing) = l.inbound.iter().find(|n| !map.contains_key(n.as_str())) {
                return Err(Error::Invalid(format!("layer {} takes input from unknown layer '{missing}'", l.name)));
            }
        }
        Ok(Graph { layers: map })
    }

    /// `name` and every layer it depends on, in name order.
    fn ancestors(&self, name: &str) -> Result<BTreeSet<&'a str>> {
        let start = self
            .layers
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("the topology has no layer '{name}' (not a Keras InceptionV3?)")))?;
        let mut seen = BTreeSet::from([start.name.as_str()]);
        let mut todo = vec![*start];
        while let Some(l) = todo.pop() {
            for n in &l.inbound {
                let up = self.layers[n.as_str()];
                if seen.insert(up.name.as_str()) {
                    todo.push(up);
                }
            }
        }
        Ok(seen)
    }

    /// The kept Conv2D layers ordered by the counter in their names
    /// (`conv2d` = 0, `conv2d_12` = 12), which Keras assigns at creation.
    fn convs_in_creation_order(&self, kept: &BTreeSet<&'a str>) -> Result<Vec<&'a Layer>> {
        let mut convs = Vec::new();
        for l in kept.iter().map(|n| self.layers[n]).filter(|l| l.class_name == "Conv2D") {
            let counter = match l.name.rsplit_once('_') {
                None => Some(0),
                Some((_, n)) => n.parse::<usize>().ok(),
            };
            let counter = counter.ok_or_else(|| {
                Error::Invalid(format!(
                    "Conv2D layer '{}' is not auto-named (conv2d_N), so its creation order is unknown",
                    l.name
                ))
            })?;
            convs.push((counter, l));
        }
        convs.sort_by_key(|(n, _)| *n);
        if convs.len() != num_convs() {
            return Err(Error::Invalid(format!(
                "found {} Conv2D layers up to mixed10, Keras InceptionV3 has {}",
                convs.len(),
                num_convs()
            )));
        }
        Ok(convs.into_iter().map(|(_, l)| l).collect())
    }

    /// The kept BatchNormalization layers, one per conv, indexed like `convs`.
    fn bns_by_conv(
        &self,
        kept: &BTreeSet<&'a str>,
        convs: &[&'a Layer],
        conv_index: &HashMap<&str, usize>,
    ) -> Result<Vec<&'a Layer>> {
        let mut bns: Vec<Option<&'a Layer>> = vec![None; convs.len()];
        for bn in kept.iter().map(|n| self.layers[n]).filter(|l| l.class_name == "BatchNormalization") {
            let k = self
                .conv_before(bn)
                .and_then(|c| conv_index.get(c.name.as_str()).copied())
                .ok_or_else(|| Error::Invalid(format!("BatchNormalization {} does not follow a Conv2D", bn.name)))?;
            if let Some(other) = bns[k].replace(bn) {
                return Err(Error::Invalid(format!("{} and {} both normalise {}", bn.name, other.name, convs[k].name)));
            }
        }
        bns.iter()
            .zip(convs)
            .enumerate()
            .map(|(k, (bn, conv))| {
                bn.ok_or_else(|| {
                    Error::Invalid(format!(
                        "{} (Keras 3 {}) has no BatchNormalization",
                        conv.name,
                        inception::conv_name(k)
                    ))
                })
            })
            .collect()
    }

    fn single_input(&self, l: &Layer) -> Option<&'a Layer> {
        match l.inbound.as_slice() {
            [one] => Some(self.layers[one.as_str()]),
            _ => None,
        }
    }

    /// The Conv2D a BatchNormalization normalises.
    fn conv_before(&self, bn: &Layer) -> Option<&'a Layer> {
        self.single_input(bn).filter(|c| c.class_name == "Conv2D")
    }

    /// Describes where a layer's input comes from in `ConvSpec::input` terms.
    fn trace_input(&self, l: &Layer, conv_index: &HashMap<&str, usize>) -> String {
        match self.single_input(l) {
            Some(up) => self.describe(up, conv_index),
            None => format!("{} inputs {:?}", l.inbound.len(), l.inbound),
        }
    }

    fn describe(&self, l: &Layer, conv_index: &HashMap<&str, usize>) -> String {
        let relu = l.config.get("activation").and_then(Value::as_str) == Some("relu");
        match l.class_name.as_str() {
            "InputLayer" => "input".to_string(),
            "Activation" if relu => {
                let conv = self
                    .single_input(l)
                    .filter(|bn| bn.class_name == "BatchNormalization")
                    .and_then(|bn| self.conv_before(bn));
                match conv.and_then(|c| conv_index.get(c.name.as_str())) {
                    Some(k) => format!("conv{k}"),
                    None => format!("relu({})", self.trace_input(l, conv_index)),
                }
            }
            // InceptionV3 pools 3×3: max with stride 2 'valid', average with stride 1 'same'.
            "MaxPooling2D" if pool_is(l, 2, "valid") => format!("max({})", self.trace_input(l, conv_index)),
            "AveragePooling2D" if pool_is(l, 1, "same") => format!("avg({})", self.trace_input(l, conv_index)),
            "Concatenate" => l.name.clone(),
            other => format!("{other} {}", l.name),
        }
    }
}

fn pool_is(l: &Layer, stride: u64, padding: &str) -> bool {
    let c = &l.config;
    let pair = |key: &str| {
        c.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<_>>())
    };
    pair("pool_size") == Some(vec![3, 3])
        && pair("strides") == Some(vec![stride, stride])
        && c.get("padding").and_then(Value::as_str) == Some(padding)
}
