//! The light backbones through the binary: the pretrained weights files say
//! what they hold (summary, features, train, predict and resume build the
//! right network from the file alone), `incept classify` with
//! EfficientNet-Lite0's ImageNet head, and bad weight files refused with the
//! file and what is wrong.
use crate::binary;
use binary::{incept, make_tree, ok, text};
use crate::common::repo_path;
use incept::io::safetensors_io::read_safetensors_with_metadata;
use incept::io::{StorageDtype, write_safetensors};
use incept::models::Backbone;
use std::path::Path;

/// A file `bash weights/fetch.sh` writes (tools/test.sh runs it before the tests).
fn pretrained(name: &str) -> String {
    let path = repo_path(&format!("weights/{name}"));
    assert!(path.exists(), "{} is missing: run `bash weights/fetch.sh` first", path.display());
    path.to_str().unwrap().to_string()
}

#[track_caller]
fn fails(args: &[&str], wanted: &[&str]) {
    let o = incept(args);
    let t = text(&o);
    assert!(!o.status.success(), "incept {args:?} succeeded:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    for w in wanted {
        assert!(t.contains(w), "incept {args:?}: the message lacks {w:?}:\n{t}");
    }
}

#[test]
fn classify_names_imagenet_classes_and_writes_top_k_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("top.csv");
    let photos = repo_path("tests/data/photos");
    let out = ok(incept(&["classify", "--weights", &pretrained("efficientnet_lite0.safetensors"), "--top", "3", "--out", csv.to_str().unwrap(), photos.to_str().unwrap()]));
    assert!(out.contains("chelsea.png\tEgyptian cat 0.3846") && out.contains("coffee.png\tespresso 0.9398"), "{out}");
    let rows: Vec<String> = std::fs::read_to_string(&csv).unwrap().lines().map(str::to_string).collect();
    assert_eq!(rows[0], "path,rank,index,name,probability");
    assert_eq!(rows.len(), 1 + 2 * 3, "{rows:?}");
    let first: Vec<&str> = rows[1].split(',').collect();
    assert!(first[0].ends_with("chelsea.png") && first[1..4] == ["1", "285", "Egyptian cat"], "{rows:?}");
    let p: f64 = first[4].parse().unwrap();
    assert!((p - 0.3846).abs() < 1e-3, "{p}");

    // A base without a classifier has nothing to classify with.
    fails(&["classify", "--weights", &pretrained("mobilenet_v2_notop.safetensors"), photos.to_str().unwrap()], &["mobilenet_v2_notop.safetensors", "no pretrained classifier", "incept predict"]);
}

#[test]
fn summary_and_features_follow_the_file() {
    let out = ok(incept(&["summary", "--backbone", "mobilenet_v2"]));
    assert!(out.contains("Model: MobileNetV2 (include_top=False), input 224x224x3") && out.contains("Total params: 2,257,984"), "{out}");
    let out = ok(incept(&["summary", "--weights", &pretrained("efficientnet_lite0.safetensors"), "--unfreeze-last", "0"]));
    assert!(out.contains("EfficientNet-Lite0") && out.contains("Total params: 3,413,024") && out.contains("Trainable params: 0"), "{out}");
    fails(&["summary", "--weights", &pretrained("mobilenet_v2_notop.safetensors"), "--backbone", "inception_v3"], &["mobilenet_v2_notop.safetensors", "mobilenet_v2", "--backbone inception_v3"]);

    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f.safetensors");
    let photo = repo_path("tests/data/photos/coffee.png");
    ok(incept(&["features", "--weights", &pretrained("efficientnet_lite0.safetensors"), "--image-size", "96", "--out", f.to_str().unwrap(), photo.to_str().unwrap()]));
    let (t, meta) = read_safetensors_with_metadata(&f).unwrap();
    assert_eq!(t["features"].shape, [1, 1280]);
    assert_eq!((meta["layer"].as_str(), meta["preprocess"].as_str(), meta["backbone"].as_str()), ("global_average_pooling(top_activation)", "lite", "efficientnet_lite0"));
}

