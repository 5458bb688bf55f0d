//! `incept inspect`: what a weights or model file is, read on the host only
//! (no GPU device): its format, tensors (name, dtype, shape), parameter
//! count, which model it matches (InceptionV3 base, base + head) and which
//! preprocessing it expects where the file (or the run beside it) says.
//!
//! The format is recognised by content, not by name: safetensors (8-byte
//! header length, then JSON), a TF.js `model.json` (its shards are read
//! from the manifest's paths), ONNX (a protobuf ModelProto), Keras HDF5
//! (.h5, .weights.h5) and Keras 3 .keras zip archives.

use super::keras_inception_v3::{convs, conv_name};
use super::safetensors_io::decode_safetensors;
use super::{TensorMap, tfjs};
use super::hdf5_file::{H5, HDF5_SIGNATURE};
use super::keras_archive::{KerasArchive, ZIP_SIGNATURE};
use super::keras_import::map_inception_v3;
use super::keras_config::{self, ConfigLayer, Support};
use super::keras_weights::{KerasFile, read_keras_file};
use crate::error::{Error, Result};
use crate::export::onnx_proto::{self, ModelProto};
use crate::models::Backbone;
use crate::models::weights_file::{HEAD_LAYER, KEY_BACKBONE, KEY_PREPROCESS};
use crate::models::keras_names::dense_name;
use std::fmt;
use std::path::{Path, PathBuf};

/// One tensor of a file as stored.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// What [`inspect`] found.
#[derive(Clone, Debug)]
pub struct Report {
    pub path: PathBuf,
    pub format: String,
    pub tensors: Vec<TensorInfo>,
    /// Which model the tensors make up.
    pub model: String,
    pub preprocess: String,
    /// Metadata key/value pairs the file carries.
    pub metadata: Vec<(String, String)>,
    /// Where the tensors are when the file's format keeps them out of reach
    /// of inspect (a .keras archive's HDF5 weights); `tensors` is then empty.
    pub unread: Option<String>,
    /// A Keras file's layers from its own config, with what incept makes of
    /// each (`io::keras_config`); empty for other files.
    pub layers: Vec<ConfigLayer>,
}

impl Report {
    /// Values in all tensors (saturating: shapes come from the file).
    pub fn parameters(&self) -> usize {
        self.tensors.iter().map(|t| t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX)).fold(0, usize::saturating_add)
    }
}

/// Inspects `path`. Errors name the file and what was expected.
pub fn inspect(path: &Path) -> Result<Report> {
    let bad = |reason: String| Error::Io { path: path.display().to_string(), reason };
    let bytes = super::read_whole_file(path)?;
    if bytes.starts_with(HDF5_SIGNATURE) {
        return inspect_hdf5(path, bytes);
    }
    if bytes.starts_with(ZIP_SIGNATURE) {
        return inspect_keras(path, &bytes);
    }
    if is_safetensors(&bytes) {
        return inspect_safetensors(path, &bytes);
    }
    let text_start = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if text_start == Some(&b'{') {
        return inspect_tfjs(path, &bytes);
    }
    inspect_onnx(path, &bytes).map_err(|e| match e {
        Error::Io { .. } => e,
        other => bad(format!(
            "not a recognised weights or model file (expected safetensors, a TF.js model.json, ONNX, HDF5 or a zip archive): {other}"
        )),
    })
}

/// An 8-byte little-endian header length, then a JSON object (the safetensors
/// crate then checks that the header and the data fit the file).
fn is_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 10 && {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        (2..1 << 32).contains(&n) && bytes[8] == b'{'
    }
}

