//! One Keras training step, llm.c's test_gpt2 idea: incept's fit step against
//! `tests/data/golden_fit_step_75.safetensors`, which real Keras (TensorFlow)
//! computed with `model.fit` (written by `tools/make_goldens.py --only fit`;
//! its header says what is in it). The synthetic InceptionV3 base at 75×75,
//! its last 15 layers trainable, the head Dense(8, relu) → Dense(3, softmax)
//! without dropout from fixed weights, Adam(1e-3), one fixed unaugmented
//! batch of 4; with and without class weights (one class left out, which
//! Keras weighs 1), and with the base in inference mode (`--bn-inference`).
//! Compared: the loss, the gradient of every trainable
//! tensor, the moving statistics of the trainable BatchNorm layers after the
//! step, and the weights and statistics after three steps (what the steps
//! changed, too: a moving variance keeps 99% of its value per step, so its
//! value alone would hide a wrong update). Keras's own float32 result is
//! within 1.7e-5 of float64 Keras on every stored tensor (the file's
//! metadata; see `CHANGE_TOL` for the changes).
//!
//! Run with `--nocapture` to see the error per tensor.

use crate::common;
use common::*;

use incept::autograd::Grads;
use incept::io::synthetic::synthetic_inception_v3_weights;
use incept::io::{HostTensor, TensorMap, read_safetensors};
use incept::ops::optim::AdamConfig;
use incept::reference::{rel_l2, rel_l2_f64, to_f64};
use incept::train::class_weight::{self, ClassWeights};
use incept::train::optimizer::Adam;
use incept::train::{Classifier, TrainConfig};
use incept::Tensor;
use std::path::Path;

const SIZE: usize = 75;
const BATCH: usize = 4;
const HIDDEN: usize = 8;
const CLASSES: [&str; 3] = ["c0", "c1", "c2"];
const LABELS: [usize; BATCH] = [0, 2, 1, 2];
/// Keras's `class_weight={0: 2.0, 1: 0.5}`, by folder name; c2 is left out.
const CLASS_WEIGHT: &str = "c0=2,c1=0.5";
/// Tensors of more than this many elements are stored as flat[0::17].
const SUBSAMPLE_ABOVE: usize = 10_000;
const SUBSAMPLE_STRIDE: usize = 17;
const TOL: f64 = 1e-4;
/// For what three Adam steps change in a weight. Adam divides by √v, so a
/// weight whose gradient is tiny moves by about ±lr whatever its size, and
/// float32's rounding of such gradients shows in the change: Keras's own
/// float32 change differs from float64 Keras's by up to 2.4e-4 (dense/kernel;
/// the golden's metadata). The weights themselves are held to `TOL`.
const CHANGE_TOL: f64 = 5e-4;