/// Fine-tuning MobileNetV2 from its pretrained file, at a small size: the
/// run records the backbone, predict and resume rebuild it from the run.
#[test]
fn mobilenet_v2_trains_predicts_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 4), ("valid", 2), ("test", 2)]);
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let out = ok(incept(&["train", "--data", d, "--weights", &pretrained("mobilenet_v2_notop.safetensors"), "--out", r, "--image-size", "48", "--batch", "4", "--epochs", "1", "--head", "8"]));
    assert!(out.contains("MobileNetV2 base") && out.contains("preprocess Rescale"), "{out}");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(cfg["backbone"], "mobilenet_v2");
    let out = ok(incept(&["predict", "--model", r, data.join("test").to_str().unwrap()]));
    assert_eq!(out.lines().filter(|l| l.contains(".png\t")).count(), 6, "{out}");
    ok(incept(&["train", "--resume", r, "--epochs", "2"]));
    fails(&["train", "--resume", r, "--backbone", "efficientnet_lite0"], &["--backbone", "efficientnet_lite0", "run.json"]);
}

#[test]
fn efficientnet_lite0_trains_from_its_file_with_its_preprocessing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 3), ("valid", 2)]);
    let run = tmp.path().join("run");
    let out = ok(incept(&["train", "--data", data.to_str().unwrap(), "--weights", &pretrained("efficientnet_lite0.safetensors"), "--out", run.to_str().unwrap(), "--image-size", "32", "--batch", "3", "--epochs", "1", "--head", "8"]));
    assert!(out.contains("EfficientNet-Lite0 base") && out.contains("preprocess Lite"), "{out}");
    fails(&["train", "--data", data.to_str().unwrap(), "--random-init", "--backbone", "mobilenet_v2", "--out", tmp.path().join("small").to_str().unwrap(), "--image-size", "31"], &["--image-size 31", "MobileNetV2 needs at least 32"]);
}

#[test]
fn weight_files_that_do_not_fit_are_refused_naming_file_and_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut tensors, meta) = read_safetensors_with_metadata(Path::new(&pretrained("efficientnet_lite0.safetensors"))).unwrap();

    // An unknown backbone in the metadata.
    let unknown = tmp.path().join("unknown.safetensors");
    let mut m = meta.clone();
    m.insert("backbone".into(), "resnet50".into());
    write_safetensors(&unknown, &tensors, StorageDtype::F32, &m).unwrap();
    fails(&["summary", "--weights", unknown.to_str().unwrap()], &["unknown.safetensors", "resnet50", "mobilenet_v2"]);

    // A head whose class names do not match its width.
    let few = tmp.path().join("few.safetensors");
    let mut m = meta.clone();
    m.insert("classes".into(), serde_json::to_string(&vec!["a"; 999]).unwrap());
    write_safetensors(&few, &tensors, StorageDtype::F32, &m).unwrap();
    fails(&["classify", "--weights", few.to_str().unwrap(), repo_path("tests/data/photos").to_str().unwrap()], &["few.safetensors", "999 classes", "1000"]);

    // A base tensor of the wrong shape, and one missing.
    let wrong = tmp.path().join("wrong.safetensors");
    let t = tensors.get_mut("block3a_dwconv/depthwise_kernel").unwrap();
    t.shape = vec![3, 3, 144, 1];
    t.data.truncate(3 * 3 * 144);
    write_safetensors(&wrong, &tensors, StorageDtype::F32, &meta).unwrap();
    fails(&["features", "--weights", wrong.to_str().unwrap(), "--out", tmp.path().join("f").to_str().unwrap(), repo_path("tests/data/photos/coffee.png").to_str().unwrap()], &["wrong.safetensors", "block3a_dwconv/depthwise_kernel", "[5, 5, 144, 1]"]);
    tensors.remove("block3a_dwconv/depthwise_kernel");
    write_safetensors(&wrong, &tensors, StorageDtype::F32, &meta).unwrap();
    fails(&["summary", "--weights", wrong.to_str().unwrap()], &["wrong.safetensors", "block3a_dwconv/depthwise_kernel", "missing"]);
    assert!(Backbone::EfficientNetLite0.weight_table().iter().any(|(n, _)| n == "block3a_dwconv/depthwise_kernel"));
}
