//! The built-in light backbones (MobileNetV2, EfficientNet-Lite0) on the
//! executor, at a small odd input with random weights and random BatchNorm
//! statistics (no layer is the identity): the fused frozen path, the plain
//! layer-by-layer path, the batch-chunked path and the path through the
//! frozen boundary against the f64 CPU reference of the whole graph
//! (`reference::network`), and the tail's gradients (depthwise kernels,
//! BatchNorm gammas) against finite differences of that reference.
use crate::common;
use common::*;
use incept::autograd as ag;
use incept::io::{HostTensor, TensorMap};
use incept::models::{Backbone, Base};
use incept::reference::{network, random, to_f64};
use incept::Tensor;
use std::collections::HashMap;

const LIGHT: [Backbone; 2] = [Backbone::MobileNetV2, Backbone::EfficientNetLite0];
/// Odd, and above the 32 both networks need: stride-2 'same' pads evenly here, MobileNetV2's (0, 1) pads do not.
const SIZE: usize = 33;

/// He-uniform kernels (the signal keeps its size through 50 convolutions),
/// gammas, betas and moving statistics drawn at random.
fn weights(b: Backbone, seed: u64) -> TensorMap {
    let mut map = TensorMap::new();
    for (k, (name, shape)) in b.weight_table().into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let seed = seed * 1000 + k as u64;
        let data = match name.rsplit('/').next() {
            Some("kernel") => {
                let limit = (6.0 / (shape[0] * shape[1] * shape[2]) as f64).sqrt() as f32;
                random(n, seed, -limit, limit)
            }
            Some("depthwise_kernel") => {
                let limit = (6.0 / (shape[0] * shape[1]) as f64).sqrt() as f32;
                random(n, seed, -limit, limit)
            }
            Some("gamma") => random(n, seed, 0.5, 1.5),
            Some("beta") => random(n, seed, -0.2, 0.2),
            Some("moving_mean") => random(n, seed, -0.1, 0.1),
            _ => random(n, seed, 0.5, 1.5),
        };
        map.insert(name, HostTensor { shape, data });
    }
    map
}

fn images(n: usize, seed: u64) -> Vec<f32> {
    random(n * SIZE * SIZE * 3, seed, -1.0, 1.0)
}

/// The reference's value of the layer named `name`.
fn reference(b: Backbone, w: &TensorMap, x: &[f32], n: usize, names: &[&str]) -> Vec<Vec<f64>> {
    let graph = b.graph();
    let values = network::forward(&graph, w, &to_f64(x), [n, SIZE, SIZE, 3]);
    names.iter().map(|name| values[&graph.find(name).unwrap()].0.clone()).collect()
}

#[test]
fn every_path_matches_the_reference() {
    let gpu = gpu();
    for b in LIGHT {
        let w = weights(b, 1);
        let pixels = images(2, 2);
        let x = Tensor::from_slice(&gpu, &[2, SIZE, SIZE, 3], &pixels).unwrap();
        // A residual Add, a stride-2 depthwise (MobileNetV2: after ZeroPadding2D) and the output.
        let names: [&str; 3] = match b {
            Backbone::MobileNetV2 => ["block_2_add", "block_3_depthwise_relu", "out_relu"],
            _ => ["block2b_add", "block3a_activation", "top_activation"],
        };
        let want = reference(b, &w, &pixels, 2, &names);
        let frozen = Base::from_tensor_map(&gpu, b, &w, 0).unwrap();
        for (name, (got, want)) in names.iter().zip(frozen.infer_layers(&x, &names).unwrap().iter().zip(&want)) {
            assert_close(&format!("{b} {name}, fused frozen path"), &got.to_vec().unwrap(), want);
        }
        let out = &want[2];
        let magnitude = out.iter().map(|v| v.abs()).sum::<f64>() / out.len() as f64;
        assert!(magnitude > 1e-2, "{b}: mean |output| {magnitude} (a vanishing signal would hide errors)");

        // Every layer trainable and recording: each layer its own kernel, no fusion.
        let plain = Base::from_tensor_map(&gpu, b, &w, b.graph().layers.len()).unwrap();
        assert_close(&format!("{b} layer-by-layer path"), &plain.forward(&x, false).unwrap().value().to_vec().unwrap(), out);

        // One image per chunk of the frozen part.
        let mut chunked = Base::from_tensor_map(&gpu, b, &w, 15).unwrap();
        let largest = chunked.output_shapes(1, SIZE, SIZE).unwrap().iter().map(|s| s[1] * s[2] * s[3]).max().unwrap();
        chunked.set_binding_limit(largest as u64 * 4 + 16);
        let got = ag::no_grad(|| chunked.forward(&x, false)).unwrap();
        assert_close(&format!("{b} batch-chunked path"), &got.value().to_vec().unwrap(), out);
        let boundary = chunked.frozen_boundary(&x).unwrap();
        let got = ag::no_grad(|| chunked.forward_from_boundary(&boundary, false)).unwrap();
        assert_close(&format!("{b} from the frozen boundary"), &got.value().to_vec().unwrap(), out);
    }
}

