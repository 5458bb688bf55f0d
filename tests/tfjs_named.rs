//! `io::tfjs::named_weights`: the weights of explicitly named Keras layers from a TF.js
//! layers model (MobileNetV2's naming), on a small synthetic model and, in an ignored
//! test, on nsfwjs 4.4.0's MobileNetV2.

use incept::io::tfjs::{TfjsModel, load_tfjs, named_weights};
use incept::io::{HostTensor, TensorMap};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incept-tfjs-named-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn err_text<T: std::fmt::Debug>(r: incept::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn layer(name: &str, class: &str, inbound: &[&str]) -> Value {
    let nodes: Vec<Value> = inbound.iter().map(|n| json!([n, 0, 0, {}])).collect();
    let inbound_nodes = if inbound.is_empty() { json!([]) } else { json!([nodes]) };
    json!({"name": name, "class_name": class, "config": {"name": name}, "inbound_nodes": inbound_nodes})
}

/// A MobileNetV2-like stem with a head, in Keras 2 TF.js form: every value distinct,
/// `Conv1/kernel` uint8-quantised. Returns the model and the values it must decode to.
fn synthetic(dir: &Path) -> (TfjsModel, TensorMap) {
    let layers = vec![
        layer("input_1", "InputLayer", &[]),
        layer("Conv1_pad", "ZeroPadding2D", &["input_1"]),
        layer("Conv1", "Conv2D", &["Conv1_pad"]),
        layer("bn_Conv1", "BatchNormalization", &["Conv1"]),
        layer("Conv1_relu", "ReLU", &["bn_Conv1"]),
        layer("block_1_depthwise", "DepthwiseConv2D", &["Conv1_relu"]),
        layer("out_relu", "ReLU", &["block_1_depthwise"]),
        layer("gap", "GlobalAveragePooling2D", &["out_relu"]),
        layer("dense_1", "Dense", &["gap"]),
    ];
    let mut weights: Vec<(&str, Vec<usize>)> = vec![
        ("Conv1/kernel", vec![3, 3, 3, 4]),
        ("bn_Conv1/gamma", vec![4]),
        ("bn_Conv1/beta", vec![4]),
        ("bn_Conv1/moving_mean", vec![4]),
        ("bn_Conv1/moving_variance", vec![4]),
        ("block_1_depthwise/depthwise_kernel", vec![3, 3, 4, 1]),
        ("dense_1/kernel", vec![4, 2]),
        ("dense_1/bias", vec![2]),
    ];
    weights.sort(); // TF.js manifests list weights by name
    let (mut manifest, mut bin, mut want) = (Vec::new(), Vec::new(), TensorMap::new());
    let mut next = 1.0f32;
    for (name, shape) in &weights {
        let n: usize = shape.iter().product();
        let (entry, data) = if *name == "Conv1/kernel" {
            let (min, scale) = (-0.75f64, 1.0 / 64.0);
            let q: Vec<u8> = (0..n).map(|i| (i * 2 + 1) as u8).collect();
            bin.extend_from_slice(&q);
            let data = q.iter().map(|&q| (q as f64 * scale + min) as f32).collect();
            (
                json!({"name": name, "shape": shape, "dtype": "float32",
                    "quantization": {"dtype": "uint8", "min": min, "scale": scale}}),
                data,
            )
        } else {
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    next += 0.5;
                    next
                })
                .collect();
            data.iter().for_each(|v| bin.extend_from_slice(&v.to_le_bytes()));
            (json!({"name": name, "shape": shape, "dtype": "float32"}), data)
        };
        manifest.push(entry);
        want.insert(name.to_string(), HostTensor { shape: shape.clone(), data });
    }
    let model_json = json!({
        "modelTopology": {"keras_version": "2.2.4", "backend": "tensorflow",
            "model_config": {"class_name": "Model", "config": {"name": "model_1", "layers": layers}}},
        "weightsManifest": [{"paths": ["group1-shard1of1"], "weights": manifest}]
    });
    std::fs::write(dir.join("model.json"), model_json.to_string()).unwrap();
    std::fs::write(dir.join("weights.bin"), &bin).unwrap();
    (load_tfjs(&dir.join("model.json"), &dir.join("weights.bin")).unwrap(), want)
}

