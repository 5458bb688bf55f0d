//! The light backbones against references no incept code wrote:
//! - MobileNetV2 against Keras 3 itself (`keras.applications.MobileNetV2`,
//!   weights set from the formula of `incept::io::synthetic::synthetic_weights`),
//!   `tests/data/golden_mobilenet_v2_{96,224}.safetensors`, written by
//!   `tools/make_backbone_goldens.py`: Keras's layer list and counts, the
//!   weights Keras held (fingerprints), and the outputs within 1e-5.
//! - EfficientNet-Lite0 with its real ImageNet weights against the PyPI
//!   PyTorch reference (`efficientnet-lite-pytorch`) on two photos,
//!   `tests/data/golden_lite0_photos.safetensors` (`tools/make_lite0_goldens.py`):
//!   features and logits within 1e-5, the same top-5 classes.
//!
//! Larger golden tensors are stored as `flat[0::17]` (the generators' rule).

use crate::common;
use common::*;
use incept::io::synthetic::synthetic_weights;
use incept::io::{HostTensor, TensorMap};
use incept::io::safetensors_io::read_safetensors_with_metadata;
use incept::models::{Backbone, Base};
use incept::ops::pool::global_avg_pool;
use incept::reference::{rel_l2, to_f64};
use incept::Tensor;
use serde_json::Value;
use std::collections::BTreeMap;

/// The bar for these backbones (Keras float32 is within 2e-6 of float64 Keras here).
const PARITY: f64 = 1e-5;