fn inspect_safetensors(path: &Path, bytes: &[u8]) -> Result<Report> {
    let file_err = |e: String| Error::Io { path: path.display().to_string(), reason: e };
    let (weights, metadata) = decode_safetensors(path, bytes)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| file_err(format!("not a valid safetensors file: {e}")))?;
    let mut tensors: Vec<TensorInfo> = header
        .tensors()
        .into_iter()
        .map(|(name, info)| TensorInfo { name, dtype: format!("{:?}", info.dtype), shape: info.shape.clone() })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    // BTreeMap order: sorted by key.
    let metadata: Vec<(String, String)> = metadata.into_iter().collect();
    let mut model = describe_keras_weights(&weights, metadata.iter().find(|(k, _)| k == KEY_BACKBONE).map(|(_, v)| v.as_str()));
    if weights.keys().any(|k| k.starts_with("optimizer/")) || metadata.iter().any(|(k, _)| k == "incept_train_state") {
        model.push_str("; an incept training checkpoint (with Adam moments and loop state)");
    }
    // A run's checkpoint has its preprocessing in run.json beside it instead:
    // `train::run_dir::preprocess_beside`, which the command applies.
    let preprocess = match metadata.iter().find(|(k, _)| k == KEY_PREPROCESS) {
        Some((_, name)) => format!("{name}, from the file's metadata"),
        None => "not recorded in the file".into(),
    };
    Ok(Report { path: path.to_path_buf(), format: "safetensors".into(), tensors, model, preprocess, metadata, unread: None, layers: Vec::new() })
}