/// The gradient of a classifier's loss on the base's pooled output (GAP →
/// Dense(3) → softmax cross-entropy) with respect to the trainable weights
/// of the last 15 layers, in inference mode (BatchNorm with moving
/// statistics, as `--bn-inference` trains), against central differences of
/// the f64 reference, at each tensor's largest entries (never zero: a zero
/// gradient cannot pass).
#[test]
fn tail_gradients_match_finite_differences() {
    use incept::reference::{loss as rloss, matmul as rmatmul, pool as rpool};
    let gpu = gpu();
    const CLASSES: usize = 3;
    for b in LIGHT {
        let w = weights(b, 3);
        let pixels = images(1, 4);
        let x = Tensor::from_slice(&gpu, &[1, SIZE, SIZE, 3], &pixels).unwrap();
        let features = b.feature_channels();
        // Small weights keep the softmax far from saturation: p − t, the
        // gradient every other one is made of, stays O(1) and exact to f32.
        let dense_w = random(features * CLASSES, 5, -0.02, 0.02);
        let targets = [0.0f32, 1.0, 0.0];
        let model = Base::from_tensor_map(&gpu, b, &w, 15).unwrap();
        let head = ag::Var::constant(Tensor::from_slice(&gpu, &[features, CLASSES], &dense_w).unwrap());
        let bias = ag::Var::constant(Tensor::zeros(&gpu, &[CLASSES]).unwrap());
        let y = model.forward(&x, false).unwrap();
        let logits = ag::dense(&ag::global_avg_pool(&y).unwrap(), &head, &bias, false).unwrap();
        let (loss, _) = ag::softmax_cross_entropy(&logits, &Tensor::from_slice(&gpu, &[1, CLASSES], &targets).unwrap()).unwrap();
        let grads = loss.backward().unwrap();

        let graph = b.graph();
        let out = graph.layers.len() - 1;
        let loss_of = |w: &TensorMap| -> f64 {
            let values = network::forward(&graph, w, &to_f64(&pixels), [1, SIZE, SIZE, 3]);
            let (y, ys) = &values[&out];
            let pooled = rpool::global_avg_pool(y, *ys);
            let logits = rmatmul::dense(&pooled, &to_f64(&dense_w), &[0.0; CLASSES], 1, features, CLASSES, false);
            rloss::softmax_cross_entropy(&logits, &to_f64(&targets), CLASSES).0
        };
        let params: HashMap<String, ag::Var> = model.trainable_params().into_iter().collect();
        for (name, p) in &params {
            let g = grads.get(p).unwrap().to_vec().unwrap();
            let mut order: Vec<usize> = (0..g.len()).collect();
            order.sort_by(|&a, &c| g[c].abs().total_cmp(&g[a].abs()));
            for &i in &order[..3.min(g.len())] {
                assert!(g[i].abs() > 1e-7, "{b} {name}: largest gradients are zero ({} at {i})", g[i]);
                let eps = 1e-3 * w[name].data[i].abs().max(1e-2);
                let (mut plus, mut minus) = (w.clone(), w.clone());
                plus.get_mut(name).unwrap().data[i] += eps;
                minus.get_mut(name).unwrap().data[i] -= eps;
                // The reference reads f32 weights: divide by the step actually taken.
                let step = plus[name].data[i] as f64 - minus[name].data[i] as f64;
                let fd = (loss_of(&plus) - loss_of(&minus)) / step;
                let err = (g[i] as f64 - fd).abs() / fd.abs().max(1e-12);
                assert!(err < 2e-3, "{b} {name}[{i}]: gradient {} vs finite difference {fd} (relative error {err:.2e})", g[i]);
            }
        }
        for kind in ["depthwise_kernel", "gamma", "beta", "kernel"] {
            assert!(params.keys().any(|n| n.ends_with(&format!("/{kind}"))), "{b}: no trainable {kind} in the last 15 layers: {:?}", params.keys());
        }
    }
}
