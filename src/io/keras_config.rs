//! A Keras model's architecture, read from the model's own config (a
//! `.keras` archive's config.json, an `.h5`'s `model_config` attribute) into
//! a flat list of layers, each with its inputs and what incept makes of it:
//! one of the layer graph's kinds (`models::graph::LayerKind`), an identity
//! at inference (Dropout), the start of the classifier head (global pooling,
//! Flatten, Dense), or not supported yet, with the reason. `base_graph` then
//! builds incept's layer graph of the base, refusing the first unsupported
//! layer by name and class.
//!
//! Functional models (Keras 3's `inbound_nodes` of `__keras_tensor__`
//! arguments and Keras 2's `[[name, node, tensor, kwargs], …]` lists),
//! Sequential models and models nested as layers (a base used as a layer)
//! are read. Nothing here recurses on depth the file controls beyond
//! `MAX_NESTING` models (serde_json already bounds the JSON's depth at 128),
//! a layer may only use layers listed before it (so a missing layer or a
//! cycle is one error naming both), and at most `MAX_LAYERS` layers are read.

use crate::error::{Error, Result};
use crate::models::graph::{BatchNormSpec, Graph, LayerKind};
use crate::ops::{Padding, Window2d};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Models nested inside models, at most.
const MAX_NESTING: usize = 8;
/// Layers in one file, at most (the largest Keras applications have about 800).
const MAX_LAYERS: usize = 100_000;

/// What incept makes of a Keras layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Support {
    /// A layer of incept's layer graph.
    Layer(LayerKind),
    /// Passes its input through at inference (Dropout, a linear Activation).
    Identity,
    /// A layer of the classifier head: the chain of global pooling,
    /// Flatten, Dense and identity layers that ends at the model's output.
    /// The base is every other layer.
    Head,
    /// Not supported yet; the reason names what is missing.
    Unsupported(String),
}

/// One layer of the model, nested models flattened into their layers.
#[derive(Clone, Debug)]
pub struct ConfigLayer {
    pub name: String,
    /// The Keras class name, e.g. `Conv2D`.
    pub class: String,
    /// The layers whose outputs it takes, by name (after flattening).
    pub inputs: Vec<String>,
    pub support: Support,
}

/// A Keras model's layers in the config's order.
#[derive(Clone, Debug)]
pub struct KerasModel {
    pub layers: Vec<ConfigLayer>,
    /// The name of the model's output layer (the last output if several).
    pub output: String,
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// Reads a model config: `{"class_name": "Functional" | "Sequential" | "Model", "config": {…}}`.
pub fn read_model(path: &Path, config: &Value) -> Result<KerasModel> {
    let mut reader = Reader { path, layers: Vec::new(), renamed: HashMap::new() };
    let output = reader.model(config, &[], 0)?;
    let mut layers = reader.layers;
    mark_head(&mut layers, &output);
    Ok(KerasModel { layers, output })
}

/// Keeps `Head` for the chain of head-class and identity layers that ends
/// at `output` (followed back through single inputs); a head-class layer
/// anywhere else is inside the base, e.g. a squeeze-excite block's pooling.
fn mark_head(layers: &mut [ConfigLayer], output: &str) {
    let mut head = Vec::new();
    let mut at = output.to_string();
    while let Some(i) = layers.iter().position(|l| l.name == at) {
        let l = &layers[i];
        if !matches!(l.support, Support::Head | Support::Identity) || l.inputs.len() != 1 {
            break;
        }
        head.push(i);
        at = l.inputs[0].clone();
    }
    // Identity layers at the chain's start belong to the base's output (nothing to run).
    while head.last().is_some_and(|&i| layers[i].support == Support::Identity) {
        head.pop();
    }
    for (i, l) in layers.iter_mut().enumerate() {
        if head.contains(&i) {
            // The head's Dropout layers are the head's too.
            l.support = Support::Head;
        } else if l.support == Support::Head {
            l.support = Support::Unsupported(format!("{} inside the network (not the classifier head at its end) is not supported yet", l.class));
        }
    }
}

struct Reader<'a> {
    path: &'a Path,
    layers: Vec<ConfigLayer>,
    /// A name that stands for another layer's output: a nested model's name
    /// for its output layer, an input layer of a nested model for what feeds it.
    renamed: HashMap<String, String>,
}

