//! `incept export` through the binary on run directories built on the host
//! (random base, random head; no training, no GPU): what the ONNX file
//! holds, and the bad-input paths. The agreement with ONNX Runtime on real
//! images is checked by tools/deploy-check (run by tools/test.sh).
use incept::data::Preprocess;
use incept::export::onnx_proto::{DimensionValue, ModelProto, type_proto};
use incept::io::{HostTensor, StorageDtype, TensorMap, write_safetensors};
use incept::models::Backbone;
use incept::train::TrainConfig;
use incept::train::checkpoint::TrainState;
use prost::Message;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CLASSES: [&str; 3] = ["ant", "bee", "cat"];
const HIDDEN: usize = 8;

fn incept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_incept")).args(args).output().expect("running incept")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn random(rng: &mut rand::rngs::StdRng, shape: &[usize]) -> HostTensor {
    HostTensor { shape: shape.to_vec(), data: (0..shape.iter().product()).map(|_| rng.random_range(-0.5..0.5)).collect() }
}

/// RUN/run.json and RUN/best.safetensors as `incept train` writes them: a
/// random base with non-trivial BatchNorm statistics and a random head.
fn make_run(dir: &Path) -> TensorMap {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = TrainConfig {
        data: "data".into(),
        backbone: incept::models::Backbone::InceptionV3,
        weights: None,
        image_size: 75,
        batch: 4,
        epochs: 1,
        unfreeze_last: 15,
        head: vec![HIDDEN],
        dropout: 0.3,
        lr: 1e-3,
        augment: false,
        shear_degrees: 0.2,
        zoom: 0.2,
        horizontal_flip: true,
        preprocess: Preprocess::Inception,
        seed: 1,
        feature_cache: true,
        dicom: Default::default(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        validation_split: None,
        callbacks: Default::default(),
        class_weight: None,
        bn_inference: false,
        init: None,
        head_epochs: 0,
        fine_tune_lr: None,
        precision: Default::default(),
    };
    std::fs::write(dir.join("run.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut weights = Backbone::InceptionV3.random_weights(3);
    for (name, t) in weights.iter_mut() {
        if name.ends_with("moving_variance") {
            t.data.iter_mut().for_each(|v| *v = rng.random_range(0.5..2.0));
        } else if name.ends_with("moving_mean") || name.ends_with("beta") {
            t.data.iter_mut().for_each(|v| *v = rng.random_range(-0.2..0.2));
        }
    }
    weights.insert("dense/kernel".into(), random(&mut rng, &[2048, HIDDEN]));
    weights.insert("dense/bias".into(), random(&mut rng, &[HIDDEN]));
    weights.insert("dense_1/kernel".into(), random(&mut rng, &[HIDDEN, CLASSES.len()]));
    weights.insert("dense_1/bias".into(), random(&mut rng, &[CLASSES.len()]));
    write_checkpoint(&dir.join("best.safetensors"), &weights);
    weights
}

fn write_checkpoint(path: &Path, weights: &TensorMap) {
    let mut plateau = incept::train::schedule::ReduceLrOnPlateau::default();
    let lr = plateau.on_epoch_end(Some(1.0), 1e-3); // after one epoch, as a run's checkpoint
    let mut state = TrainState::new(lr, plateau);
    (state.epoch, state.optimizer_step) = (1, 1);
    let meta = BTreeMap::from([("incept_train_state".to_string(), serde_json::to_string(&state).unwrap())]);
    write_safetensors(path, weights, StorageDtype::F32, &meta).unwrap();
}

fn floats(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn dims(v: &incept::export::onnx_proto::ValueInfoProto) -> Vec<String> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.clone()) else { panic!("{} is not a tensor", v.name) };
    t.shape.unwrap().dim.iter().map(|d| match d.value.clone() {
        Some(DimensionValue::DimValue(n)) => n.to_string(),
        Some(DimensionValue::DimParam(p)) => p,
        None => "?".into(),
    }).collect()
}

#[test]
fn onnx_export_folds_batchnorm_and_carries_the_head_and_preprocessing() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let weights = make_run(&run);
    let out = tmp.path().join("model.onnx");
    let o = incept(&["export", "--model", run.to_str().unwrap(), "--format", "onnx", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("incept.preprocess = inception"), "{}", text(&o));
    let model = ModelProto::decode(std::fs::read(&out).unwrap().as_slice()).unwrap();
    assert_eq!(model.opset_import[0].version, 17);
    let meta: BTreeMap<_, _> = model.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
    assert_eq!(meta["incept.preprocess"], "inception");
    assert_eq!(meta["incept.classes"], r#"["ant","bee","cat"]"#);
    let g = model.graph.unwrap();
    assert_eq!(dims(&g.input[0]), ["batch", "75", "75", "3"]);
    assert_eq!(dims(&g.output[0]), ["batch", "3"]);
    let ops = |op: &str| g.node.iter().filter(|n| n.op_type == op).count();
    assert_eq!((ops("Conv"), ops("BatchNormalization"), ops("Concat"), ops("Gemm")), (94, 0, 15, 2));
    assert_eq!(g.node.first().unwrap().op_type, "Transpose");
    assert_eq!(g.node.last().unwrap().op_type, "Softmax");

    // Folded conv: W'[o, i, y, x] = W[y, x, i, o] / sqrt(var[o] + 1e-3), bias = beta − mean / sqrt(var + 1e-3).
    let init = |name: &str| g.initializer.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no initializer {name}"));
    let (k, var, mean, beta) = (&weights["conv2d_40/kernel"], &weights["batch_normalization_40/moving_variance"], &weights["batch_normalization_40/moving_mean"], &weights["batch_normalization_40/beta"]);
    let [kh, kw, cin, cout] = [k.shape[0], k.shape[1], k.shape[2], k.shape[3]];
    assert_eq!(init("conv2d_40/kernel").dims, [cout as i64, cin as i64, kh as i64, kw as i64]);
    let folded = floats(&init("conv2d_40/kernel").raw_data);
    let bias = floats(&init("conv2d_40/bias").raw_data);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for _ in 0..50 {
        let (o, i, y, x) = (rng.random_range(0..cout), rng.random_range(0..cin), rng.random_range(0..kh), rng.random_range(0..kw));
        let s = 1.0 / (var.data[o] as f64 + 1e-3).sqrt();
        let want = k.data[((y * kw + x) * cin + i) * cout + o] as f64 * s;
        let got = folded[((o * cin + i) * kh + y) * kw + x] as f64;
        assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-3), "conv2d_40 [{o},{i},{y},{x}]: {got} vs {want}");
        let want_b = beta.data[o] as f64 - mean.data[o] as f64 * s;
        assert!((bias[o] as f64 - want_b).abs() <= 1e-6, "conv2d_40 bias {o}");
    }
    // The head's weights go in unchanged, (in, out) as Gemm's B.
    for name in ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"] {
        assert_eq!(floats(&init(name).raw_data), weights[name].data, "{name}");
    }

    // NCHW: no transpose, channels first.
    let o = incept(&["export", "--model", run.to_str().unwrap(), "--format", "onnx", "--out", out.to_str().unwrap(), "--nchw"]);
    assert!(o.status.success(), "{}", text(&o));
    let g = ModelProto::decode(std::fs::read(&out).unwrap().as_slice()).unwrap().graph.unwrap();
    assert_eq!(dims(&g.input[0]), ["batch", "3", "75", "75"]);
    assert_eq!(g.node.first().unwrap().op_type, "Conv");
}

