//! Weight files without network or GPU: TF.js parsing and dequantisation,
//! safetensors round trips and atomic writes, the Keras InceptionV3 table,
//! and a full conversion of a synthetic InceptionV3 TF.js model (random
//! quantised weights, Keras 2 numbering, layers out of creation order, a
//! head after mixed10) including the errors for broken files.

use half::f16;
use incept::io::keras_inception_v3::{self as iv3, TOTAL_PARAMETERS};
use incept::models::Backbone;
use incept::io::tfjs::{decode_weights, parse_model_json};
use incept::io::{HostTensor, StorageDtype, TensorMap, convert_tfjs, read_safetensors, write_safetensors};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A fresh, empty directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incept-weights-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic pseudo-random bytes (xorshift64).
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    random_bytes(n * 2, seed)
        .chunks(2)
        .map(|b| (u16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0 - 1.0) * 3.0)
        .collect()
}

fn err_text<T: std::fmt::Debug>(r: incept::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---------------------------------------------------------------- TF.js

const SMALL_MANIFEST: &str = r#"{
  "modelTopology": {"keras_version": "2.2.4"},
  "weightsManifest": [
    {"paths": ["group1-shard1of1"], "weights": [
      {"name": "a/kernel", "shape": [2, 3], "dtype": "float32",
       "quantization": {"dtype": "uint8", "min": -1.25, "scale": 0.0123}},
      {"name": "b/beta", "shape": [5], "dtype": "float32",
       "quantization": {"dtype": "uint16", "min": 0.5, "scale": 1.5e-5, "original_dtype": "float32"}}
    ]},
    {"paths": ["group2-shard1of1"], "weights": [
      {"name": "c/moving_mean", "shape": [2, 2], "dtype": "float32"},
      {"name": "d/moving_variance", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}}
    ]}
  ]
}"#;

/// The bytes of SMALL_MANIFEST and the values they must decode to.
fn small_bytes() -> (Vec<u8>, BTreeMap<&'static str, Vec<f32>>) {
    let mut bytes = Vec::new();
    let mut want = BTreeMap::new();
    let q8 = [0u8, 1, 17, 128, 254, 255];
    bytes.extend_from_slice(&q8);
    want.insert("a/kernel", q8.iter().map(|&q| (q as f64 * 0.0123 - 1.25) as f32).collect());
    let q16 = [0u16, 1, 300, 40000, 65535];
    q16.iter().for_each(|q| bytes.extend_from_slice(&q.to_le_bytes()));
    want.insert("b/beta", q16.iter().map(|&q| (q as f64 * 1.5e-5 + 0.5) as f32).collect());
    let f = [1.5f32, -2.25, 3.0e-7, 1.0e20];
    f.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    want.insert("c/moving_mean", f.to_vec());
    let h = [0.5f32, 1024.0, -0.000_061_035_156];
    h.iter().for_each(|v| bytes.extend_from_slice(&f16::from_f32(*v).to_le_bytes()));
    want.insert("d/moving_variance", h.to_vec());
    (bytes, want)
}

#[test]
fn tfjs_dequantises_uint8_uint16_float32_float16() {
    let manifest = parse_model_json(SMALL_MANIFEST).unwrap().weights_manifest;
    let (bytes, want) = small_bytes();
    let got = decode_weights(&manifest, &bytes).unwrap();
    assert_eq!(got.len(), 4);
    for (name, values) in want {
        let t = &got[name];
        assert_eq!(t.data, values, "{name}");
        assert_eq!(t.numel(), t.data.len(), "{name}");
    }
    assert_eq!(got["a/kernel"].shape, vec![2, 3]);
    assert_eq!(got["c/moving_mean"].shape, vec![2, 2]);
    // Endpoints of the uint8 range: q = 0 gives min, q = 255 gives min + 255·scale.
    assert_eq!(got["a/kernel"].data[0], -1.25);
    assert_eq!(got["a/kernel"].data[5], (255.0 * 0.0123f64 - 1.25) as f32);
}

#[test]
fn tfjs_truncated_data_names_the_tensor() {
    let manifest = parse_model_json(SMALL_MANIFEST).unwrap().weights_manifest;
    let (bytes, _) = small_bytes();
    let msg = err_text(decode_weights(&manifest, &bytes[..bytes.len() - 1]));
    assert!(msg.contains("d/moving_variance") && msg.contains("truncated"), "{msg}");
    let msg = err_text(decode_weights(&manifest, &bytes[..10]));
    assert!(msg.contains("b/beta"), "{msg}");
}

