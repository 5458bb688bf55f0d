//! The weighted layers of a Keras file, in the file's own terms (layer
//! names, variables, where in the file), before any mapping onto
//! InceptionV3 (`io::keras_import` does that). Four forms:
//!
//! - legacy HDF5 `save_weights("x.h5")` (Keras 2 / tf_keras; Keras's ImageNet
//!   files): the root's `layer_names` attribute lists the layers in
//!   `model.layers` order, each layer group's `weight_names` its variables
//!   (`conv2d_5/kernel:0`), stored under the layer group by that name;
//! - legacy HDF5 `save("x.h5")`: the same under `/model_weights`, and the
//!   model's config as the root's `model_config` attribute (JSON);
//! - Keras 3 `save_weights("x.weights.h5")`: `layers/<key>/vars/<j>`, where
//!   `<key>` numbers the layers per class in `model.layers` order
//!   (`layers/conv2d_5` is the sixth Conv2D of model.layers, not the layer
//!   named conv2d_5), nested models as `layers/functional/layers/…`;
//! - a Keras 3 `.keras` archive: zip of `config.json` (the layers, in
//!   model.layers order, with their real names), `metadata.json` and
//!   `model.weights.h5` (the previous form).
//!
//! A Keras 3 `.weights.h5` file alone has no config: its layers are taken to
//! be InceptionV3's in model.layers order, read off the layer graph
//! ([`Graph::keras_order`]), then the head's Dense layers.

use super::HostTensor;
use super::hdf5_file::{H5, HDF5_SIGNATURE, Node};
use super::keras_archive::{self, KerasArchive};
use crate::error::{Error, Result};
use crate::models::inception_v3_graph::inception_v3_graph;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Which form a Keras file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KerasFormat {
    LegacyWeights,
    LegacyModel,
    Keras3Weights,
    Keras3Archive,
}

impl KerasFormat {
    pub fn describe(self) -> &'static str {
        match self {
            KerasFormat::LegacyWeights => "Keras 2 / tf_keras HDF5 weights (save_weights .h5)",
            KerasFormat::LegacyModel => "Keras 2 / tf_keras HDF5 model (save .h5: model_config + model_weights)",
            KerasFormat::Keras3Weights => "Keras 3 weights (.weights.h5, no config: layers by position)",
            KerasFormat::Keras3Archive => "Keras 3 .keras archive (config.json + model.weights.h5)",
        }
    }
}

/// One layer that has variables.
#[derive(Clone, Debug)]
pub struct WeightedLayer {
    /// Keras class (`Conv2D`, `BatchNormalization`, `Dense`, …): from the
    /// config, else from the variables' names and ranks.
    pub class: String,
    /// The layer's name: from the file or its config; in a Keras 3
    /// `.weights.h5` file, the InceptionV3 layer that its position implies.
    pub name: String,
    /// Where the layer's variables are in the file.
    pub at: String,
    /// (variable name: `kernel`, `bias`, `beta`, `moving_mean`, …, value) in file order.
    pub vars: Vec<(String, HostTensor)>,
}

/// What a model config says beyond the weights.
#[derive(Clone, Debug, Default)]
pub struct ModelConfig {
    /// `activation` of every Dense layer, in layer order.
    pub dense_activations: Vec<String>,
    /// `rate` of every Dropout layer.
    pub dropout_rates: Vec<f32>,
    /// The input's (height, width) when the config fixes them.
    pub input_size: Option<(usize, usize)>,
}

/// A Keras file read.
#[derive(Clone, Debug)]
pub struct KerasFile {
    pub path: PathBuf,
    pub format: KerasFormat,
    pub layers: Vec<WeightedLayer>,
    pub config: Option<ModelConfig>,
    /// The model's config as the file holds it (config.json, or the
    /// `model_config` attribute), for `io::keras_config`; `None` in weights-only files.
    pub raw_config: Option<Value>,
    pub keras_version: Option<String>,
    /// What incept's Keras export records (tools/keras_export.py): in
    /// metadata.json under "incept", or as `incept.*` root attributes of a
    /// `.weights.h5` file (`preprocess`, `classes`, `image_size`, …).
    pub incept: Map<String, Value>,
}