impl Reader<'_> {
    /// Reads `model`'s layers; `feeds` are the layers feeding its inputs (for
    /// a nested model). Returns the name of its output layer.
    fn model(&mut self, model: &Value, feeds: &[String], depth: usize) -> Result<String> {
        if depth > MAX_NESTING {
            return Err(bad(self.path, format!("models nested more than {MAX_NESTING} deep")));
        }
        let class = model.get("class_name").and_then(Value::as_str).unwrap_or("");
        let layers = model.pointer("/config/layers").and_then(Value::as_array).ok_or_else(|| bad(self.path, format!("a {class:?} model config without config.layers")))?;
        let sequential = class == "Sequential";
        let mut previous: Option<String> = feeds.first().cloned();
        let inputs_of_model = model.pointer("/config/input_layers").map(node_names).unwrap_or_default();
        let mut last = String::new();
        for (i, layer) in layers.iter().enumerate() {
            if self.layers.len() >= MAX_LAYERS {
                return Err(bad(self.path, format!("more than {MAX_LAYERS} layers")));
            }
            let class = layer.get("class_name").and_then(Value::as_str).ok_or_else(|| bad(self.path, format!("layer {i} of the config has no class_name")))?;
            let name = layer
                .pointer("/config/name")
                .or_else(|| layer.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad(self.path, format!("a {class} layer (number {i}) without a name")))?
                .to_string();
            let inputs: Vec<String> = if sequential {
                previous.iter().cloned().collect()
            } else {
                inbound_names(layer.get("inbound_nodes")).map_err(|why| bad(self.path, format!("layer '{name}' ({class}): {why}")))?
            };
            let inputs: Vec<String> = inputs.into_iter().map(|n| self.resolve(&n)).collect();
            if class == "InputLayer" && depth > 0 {
                // A nested model's input stands for what feeds it in the outer model.
                let k = inputs_of_model.iter().position(|n| *n == name).unwrap_or(0);
                match feeds.get(k) {
                    Some(feed) => {
                        self.renamed.insert(name.clone(), feed.clone());
                        previous = Some(feed.clone());
                        last = feed.clone();
                        continue;
                    }
                    None => return Err(bad(self.path, format!("nested model input '{name}' is fed by nothing"))),
                }
            }
            if matches!(class, "Functional" | "Model" | "Sequential") && layer.pointer("/config/layers").is_some() {
                let output = self.model(layer, &inputs, depth + 1)?;
                self.renamed.insert(name.clone(), output.clone());
                previous = Some(output.clone());
                last = output;
                continue;
            }
            for input in &inputs {
                if !self.layers.iter().any(|l| l.name == *input) {
                    return Err(bad(self.path, format!("layer '{name}' ({class}) takes the output of '{input}', which no layer before it defines (a missing layer or a cycle)")));
                }
            }
            if self.layers.iter().any(|l| l.name == name) {
                return Err(bad(self.path, format!("two layers are named '{name}'")));
            }
            let support = support(class, layer.get("config").unwrap_or(&Value::Null)).map_err(|why| bad(self.path, format!("layer '{name}' ({class}): {why}")))?;
            self.layers.push(ConfigLayer { name: name.clone(), class: class.to_string(), inputs, support });
            previous = Some(name.clone());
            last = name;
        }
        let outputs = model.pointer("/config/output_layers").map(node_names).unwrap_or_default();
        Ok(outputs.last().map(|n| self.resolve(n)).unwrap_or(last))
    }

    fn resolve(&self, name: &str) -> String {
        let mut name = name.to_string();
        // Each renaming points at an earlier layer, so this ends; the bound guards a malformed file.
        for _ in 0..=MAX_NESTING {
            match self.renamed.get(&name) {
                Some(other) => name = other.clone(),
                None => break,
            }
        }
        name
    }
}

/// Layer names in a model's `input_layers` / `output_layers`: `[name, 0, 0]` or a list of those.
fn node_names(v: &Value) -> Vec<String> {
    match v.as_array() {
        Some(items) if items.first().is_some_and(Value::is_string) => items.first().and_then(Value::as_str).map(String::from).into_iter().collect(),
        Some(items) => items.iter().filter_map(|i| i.get(0).and_then(Value::as_str)).map(String::from).collect(),
        None => Vec::new(),
    }
}