fn golden_file(name: &str) -> (TensorMap, BTreeMap<String, String>) {
    let path = repo_path(&format!("tests/data/{name}"));
    read_safetensors_with_metadata(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// What a golden stores of a tensor: `flat[0::17]` above 100,000 elements.
fn as_stored(full: &[f32]) -> Vec<f32> {
    if full.len() > 100_000 { full.iter().copied().step_by(17).collect() } else { full.to_vec() }
}

fn json(meta: &BTreeMap<String, String>, key: &str) -> Value {
    serde_json::from_str(&meta[key]).unwrap_or_else(|e| panic!("metadata '{key}': {e}"))
}

/// Compares incept's outputs of `names` (global average pool for `features`) with the golden's.
fn check_outputs(model: &Base, x: &Tensor, goldens: &TensorMap, names: &[&str], tol: f64, what: &str) -> Vec<Tensor> {
    let layers: Vec<&str> = names.iter().copied().filter(|n| *n != "features").collect();
    let mut outputs = model.infer_layers(x, &layers).unwrap();
    let last = outputs.last().unwrap().clone();
    outputs.push(global_avg_pool(&last).unwrap());
    let mut failures = Vec::new();
    for (name, out) in layers.iter().chain(&["features"]).zip(&outputs) {
        let want = &goldens[*name];
        let got = as_stored(&out.to_vec().unwrap());
        assert_eq!(got.len(), want.data.len(), "{what} {name}: {} values stored, incept's {:?}", want.data.len(), out.shape());
        let err = rel_l2(&got, &to_f64(&want.data));
        println!("{what} {name:24} {:?} relative L2 {err:.3e}", out.shape());
        if err.is_nan() || err > tol {
            failures.push(format!("{name}: {err:.3e}"));
        }
    }
    assert!(failures.is_empty(), "{what}: relative L2 error > {tol:e} in {}", failures.join(", "));
    outputs
}

fn mobilenet_v2_against_keras(size: usize, batch: usize) {
    let (goldens, meta) = golden_file(&format!("golden_mobilenet_v2_{size}.safetensors"));
    let b = Backbone::MobileNetV2;
    // Keras's model.layers: the same layers, in the order "the last N layers" counts.
    let graph = b.graph();
    let ours: Vec<&str> = graph.keras_order().into_iter().map(|l| graph.layers[l].name.as_str()).collect();
    let keras: Vec<String> = serde_json::from_value(json(&meta, "keras_layer_names")).unwrap();
    assert_eq!(ours, keras, "model.layers order");
    assert_eq!(meta["keras_count_params"], b.parameter_count().to_string());

    // The formula gives the tensors Keras held (read back in Keras's layout).
    let weights = synthetic_weights(b);
    for fp in json(&meta, "weight_fingerprints").as_array().unwrap() {
        let name = fp["name"].as_str().unwrap();
        let t: &HostTensor = &weights[name];
        assert_eq!(serde_json::to_value(&t.shape).unwrap(), fp["shape"], "{name}: shape");
        let first: Vec<f32> = fp["first"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(&t.data[..first.len()], &first[..], "{name}: first values");
        assert_eq!(*t.data.last().unwrap(), fp["last"].as_f64().unwrap() as f32, "{name}: last value");
        let sum = t.data.iter().fold(0.0f64, |s, &v| s + v as f64);
        assert_eq!(sum, fp["sum"].as_f64().unwrap(), "{name}: sum of every value");
    }

    let gpu = gpu();
    let images = golden_images(batch, size);
    let stored = &goldens["input"].data;
    assert_eq!(&as_stored(&images), stored, "golden_images is not the input Keras saw");
    let x = Tensor::from_slice(&gpu, &[batch, size, size, 3], &images).unwrap();
    let model = Base::from_tensor_map(&gpu, b, &weights, 0).unwrap();
    let names = ["Conv1_relu", "block_2_add", "block_6_depthwise_relu", "block_13_project_BN", "out_relu", "features"];
    check_outputs(&model, &x, &goldens, &names, PARITY, &format!("MobileNetV2 {size}x{size}"));
}

#[test]
fn mobilenet_v2_matches_keras_96() {
    mobilenet_v2_against_keras(96, 2);
}

#[test]
fn mobilenet_v2_matches_keras_224() {
    mobilenet_v2_against_keras(224, 1);
}

/// EfficientNet-Lite0 with the ImageNet weights `bash weights/fetch.sh` converts from the PyPI
/// .pth, on two photos read by incept's own loader and preprocessing, against the PyTorch
/// reference: the same pixels in, the block outputs, pooled features and logits within 1e-5,
/// the same five most probable classes in the same order.
#[test]
fn efficientnet_lite0_matches_the_pytorch_reference_on_photos() {
    use incept::data::load_image;
    use incept::models::WeightsFile;
    use incept::ops::{loss, matmul};
    let path = repo_path("weights/efficientnet_lite0.safetensors");
    assert!(path.exists(), "{} is missing: run `bash weights/fetch.sh` first", path.display());
    let file = WeightsFile::read(&path).unwrap();
    assert_eq!((file.backbone, file.preprocess), (Backbone::EfficientNetLite0, incept::data::Preprocess::Lite));
    let head = file.head.as_ref().expect("the file keeps the ImageNet classifier");
    let (goldens, meta) = golden_file("golden_lite0_photos.safetensors");

    let photos = ["chelsea", "coffee"];
    let mut pixels = Vec::new();
    for p in photos {
        pixels.extend(load_image(&repo_path(&format!("tests/data/photos/{p}.png")), 224, file.preprocess).unwrap());
    }
    let err = rel_l2(&as_stored(&pixels), &to_f64(&goldens["input"].data));
    assert!(err < 1e-7, "incept's decoding and (x - 127) / 128 differ from the reference's input by {err:.2e}");

    let gpu = gpu();
    let x = Tensor::from_slice(&gpu, &[2, 224, 224, 3], &pixels).unwrap();
    let model = Base::from_tensor_map(&gpu, file.backbone, &file.base, 0).unwrap();
    let names = ["stem_activation", "block4c_add", "block6d_add", "top_activation", "features"];
    let outputs = check_outputs(&model, &x, &goldens, &names, PARITY, "EfficientNet-Lite0 224x224");

    let features = outputs.last().unwrap();
    let kernel = Tensor::from_slice(&gpu, &head.kernel.shape, &head.kernel.data).unwrap();
    let bias = Tensor::from_slice(&gpu, &head.bias.shape, &head.bias.data).unwrap();
    let logits = matmul::dense(features, &kernel, &bias, false).unwrap();
    let err = rel_l2(&logits.to_vec().unwrap(), &to_f64(&goldens["logits"].data));
    println!("EfficientNet-Lite0 logits relative L2 {err:.3e}");
    assert!(err < PARITY, "logits: relative L2 {err:.3e}");
    let probabilities = loss::softmax(&logits).unwrap().to_vec().unwrap();
    let top5 = json(&meta, "top5");
    for (k, photo) in photos.iter().enumerate() {
        let p = &probabilities[k * 1000..][..1000];
        let mut order: Vec<usize> = (0..1000).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let want: Vec<(usize, String)> = top5[photo].as_array().unwrap().iter().map(|e| (e[0].as_u64().unwrap() as usize, e[1].as_str().unwrap().to_string())).collect();
        let got: Vec<(usize, String)> = order[..5].iter().map(|&i| (i, head.classes[i].clone())).collect();
        assert_eq!(got, want, "{photo}: top-5");
    }
}