/// Where `layer`'s weights are in its file, for errors.
pub fn describe(layer: &WeightedLayer) -> String {
    format!("{} ({} {})", layer.at, layer.class, layer.name)
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// The largest model.weights.h5 read out of a .keras archive (InceptionV3 with a head: ~93 MB).
const MAX_WEIGHTS_BYTES: u64 = 1 << 30;

/// Whether `path` starts as a Keras file does (HDF5 or a zip archive); false when it cannot be read.
pub fn is_keras_file(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && (head.starts_with(keras_archive::ZIP_SIGNATURE) || head.starts_with(HDF5_SIGNATURE))
}

/// Reads any of the four forms, recognised by content.
pub fn read_keras_file(path: &Path) -> Result<KerasFile> {
    let bytes = super::read_whole_file(path)?;
    if bytes.starts_with(keras_archive::ZIP_SIGNATURE) {
        let archive = KerasArchive::read(path, &bytes)?;
        let inner = PathBuf::from(format!("{}!model.weights.h5", path.display()));
        let weights = keras_archive::read_member(path, &bytes, "model.weights.h5", MAX_WEIGHTS_BYTES)?;
        let h5 = H5::parse(&inner, weights)?;
        let layers = keras3_layers(&h5, &config_layers(path, &archive.config)?)?;
        let config = model_config(&archive.config);
        let keras_version = archive.metadata.iter().find(|(k, _)| k == "keras_version").map(|(_, v)| v.clone());
        return Ok(KerasFile {
            path: path.to_path_buf(),
            format: KerasFormat::Keras3Archive,
            layers,
            config: Some(config),
            raw_config: Some(archive.config),
            keras_version,
            incept: archive.incept,
        });
    }
    if !bytes.starts_with(HDF5_SIGNATURE) {
        return Err(io_err(path, "not a Keras file: expected HDF5 (.h5, .weights.h5) or a .keras zip archive"));
    }
    let h5 = H5::parse(path, bytes)?;
    let root = h5.root();
    let model_weights = root.group("model_weights")?;
    let legacy_root = model_weights.as_ref().unwrap_or(&root);
    if !legacy_root.string_list_attr("layer_names")?.is_empty() {
        let (format, config) = match root.string_attr("model_config")? {
            Some(json) => {
                let v: Value = serde_json::from_str(&json).map_err(|e| h5.err("/", format!("attribute model_config is not JSON: {e}")))?;
                (KerasFormat::LegacyModel, Some(v))
            }
            None => (KerasFormat::LegacyWeights, None),
        };
        let layers = legacy_layers(&h5, legacy_root, config.as_ref())?;
        let keras_version = legacy_root.string_attr("keras_version")?.or(root.string_attr("keras_version")?);
        let parsed = config.as_ref().map(model_config);
        return Ok(KerasFile { path: path.to_path_buf(), format, layers, config: parsed, raw_config: config, keras_version, incept: Map::new() });
    }
    if root.group("layers")?.is_none() {
        return Err(io_err(path, "HDF5 file without Keras weights: no 'layer_names' attribute (legacy .h5) and no 'layers' group (Keras 3 .weights.h5)"));
    }
    let layers = keras3_layers(&h5, &implied_layers(&root)?).map_err(|e| match e {
        Error::Io { reason, .. } => io_err(
            path,
            format!("not Keras 3 InceptionV3 weights (a .weights.h5 has no config, so its groups are read as InceptionV3's layers in model.layers order, then Dense layers): {reason}"),
        ),
        other => other,
    })?;
    let incept = incept_attrs(&root)?;
    Ok(KerasFile { path: path.to_path_buf(), format: KerasFormat::Keras3Weights, layers, config: None, raw_config: None, keras_version: None, incept })
}

/// The `incept.*` root attributes tools/keras_export.py writes into a
/// `.weights.h5` file (lists as JSON text).
fn incept_attrs(root: &Node) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for key in ["preprocess", "classes", "image_size", "preprocess_formula", "source"] {
        let attr = format!("incept.{key}");
        // image_size is an integer; the others are strings (an integer read of them fails).
        if let Some(size) = root.int_attr(&attr).ok().flatten() {
            out.insert(key.into(), Value::from(size));
        } else if let Some(s) = root.string_attr(&attr)? {
            let value = if s.starts_with('[') { serde_json::from_str(&s).unwrap_or(Value::String(s)) } else { Value::String(s) };
            out.insert(key.into(), value);
        }
    }
    Ok(out)
}

