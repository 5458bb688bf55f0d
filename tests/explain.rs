//! Grad-CAM (`incept explain`): the class logit's gradient with respect to a
//! layer's output, taken through the tape from a boundary at that layer,
//! against central finite differences of the same network computed by the
//! f64 CPU references; the map's properties; and the command end to end
//! through the binary.
use crate::binary;
use crate::common;

use binary::{incept, make_tree, ok, text, weights};
use common::*;
use incept::autograd as ag;
use incept::explain::{class_gradients, grad_cam};
use incept::io::{HostTensor, TensorMap};
use incept::models::base::layer_index;
use incept::models::graph::{Graph, LayerKind};
use incept::models::inception_v3_graph::inception_v3_graph;
use incept::models::{Backbone, Base};
use incept::reference::{self as r, random, rel_l2_f64, to_f64};
use incept::models::keras_names::dense_name;
use incept::train::head::Head;
use incept::train::Classifier;
use incept::Tensor;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

const CLASSES: usize = 3;

/// Random base (Glorot kernels, BatchNorm statistics and betas drawn at
/// random so no layer is the identity) with its last 15 layers trainable,
/// and a random head.
fn model(gpu: &incept::Gpu) -> Classifier {
    let mut w: TensorMap = Backbone::InceptionV3.random_weights(21);
    for (k, (name, t)) in w.iter_mut().enumerate() {
        let (lo, hi) = match name.rsplit('/').next() {
            Some("beta") => (-0.2, 0.2),
            Some("moving_mean") => (-0.1, 0.1),
            Some("moving_variance") => (0.5, 1.5),
            _ => continue,
        };
        *t = HostTensor { shape: t.shape.clone(), data: random(t.data.len(), 1000 + k as u64, lo, hi) };
    }
    Classifier {
        base: Base::from_tensor_map(gpu, Backbone::InceptionV3, &w, 15).unwrap(),
        head: Head::new(gpu, 2048, &[32], CLASSES, 0.3, 22).unwrap(),
        bn_inference: false,
    }
}

fn inception_layer(name: &str) -> incept::Result<usize> {
    layer_index(Backbone::InceptionV3, &inception_v3_graph(), name)
}

/// Two different 75² images in [0, 1].
fn images(gpu: &incept::Gpu) -> Tensor {
    Tensor::from_slice(gpu, &[2, 75, 75, 3], &random(2 * 75 * 75 * 3, 23, 0.0, 1.0)).unwrap()
}

/// Values of one image at some layers: creation index → (NHWC values, shape [1, h, w, c]).
type Values = HashMap<usize, (Vec<f64>, [usize; 4])>;

/// Per layer: its output depends on `layer`'s (itself excluded).
fn downstream(graph: &Graph, layer: usize) -> Vec<bool> {
    let mut down = vec![false; graph.layers.len()];
    for l in layer + 1..down.len() {
        down[l] = graph.layers[l].inputs.iter().any(|&i| i == layer || down[i]);
    }
    down
}