fn export(run: &Path, out: &Path) -> Output {
    incept(&["export", "--model", run.to_str().unwrap(), "--format", "onnx", "--out", out.to_str().unwrap()])
}

#[track_caller]
fn fails_naming(o: Output, what: &[&str], out: &Path) {
    assert!(!o.status.success(), "export succeeded:\n{}", text(&o));
    for w in what {
        assert!(text(&o).contains(w), "error does not name '{w}':\n{}", text(&o));
    }
    assert!(text(&o).contains("error") && !text(&o).contains("panicked"), "{}", text(&o));
    assert!(!out.exists(), "{} was written", out.display());
    let dir = out.parent().unwrap();
    if dir.is_dir() {
        let temps: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-")).collect();
        assert!(temps.is_empty(), "temporary files left: {temps:?}");
    }
}

#[test]
fn export_bad_inputs_fail_naming_the_file_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model.onnx");

    // Not a run directory.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_naming(export(&empty, &out), &["empty", "run.json"], &out);

    // A run without checkpoints.
    let run = tmp.path().join("run");
    let weights = make_run(&run);
    std::fs::remove_file(run.join("best.safetensors")).unwrap();
    fails_naming(export(&run, &out), &["best.safetensors", "checkpoint"], &out);

    // A truncated checkpoint.
    write_checkpoint(&run.join("best.safetensors"), &weights);
    let bytes = std::fs::read(run.join("best.safetensors")).unwrap();
    std::fs::write(run.join("best.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    fails_naming(export(&run, &out), &["best.safetensors"], &out);
    std::fs::write(run.join("best.safetensors"), &bytes[..5]).unwrap();
    fails_naming(export(&run, &out), &["best.safetensors"], &out);

    // A checkpoint whose head does not match run.json, or whose base is another model.
    let mut no_head = weights.clone();
    no_head.remove("dense_1/kernel");
    write_checkpoint(&run.join("best.safetensors"), &no_head);
    fails_naming(export(&run, &out), &["best.safetensors", "dense_1/kernel"], &out);
    let mut wrong = weights.clone();
    wrong.get_mut("conv2d_7/kernel").unwrap().shape.reverse();
    write_checkpoint(&run.join("best.safetensors"), &wrong);
    fails_naming(export(&run, &out), &["best.safetensors", "conv2d_7/kernel"], &out);

    // Unknown format and an output folder that does not exist.
    write_checkpoint(&run.join("best.safetensors"), &weights);
    let o = incept(&["export", "--model", run.to_str().unwrap(), "--format", "pickle", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("--format") && text(&o).contains("onnx"), "{}", text(&o));
    let nowhere = tmp.path().join("missing/model.onnx");
    fails_naming(export(&run, &nowhere), &["missing/model.onnx"], &nowhere);
    assert!(export(&run, &out).status.success());
}

#[test]
fn tfjs_export_round_trips_through_convert_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let weights = make_run(&run);
    let out = tmp.path().join("tfjs");
    let o = incept(&["export", "--model", run.to_str().unwrap(), "--format", "tfjs", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(json["userDefinedMetadata"]["incept.preprocess"], "inception");
    let layers = json["modelTopology"]["config"]["layers"].as_array().unwrap();
    let classes: Vec<&str> = layers.iter().map(|l| l["class_name"].as_str().unwrap()).collect();
    assert_eq!(&classes[classes.len() - 4..], ["GlobalAveragePooling2D", "Dense", "Dropout", "Dense"]);
    assert_eq!(layers.last().unwrap()["config"]["activation"], "softmax");

    // The shards concatenated in manifest order are what `incept convert tfjs` reads.
    let mut bin = Vec::new();
    for p in json["weightsManifest"][0]["paths"].as_array().unwrap() {
        bin.extend(std::fs::read(out.join(p.as_str().unwrap())).unwrap());
    }
    std::fs::write(tmp.path().join("weights.bin"), &bin).unwrap();
    let back = tmp.path().join("back.safetensors");
    let o = incept(&["convert", "tfjs", out.join("model.json").to_str().unwrap(), tmp.path().join("weights.bin").to_str().unwrap(), "--out", back.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let back = incept::io::read_safetensors(&back).unwrap();
    let base: TensorMap = weights.into_iter().filter(|(k, _)| !k.starts_with("dense")).collect();
    assert_eq!(back.len(), base.len());
    for (name, t) in &base {
        let b = &back[name];
        assert_eq!(b.shape, t.shape, "{name}");
        assert!(b.data.iter().zip(&t.data).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} differs after the round trip");
    }

    // Re-exporting replaces the earlier export; a folder that is not one is left alone.
    assert!(incept(&["export", "--model", run.to_str().unwrap(), "--format", "tfjs", "--out", out.to_str().unwrap(), "--quantize", "uint8"]).status.success());
    let other = tmp.path().join("photos");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("a.jpg"), b"x").unwrap();
    let o = incept(&["export", "--model", run.to_str().unwrap(), "--format", "tfjs", "--out", other.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("photos") && text(&o).contains("model.json"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    let o = incept(&["export", "--model", run.to_str().unwrap(), "--format", "tfjs", "--out", out.to_str().unwrap(), "--nchw"]);
    assert!(!o.status.success() && text(&o).contains("--nchw"), "{}", text(&o));
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn inspect_names_format_model_and_preprocessing_and_rejects_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run(&run);
    let inspect = |p: &Path| incept(&["inspect", p.to_str().unwrap()]);
    let o = inspect(&run.join("best.safetensors"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("safetensors") && t.contains("InceptionV3 base (include_top=False) + head Dense 2048→8→3"), "{t}");
    assert!(t.contains("training checkpoint") && t.contains("preprocessing: inception"), "{t}");
    assert!(t.contains("conv2d_93/kernel") && t.contains("[1, 1, 2048, 192]"), "{t}");

    let onnx = tmp.path().join("m.onnx");
    assert!(export(&run, &onnx).status.success());
    let o = inspect(&onnx);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("ONNX (IR 8, opset 17") && t.contains("BatchNorm folded") && t.contains("head Dense 2048→8→3 + Softmax"), "{t}");
    assert!(t.contains("preprocessing: x = pixel / 127.5 - 1"), "{t}");

    let dir = tmp.path().join("tfjs");
    assert!(incept(&["export", "--model", run.to_str().unwrap(), "--format", "tfjs", "--out", dir.to_str().unwrap(), "--quantize", "uint8"]).status.success());
    let o = inspect(&dir.join("model.json"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("TF.js layers model") && t.contains("InceptionV3 base (include_top=False) + head Dense 2048→8→3"), "{t}");
    assert!(t.contains("float32 (stored uint8)") && t.contains("preprocessing: x = pixel / 127.5 - 1"), "{t}");

    // Bad files: an error naming the file and what was expected, never a panic.
    let bytes = std::fs::read(&onnx).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("trunc.onnx", bytes[..bytes.len() / 3].to_vec(), "not a recognised"),
        ("x.h5", b"\x89HDF\r\n\x1a\n\0\0\0\0".to_vec(), "HDF5"),
        ("x.keras", b"PK\x03\x04rest".to_vec(), "zip"),
        ("empty.bin", vec![], "not a recognised"),
        ("huge.safetensors", [&(1u64 << 20).to_le_bytes()[..], b"{\"a\":"].concat(), "safetensors"),
    ];
    let best = std::fs::read(run.join("best.safetensors")).unwrap();
    cases.push(("trunc.safetensors", best[..best.len() - 100].to_vec(), "safetensors"));
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    json["weightsManifest"][0]["paths"][0] = "../../etc/passwd".into();
    cases.push(("evil/model.json", serde_json::to_vec(&json).unwrap(), "leaves the model's folder"));
    std::fs::create_dir_all(tmp.path().join("evil")).unwrap();
    for (name, content, expected) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        let o = inspect(&p);
        let t = text(&o);
        assert!(!o.status.success() && t.contains(name) && t.contains(expected) && !t.contains("panicked"), "{name}: {t}");
    }
}

/// A .keras archive of InceptionV3 + the tutorial's head: config.json and
/// metadata.json as Keras 3.15.1 wrote them (tests/data/keras), zipped with a
/// stand-in for the HDF5 weights, which inspect does not read.
fn keras_archive(path: &Path, weights_member: Option<&[u8]>) {
    use std::io::Write;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keras");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (member, file) in [("metadata.json", "inception_v3_head_metadata.json"), ("config.json", "inception_v3_head_config.json")] {
        zip.start_file(member, options).unwrap();
        zip.write_all(&std::fs::read(data.join(file)).unwrap()).unwrap();
    }
    if let Some(bytes) = weights_member {
        zip.start_file("model.weights.h5", options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn inspect_reads_keras_archives_written_by_keras() {
    let tmp = tempfile::tempdir().unwrap();
    let inspect = |p: &Path| incept(&["inspect", p.to_str().unwrap()]);
    let full = tmp.path().join("full.keras");
    keras_archive(&full, Some(b"\x89HDF\r\n\x1a\n"));
    let o = inspect(&full);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("Keras 3 .keras archive") && t.contains("config.json 309028 bytes"), "{t}");
    assert!(t.contains("Keras InceptionV3 base (94 Conv2D, 94 BatchNormalization) + head Dense(8, relu) → Dense(3, softmax), input [null,75,75,3]"), "{t}");
    assert!(t.contains("metadata keras_version: 3.15.1") && t.contains("tensors: in model.weights.h5"), "{t}");

    // A whole .keras file Keras wrote (a small Dense model): read, and not taken for InceptionV3.
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keras/tiny_dense.keras");
    let o = inspect(&tiny);
    let t = text(&o);
    assert!(o.status.success() && t.contains("not InceptionV3") && t.contains("2 Dense") && t.contains("input [null,4]"), "{t}");

    let missing = tmp.path().join("missing.keras");
    keras_archive(&missing, None);
    let o = inspect(&missing);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("missing.keras") && t.contains("needs model.weights.h5") && !t.contains("panicked"), "{t}");
}