/// "conv2d_1/kernel:0" → ("conv2d_1", "kernel"); "kernel:0" → (None, "kernel").
fn split_weight_name(weight: &str) -> (Option<&str>, &str) {
    let mut parts = weight.rsplit('/');
    let var = parts.next().unwrap_or(weight);
    let var = var.split(':').next().unwrap_or(var);
    (parts.next(), var)
}

/// A legacy file's weighted layers in `layer_names` order. Each variable
/// belongs to the layer its weight name says (`conv2d_5/kernel:0`), so a
/// nested model's group (the keras.io guide's form) yields its inner layers.
fn legacy_layers(h5: &H5, root: &Node, config: Option<&Value>) -> Result<Vec<WeightedLayer>> {
    let classes = config.map(layer_classes).unwrap_or_default();
    let mut out: Vec<WeightedLayer> = Vec::new();
    for name in root.string_list_attr("layer_names")? {
        let group = root.group(&name)?.ok_or_else(|| h5.err(root.at(), format!("layer_names lists '{name}' but there is no such group")))?;
        for weight in group.string_list_attr("weight_names")? {
            let (layer, var) = split_weight_name(&weight);
            let layer = layer.unwrap_or(&name).to_string();
            let tensor = group.tensor(&weight)?;
            // A nested model's group lists all trainable variables first, then the
            // rest (moving statistics): gather each inner layer's wherever they are.
            match out.iter_mut().find(|l| l.name == layer && l.at == group.at()) {
                Some(known) => known.vars.push((var.to_string(), tensor)),
                None => out.push(WeightedLayer { class: String::new(), name: layer, at: group.at().to_string(), vars: vec![(var.to_string(), tensor)] }),
            }
        }
    }
    for layer in &mut out {
        layer.class = classes.iter().find(|(n, _)| *n == layer.name).map_or_else(|| class_from_vars(&layer.vars), |(_, c)| c.clone());
    }
    Ok(out)
}