/// The producer names of a layer's single call, in argument order.
fn inbound_names(nodes: Option<&Value>) -> std::result::Result<Vec<String>, String> {
    let Some(nodes) = nodes.and_then(Value::as_array) else { return Ok(Vec::new()) };
    match nodes.len() {
        0 => return Ok(Vec::new()),
        1 => {}
        n => return Err(format!("called {n} times (a layer shared between inputs is not supported yet)")),
    }
    let node = &nodes[0];
    let mut names = Vec::new();
    match node {
        // Keras 3: {"args": [...], "kwargs": {...}}; tensors anywhere in args.
        Value::Object(call) => collect_keras3(call.get("args").unwrap_or(&Value::Null), &mut names),
        // Keras 2: [[name, node_index, tensor_index, kwargs], ...].
        Value::Array(items) => {
            for item in items {
                match item.get(0).and_then(Value::as_str) {
                    Some(name) => names.push(name.to_string()),
                    None => return Err("an inbound node entry without a layer name".into()),
                }
            }
        }
        _ => return Err("inbound_nodes is neither Keras 3's nor Keras 2's form".into()),
    }
    Ok(names)
}

/// Every `keras_history` layer name in Keras 3 call arguments, depth-first.
/// serde_json bounds the nesting at 128, so the recursion is bounded too.
fn collect_keras3(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_keras3(i, out)),
        Value::Object(map) if map.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            if let Some(name) = map.get("config").and_then(|c| c.get("keras_history")).and_then(|h| h.get(0)).and_then(Value::as_str) {
                out.push(name.to_string());
            }
        }
        _ => {}
    }
}

/// What incept makes of a layer of class `class` with config `c`; an error
/// for a setting that is not a model incept could ever run (channels_first).
fn support(class: &str, c: &Value) -> std::result::Result<Support, String> {
    if c.get("data_format").and_then(Value::as_str) == Some("channels_first") {
        return Err("data_format channels_first: incept runs NHWC (channels_last) only".into());
    }
    let unsupported = |why: &str| Ok(Support::Unsupported(why.to_string()));
    Ok(match class {
        "InputLayer" => Support::Layer(LayerKind::Input),
        "Conv2D" | "DepthwiseConv2D" => {
            if let Some(why) = plain_conv(class, c) {
                return unsupported(&why);
            }
            let win = window(c, "kernel_size", "strides")?;
            if class == "Conv2D" {
                let filters = usize_of(c, "filters")?;
                Support::Layer(LayerKind::Conv2d { filters, win })
            } else {
                Support::Layer(LayerKind::DepthwiseConv2d { win })
            }
        }
        "BatchNormalization" => {
            let axis_ok = match c.get("axis") {
                Some(Value::Array(a)) => a.len() == 1 && matches!(a[0].as_i64(), Some(-1 | 3)),
                Some(v) => matches!(v.as_i64(), Some(-1 | 3)),
                None => true,
            };
            if !axis_ok {
                return unsupported("BatchNormalization over an axis other than the channels (-1)");
            }
            if c.get("center").and_then(Value::as_bool) == Some(false) {
                return unsupported("BatchNormalization without beta (center=False)");
            }
            let number = |k: &str, default: f64| c.get(k).and_then(Value::as_f64).unwrap_or(default) as f32;
            let scale = c.get("scale").and_then(Value::as_bool).unwrap_or(true);
            Support::Layer(LayerKind::BatchNorm(BatchNormSpec { scale, epsilon: number("epsilon", 1e-3), momentum: number("momentum", 0.99) }))
        }
        "Activation" => match c.get("activation").and_then(Value::as_str) {
            Some("relu") => Support::Layer(LayerKind::Relu),
            Some("linear") => Support::Identity,
            Some(other) => return unsupported(&format!("activation '{other}' is not supported yet (relu and linear are)")),
            None => return unsupported("an Activation without an activation name"),
        },
        "ReLU" => {
            let zero = |k: &str| c.get(k).and_then(Value::as_f64).is_none_or(|v| v == 0.0);
            if !zero("negative_slope") || !zero("threshold") {
                return unsupported("ReLU with negative_slope or threshold is not supported yet");
            }
            match c.get("max_value").and_then(Value::as_f64) {
                None => Support::Layer(LayerKind::Relu),
                Some(6.0) => Support::Layer(LayerKind::Relu6),
                Some(v) => return unsupported(&format!("ReLU(max_value={v}) is not supported yet (6 is)")),
            }
        }
        "ZeroPadding2D" => Support::Layer(LayerKind::ZeroPad(zero_padding(c.get("padding"))?)),
        "MaxPooling2D" | "AveragePooling2D" => {
            let win = window(c, "pool_size", "strides")?;
            if class == "MaxPooling2D" { Support::Layer(LayerKind::MaxPool(win)) } else { Support::Layer(LayerKind::AvgPool(win)) }
        }
        "Concatenate" => match c.get("axis").and_then(Value::as_i64) {
            Some(-1 | 3) | None => Support::Layer(LayerKind::Concat),
            Some(axis) => return unsupported(&format!("Concatenate along axis {axis} (only the channels, -1, are)")),
        },
        "Add" => Support::Layer(LayerKind::Add),
        "Dropout" | "SpatialDropout2D" | "GaussianNoise" | "GaussianDropout" => Support::Identity,
        "GlobalAveragePooling2D" | "GlobalMaxPooling2D" | "Flatten" | "Dense" => Support::Head,
        _ => return unsupported("this layer class is not supported yet"),
    })
}