/// (Keras weight name, shape), as `named_weights` takes them.
type Expected = Vec<(String, Vec<usize>)>;

fn base_expected() -> Expected {
    // Deliberately not in manifest order.
    [
        ("block_1_depthwise/depthwise_kernel", vec![3, 3, 4, 1]),
        ("bn_Conv1/moving_variance", vec![4]),
        ("Conv1/kernel", vec![3, 3, 3, 4]),
        ("bn_Conv1/gamma", vec![4]),
        ("bn_Conv1/beta", vec![4]),
        ("bn_Conv1/moving_mean", vec![4]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect()
}

#[test]
fn named_weights_keeps_the_expected_and_leaves_the_head() {
    let dir = temp_dir("keep");
    let (model, want) = synthetic(&dir);
    let (got, dropped) = named_weights(&model, &base_expected()).unwrap();
    assert_eq!(dropped, ["dense_1"]);
    assert_eq!(got.len(), 6);
    for (name, t) in &got {
        assert_eq!(t, &want[name], "{name}");
    }
    // The quantised kernel: q = 1, 3, 5, … → q/64 − 0.75.
    assert_eq!(got["Conv1/kernel"].data[..3], [-0.734_375, -0.703_125, -0.671_875]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn named_weights_errors_name_the_weight() {
    let dir = temp_dir("errors");
    let (model, _) = synthetic(&dir);
    let with = |edit: &dyn Fn(&mut Expected)| {
        let mut e = base_expected();
        edit(&mut e);
        err_text(named_weights(&model, &e))
    };
    let msg = with(&|e| e.push(("Conv1/bias".into(), vec![4])));
    assert!(msg.contains("no weight 'Conv1/bias'"), "{msg}");
    let msg = with(&|e| e[0].1 = vec![3, 3, 1, 4]);
    assert!(
        msg.contains("'block_1_depthwise/depthwise_kernel' has shape [3, 3, 4, 1], expected [3, 3, 1, 4]"),
        "{msg}"
    );
    let msg = with(&|e| e.retain(|(n, _)| n != "bn_Conv1/gamma"));
    assert!(msg.contains("'bn_Conv1/gamma' of kept layer bn_Conv1 is not among the expected"), "{msg}");
    // Leaving out a layer that the kept ones depend on is a gap, not a head.
    let msg = with(&|e| e.retain(|(n, _)| !n.starts_with("bn_Conv1/")));
    assert!(
        msg.contains("layer bn_Conv1 has weights that are not expected, yet expected layers depend on it"),
        "{msg}"
    );
    let msg = with(&|e| e.push(e[2].clone()));
    assert!(msg.contains("'Conv1/kernel' is expected twice"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- nsfwjs's MobileNetV2

/// Keras MobileNetV2(alpha=1.0) without top, from the architecture (keras.applications'
/// mobilenet_v2.py): the stem, 17 inverted residual blocks (block 0 without expansion,
/// named expanded_conv_*), the 1×1 convolution to 1280 and its BatchNorm.
fn mobilenet_v2_expected() -> Expected {
    let mut out = Vec::new();
    let mut conv_bn = |conv: &str, var: &str, shape: Vec<usize>, bn: &str| {
        let c = shape[if var == "depthwise_kernel" { 2 } else { 3 }];
        out.push((format!("{conv}/{var}"), shape));
        for v in ["gamma", "beta", "moving_mean", "moving_variance"] {
            out.push((format!("{bn}/{v}"), vec![c]));
        }
    };
    conv_bn("Conv1", "kernel", vec![3, 3, 3, 32], "bn_Conv1");
    // (filters, expansion) per block; strides do not change weight shapes.
    let blocks = [
        (16, 1),
        (24, 6),
        (24, 6),
        (32, 6),
        (32, 6),
        (32, 6),
        (64, 6),
        (64, 6),
        (64, 6),
        (64, 6),
        (96, 6),
        (96, 6),
        (96, 6),
        (160, 6),
        (160, 6),
        (160, 6),
        (320, 6),
    ];
    let mut cin = 32;
    for (id, (filters, expansion)) in blocks.into_iter().enumerate() {
        let prefix = if id == 0 { "expanded_conv_".to_string() } else { format!("block_{id}_") };
        let hidden = cin * expansion;
        if id > 0 {
            conv_bn(&format!("{prefix}expand"), "kernel", vec![1, 1, cin, hidden], &format!("{prefix}expand_BN"));
        }
        conv_bn(
            &format!("{prefix}depthwise"),
            "depthwise_kernel",
            vec![3, 3, hidden, 1],
            &format!("{prefix}depthwise_BN"),
        );
        conv_bn(&format!("{prefix}project"), "kernel", vec![1, 1, hidden, filters], &format!("{prefix}project_BN"));
        cin = filters;
    }
    conv_bn("Conv_1", "kernel", vec![1, 1, 320, 1280], "Conv_1_bn");
    out
}

/// nsfwjs@4.4.0 as weights/fetch.sh pins it (its sha256 is read from there), packed
/// by npm and extracted by tools/nsfwjs_extract.js into `dir`.
fn extract_nsfwjs_mobilenet_v2(dir: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fetch = std::fs::read_to_string(root.join("weights/fetch.sh")).unwrap();
    let sha =
        fetch.lines().find_map(|l| l.strip_prefix("NSFWJS_SHA256=")).expect("NSFWJS_SHA256 in weights/fetch.sh");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let tarball =
        run(Command::new("npm").args(["pack", "--silent", "--ignore-scripts", "nsfwjs@4.4.0"]).current_dir(dir));
    let tarball = dir.join(tarball.lines().last().unwrap().trim());
    let got = run(Command::new("sha256sum").arg(&tarball));
    assert_eq!(got.split_whitespace().next(), Some(sha), "{} is not the pinned nsfwjs@4.4.0", tarball.display());
    run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(dir).arg("package/dist/models/mobilenet_v2"));
    let out = dir.join("tfjs");
    run(Command::new("node")
        .arg(root.join("tools/nsfwjs_extract.js"))
        .arg(dir.join("package/dist/models/mobilenet_v2"))
        .arg(&out));
    (out.join("model.json"), out.join("weights.bin"))
}

#[test]
#[ignore = "needs npm (the registry or its cache) and node: packs nsfwjs@4.4.0 and extracts its MobileNetV2"]
fn nsfwjs_mobilenet_v2_base() {
    let dir = temp_dir("nsfwjs");
    let (json, bin) = extract_nsfwjs_mobilenet_v2(&dir);
    let model = load_tfjs(&json, &bin).unwrap();
    assert_eq!(model.keras_version.as_deref(), Some("2.2.4"));
    let expected = mobilenet_v2_expected();
    assert_eq!(expected.len(), 260);
    let (base, dropped) = named_weights(&model, &expected).unwrap();
    assert_eq!(base.values().map(|t| t.data.len()).sum::<usize>(), 2_257_984);
    assert_eq!(dropped, ["dense_1", "dense_2", "dense_3"]);
    assert_eq!(model.weights.len(), base.len() + 6);
    // The base ends at out_relu (ReLU 6 after Conv_1_bn); the layers after it are nsfwjs's head.
    let names: Vec<&str> = model.layers.iter().map(|l| l.name.as_str()).collect();
    let head = &names[names.iter().position(|n| *n == "out_relu").unwrap() + 1..];
    assert_eq!(head, ["average_pooling2d_1", "flatten_1", "dense_1", "dropout_2", "dense_2", "dropout_3", "dense_3"]);
    std::fs::remove_dir_all(dir).unwrap();
}