/// One image's logits on the CPU in f64 (src/reference): the layers in
/// `tail` run from the `given` values, then global average pooling and the
/// head's Dense layers (ReLU on all but the last).
fn reference_logits(graph: &Graph, weights: &TensorMap, given: &Values, tail: &[bool]) -> Vec<f64> {
    let w = |name: String| to_f64(&weights[&name].data);
    let mut values = given.clone();
    for (l, layer) in graph.layers.iter().enumerate().filter(|(l, _)| tail[*l]) {
        let (x, xs) = &values[&layer.inputs[0]];
        let out = match &layer.kind {
            LayerKind::Conv2d { filters, win } => r::conv::conv2d(x, *xs, &w(format!("{}/kernel", layer.name)), *filters, win),
            LayerKind::BatchNorm(spec) => {
                let [beta, mean, var] = ["beta", "moving_mean", "moving_variance"].map(|v| w(format!("{}/{v}", layer.name)));
                (r::batchnorm::batchnorm_inference(x, None, &beta, &mean, &var, spec.epsilon as f64), *xs)
            }
            LayerKind::Relu => (r::elementwise::relu(x), *xs),
            LayerKind::MaxPool(win) => r::pool::max_pool2d(x, *xs, win),
            LayerKind::AvgPool(win) => r::pool::avg_pool2d(x, *xs, win),
            LayerKind::Concat => {
                let parts: Vec<(&[f64], usize)> = layer.inputs.iter().map(|i| (values[i].0.as_slice(), values[i].1[3])).collect();
                let [n, h, wd, _] = values[&layer.inputs[0]].1;
                (r::concat::concat_channels(&parts), [n, h, wd, parts.iter().map(|p| p.1).sum()])
            }
            other => panic!("{}: no reference for {other:?}", layer.name),
        };
        values.insert(l, out);
    }
    let (y, ys) = &values[&(graph.layers.len() - 1)];
    let mut features = r::pool::global_avg_pool(y, *ys);
    let last = (0..).take_while(|&k| weights.contains_key(&format!("{}/kernel", dense_name(k)))).count() - 1;
    for k in 0..=last {
        let kernel = &weights[&format!("{}/kernel", dense_name(k))];
        let (fan_in, fan_out) = (kernel.shape[0], kernel.shape[1]);
        features = r::matmul::dense(&features, &to_f64(&kernel.data), &w(format!("{}/bias", dense_name(k))), 1, fan_in, fan_out, k < last);
    }
    features
}