/// Why a Conv2D / DepthwiseConv2D is not one the graph runs yet, if it is not.
fn plain_conv(class: &str, c: &Value) -> Option<String> {
    if c.get("use_bias").and_then(Value::as_bool) != Some(false) {
        return Some(format!("{class} with a bias (use_bias=True) is not supported yet"));
    }
    if let Some(a) = c.get("activation").and_then(Value::as_str).filter(|a| *a != "linear") {
        return Some(format!("{class} with a fused activation '{a}' is not supported yet"));
    }
    if c.get("dilation_rate").map(pair).is_some_and(|d| d != Ok([1, 1])) {
        return Some(format!("{class} with dilation is not supported yet"));
    }
    if c.get("groups").and_then(Value::as_u64).is_some_and(|g| g != 1) {
        return Some("grouped Conv2D is not supported yet".into());
    }
    if c.get("depth_multiplier").and_then(Value::as_u64).is_some_and(|m| m != 1) {
        return Some("DepthwiseConv2D with a depth multiplier other than 1 is not supported yet".into());
    }
    None
}

fn usize_of(c: &Value, key: &str) -> std::result::Result<usize, String> {
    c.get(key).and_then(Value::as_u64).and_then(|v| usize::try_from(v).ok()).filter(|v| *v > 0).ok_or_else(|| format!("'{key}' is not a positive integer"))
}

/// `[a, b]` or a single integer `a` (meaning `[a, a]`).
fn pair(v: &Value) -> std::result::Result<[usize; 2], String> {
    let one = |v: &Value| v.as_u64().and_then(|x| usize::try_from(x).ok()).ok_or_else(|| format!("{v} is not a non-negative integer"));
    match v {
        Value::Array(a) if a.len() == 2 => Ok([one(&a[0])?, one(&a[1])?]),
        Value::Array(a) => Err(format!("expected 2 values, got {}", a.len())),
        v => one(v).map(|x| [x, x]),
    }
}

/// A window from `size_key` and `stride_key` (strides default to the size, as pools' do) and `padding`.
fn window(c: &Value, size_key: &str, stride_key: &str) -> std::result::Result<Window2d, String> {
    let [kh, kw] = c.get(size_key).map(pair).ok_or_else(|| format!("no '{size_key}'"))?.map_err(|e| format!("'{size_key}': {e}"))?;
    let [sh, sw] = match c.get(stride_key).filter(|v| !v.is_null()) {
        Some(v) => pair(v).map_err(|e| format!("'{stride_key}': {e}"))?,
        None => [kh, kw],
    };
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return Err(format!("a zero '{size_key}' or '{stride_key}'"));
    }
    let padding = match c.get("padding").and_then(Value::as_str) {
        Some("valid") | None => Padding::Valid,
        Some("same") => Padding::Same,
        Some(other) => return Err(format!("padding '{other}' (expected 'valid' or 'same')")),
    };
    Ok(Window2d { kh, kw, stride_h: sh, stride_w: sw, padding })
}

/// ZeroPadding2D's `padding`: `p`, `[p_h, p_w]` or `[[top, bottom], [left, right]]`.
fn zero_padding(v: Option<&Value>) -> std::result::Result<[usize; 4], String> {
    let v = v.ok_or("no 'padding'")?;
    match v {
        Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_array) => {
            let [t, b] = pair(&a[0])?;
            let [l, r] = pair(&a[1])?;
            Ok([t, b, l, r])
        }
        v => {
            let [h, w] = pair(v)?;
            Ok([h, h, w, w])
        }
    }
}

