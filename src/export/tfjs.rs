//! TF.js layers-model export: `model.json` (a Keras 2 style functional
//! topology, as tfjs-layers 4.x deserialises it, plus the weights manifest)
//! and 4 MiB weight shards `group1-shardKofN.bin`. The base's layer graph is
//! walked into Keras layers in `model.layers` order (Conv2D and
//! DepthwiseConv2D without bias, BatchNormalization, Activation, ReLU(6),
//! ZeroPadding2D, pooling, Concatenate, Add), then
//! the head: GlobalAveragePooling2D → [Dense(relu) → Dropout]* → Dense(softmax).
//! Weights keep their Keras 3 names, so `incept convert tfjs` reads the base
//! back bit for bit (float32 storage).
//!
//! With uint8 quantisation every weight is stored as q = round((v − min)/scale),
//! scale = (max − min)/255, which tfjs-core decodes as q·scale + min.

use super::ExportModel;
use crate::error::{Error, Result};
use crate::io::tfjs::{Quantization, WeightEntry, WeightGroup};
use crate::io::HostTensor;
use crate::models::graph::LayerKind;
use crate::models::keras_names::dense_name;
use serde_json::{Value, json};

/// Bytes per weight shard, as the TF.js converter writes them.
pub const SHARD_BYTES: usize = 4 << 20;
pub const MODEL_JSON: &str = "model.json";

/// How weights are stored in the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TfjsStorage {
    F32,
    U8,
}

/// The files of a TF.js export, in memory: (file name, bytes), model.json first.
pub struct TfjsExport {
    pub files: Vec<(String, Vec<u8>)>,
    pub layers: usize,
    pub weights: usize,
    pub parameters: usize,
}