/// Checks the gradient at `name` against central finite differences of the
/// same network on the CPU in f64, from the same boundary values: `coords`
/// random coordinates of the layer's output (of either image), each
/// perturbed alone by ±ε, and the explained class's logit of that image
/// alone. (In f32 one coordinate moves a logit by a few ulps only, hence f64;
/// and ε can then be so small that no ReLU or max changes its branch.)
/// Coordinates where the output is exactly 0 are left out: a ReLU output of
/// 0 in a max-pool window of zeros is a tie, where the max has no derivative.
/// Returns (number of boundary values, the layer's shape).
fn check_layer(name: &str, coords: usize) -> (usize, [usize; 4]) {
    let gpu = gpu();
    let m = model(&gpu);
    let x = images(&gpu);
    let layer = inception_layer(name).unwrap();
    let found = class_gradients(&m, &x, layer, None).unwrap();
    // The forward from the layer is the model's forward.
    let plain = ag::no_grad(|| m.logits(&x, false, 0)).unwrap().value().to_vec().unwrap();
    assert_close(&format!("{name}: logits from the layer's boundary"), &found.logits, &to_f64(&plain));

    let boundary = m.base.boundary_at(&x, layer).unwrap();
    let at = boundary.tensors.iter().position(|(l, _)| *l == layer).unwrap();
    let shape: [usize; 4] = boundary.tensors[at].1.dims4().unwrap();
    let a = boundary.tensors[at].1.to_vec().unwrap();
    assert_eq!(found.activations.to_vec().unwrap(), a, "{name}: the leaf holds the layer's output");
    let g = found.gradients.to_vec().unwrap();
    assert_eq!(found.gradients.shape(), &shape);
    let per_image = a.len() / shape[0];

    let graph = inception_v3_graph();
    let tail = downstream(&graph, layer);
    let weights = m.to_tensor_map().unwrap();
    // Each image's boundary values, in f64.
    let given: Vec<Values> = (0..shape[0])
        .map(|i| {
            let mut v = Values::new();
            for (l, t) in &boundary.tensors {
                let [n, h, w, c] = t.dims4().unwrap();
                let all = t.to_vec().unwrap();
                let each = all.len() / n;
                v.insert(*l, (to_f64(&all[i * each..(i + 1) * each]), [1, h, w, c]));
            }
            v
        })
        .collect();
    for (i, values) in given.iter().enumerate() {
        let want = reference_logits(&graph, &weights, values, &tail);
        assert_close(&format!("{name}: image {i}'s logits, GPU vs f64 reference"), &found.logits[i * CLASSES..(i + 1) * CLASSES], &want);
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    let candidates: Vec<usize> = (0..a.len()).filter(|&j| a[j] != 0.0).collect();
    let (mut fd, mut got) = (Vec::new(), Vec::new());
    let eps = 1e-6;
    for _ in 0..coords {
        let j = candidates[rng.random_range(0..candidates.len())];
        let (image, offset) = (j / per_image, j % per_image);
        let class = found.classes[image];
        let score = |delta: f64| {
            let mut values = given[image].clone();
            values.get_mut(&layer).unwrap().0[offset] += delta;
            reference_logits(&graph, &weights, &values, &tail)[class]
        };
        fd.push((score(eps) - score(-eps)) / (2.0 * eps));
        got.push(g[j] as f64);
    }
    let err = rel_l2_f64(&got, &fd);
    eprintln!("{name}: gradient vs f64 finite differences at {coords} coordinates: relative L2 {err:.2e}\n  autograd {got:?}\n  fd       {fd:?}");
    assert!(err <= TOL, "{name}: gradient vs finite differences: relative L2 {err:.3e}\n  autograd {got:?}\n  fd       {fd:?}");
    assert!(got.iter().filter(|v| **v != 0.0).count() >= coords / 2, "{name}: most sampled gradients are zero; the check would prove little");

    // The map: non-negative, the layer's spatial size, one per image.
    let [_, h, w, c] = shape;
    for i in 0..shape[0] {
        let cam = grad_cam(&a[i * per_image..][..per_image], &g[i * per_image..][..per_image], [h, w, c]);
        assert_eq!((cam.height, cam.width, cam.map.len(), cam.channel_weights.len()), (h, w, h * w, c));
        assert!(cam.map.iter().all(|v| *v >= 0.0 && v.is_finite()), "{name}: {:?}", cam.map);
    }
    (boundary.tensors.len(), shape)
}

#[test]
fn gradient_at_mixed2_matches_finite_differences() {
    let (values, shape) = check_layer("mixed2", 8);
    assert_eq!((values, shape), (1, [2, 7, 7, 288]));
}

#[test]
fn gradient_at_a_conv_inside_a_block_matches_finite_differences() {
    // conv2d_32: the 1×7 conv of mixed4's 7×7 branch. The layers after it
    // also read the other branches of mixed4, so the boundary holds those too.
    let (values, shape) = check_layer("conv2d_32", 8);
    assert!(values > 1, "boundary of conv2d_32 holds {values} value(s)");
    assert_eq!(shape, [2, 3, 3, 128]);
}

#[test]
fn gradient_at_mixed10_matches_finite_differences() {
    let (values, shape) = check_layer("mixed10", 8);
    assert_eq!((values, shape), (1, [2, 1, 1, 2048]));
}

#[test]
fn a_boundary_joined_from_batch_chunks_is_the_same() {
    let gpu = gpu();
    let mut m = model(&gpu);
    let x = images(&gpu);
    let layer = inception_layer("conv2d_32").unwrap();
    let whole = m.base.boundary_at(&x, layer).unwrap();
    // 37x37x64 floats per image is the largest activation at 75²: one image per chunk.
    m.base.set_binding_limit(37 * 37 * 64 * 4 + 16);
    let chunked = m.base.boundary_at(&x, layer).unwrap();
    assert_eq!(whole.tensors.len(), chunked.tensors.len());
    for ((l, a), (k, b)) in whole.tensors.iter().zip(&chunked.tensors) {
        assert_eq!(l, k);
        assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap(), "boundary value of layer {l}");
    }
}

#[test]
fn a_chosen_class_is_explained_and_unknown_layers_are_named() {
    let gpu = gpu();
    let m = model(&gpu);
    let x = images(&gpu);
    let layer = inception_layer("mixed7").unwrap();
    let found = class_gradients(&m, &x, layer, Some(2)).unwrap();
    assert_eq!(found.classes, [2, 2]);
    assert_eq!(found.predicted.len(), 2);
    assert!(class_gradients(&m, &x, layer, Some(CLASSES)).is_err());
    let err = inception_layer("mixed11").unwrap_err().to_string();
    assert!(err.contains("mixed11") && err.contains("mixed0 … mixed10") && err.contains("conv2d … conv2d_93"), "{err}");
}