impl KerasModel {
    /// incept's layer graph of the base: every layer but the head (see
    /// [`Support::Head`]), identities folded into their input. The first
    /// unsupported layer there is an error naming it, its class and why.
    pub fn base_graph(&self, path: &Path) -> Result<Graph> {
        let mut graph = Graph::default();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for layer in self.layers.iter().filter(|l| l.support != Support::Head) {
            let inputs = layer
                .inputs
                .iter()
                .map(|n| index.get(n.as_str()).copied().ok_or_else(|| bad(path, format!("layer '{}' takes '{n}', which is not part of the base", layer.name))))
                .collect::<Result<Vec<usize>>>();
            match &layer.support {
                Support::Head => unreachable!("head layers are filtered out above"),
                Support::Unsupported(why) => return Err(bad(path, format!("layer '{}' ({}): {why}", layer.name, layer.class))),
                Support::Identity => {
                    let inputs = inputs?;
                    index.insert(&layer.name, inputs[0]);
                }
                Support::Layer(kind) => {
                    let inputs = inputs?;
                    let at = graph.add(layer.name.clone(), kind.clone(), inputs);
                    index.insert(&layer.name, at);
                }
            }
        }
        if graph.layers.is_empty() {
            return Err(bad(path, "the model has no base layers before its head"));
        }
        Ok(graph)
    }
}

/// What `incept inspect` says of a config, read once: the one-line summary
/// (see [`KerasModel::summary`], or why the config cannot be read) and the layers.
pub fn describe(path: &Path, config: &Value) -> (String, Vec<ConfigLayer>) {
    match read_model(path, config) {
        Ok(model) => (model.summary(path), model.layers),
        Err(Error::Io { reason, .. }) => (format!("the config cannot be read: {reason}"), Vec::new()),
        Err(e) => (format!("the config cannot be read: {e}"), Vec::new()),
    }
}