/// Base and head in Keras naming (HWIO kernels, BatchNorm unfolded): the
/// backbone the metadata names (`backbone`), else the one whose weight names
/// the tensors carry; a tuned head `dense*` or a pretrained `predictions` head.
fn describe_keras_weights(weights: &TensorMap, backbone: Option<&str>) -> String {
    let pretrained = format!("{HEAD_LAYER}/kernel");
    let is_head = |k: &str| k.starts_with("dense") || k.starts_with(&format!("{HEAD_LAYER}/")) || k.starts_with("optimizer/");
    let base: TensorMap = weights.iter().filter(|(k, _)| !is_head(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let backbone = match backbone.map(Backbone::from_name) {
        Some(Ok(b)) => b,
        Some(Err(e)) => return format!("metadata '{KEY_BACKBONE}': {e}"),
        None => Backbone::recognise(&base).unwrap_or(Backbone::InceptionV3),
    };
    let title = backbone.title();
    let base_ok = backbone.canonical_names(&base).and_then(|b| backbone.check_weights(&b));
    let head = describe_head(|name| weights.get(name).map(|t| t.shape.clone())).or_else(|| {
        weights.get(&pretrained).map(|k| format!("pretrained {HEAD_LAYER} Dense {}", k.shape.iter().map(usize::to_string).collect::<Vec<_>>().join("→")))
    });
    match (base_ok, head) {
        (Ok(()), Some(head)) => format!("{title} base (include_top=False) + head {head}"),
        (Ok(()), None) => format!("{title} base (include_top=False)"),
        (Err(e), Some(head)) => format!("head {head}; the rest is not the {title} base: {e}"),
        (Err(e), None) => format!("not {title}: {e}"),
    }
}

/// "Dense 2048→512→512→3" for Dense layers `dense`, `dense_1`, … (Keras 3)
/// or `dense_1`, `dense_2`, … (Keras 2) with (in, out) kernels.
fn describe_head(shape: impl Fn(&str) -> Option<Vec<usize>>) -> Option<String> {
    let first = if shape(&format!("{}/kernel", dense_name(0))).is_some() { 0 } else { 1 };
    let mut sizes = Vec::new();
    for k in first.. {
        match shape(&format!("{}/kernel", dense_name(k))).as_deref() {
            Some([fan_in, fan_out]) if sizes.last().is_none_or(|&last| last == *fan_in) => {
                if sizes.is_empty() {
                    sizes.push(*fan_in);
                }
                sizes.push(*fan_out);
            }
            _ => break,
        }
    }
    (!sizes.is_empty()).then(|| format!("Dense {}", sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("→")))
}

fn inspect_tfjs(path: &Path, bytes: &[u8]) -> Result<Report> {
    let file_err = |e: String| Error::Io { path: path.display().to_string(), reason: e };
    let text = std::str::from_utf8(bytes).map_err(|_| file_err("starts like JSON but is not UTF-8 text".into()))?;
    let json = tfjs::parse_model_json(text).map_err(|e| file_err(e.to_string()))?;
    let tensors: Vec<TensorInfo> = json
        .weights_manifest
        .iter()
        .flat_map(|g| &g.weights)
        .map(|w| TensorInfo {
            name: w.name.clone(),
            dtype: match &w.quantization {
                Some(q) => format!("{} (stored {})", w.dtype, q.dtype),
                None => w.dtype.clone(),
            },
            shape: w.shape.clone(),
        })
        .collect();
    // The shards, in manifest order, beside model.json. Without them the
    // shapes still tell the model; with them every value is decoded and checked.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut weight_bytes = Vec::new();
    let mut missing = Vec::new();
    for p in json.weights_manifest.iter().flat_map(|g| &g.paths) {
        if p.contains("..") || Path::new(p).is_absolute() {
            return Err(file_err(format!("weight shard path '{p}' leaves the model's folder")));
        }
        match std::fs::read(dir.join(p)) {
            Ok(b) => weight_bytes.extend(b),
            Err(_) => missing.push(p.clone()),
        }
    }
    let layers = tfjs::topology_layers(&json.model_topology).map_err(|e| file_err(e.to_string()))?;
    let weights = if missing.is_empty() {
        tfjs::decode_weights(&json.weights_manifest, &weight_bytes).map_err(|e| file_err(e.to_string()))?
    } else {
        let shapes = json.weights_manifest.iter().flat_map(|g| &g.weights);
        shapes.map(|w| (w.name.clone(), super::HostTensor { shape: w.shape.clone(), data: Vec::new() })).collect()
    };
    let keras_version = json.model_topology.get("keras_version").and_then(|v| v.as_str()).map(str::to_string);
    let layer_count = layers.len();
    let model = tfjs::TfjsModel { keras_version: keras_version.clone(), layers, weights };
    let model_desc = match tfjs::inception_v3_weights(&model) {
        Ok((_, dropped)) if dropped.is_empty() => "InceptionV3 base (include_top=False)".to_string(),
        Ok((_, dropped)) => match describe_head(|name| model.weights.get(name).map(|t| t.shape.clone())) {
            Some(head) => format!("InceptionV3 base (include_top=False) + head {head}"),
            None => format!("InceptionV3 base (include_top=False) + a head of {} weights ({})", dropped.len(), dropped.join(", ")),
        },
        Err(e) => format!("not InceptionV3: {e}"),
    };
    let mut metadata: Vec<(String, String)> = user_metadata(text);
    if !missing.is_empty() {
        metadata.push(("weight shards missing (values not read)".into(), missing.join(", ")));
    }
    let preprocess = metadata.iter().find(|(k, _)| k == "incept.preprocess_formula").map_or("not recorded in the file".into(), |(_, v)| v.clone());
    let format = format!("TF.js layers model ({layer_count} layers, Keras {})", keras_version.as_deref().unwrap_or("unknown"));
    Ok(Report { path: path.to_path_buf(), format, tensors, model: model_desc, preprocess, metadata, unread: None, layers: Vec::new() })
}

/// `userDefinedMetadata` string values of a model.json.
fn user_metadata(text: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    v.get("userDefinedMetadata")
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// A Keras HDF5 file (.h5, .weights.h5). When it is not a Keras
/// InceptionV3 file, its datasets are listed as stored and the model line says why.
fn inspect_hdf5(path: &Path, bytes: Vec<u8>) -> Result<Report> {
    match read_keras_file(path) {
        Ok(file) => Ok(keras_report(&file, file.format.describe().to_string(), Vec::new(), None)),
        Err(e) => {
            let h5 = H5::parse(path, bytes)?;
            let tensors = h5.root().all_datasets()?.into_iter().map(|(name, dtype, shape)| TensorInfo { name, dtype, shape }).collect();
            let model = format!("not a Keras InceptionV3 file: {}", strip_path(path, &e));
            Ok(Report {
                path: path.to_path_buf(),
                format: "HDF5".into(),
                tensors,
                model,
                preprocess: "not recorded in the file".into(),
                metadata: Vec::new(),
                unread: None,
                layers: Vec::new(),
            })
        }
    }
}

/// A Keras 3 `.keras` archive: its layers from config.json, its tensors from model.weights.h5.
fn inspect_keras(path: &Path, bytes: &[u8]) -> Result<Report> {
    let archive = KerasArchive::read(path, bytes)?;
    let format = format!("Keras 3 .keras archive ({})", archive.members.iter().map(|(n, s)| format!("{n} {s} bytes")).collect::<Vec<_>>().join(", "));
    match read_keras_file(path) {
        Ok(file) => Ok(keras_report(&file, format, archive.metadata.clone(), Some(archive.model()))),
        Err(e) => {
            let (architecture, layers) = keras_config::describe(path, &archive.config);
            Ok(Report {
                path: path.to_path_buf(),
                format,
                tensors: Vec::new(),
                unread: Some(format!("in model.weights.h5, not mapped onto InceptionV3: {}", strip_path(path, &e))),
                model: format!("{}; architecture: {architecture}", archive.model()),
                preprocess: incept_preprocess(&archive.incept),
                layers,
                metadata: archive.metadata,
            })
        }
    }
}

/// The report of a Keras file read: its tensors by layer name, and what
/// they make up (when not InceptionV3: `config_model`, what the file's
/// config describes, where it has one).
fn keras_report(file: &KerasFile, format: String, mut metadata: Vec<(String, String)>, config_model: Option<String>) -> Report {
    let tensors = file
        .layers
        .iter()
        .flat_map(|l| l.vars.iter().map(move |(var, t)| TensorInfo { name: format!("{}/{var}", l.name), dtype: "F32".into(), shape: t.shape.clone() }))
        .collect();
    let model = match map_inception_v3(file) {
        Ok(m) if m.has_head() => {
            let widths: Vec<String> = std::iter::once(2048).chain(m.hidden.iter().copied()).chain([m.classes]).map(|w| w.to_string()).collect();
            format!("InceptionV3 base (include_top=False) + head Dense {}", widths.join("→"))
        }
        Ok(_) => "InceptionV3 base (include_top=False)".into(),
        Err(e) => config_model.unwrap_or_else(|| format!("not InceptionV3: {}", strip_path(&file.path, &e))),
    };
    // What the file's own config describes, layer by layer (files saved with their architecture).
    let (model, layers) = match &file.raw_config {
        Some(config) => {
            let (architecture, layers) = keras_config::describe(&file.path, config);
            (format!("{model}; architecture: {architecture}"), layers)
        }
        None => (model, Vec::new()),
    };
    if file.format != crate::io::keras_weights::KerasFormat::Keras3Archive {
        if let Some(v) = &file.keras_version {
            metadata.push(("keras_version".into(), v.clone()));
        }
        metadata.extend(file.incept.iter().map(|(k, v)| (format!("incept.{k}"), v.as_str().map_or_else(|| v.to_string(), str::to_string))));
    }
    Report { path: file.path.clone(), format, tensors, model, preprocess: incept_preprocess(&file.incept), metadata, unread: None, layers }
}


/// What incept's Keras export recorded about the preprocessing.
fn incept_preprocess(incept: &serde_json::Map<String, serde_json::Value>) -> String {
    match incept.get("preprocess").and_then(|v| v.as_str()) {
        Some(p) => format!("{p}, from the file's metadata (incept's Keras export)"),
        None => "not recorded in the file".into(),
    }
}

/// An error's reason without the file name the report already shows.
fn strip_path(path: &Path, e: &Error) -> String {
    match e {
        Error::Io { path: p, reason } if *p == path.display().to_string() => reason.clone(),
        other => other.to_string(),
    }
}

fn inspect_onnx(path: &Path, bytes: &[u8]) -> Result<Report> {
    use prost::Message;
    let model = ModelProto::decode(bytes).map_err(|e| Error::Invalid(format!("not ONNX either ({e})")))?;
    let Some(graph) = model.graph.as_ref().filter(|g| model.ir_version > 0 && !g.node.is_empty()) else {
        return Err(Error::Invalid("not ONNX either (no graph)".into()));
    };
    let dtype = |t: i32| match t {
        onnx_proto::FLOAT => "float32".to_string(),
        other => format!("ONNX type {other}"),
    };
    let tensors: Vec<TensorInfo> = graph
        .initializer
        .iter()
        .map(|t| TensorInfo { name: t.name.clone(), dtype: dtype(t.data_type), shape: t.dims.iter().map(|&d| d.max(0) as usize).collect() })
        .collect();
    let shape = |name: &str| tensors.iter().find(|t| t.name == name).map(|t| t.shape.clone());
    // incept's export keeps Keras names: conv2d_k/kernel as OIHW with BatchNorm folded in.
    let mismatch = convs().iter().enumerate().find_map(|(k, c)| {
        let name = format!("{}/kernel", conv_name(k));
        let want = vec![c.cout, c.cin, c.kh, c.kw];
        (shape(&name).as_ref() != Some(&want)).then(|| format!("'{name}' is {:?}, expected {want:?}", shape(&name)))
    });
    let convs_in_graph = graph.node.iter().filter(|n| n.op_type == "Conv").count();
    let base = match mismatch {
        None if convs_in_graph == convs().len() => "InceptionV3 base (BatchNorm folded into the convolutions)".to_string(),
        None => format!("InceptionV3 weights, but {convs_in_graph} Conv nodes"),
        Some(m) => format!("not InceptionV3 as incept exports it: {m}"),
    };
    let model_desc = match describe_head(shape) {
        Some(head) => format!("{base} + head {head} + Softmax"),
        None => base,
    };
    let metadata: Vec<(String, String)> = model.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
    let preprocess = metadata.iter().find(|(k, _)| k == "incept.preprocess_formula").map_or("not recorded in the file".into(), |(_, v)| v.clone());
    let opset = model.opset_import.iter().map(|o| o.version).max().unwrap_or(0);
    let io = |v: &[onnx_proto::ValueInfoProto]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>().join(", ");
    let format = format!(
        "ONNX (IR {}, opset {opset}, producer '{}', {} nodes, inputs [{}], outputs [{}])",
        model.ir_version,
        model.producer_name,
        graph.node.len(),
        io(&graph.input),
        io(&graph.output)
    );
    Ok(Report { path: path.to_path_buf(), format, tensors, model: model_desc, preprocess, metadata, unread: None, layers: Vec::new() })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut dtypes = std::collections::BTreeMap::<&str, usize>::new();
        for t in &self.tensors {
            *dtypes.entry(t.dtype.as_str()).or_default() += 1;
        }
        let dtypes: Vec<String> = dtypes.iter().map(|(d, n)| format!("{n} {d}")).collect();
        writeln!(f, "{}: {}", self.path.display(), self.format)?;
        match &self.unread {
            Some(place) => writeln!(f, "tensors: {place}")?,
            None => writeln!(f, "tensors: {} ({}), {} parameters", self.tensors.len(), dtypes.join(", "), self.parameters())?,
        }
        writeln!(f, "model: {}", self.model)?;
        writeln!(f, "preprocessing: {}", self.preprocess)?;
        for (k, v) in &self.metadata {
            let v = if v.len() > 200 { format!("{}…", &v[..v.floor_char_boundary(200)]) } else { v.clone() };
            writeln!(f, "metadata {k}: {v}")?;
        }
        if !self.layers.is_empty() {
            // Indented, so `--brief` leaves them out with the tensors.
            writeln!(f, "  layers ({}), from the file's config:", self.layers.len())?;
            let width = self.layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
            let class_width = self.layers.iter().map(|l| l.class.len()).max().unwrap_or(0);
            for l in &self.layers {
                let support = match &l.support {
                    Support::Layer(_) => "supported".to_string(),
                    Support::Identity => "supported (identity at inference)".to_string(),
                    Support::Head => "head".to_string(),
                    Support::Unsupported(why) => format!("NOT SUPPORTED: {why}"),
                };
                let inputs = if l.inputs.is_empty() { String::new() } else { format!("  <- {}", l.inputs.join(", ")) };
                writeln!(f, "    {:<width$}  {:<class_width$}  {support}{inputs}", l.name, l.class)?;
            }
        }
        let width = self.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in &self.tensors {
            writeln!(f, "  {:<width$}  {:<10} {:?}", t.name, t.dtype, t.shape)?;
        }
        Ok(())
    }
}