#[test]
fn explain_writes_a_picture_and_a_map_per_image_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 3), ("valid", 1), ("test", 1)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    let (data_s, w_s, run_s) = (data.to_str().unwrap(), w.to_str().unwrap(), run.to_str().unwrap());
    ok(incept(&["train", "--data", data_s, "--weights", w_s, "--out", run_s, "--epochs", "1", "--image-size", "75", "--batch", "4", "--head", "16"]));

    // Two inputs with one file name: the names grow until they differ.
    let test = data.join("test");
    let out = tmp.path().join("explained");
    let (test_s, out_s) = (test.to_str().unwrap(), out.to_str().unwrap());
    let printed = ok(incept(&["explain", "--model", run_s, "--out", out_s, "--layer", "mixed7", test_s]));
    assert_eq!(printed.lines().filter(|l| l.contains("Grad-CAM of")).count(), 3, "{printed}");
    for class in binary::CLASSES {
        let stem = format!("{class}_000_png");
        let picture = image::open(out.join(format!("{stem}.gradcam.png"))).unwrap_or_else(|e| panic!("{stem}: {e}\n{printed}"));
        // Two 300×300 panels (75² × 4) side by side, a colour bar, title lines.
        assert!(picture.width() >= 2 * 300 && picture.height() >= 300, "{stem}: {}x{}", picture.width(), picture.height());
        let map = incept::io::read_safetensors(&out.join(format!("{stem}.gradcam.safetensors"))).unwrap();
        assert_eq!(map["gradcam"].shape, [3, 3], "mixed7 is 3x3 at 75²");
        assert_eq!(map["channel_weights"].shape, [768]);
        assert!(map["gradcam"].data.iter().all(|v| *v >= 0.0));
        let meta = incept::io::safetensors_io::read_metadata(&out.join(format!("{stem}.gradcam.safetensors"))).unwrap();
        assert_eq!(meta["layer"], "mixed7");
        assert!(binary::CLASSES.contains(&meta["class"].as_str()));
    }

    // A chosen class, the default layer (1x1 at 75²: a warning says so).
    let one = test.join("bee/000.png");
    let out2 = tmp.path().join("bee");
    let printed = ok(incept(&["explain", "--model", run_s, "--out", out2.to_str().unwrap(), "--class", "cat", one.to_str().unwrap()]));
    assert!(printed.contains("Grad-CAM of cat at mixed10") && printed.contains("1x1"), "{printed}");
    let map = incept::io::read_safetensors(&out2.join("000.gradcam.safetensors")).unwrap();
    assert_eq!(map["gradcam"].shape, [1, 1]);
    assert!(out2.join("000.gradcam.png").is_file());

    // Bad input: named, and nothing written.
    let fresh = tmp.path().join("never");
    let fresh_s = fresh.to_str().unwrap();
    let fails = |args: &[&str], needle: &str| {
        let o = incept(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(needle), "{args:?}: no '{needle}' in:\n{}", text(&o));
        assert!(!fresh.exists(), "{args:?} wrote {}", fresh.display());
    };
    fails(&["explain", "--model", run_s, "--out", fresh_s, "--layer", "mixed11", test_s], "mixed0 … mixed10");
    fails(&["explain", "--model", run_s, "--out", fresh_s, "--class", "dog", test_s], "ant, bee, cat");
    let corrupt = tmp.path().join("corrupt.png");
    std::fs::write(&corrupt, b"not a png").unwrap();
    fails(&["explain", "--model", run_s, "--out", fresh_s, test_s, corrupt.to_str().unwrap()], "corrupt.png");
    let blocker = tmp.path().join("a_file");
    std::fs::write(&blocker, b"x").unwrap();
    let under_file = blocker.join("out");
    let o = incept(&["explain", "--model", run_s, "--out", under_file.to_str().unwrap(), test_s]);
    assert!(!o.status.success() && text(&o).contains("--out"), "{}", text(&o));
}