#[test]
fn tfjs_wrong_shape_is_an_error() {
    let (bytes, _) = small_bytes();
    // A larger shape runs past the data: the error names the first tensor that no longer fits.
    let bigger = SMALL_MANIFEST.replace("\"shape\": [2, 3]", "\"shape\": [3, 3]");
    let manifest = parse_model_json(&bigger).unwrap().weights_manifest;
    let msg = err_text(decode_weights(&manifest, &bytes));
    assert!(msg.contains("d/moving_variance"), "{msg}");
    // A smaller shape leaves bytes over.
    let smaller = SMALL_MANIFEST.replace(
        "\"shape\": [3], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"float16\"}",
        "\"shape\": [2], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"float16\"}",
    );
    assert_ne!(smaller, SMALL_MANIFEST);
    let manifest = parse_model_json(&smaller).unwrap().weights_manifest;
    let msg = err_text(decode_weights(&manifest, &bytes));
    assert!(msg.contains("fill 36 bytes") && msg.contains("has 38"), "{msg}");
}

#[test]
fn tfjs_unknown_dtypes_are_errors_naming_the_tensor() {
    let (bytes, _) = small_bytes();
    for (from, to, expect) in [
        ("\"dtype\": \"uint16\"", "\"dtype\": \"int4\"", "unknown quantization dtype 'int4'"),
        (
            "\"name\": \"c/moving_mean\", \"shape\": [2, 2], \"dtype\": \"float32\"",
            "\"name\": \"c/moving_mean\", \"shape\": [2, 2], \"dtype\": \"int32\"",
            "dtype 'int32'",
        ),
        ("\"min\": -1.25, ", "", "needs finite 'min' and 'scale'"),
    ] {
        let text = SMALL_MANIFEST.replace(from, to);
        assert_ne!(text, SMALL_MANIFEST);
        let manifest = parse_model_json(&text).unwrap().weights_manifest;
        let msg = err_text(decode_weights(&manifest, &bytes));
        assert!(msg.contains(expect), "{msg}");
        assert!(msg.contains("a/kernel") || msg.contains("b/beta") || msg.contains("c/moving_mean"), "{msg}");
    }
    assert!(err_text(parse_model_json("{\"modelTopology\": {}}")).contains("weightsManifest"));
}

// ---------------------------------------------------------------- safetensors

fn sample_tensors() -> TensorMap {
    let mut m = TensorMap::new();
    m.insert("conv2d/kernel".into(), HostTensor { shape: vec![3, 3, 3, 5], data: random_f32(135, 1) });
    m.insert("batch_normalization/beta".into(), HostTensor { shape: vec![5], data: random_f32(5, 2) });
    let mut tiny = random_f32(7, 3);
    tiny[0] = 3.0e-6; // subnormal in f16
    tiny[1] = -60000.0;
    m.insert("scalar_like".into(), HostTensor { shape: vec![7, 1], data: tiny });
    m
}