/// Builds model.json and the shards for `model`.
pub fn to_tfjs(model: &ExportModel, storage: TfjsStorage) -> Result<TfjsExport> {
    let graph = &model.graph;
    let s = model.image_size;
    graph.output_shapes(1, s, s, 3)?; // every window fits the image size
    let mut layers: Vec<Value> = Vec::with_capacity(graph.layers.len() + 2 * model.dense.len() + 1);
    let mut weights: Vec<(String, &HostTensor)> = Vec::new();
    let inbound = |inputs: &[usize]| -> Value {
        json!([inputs.iter().map(|&i| json!([graph.layers[i].name, 0, 0, {}])).collect::<Vec<_>>()])
    };
    for l in graph.keras_order() {
        let layer = &graph.layers[l];
        let name = layer.name.as_str();
        let weight = |var: &str| -> Result<(String, &HostTensor)> {
            let key = format!("{name}/{var}");
            let t = model.base_weight(&key)?;
            Ok((key, t))
        };
        let (class, config) = match &layer.kind {
            LayerKind::Input => ("InputLayer", json!({"batch_input_shape": [null, s, s, 3], "dtype": "float32", "sparse": false})),
            LayerKind::Conv2d { filters, win } => {
                weights.push(weight("kernel")?);
                (
                    "Conv2D",
                    json!({
                        "filters": filters, "kernel_size": [win.kh, win.kw], "strides": [win.stride_h, win.stride_w],
                        "padding": win.padding.keras_name(name)?, "data_format": "channels_last", "dilation_rate": [1, 1],
                        "activation": "linear", "use_bias": false,
                    }),
                )
            }
            LayerKind::DepthwiseConv2d { win } => {
                weights.push(weight("depthwise_kernel")?);
                (
                    "DepthwiseConv2D",
                    json!({
                        "kernel_size": [win.kh, win.kw], "strides": [win.stride_h, win.stride_w], "depth_multiplier": 1,
                        "padding": win.padding.keras_name(name)?, "data_format": "channels_last", "dilation_rate": [1, 1],
                        "activation": "linear", "use_bias": false,
                    }),
                )
            }
            LayerKind::BatchNorm(spec) => {
                for var in spec.variables() {
                    weights.push(weight(var)?);
                }
                (
                    "BatchNormalization",
                    json!({"axis": -1, "momentum": spec.momentum as f64, "epsilon": spec.epsilon as f64, "center": true, "scale": spec.scale}),
                )
            }
            LayerKind::Relu => ("Activation", json!({"activation": "relu"})),
            LayerKind::Relu6 => ("ReLU", json!({"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0})),
            LayerKind::ZeroPad([top, bottom, left, right]) => {
                ("ZeroPadding2D", json!({"padding": [[top, bottom], [left, right]], "data_format": "channels_last"}))
            }
            LayerKind::MaxPool(win) | LayerKind::AvgPool(win) => (
                if matches!(layer.kind, LayerKind::MaxPool(_)) { "MaxPooling2D" } else { "AveragePooling2D" },
                json!({"pool_size": [win.kh, win.kw], "strides": [win.stride_h, win.stride_w], "padding": win.padding.keras_name(name)?, "data_format": "channels_last"}),
            ),
            LayerKind::Concat => ("Concatenate", json!({"axis": -1})),
            LayerKind::Add => ("Add", json!({})),
        };
        layers.push(keras_layer(class, name, config, inbound(&layer.inputs)));
    }

    // The head, each layer reading the one before.
    let base_out = graph.layers.last().map(|l| l.name.clone()).ok_or_else(|| Error::Invalid("the base graph is empty".into()))?;
    let node = |from: &str| json!([[[from, 0, 0, {}]]]);
    let mut prev = "global_average_pooling2d".to_string();
    layers.push(keras_layer("GlobalAveragePooling2D", &prev, json!({"data_format": "channels_last"}), node(&base_out)));
    let last = model.dense.len() - 1;
    for (k, (kernel, bias)) in model.dense.iter().enumerate() {
        let name = dense_name(k);
        let units = kernel.shape[1];
        let activation = if k < last { "relu" } else { "softmax" };
        layers.push(keras_layer("Dense", &name, json!({"units": units, "activation": activation, "use_bias": true}), node(&prev)));
        weights.push((format!("{name}/kernel"), kernel));
        weights.push((format!("{name}/bias"), bias));
        prev = name;
        if k < last {
            let drop = if k == 0 { "dropout".to_string() } else { format!("dropout_{k}") };
            layers.push(keras_layer("Dropout", &drop, json!({"rate": model.dropout}), node(&prev)));
            prev = drop;
        }
    }

    // Weights back to back in manifest order, then cut into shards.
    let mut bytes = Vec::with_capacity(weights.iter().map(|(_, t)| t.data.len() * 4).sum());
    let mut entries = Vec::with_capacity(weights.len());
    for (name, t) in &weights {
        if t.data.len() != t.numel() {
            return Err(Error::Shape(format!("weight '{name}' has {} values for shape {:?}", t.data.len(), t.shape)));
        }
        let quantization = match storage {
            TfjsStorage::F32 => {
                bytes.extend(t.data.iter().flat_map(|v| v.to_le_bytes()));
                None
            }
            TfjsStorage::U8 => {
                let (min, scale, q) = quantize_u8(&t.data);
                bytes.extend(q);
                Some(Quantization { dtype: "uint8".into(), min: Some(min), scale: Some(scale), original_dtype: Some("float32".into()) })
            }
        };
        entries.push(WeightEntry { name: name.clone(), shape: t.shape.clone(), dtype: "float32".into(), quantization });
    }
    let shards: Vec<&[u8]> = bytes.chunks(SHARD_BYTES).collect();
    let n = shards.len();
    let paths: Vec<String> = (1..=n).map(|k| format!("group1-shard{k}of{n}.bin")).collect();
    let manifest = vec![WeightGroup { paths: paths.clone(), weights: entries }];
    let model_json = json!({
        "format": "layers-model",
        "generatedBy": format!("incept {}", env!("CARGO_PKG_VERSION")),
        "convertedBy": null,
        "modelTopology": {
            "class_name": "Model",
            "config": {
                "name": format!("incept_{}_classifier", model.backbone.name()),
                "layers": layers,
                "input_layers": [[graph.layers[0].name, 0, 0]],
                "output_layers": [[prev, 0, 0]],
            },
            "keras_version": "2.15.0",
            "backend": "tensorflow",
        },
        "weightsManifest": manifest,
        "userDefinedMetadata": model.metadata("NHWC").into_iter().map(|(k, v)| (k, Value::from(v))).collect::<serde_json::Map<String, Value>>(),
    });
    let mut files = vec![(MODEL_JSON.to_string(), serde_json::to_vec(&model_json).map_err(|e| Error::Invalid(format!("model.json: {e}")))?)];
    files.extend(paths.into_iter().zip(shards.into_iter().map(<[u8]>::to_vec)));
    Ok(TfjsExport { files, layers: layers.len(), weights: weights.len(), parameters: weights.iter().map(|(_, t)| t.data.len()).sum() })
}

fn keras_layer(class: &str, name: &str, mut config: Value, inbound_nodes: Value) -> Value {
    config["name"] = json!(name);
    config["trainable"] = json!(true);
    json!({"class_name": class, "name": name, "config": config, "inbound_nodes": inbound_nodes})
}

/// (min, scale, q) with q = round((v − min)/scale) in 0..=255, scale = (max − min)/255
/// (1 for a constant tensor, which then decodes exactly).
fn quantize_u8(data: &[f32]) -> (f64, f64, Vec<u8>) {
    let min = data.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
    let q = data.iter().map(|&v| ((v as f64 - min) / scale).round().clamp(0.0, 255.0) as u8).collect();
    (min, scale, q)
}

#[cfg(test)]
mod tests {
    use super::quantize_u8;

    #[test]
    fn uint8_quantisation_decodes_within_half_a_step() {
        let data: Vec<f32> = (0..1000).map(|i| ((i * 37 % 1000) as f32 / 250.0 - 1.3).sin()).collect();
        let (min, scale, q) = quantize_u8(&data);
        for (v, q) in data.iter().zip(&q) {
            let back = (*q as f64 * scale + min) as f32;
            assert!(((back - v) as f64).abs() <= scale / 2.0 + 1e-6, "{v} -> {back}");
        }
        let (min, scale, q) = quantize_u8(&[0.25; 4]);
        assert_eq!((q[0] as f64 * scale + min) as f32, 0.25);
    }
}