impl KerasModel {
    /// One line: how many layers there are, and either that the base maps
    /// onto incept's layer graph or which layers do not yet (the first by
    /// name, class and reason; the classes of all of them).
    pub fn summary(&self, path: &Path) -> String {
        let n = self.layers.len();
        let head_at = self.layers.iter().position(|l| l.support == Support::Head).unwrap_or(n);
        let unsupported: Vec<&ConfigLayer> = self.layers.iter().filter(|l| matches!(l.support, Support::Unsupported(_))).collect();
        let Some(first) = unsupported.first() else {
            return match self.base_graph(path) {
                Ok(g) => format!(
                    "{n} layers; the base, {} layer{} up to '{}', maps onto incept's layer graph{}",
                    g.layers.len(),
                    if g.layers.len() == 1 { "" } else { "s" },
                    g.output_name(),
                    if head_at < n { format!(", then a head from '{}'", self.layers[head_at].name) } else { String::new() }
                ),
                Err(Error::Io { reason, .. }) => format!("{n} layers; {reason}"),
                Err(e) => format!("{n} layers; {e}"),
            };
        };
        let mut classes: Vec<(String, usize)> = Vec::new();
        for l in &unsupported {
            match classes.iter_mut().find(|(c, _)| *c == l.class) {
                Some((_, k)) => *k += 1,
                None => classes.push((l.class.clone(), 1)),
            }
        }
        let why = match &first.support {
            Support::Unsupported(why) => why.as_str(),
            _ => "",
        };
        let classes: Vec<String> = classes.iter().map(|(c, k)| format!("{c} ×{k}")).collect();
        format!(
            "{n} layers; {} of the base's are not supported yet ({}), the first '{}' ({}): {why}",
            unsupported.len(),
            classes.join(", "),
            first.name,
            first.class
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(class: &str, name: &str, config: Value, from: &[&str]) -> Value {
        let args: Vec<Value> = from.iter().map(|n| json!({"class_name": "__keras_tensor__", "config": {"keras_history": [n, 0, 0]}})).collect();
        let args = if args.len() == 1 { json!([args[0]]) } else { json!([args]) };
        let mut config = config;
        config["name"] = json!(name);
        json!({"class_name": class, "config": config, "name": name, "inbound_nodes": if from.is_empty() { json!([]) } else { json!([{"args": args, "kwargs": {}}]) }})
    }

    fn functional(layers: Vec<Value>) -> Value {
        json!({"class_name": "Functional", "config": {"name": "m", "layers": layers}})
    }

    #[test]
    fn a_missing_layer_or_a_cycle_is_refused_naming_both() {
        let m = functional(vec![
            layer("InputLayer", "in", json!({}), &[]),
            layer("ReLU", "a", json!({}), &["b"]),
            layer("ReLU", "b", json!({}), &["a"]),
        ]);
        let e = read_model(Path::new("m.keras"), &m).unwrap_err().to_string();
        assert!(e.contains("m.keras") && e.contains("'a'") && e.contains("'b'"), "{e}");
    }

    #[test]
    fn channels_first_is_an_error_and_unsupported_layers_are_named() {
        let conv = json!({"filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "use_bias": false, "activation": "linear", "data_format": "channels_first"});
        let m = functional(vec![layer("InputLayer", "in", json!({}), &[]), layer("Conv2D", "c", conv, &["in"])]);
        let e = read_model(Path::new("m.keras"), &m).unwrap_err().to_string();
        assert!(e.contains("'c'") && e.contains("channels_first"), "{e}");

        let m = functional(vec![
            layer("InputLayer", "in", json!({}), &[]),
            layer("Activation", "act", json!({"activation": "swish"}), &["in"]),
            layer("GlobalAveragePooling2D", "gap", json!({}), &["act"]),
        ]);
        let model = read_model(Path::new("m.keras"), &m).unwrap();
        assert!(matches!(&model.layers[1].support, Support::Unsupported(why) if why.contains("swish")));
        let e = model.base_graph(Path::new("m.keras")).unwrap_err().to_string();
        assert!(e.contains("'act' (Activation)") && e.contains("swish"), "{e}");
    }

    #[test]
    fn nested_models_sequential_models_and_identities_flatten_into_one_graph() {
        let conv = json!({"filters": 4, "kernel_size": 3, "strides": 2, "padding": "valid", "use_bias": false, "activation": "linear"});
        let inner = json!({"class_name": "Functional", "name": "base", "config": {"name": "base", "layers": [
            layer("InputLayer", "base_in", json!({}), &[]),
            layer("Conv2D", "conv", conv, &["base_in"]),
            layer("Dropout", "drop", json!({"rate": 0.5}), &["conv"]),
            layer("ReLU", "relu6", json!({"max_value": 6.0}), &["drop"]),
        ], "input_layers": [["base_in", 0, 0]], "output_layers": [["relu6", 0, 0]]},
            "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["in", 0, 0]}}], "kwargs": {}}]});
        let m = functional(vec![layer("InputLayer", "in", json!({}), &[]), inner, layer("GlobalAveragePooling2D", "gap", json!({}), &["base"])]);
        let model = read_model(Path::new("m.keras"), &m).unwrap();
        assert_eq!(model.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["in", "conv", "drop", "relu6", "gap"]);
        assert_eq!(model.layers[4].inputs, ["relu6"], "the nested model's name stands for its output layer");
        let g = model.base_graph(Path::new("m.keras")).unwrap();
        assert_eq!(g.layers.len(), 3);
        assert_eq!(g.layers[2].kind, LayerKind::Relu6);
        assert_eq!(g.layers[2].inputs, [1], "Dropout folded into its input");
        assert_eq!(g.layers[1].kind, LayerKind::Conv2d { filters: 4, win: Window2d::new(3, 3, 2, Padding::Valid) });

        let seq = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [null, 8, 8, 3]}},
            {"class_name": "ZeroPadding2D", "config": {"name": "pad", "padding": [[0, 1], [0, 1]]}},
            {"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": [2, 2], "strides": null, "padding": "valid"}},
        ]}});
        let g = read_model(Path::new("s.keras"), &seq).unwrap().base_graph(Path::new("s.keras")).unwrap();
        assert_eq!(g.layers[1].kind, LayerKind::ZeroPad([0, 1, 0, 1]));
        assert_eq!(g.layers[2].kind, LayerKind::MaxPool(Window2d::new(2, 2, 2, Padding::Valid)));
        assert_eq!(g.layers[2].inputs, [1]);
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let mut m = functional(vec![layer("InputLayer", "in", json!({}), &[])]);
        for depth in 0..MAX_NESTING + 2 {
            let mut outer = functional(vec![layer("InputLayer", &format!("in{depth}"), json!({}), &[])]);
            let mut nested = m.clone();
            nested["inbound_nodes"] = json!([{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [format!("in{depth}"), 0, 0]}}]}]);
            nested["config"]["name"] = json!(format!("m{depth}"));
            outer["config"]["layers"].as_array_mut().unwrap().push(nested);
            m = outer;
        }
        let e = read_model(Path::new("deep.keras"), &m).unwrap_err().to_string();
        assert!(e.contains("nested more than"), "{e}");
    }
}