fn goldens() -> TensorMap {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden_fit_step_75.safetensors");
    read_safetensors(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn as_stored(full: &[f32]) -> Vec<f32> {
    if full.len() > SUBSAMPLE_ABOVE { full.iter().copied().step_by(SUBSAMPLE_STRIDE).collect() } else { full.to_vec() }
}

/// The head's initial weights, as tools/make_goldens.py's FIT_HEAD_FORMULA:
/// Dense j, kernel [in, out] flattened (index i), bias index b, f64 then f32:
/// kernel[i] = sqrt(6/(in+out))·sin(0.37·i + 1.1·j + 0.013·i²), bias[b] = 0.05·cos(0.7·b + j).
fn head_weights() -> TensorMap {
    let sizes = [2048, HIDDEN, CLASSES.len()];
    let mut map = TensorMap::new();
    for (j, pair) in sizes.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let name = incept::models::keras_names::dense_name(j);
        let scale = (6.0 / (fan_in + fan_out) as f64).sqrt();
        let kernel = (0..fan_in * fan_out).map(|i| i as f64).map(|i| (scale * (0.37 * i + 1.1 * j as f64 + 0.013 * (i * i)).sin()) as f32).collect();
        map.insert(format!("{name}/kernel"), HostTensor { shape: vec![fan_in, fan_out], data: kernel });
        let bias = (0..fan_out).map(|b| (0.05 * (0.7 * b as f64 + j as f64).cos()) as f32).collect();
        map.insert(format!("{name}/bias"), HostTensor { shape: vec![fan_out], data: bias });
    }
    map
}

/// The run configuration of the golden's model. Built from JSON so that
/// fields added later with serde defaults need no change here.
fn config(class_weight: Option<ClassWeights>, bn_inference: bool) -> TrainConfig {
    serde_json::from_value(serde_json::json!({
        "data": "data", "weights": null, "image_size": SIZE, "batch": BATCH, "epochs": 1, "unfreeze_last": 15,
        "head": [HIDDEN], "dropout": 0.0, "lr": 1e-3, "augment": false, "shear_degrees": 0.2, "zoom": 0.2,
        "horizontal_flip": true, "preprocess": "rescale", "seed": 0, "classes": CLASSES, "class_weight": class_weight,
        "bn_inference": bn_inference,
    }))
    .expect("a valid TrainConfig")
}

/// Compares `got` (full) with the golden `name` (stored as the rule says);
/// returns a failure line. With `start`, the values compared are the changes
/// from it: a step moves a weight or a moving statistic by a small fraction
/// of its value (momentum 0.99 keeps 99% of a moving variance), and an error
/// in that move must not hide under the part both sides share.
fn compare(goldens: &TensorMap, name: &str, got: &[f32], start: Option<&[f32]>, tol: f64) -> Option<String> {
    let want = goldens.get(name).unwrap_or_else(|| panic!("golden has no tensor '{name}'"));
    let (mut got, mut want) = (to_f64(&as_stored(got)), to_f64(&want.data));
    assert_eq!(got.len(), want.len(), "golden '{name}' has {} values, incept gives {}", want.len(), got.len());
    if let Some(start) = start {
        for ((g, w), s) in got.iter_mut().zip(want.iter_mut()).zip(as_stored(start)) {
            *g -= s as f64;
            *w -= s as f64;
        }
    }
    let err = match want.iter().any(|&w| w != 0.0) {
        true => rel_l2_f64(&got, &want),
        // A statistic that must not move (--bn-inference): exactly, or infinitely wrong.
        false => if got.iter().all(|&g| g == 0.0) { 0.0 } else { f64::INFINITY },
    };
    println!("  {name:50} relative L2 {err:.3e}{}", if start.is_some() { " (of the change)" } else { "" });
    (err.is_nan() || err > tol).then(|| format!("{name}{}: {err:.3e} > {tol:e}", if start.is_some() { " (change)" } else { "" }))
}

/// The moving statistics of the trainable BatchNorm layers (those whose beta trains).
fn trainable_moving_stats(model: &Classifier) -> Vec<(String, Vec<f32>)> {
    let map = model.to_tensor_map().unwrap();
    let mut out = Vec::new();
    for (name, _) in model.base.trainable_params() {
        if let Some(layer) = name.strip_suffix("/beta") {
            for stat in ["moving_mean", "moving_variance"] {
                let key = format!("{layer}/{stat}");
                out.push((key.clone(), map[&key].data.clone()));
            }
        }
    }
    out
}

fn check_case(case: &str, class_weight: Option<&str>, bn_inference: bool) {
    let goldens = goldens();
    let gpu = gpu();
    let classes: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
    let resolved = class_weight.map(|rule| class_weight::resolve(rule, &classes, &[1, 1, 1]).unwrap().unwrap());
    if let Some(cw) = &resolved {
        let want = &goldens["class_weight"].data;
        assert_eq!(cw.weights.iter().map(|&w| w as f32).collect::<Vec<_>>(), *want, "{CLASS_WEIGHT} resolves to Keras's weights");
    }
    let cfg = config(resolved, bn_inference);

    // The formulas must reproduce what Keras saw.
    let images = golden_images(BATCH, SIZE);
    assert!(rel_l2(&as_stored(&images), &to_f64(&goldens["input"].data)) < 1e-7, "golden_images differs from the golden input");
    let head = head_weights();
    for (name, t) in &head {
        assert!(rel_l2(&as_stored(&t.data), &to_f64(&goldens[&format!("init/{name}")].data)) < 1e-7, "head formula differs for {name}");
    }
    let one_hot: Vec<f32> = LABELS.iter().flat_map(|&l| (0..CLASSES.len()).map(move |c| if c == l { 1.0 } else { 0.0 })).collect();
    assert_eq!(one_hot, goldens["labels"].data, "labels");

    let mut weights = synthetic_inception_v3_weights();
    weights.extend(head);
    let model = Classifier::from_tensor_map(&gpu, &cfg, &weights).expect("building the classifier");
    let mut optimizer = Adam::new(model.trainable_params(), AdamConfig { lr: cfg.lr as f32, ..AdamConfig::default() }).unwrap();
    let x = Tensor::from_slice(&gpu, &[BATCH, SIZE, SIZE, 3], &images).unwrap();
    let t = Tensor::from_slice(&gpu, &[BATCH, CLASSES.len()], &one_hot).unwrap();
    let step = |optimizer: &mut Adam| -> (f32, Grads) {
        let logits = model.logits(&x, true, 0).unwrap();
        let loss = class_weight::training_loss(&logits, &t, &LABELS, cfg.class_weight.as_ref()).unwrap();
        let grads = loss.backward().unwrap();
        optimizer.apply(&grads).unwrap();
        (loss.value().scalar().unwrap(), grads)
    };

    println!("{case}:");
    let start_params: Vec<Vec<f32>> = model.trainable_params().iter().map(|(_, p)| p.value().to_vec().unwrap()).collect();
    let start_stats = trainable_moving_stats(&model);
    assert_eq!(start_stats.len(), 10, "five trainable BatchNorm layers");
    let mut failures = Vec::new();
    let (loss, grads) = step(&mut optimizer);
    failures.extend(compare(&goldens, &format!("{case}/loss"), &[loss], None, TOL));
    let params = model.trainable_params();
    let golden_grads: Vec<&String> = goldens.keys().filter(|k| k.starts_with(&format!("{case}/grad/"))).collect();
    assert_eq!(golden_grads.len(), params.len(), "Keras trains {golden_grads:?}; incept {} tensors", params.len());
    for (name, p) in &params {
        let g = grads.get(p).unwrap_or_else(|| panic!("no gradient for {name}"));
        failures.extend(compare(&goldens, &format!("{case}/grad/{name}"), &g.to_vec().unwrap(), None, TOL));
    }
    for ((name, v), (_, start)) in trainable_moving_stats(&model).iter().zip(&start_stats) {
        failures.extend(compare(&goldens, &format!("{case}/after1/{name}"), v, Some(start), TOL));
    }
    for _ in 1..3 {
        step(&mut optimizer);
    }
    for ((name, p), start) in params.iter().zip(&start_params) {
        let after = p.value().to_vec().unwrap();
        failures.extend(compare(&goldens, &format!("{case}/after3/{name}"), &after, None, TOL));
        failures.extend(compare(&goldens, &format!("{case}/after3/{name}"), &after, Some(start), CHANGE_TOL));
    }
    for ((name, v), (_, start)) in trainable_moving_stats(&model).iter().zip(&start_stats) {
        failures.extend(compare(&goldens, &format!("{case}/after3/{name}"), v, Some(start), TOL));
    }
    assert!(failures.is_empty(), "{case}: relative L2 error too large in {}", failures.join(", "));
}

#[test]
fn fit_step_matches_keras() {
    check_case("plain", None, false);
}

#[test]
fn class_weighted_fit_step_matches_keras() {
    check_case("weighted", Some(CLASS_WEIGHT), false);
}

/// `--bn-inference` against Keras with the base always called with
/// training=False: trainable BatchNorm layers normalise with, and keep,
/// their moving statistics while their betas train.
#[test]
fn bn_inference_fit_step_matches_keras() {
    check_case("bn_inference", None, true);
}
