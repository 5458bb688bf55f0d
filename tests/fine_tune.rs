//! The fine-tuning controls on the model: `--bn-inference` keeps every
//! BatchNorm layer, trainable ones included, in inference mode while
//! training (moving statistics used and left unchanged, the betas still
//! trained), so a training forward equals the inference forward.

use crate::common;
use common::*;

use incept::autograd as ag;
use incept::io::synthetic::synthetic_inception_v3_weights;
use incept::io::{HostTensor, TensorMap};
use incept::ops::optim::AdamConfig;
use incept::reference::random;
use incept::train::optimizer::Adam;
use incept::train::{Classifier, TrainConfig};
use incept::Tensor;

const SIZE: usize = 75;
const BATCH: usize = 3;

/// A run configuration (from JSON, so fields added later with serde defaults need no change here).
fn config(bn_inference: bool) -> TrainConfig {
    serde_json::from_value(serde_json::json!({
        "data": "data", "weights": null, "image_size": SIZE, "batch": BATCH, "epochs": 1, "unfreeze_last": 15,
        "head": [8], "dropout": 0.0, "lr": 1e-3, "augment": false, "shear_degrees": 0.2, "zoom": 0.2,
        "horizontal_flip": true, "preprocess": "rescale", "seed": 0, "classes": ["a", "b"], "bn_inference": bn_inference,
    }))
    .expect("a valid TrainConfig")
}

fn weights() -> TensorMap {
    let mut map = synthetic_inception_v3_weights();
    for (name, shape) in incept::train::head::weight_shapes(2048, &[8], 2) {
        let n = shape.iter().product();
        map.insert(name, HostTensor { data: random(n, n as u64, -0.05, 0.05), shape });
    }
    map
}

/// The moving statistics of the BatchNorm layers whose beta trains.
fn trainable_moving_stats(model: &Classifier) -> Vec<(String, Vec<f32>)> {
    let map = model.to_tensor_map().unwrap();
    let layers: Vec<String> = model.base.trainable_params().into_iter().filter_map(|(n, _)| n.strip_suffix("/beta").map(str::to_string)).collect();
    assert_eq!(layers.len(), 5, "the last 15 layers hold five BatchNorm layers");
    layers.iter().flat_map(|l| ["moving_mean", "moving_variance"].map(|s| format!("{l}/{s}"))).map(|k| (k.clone(), map[&k].data.clone())).collect()
}

#[test]
fn bn_inference_keeps_moving_statistics_and_matches_the_inference_forward() {
    let gpu = gpu();
    let weights = weights();
    let x = Tensor::from_slice(&gpu, &[BATCH, SIZE, SIZE, 3], &random(BATCH * SIZE * SIZE * 3, 7, 0.0, 1.0)).unwrap();
    let t = Tensor::from_slice(&gpu, &[BATCH, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]).unwrap();
    for bn_inference in [true, false] {
        let model = Classifier::from_tensor_map(&gpu, &config(bn_inference), &weights).unwrap();
        let mut adam = Adam::new(model.trainable_params(), AdamConfig::default()).unwrap();
        let before = trainable_moving_stats(&model);
        let inference = ag::no_grad(|| model.logits(&x, false, 0)).unwrap().value().to_vec().unwrap();
        let training = model.logits(&x, true, 0).unwrap();
        let (loss, _) = ag::softmax_cross_entropy(&training, &t).unwrap();
        let grads = loss.backward().unwrap();
        let training = training.value().to_vec().unwrap();
        adam.apply(&grads).unwrap();
        let after = trainable_moving_stats(&model);
        let err = incept::reference::rel_l2(&training, &incept::reference::to_f64(&inference));
        let changed: Vec<&String> = before.iter().zip(&after).filter(|(b, a)| b.1 != a.1).map(|(b, _)| &b.0).collect();
        // The betas train either way.
        for (name, p) in model.base.trainable_params() {
            let g = grads.get(&p).unwrap_or_else(|| panic!("no gradient for {name}")).to_vec().unwrap();
            assert!(g.iter().any(|&v| v != 0.0), "{name}: zero gradient (bn_inference {bn_inference})");
        }
        if bn_inference {
            assert!(err <= 1e-5, "training logits differ from the inference forward by {err:.3e}");
            assert!(changed.is_empty(), "--bn-inference moved {changed:?}");
        } else {
            // The control: batch statistics give other logits and move every statistic.
            assert!(err > 1e-3, "batch statistics should change the logits (relative L2 {err:.3e})");
            assert_eq!(changed.len(), before.len(), "batch statistics must update every moving statistic");
        }
    }
}