#[test]
fn safetensors_round_trip_f32_is_exact() {
    let dir = temp_dir("rt32");
    let path = dir.join("w.safetensors");
    let t = sample_tensors();
    let bytes =
        write_safetensors(&path, &t, StorageDtype::F32, &BTreeMap::from([("k".into(), "v\"q".into())])).unwrap();
    assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(read_safetensors(&path).unwrap(), t);
    // Same tensors, same bytes.
    let first = std::fs::read(&path).unwrap();
    write_safetensors(&path, &t, StorageDtype::F32, &BTreeMap::from([("k".into(), "v\"q".into())])).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), first);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn safetensors_round_trip_f16_within_half_precision() {
    let dir = temp_dir("rt16");
    let path = dir.join("w.safetensors");
    let t = sample_tensors();
    let bytes = write_safetensors(&path, &t, StorageDtype::F16, &BTreeMap::new()).unwrap();
    let back = read_safetensors(&path).unwrap();
    let values: usize = t.values().map(|x| x.data.len()).sum();
    assert!(bytes < (values * 2 + 400) as u64, "F16 file of {bytes} bytes for {values} values");
    for (name, want) in &t {
        let got = &back[name];
        assert_eq!(got.shape, want.shape);
        for (g, w) in got.data.iter().zip(&want.data) {
            // Round to nearest with an 11-bit significand; subnormals below 2^-14 keep 2^-24 steps.
            let bound = (w.abs() * 2f32.powi(-11)).max(2f32.powi(-25));
            assert!((g - w).abs() <= bound, "{name}: {w} stored as {g}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn safetensors_write_is_atomic_and_leaves_no_temp_file() {
    let dir = temp_dir("atomic");
    let path = dir.join("w.safetensors");
    let t = sample_tensors();
    write_safetensors(&path, &t, StorageDtype::F32, &BTreeMap::new()).unwrap();
    let listing = || -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    };
    assert_eq!(listing(), vec!["w.safetensors"]);
    let before = std::fs::read(&path).unwrap();

    // A failed write (F16 overflow) names the tensor and leaves the old file and no temp file.
    let mut big = t.clone();
    big.get_mut("batch_normalization/beta").unwrap().data[2] = 1.0e6;
    let msg = err_text(write_safetensors(&path, &big, StorageDtype::F16, &BTreeMap::new()));
    assert!(msg.contains("batch_normalization/beta") && msg.contains("F16"), "{msg}");
    // So does data that does not fill its shape.
    let mut short = t.clone();
    short.get_mut("conv2d/kernel").unwrap().data.pop();
    let msg = err_text(write_safetensors(&path, &short, StorageDtype::F32, &BTreeMap::new()));
    assert!(msg.contains("conv2d/kernel") && msg.contains("134 values"), "{msg}");
    // A write that fails at rename time (the target is a directory) cleans up its temp file.
    let blocked = dir.join("blocked.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"x").unwrap();
    assert!(write_safetensors(&blocked, &t, StorageDtype::F32, &BTreeMap::new()).is_err());
    assert_eq!(listing(), vec!["blocked.safetensors", "w.safetensors"]);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn safetensors_read_errors_name_file_and_tensor() {
    let dir = temp_dir("readerr");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not safetensors").unwrap();
    let msg = err_text(read_safetensors(&junk));
    assert!(msg.contains("junk.safetensors"), "{msg}");
    let msg = err_text(read_safetensors(&dir.join("missing.safetensors")));
    assert!(msg.contains("missing.safetensors"), "{msg}");

    let ints = dir.join("ints.safetensors");
    let data = [1i32, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::I32, vec![3], &data).unwrap();
    std::fs::write(&ints, safetensors::serialize([("step_count", view)], None).unwrap()).unwrap();
    let msg = err_text(read_safetensors(&ints));
    assert!(msg.contains("ints.safetensors") && msg.contains("step_count") && msg.contains("I32"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- Keras table

#[test]
fn inception_v3_table_has_94_convs_and_keras_parameter_count() {
    assert_eq!(iv3::convs().len(), 94);
    let kernels: usize = iv3::convs().iter().map(|c| c.kh * c.kw * c.cin * c.cout).sum();
    let channels: usize = iv3::convs().iter().map(|c| c.cout).sum();
    // Keras: 21,768,352 trainable (kernels + beta) and 34,432 non-trainable (moving mean and variance).
    assert_eq!(kernels + channels, 21_768_352);
    assert_eq!(2 * channels, 34_432);
    assert_eq!(kernels + 3 * channels, TOTAL_PARAMETERS);
    assert_eq!(iv3::parameter_count(), 21_802_784);
    let weights = Backbone::InceptionV3.weight_table();
    assert_eq!(weights.len(), 4 * iv3::num_convs());
    assert_eq!(weights.iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>(), 21_802_784);
    assert!(weights.iter().all(|(n, _)| !n.contains("gamma")));
    assert_eq!(weights[0], ("conv2d/kernel".to_string(), vec![3, 3, 3, 32]));
    assert_eq!(weights[1].0, "batch_normalization/beta");
    assert_eq!(weights[4 * 93], ("conv2d_93/kernel".to_string(), vec![1, 1, 2048, 192]));
    assert_eq!(weights[4 * 93 + 3], ("batch_normalization_93/moving_variance".to_string(), vec![192]));
    // DESIGN.md: trainable in Keras 3's last 15 layers = conv2d_93 + beta of BN 85, 88, 91, 92, 93.
    let tail = iv3::convs()[93].kh * iv3::convs()[93].kw * iv3::convs()[93].cin * iv3::convs()[93].cout
        + [85, 88, 91, 92, 93].iter().map(|&k| iv3::convs()[k].cout).sum::<usize>();
    assert_eq!(tail, 394_880);
}

/// Channels of a conv's input, from the table's own description of it.
fn input_channels(input: &str) -> usize {
    let block_out = [256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048];
    if input == "input" {
        3
    } else if let Some(k) = input.strip_prefix("conv") {
        iv3::convs()[k.parse::<usize>().unwrap()].cout
    } else if let Some(inner) = input.strip_prefix("max(").or(input.strip_prefix("avg(")) {
        input_channels(inner.strip_suffix(')').unwrap())
    } else {
        block_out[input.strip_prefix("mixed").unwrap().parse::<usize>().unwrap()]
    }
}

#[test]
fn inception_v3_table_is_self_consistent() {
    for (k, c) in iv3::convs().iter().enumerate() {
        assert_eq!(c.cin, input_channels(&c.input), "conv {k} input {}", c.input);
        if let Some(j) = c.input.strip_prefix("conv") {
            assert!(j.parse::<usize>().unwrap() < k, "conv {k} reads a later conv");
        }
    }
    // Each block's output channels = its branch ends (convs no other conv reads) + a pass-through max pool.
    let mut block_out = Vec::new();
    for (b, (name, first)) in iv3::blocks().iter().enumerate().skip(1) {
        let (name, first) = (name.as_str(), *first);
        let end = iv3::blocks().get(b + 1).map_or(iv3::num_convs(), |x| x.1);
        let read: Vec<String> = iv3::convs()[first..end].iter().map(|c| c.input.to_string()).collect();
        let ends: usize = (first..end).filter(|k| !read.contains(&format!("conv{k}"))).map(|k| iv3::convs()[k].cout).sum();
        let pool = if name == "mixed3" || name == "mixed8" { iv3::convs()[first].cin } else { 0 };
        block_out.push(ends + pool);
        assert!((first..end).all(|k| iv3::block_of(k) == name));
    }
    assert_eq!(block_out, vec![256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048]);
    assert_eq!(iv3::conv_name(0), "conv2d");
    assert_eq!(iv3::bn_name(93), "batch_normalization_93");
}

#[test]
fn check_weights_names_the_first_mismatch() {
    let mut w: TensorMap = Backbone::InceptionV3.weight_table()
        .into_iter()
        .map(|(n, s)| {
            let len = s.iter().product();
            (n, HostTensor { shape: s, data: vec![0.5; len] })
        })
        .collect();
    Backbone::InceptionV3.check_weights(&w).unwrap();
    w.get_mut("conv2d_32/kernel").unwrap().shape = vec![7, 1, 128, 128];
    assert!(err_text(Backbone::InceptionV3.check_weights(&w)).contains("conv2d_32/kernel"));
    w.get_mut("conv2d_32/kernel").unwrap().shape = vec![1, 7, 128, 128];
    w.insert("batch_normalization_4/gamma".into(), HostTensor { shape: vec![192], data: vec![1.0; 192] });
    assert!(err_text(Backbone::InceptionV3.check_weights(&w)).contains("batch_normalization_4/gamma"));
    w.remove("batch_normalization_4/gamma");
    w.remove("batch_normalization_60/moving_mean");
    assert!(err_text(Backbone::InceptionV3.check_weights(&w)).contains("batch_normalization_60/moving_mean"));
}

// ---------------------------------------------------------------- synthetic InceptionV3 in TF.js

/// A TF.js layers model of InceptionV3 built from the table the way Keras 2
/// writes one: names numbered from 1 (conv2d_1 … conv2d_94), layers listed in
/// an order that is not creation order, a Dense head after mixed10, the
/// manifest sorted by name, weights stored as uint8 (kernels), uint16 (beta),
/// float16 (moving_mean) and float32 (moving_variance).
struct Synthetic {
    json: Value,
    bin: Vec<u8>,
    /// Keras 3 name → expected values.
    want: TensorMap,
}

fn synthetic() -> &'static Synthetic {
    static S: OnceLock<Synthetic> = OnceLock::new();
    S.get_or_init(build_synthetic)
}

fn build_synthetic() -> Synthetic {
    let mut layers: Vec<Value> = vec![
        json!({"name": "input_1", "class_name": "InputLayer", "config": {"name": "input_1"}, "inbound_nodes": []}),
    ];
    let mut made: HashMap<String, String> = HashMap::from([("input".to_string(), "input_1".to_string())]);
    let node = |names: &[String]| json!([names.iter().map(|n| json!([n, 0, 0, {}])).collect::<Vec<_>>()]);

    // Resolves a table input description to a layer name, creating pools on demand.
    fn resolve(desc: &str, layers: &mut Vec<Value>, made: &mut HashMap<String, String>) -> String {
        if let Some(n) = made.get(desc) {
            return n.clone();
        }
        if let Some(k) = desc.strip_prefix("conv") {
            return format!("activation_{}", k.parse::<usize>().unwrap() + 1);
        }
        let (class, inner, stride, padding) = if let Some(i) = desc.strip_prefix("max(") {
            ("MaxPooling2D", i, 2, "valid")
        } else if let Some(i) = desc.strip_prefix("avg(") {
            ("AveragePooling2D", i, 1, "same")
        } else {
            return desc.to_string(); // mixedN, made by its block
        };
        let src = resolve(inner.strip_suffix(')').unwrap(), layers, made);
        let name = format!("pool_{}", made.len());
        layers.push(json!({"name": name, "class_name": class,
            "config": {"name": name, "pool_size": [3, 3], "strides": [stride, stride], "padding": padding},
            "inbound_nodes": [[[src, 0, 0, {}]]]}));
        made.insert(desc.to_string(), name.clone());
        name
    }

    let mut weights: Vec<(String, Vec<usize>, &str)> = Vec::new(); // Keras 2 name, shape, storage
    for (k, c) in iv3::convs().iter().enumerate() {
        let n = k + 1;
        let src = resolve(&c.input, &mut layers, &mut made);
        let padding = if c.padding == incept::ops::Padding::Same { "same" } else { "valid" };
        layers.push(json!({"name": format!("conv2d_{n}"), "class_name": "Conv2D",
            "config": {"name": format!("conv2d_{n}"), "filters": c.cout, "kernel_size": [c.kh, c.kw],
                       "strides": [c.stride, c.stride], "padding": padding, "use_bias": false},
            "inbound_nodes": node(&[src])}));
        layers.push(json!({"name": format!("batch_normalization_{n}"), "class_name": "BatchNormalization",
            "config": {"axis": 3, "epsilon": 0.001, "center": true, "scale": false},
            "inbound_nodes": node(&[format!("conv2d_{n}")])}));
        layers.push(json!({"name": format!("activation_{n}"), "class_name": "Activation",
            "config": {"activation": "relu"}, "inbound_nodes": node(&[format!("batch_normalization_{n}")])}));
        weights.push((format!("conv2d_{n}/kernel"), c.kernel_shape(), "uint8"));
        weights.push((format!("batch_normalization_{n}/beta"), vec![c.cout], "uint16"));
        weights.push((format!("batch_normalization_{n}/moving_mean"), vec![c.cout], "float16"));
        weights.push((format!("batch_normalization_{n}/moving_variance"), vec![c.cout], "float32"));
    }
    for (b, (name, first)) in iv3::blocks().iter().enumerate().skip(1) {
        let (name, first) = (name.as_str(), *first);
        let end = iv3::blocks().get(b + 1).map_or(iv3::num_convs(), |x| x.1);
        let read: Vec<&str> = iv3::convs()[first..end].iter().map(|c| c.input.as_str()).collect();
        let mut inputs: Vec<String> = (first..end)
            .filter(|k| !read.contains(&format!("conv{k}").as_str()))
            .map(|k| format!("activation_{}", k + 1))
            .collect();
        if name == "mixed3" || name == "mixed8" {
            let block_in = iv3::convs()[first].input.to_string();
            inputs.push(resolve(&format!("max({block_in})"), &mut layers, &mut made));
        }
        layers.push(
            json!({"name": name, "class_name": "Concatenate", "config": {"axis": 3}, "inbound_nodes": node(&inputs)}),
        );
    }
    layers.push(json!({"name": "gap", "class_name": "GlobalAveragePooling2D", "config": {}, "inbound_nodes": node(&["mixed10".into()])}));
    layers.push(json!({"name": "dense_1", "class_name": "Dense", "config": {"units": 5}, "inbound_nodes": node(&["gap".into()])}));
    weights.push(("dense_1/kernel".into(), vec![2048, 5], "uint8"));
    weights.push(("dense_1/bias".into(), vec![5], "float32"));
    layers.reverse(); // any order must do: the converter never relies on it

    weights.sort_by(|a, b| a.0.cmp(&b.0)); // TF.js manifests list weights by name
    let mut manifest = Vec::new();
    let mut bin = Vec::new();
    let mut want = TensorMap::new();
    for (i, (name, shape, storage)) in weights.iter().enumerate() {
        let numel: usize = shape.iter().product();
        let (min, scale) = (-0.5 - i as f64 * 1e-3, 1.0 / (200.0 + i as f64));
        let (entry, values): (Value, Vec<f32>) = match *storage {
            "uint8" => {
                let q = random_bytes(numel, i as u64);
                bin.extend_from_slice(&q);
                let v = q.iter().map(|&q| (q as f64 * scale + min) as f32).collect();
                (json!({"dtype": "uint8", "min": min, "scale": scale}), v)
            }
            "uint16" => {
                let q: Vec<u16> =
                    random_bytes(numel * 2, i as u64).chunks(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
                q.iter().for_each(|q| bin.extend_from_slice(&q.to_le_bytes()));
                let scale = scale / 256.0;
                let v = q.iter().map(|&q| (q as f64 * scale + min) as f32).collect();
                (json!({"dtype": "uint16", "min": min, "scale": scale}), v)
            }
            "float16" => {
                let v: Vec<f32> = random_f32(numel, i as u64).iter().map(|&x| f16::from_f32(x).to_f32()).collect();
                v.iter().for_each(|x| bin.extend_from_slice(&f16::from_f32(*x).to_le_bytes()));
                (json!({"dtype": "float16"}), v)
            }
            _ => {
                let v: Vec<f32> = random_f32(numel, i as u64).iter().map(|x| x.abs() + 1e-3).collect();
                v.iter().for_each(|x| bin.extend_from_slice(&x.to_le_bytes()));
                (Value::Null, v)
            }
        };
        let mut w = json!({"name": name, "shape": shape, "dtype": "float32"});
        if !entry.is_null() {
            w["quantization"] = entry;
        }
        manifest.push(w);
        if !name.starts_with("dense") {
            let (layer, var) = name.rsplit_once('/').unwrap();
            let (base, n) = layer.rsplit_once('_').unwrap();
            let k = n.parse::<usize>().unwrap() - 1;
            let keras3 = if k == 0 { base.to_string() } else { format!("{base}_{k}") };
            want.insert(format!("{keras3}/{var}"), HostTensor { shape: shape.clone(), data: values });
        }
    }
    let json = json!({
        "modelTopology": {"keras_version": "2.2.4", "backend": "tensorflow",
            "model_config": {"class_name": "Model", "config": {"name": "model_1", "layers": layers}}},
        "weightsManifest": [{"paths": ["group1-shard1of1"], "weights": manifest}]
    });
    Synthetic { json, bin, want }
}

/// Writes the synthetic model (with `edit` applied to its JSON) and converts it.
fn convert_synthetic(
    test: &str,
    f16: bool,
    edit: impl FnOnce(&mut Value),
) -> (PathBuf, incept::Result<incept::io::ConversionReport>) {
    let s = synthetic();
    let dir = temp_dir(test);
    let mut json = s.json.clone();
    edit(&mut json);
    std::fs::write(dir.join("model.json"), json.to_string()).unwrap();
    std::fs::write(dir.join("weights.bin"), &s.bin).unwrap();
    let out = dir.join("inception_v3_notop.safetensors");
    let report = convert_tfjs(&dir.join("model.json"), &dir.join("weights.bin"), &out, incept::data::Preprocess::Rescale, f16);
    (dir, report)
}

fn layer_mut<'a>(json: &'a mut Value, name: &str) -> &'a mut Value {
    json.pointer_mut("/modelTopology/model_config/config/layers")
        .and_then(Value::as_array_mut)
        .unwrap()
        .iter_mut()
        .find(|l| l["name"] == name)
        .unwrap()
}

#[test]
fn converts_synthetic_inception_v3_to_keras3_names() {
    let (dir, report) = convert_synthetic("convert", false, |_| {});
    let report = report.unwrap();
    assert_eq!(report.tensors, 376);
    assert_eq!(report.parameters, 21_802_784);
    assert_eq!(report.dropped, vec!["dense_1/bias", "dense_1/kernel"]);
    assert_eq!(report.stats.len(), 376);
    assert_eq!(report.stats[0].name, "conv2d/kernel");
    let text = report.to_string();
    assert!(text.contains("mixed10") && text.contains("376 tensors"), "{text}");
    let back = read_safetensors(&dir.join("inception_v3_notop.safetensors")).unwrap();
    Backbone::InceptionV3.check_weights(&back).unwrap();
    assert!(back == synthetic().want, "converted weights differ from the synthetic model's");
    let listing: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(listing.len(), 3, "{listing:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn converts_synthetic_inception_v3_to_f16() {
    let (dir, report) = convert_synthetic("convert16", true, |_| {});
    let report = report.unwrap();
    assert_eq!(report.storage, StorageDtype::F16);
    let file = dir.join("inception_v3_notop.safetensors");
    assert!(std::fs::metadata(&file).unwrap().len() < 21_802_784 * 2 + 64 * 1024);
    let back = read_safetensors(&file).unwrap();
    for (name, want) in &synthetic().want {
        let got = &back[name];
        let worst =
            got.data.iter().zip(&want.data).map(|(g, w)| (g - w).abs() / w.abs().max(1e-4)).fold(0.0f32, f32::max);
        assert!(worst <= 2f32.powi(-11), "{name}: relative error {worst}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn assert_fails(test: &str, edit: impl FnOnce(&mut Value), expect: &[&str]) {
    let (dir, report) = convert_synthetic(test, false, edit);
    let msg = err_text(report);
    for e in expect {
        assert!(msg.contains(e), "expected '{e}' in: {msg}");
    }
    assert!(!dir.join("inception_v3_notop.safetensors").exists(), "{test}: a failed conversion wrote a file");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn conversion_rejects_a_wrong_kernel_shape() {
    // The manifest says 7×1 where Keras has 1×7 (same byte count, so decoding succeeds).
    assert_fails(
        "badshape",
        |j| {
            let w = j["weightsManifest"][0]["weights"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|w| w["name"] == "conv2d_33/kernel")
                .unwrap();
            w["shape"] = json!([7, 1, 128, 128]);
        },
        &["conv2d_33/kernel", "Keras 3 conv2d_32/kernel", "[7, 1, 128, 128]", "[1, 7, 128, 128]"],
    );
}

#[test]
fn conversion_rejects_wrong_structure() {
    assert_fails(
        "badconfig",
        |j| layer_mut(j, "conv2d_33")["config"]["kernel_size"] = json!([7, 1]),
        &["conv2d_33", "Keras 3 conv2d_32", "kernel_size"],
    );
    // Conv 12 (Keras 2 conv2d_13) reads mixed0; wire it to conv 5 (still used by mixed0) instead.
    assert_fails(
        "badwiring",
        |j| layer_mut(j, "conv2d_13")["inbound_nodes"] = json!([[["activation_6", 0, 0, {}]]]),
        &["conv2d_13", "Keras 3 conv2d_12", "input is conv5, expected mixed0"],
    );
    // Rewiring conv 7 to read conv 8 leaves conv 6 with no path to mixed10.
    assert_fails(
        "lostconv",
        |j| layer_mut(j, "conv2d_8")["inbound_nodes"] = json!([[["activation_9", 0, 0, {}]]]),
        &["found 93 Conv2D layers up to mixed10"],
    );
    assert_fails(
        "nomixed10",
        |j| {
            layer_mut(j, "mixed10")["name"] = json!("mixed_last");
            layer_mut(j, "gap")["inbound_nodes"] = json!([[["mixed_last", 0, 0, {}]]]);
        },
        &["no layer 'mixed10'"],
    );
    assert_fails(
        "gamma",
        |j| layer_mut(j, "batch_normalization_5")["config"]["scale"] = json!(true),
        &["batch_normalization_5", "scale"],
    );
}

#[test]
fn conversion_rejects_truncated_weights() {
    let s = synthetic();
    let dir = temp_dir("truncated");
    std::fs::write(dir.join("model.json"), s.json.to_string()).unwrap();
    std::fs::write(dir.join("weights.bin"), &s.bin[..s.bin.len() - 100]).unwrap();
    let out = dir.join("w.safetensors");
    let msg = err_text(convert_tfjs(&dir.join("model.json"), &dir.join("weights.bin"), &out, incept::data::Preprocess::Rescale, false));
    assert!(msg.contains("weights.bin") && msg.contains("truncated"), "{msg}");
    assert!(!Path::new(&out).exists());
    std::fs::remove_dir_all(dir).unwrap();
}