/// The class a legacy layer's variables imply (files without a config).
fn class_from_vars(vars: &[(String, HostTensor)]) -> String {
    let has = |v: &str| vars.iter().any(|(n, _)| n == v);
    let kernel_rank = vars.iter().find(|(n, _)| n == "kernel").map(|(_, t)| t.shape.len());
    if has("moving_mean") || has("moving_variance") {
        "BatchNormalization".into()
    } else if kernel_rank == Some(4) {
        "Conv2D".into()
    } else if kernel_rank == Some(2) {
        "Dense".into()
    } else {
        format!("unknown layer with variables {:?}", vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
    }
}

/// (name, class) of every layer of a config, nested models walked.
fn layer_classes(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for l in config.pointer("/config/layers").and_then(Value::as_array).into_iter().flatten() {
        let class = l.get("class_name").and_then(Value::as_str).unwrap_or("?").to_string();
        if let Some(name) = l.pointer("/config/name").and_then(Value::as_str) {
            out.push((name.to_string(), class.clone()));
        }
        if is_model(&class) {
            out.extend(layer_classes(l));
        }
    }
    out
}

fn is_model(class: &str) -> bool {
    matches!(class, "Functional" | "Sequential" | "Model")
}

/// One layer of a config in model.layers order: (class, name, inner layers of a nested model).
#[derive(Clone, Debug)]
pub struct ConfigLayer {
    pub class: String,
    pub name: String,
    pub inner: Option<Vec<ConfigLayer>>,
}

fn config_layers(path: &Path, config: &Value) -> Result<Vec<ConfigLayer>> {
    let layers = config.pointer("/config/layers").and_then(Value::as_array).ok_or_else(|| io_err(path, "config.json has no config.layers (not a Keras model config)"))?;
    layers
        .iter()
        .map(|l| {
            let class = l.get("class_name").and_then(Value::as_str).ok_or_else(|| io_err(path, "config.json: a layer without class_name"))?.to_string();
            let name = l.pointer("/config/name").and_then(Value::as_str).ok_or_else(|| io_err(path, format!("config.json: a {class} layer without a name")))?.to_string();
            let inner = if is_model(&class) { Some(config_layers(path, l)?) } else { None };
            Ok(ConfigLayer { class, name, inner })
        })
        .collect()
}

/// Dense activations, Dropout rates and the input size of a model config
/// (Keras 3 `batch_shape` or Keras 2 `batch_input_shape`), nested models walked.
fn model_config(config: &Value) -> ModelConfig {
    let mut out = ModelConfig::default();
    walk_config(config, &mut out);
    out
}

fn walk_config(model: &Value, out: &mut ModelConfig) {
    for l in model.pointer("/config/layers").and_then(Value::as_array).into_iter().flatten() {
        let class = l.get("class_name").and_then(Value::as_str).unwrap_or("?");
        let cfg = l.get("config").unwrap_or(&Value::Null);
        match class {
            c if is_model(c) => walk_config(l, out),
            "Dense" => out.dense_activations.push(cfg.get("activation").and_then(Value::as_str).unwrap_or("linear").to_string()),
            "Dropout" => out.dropout_rates.push(cfg.get("rate").and_then(Value::as_f64).unwrap_or(0.0) as f32),
            "InputLayer" if out.input_size.is_none() => {
                let shape = cfg.get("batch_shape").or_else(|| cfg.get("batch_input_shape")).and_then(Value::as_array);
                if let Some([_, h, w, _]) = shape.map(Vec::as_slice) {
                    out.input_size = h.as_u64().zip(w.as_u64()).map(|(h, w)| (h as usize, w as usize));
                }
            }
            _ => {}
        }
    }
}

/// The layers a Keras 3 `.weights.h5` file without a config holds:
/// InceptionV3's in model.layers order (from the graph), then a Dense head
/// (`layers/dense`, `layers/dense_1`, … as many as the file has).
fn implied_layers(root: &Node) -> Result<Vec<ConfigLayer>> {
    let graph = inception_v3_graph();
    let mut out: Vec<ConfigLayer> = graph
        .keras_order()
        .into_iter()
        .map(|l| ConfigLayer { class: graph.layers[l].kind.keras_class().to_string(), name: graph.layers[l].name.clone(), inner: None })
        .collect();
    let groups = match root.group("layers")? {
        Some(layers) => layers.group_names()?,
        None => Vec::new(),
    };
    let dense = (0..).take_while(|&k| groups.contains(&per_class_key("dense", k))).count();
    out.extend((0..dense).map(|k| ConfigLayer { class: "Dense".into(), name: per_class_key("dense", k), inner: None }));
    Ok(out)
}

/// Keras 3's per-class key: `dense`, `dense_1`, …
fn per_class_key(snake: &str, k: usize) -> String {
    if k == 0 { snake.to_string() } else { format!("{snake}_{k}") }
}

/// Keras's `naming.to_snake_case` for class names: `BatchNormalization` →
/// `batch_normalization`, `Conv2D` → `conv2d`, `GlobalAveragePooling2D` →
/// `global_average_pooling2d` (an underscore before a capital that follows
/// a lower-case letter or starts a capitalised word).
pub fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = c.is_ascii_uppercase()
            && i > 0
            && chars[i - 1] != '_'
            && (chars[i - 1].is_ascii_lowercase() || chars.get(i + 1).is_some_and(char::is_ascii_lowercase));
        if starts_word {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variables of a Keras 3 layer in `vars/<j>` order, by class and count.
fn keras3_var_names(class: &str, count: usize) -> Option<&'static [&'static str]> {
    Some(match (class, count) {
        ("Conv2D", 1) => &["kernel"],
        ("Conv2D", 2) | ("Dense", 2) => &["kernel", "bias"],
        ("Dense", 1) => &["kernel"],
        ("BatchNormalization", 3) => &["beta", "moving_mean", "moving_variance"],
        ("BatchNormalization", 4) => &["gamma", "beta", "moving_mean", "moving_variance"],
        _ => return None,
    })
}

/// The weighted layers of a Keras 3 weights file, `layers` giving the
/// container's layers in model.layers order (nested models walked).
fn keras3_layers(h5: &H5, layers: &[ConfigLayer]) -> Result<Vec<WeightedLayer>> {
    let root = h5.root();
    let container = root.group("layers")?.ok_or_else(|| h5.err("/", "no 'layers' group (not a Keras 3 weights file)"))?;
    let mut out = Vec::new();
    walk_keras3(h5, &container, layers, &mut out)?;
    Ok(out)
}

fn walk_keras3(h5: &H5, container: &Node, layers: &[ConfigLayer], out: &mut Vec<WeightedLayer>) -> Result<()> {
    let mut used = std::collections::HashMap::<String, usize>::new();
    for layer in layers {
        let snake = snake_case(&layer.class);
        let k = used.entry(snake.clone()).or_insert(0);
        let key = per_class_key(&snake, *k);
        *k += 1;
        let member = container.group(&key)?;
        let missing = || h5.err(&format!("{}/{key}", container.at()), format!("missing: the weights of layer {} ({})", layer.name, layer.class));
        if let Some(inner) = &layer.inner {
            let nested = member.ok_or_else(missing)?.group("layers")?.ok_or_else(missing)?;
            walk_keras3(h5, &nested, inner, out)?;
            continue;
        }
        let Some(member) = member else {
            if keras3_var_names(&layer.class, 1).is_some() || keras3_var_names(&layer.class, 3).is_some() {
                return Err(missing());
            }
            continue;
        };
        let Some(vars) = member.group("vars")? else { continue };
        let mut names = vars.dataset_names()?;
        if names.is_empty() {
            continue;
        }
        names.sort_by_key(|n| n.parse::<usize>().unwrap_or(usize::MAX));
        let expected: Vec<String> = (0..names.len()).map(|j| j.to_string()).collect();
        let var_names = keras3_var_names(&layer.class, names.len()).filter(|_| names == expected).ok_or_else(|| {
            h5.err(vars.at(), format!("layer {} ({}) has variables {names:?}; expected Conv2D, BatchNormalization or Dense variables 0, 1, …", layer.name, layer.class))
        })?;
        let vars_out = var_names.iter().zip(&names).map(|(v, j)| Ok((v.to_string(), vars.tensor(j)?))).collect::<Result<Vec<_>>>()?;
        out.push(WeightedLayer { class: layer.class.clone(), name: layer.name.clone(), at: member.at().to_string(), vars: vars_out });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_keras_snake_case() {
        for (class, snake) in [
            ("Conv2D", "conv2d"),
            ("BatchNormalization", "batch_normalization"),
            ("Dense", "dense"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("InputLayer", "input_layer"),
            ("Functional", "functional"),
        ] {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }

    #[test]
    fn weight_names_split_into_layer_and_variable() {
        assert_eq!(split_weight_name("conv2d_5/kernel:0"), (Some("conv2d_5"), "kernel"));
        assert_eq!(split_weight_name("inception_v3/conv2d/kernel:0"), (Some("conv2d"), "kernel"));
        assert_eq!(split_weight_name("beta"), (None, "beta"));
    }
}
