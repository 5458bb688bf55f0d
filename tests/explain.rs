//! Grad-CAM (`incept explain`): the class logit's gradient with respect to a
//! layer's output, taken through the tape from a boundary at that layer,
//! against central finite differences of the same forward; the map's
//! properties; and the command end to end through the binary.
mod binary;
mod common;

use binary::{incept, make_tree, ok, text, weights};
use common::*;
use incept::autograd as ag;
use incept::explain::{class_gradients, grad_cam};
use incept::io::{HostTensor, TensorMap};
use incept::models::InceptionV3;
use incept::models::inception_v3::{layer_index, random_weights};
use incept::reference::{random, rel_l2_f64, to_f64};
use incept::train::Classifier;
use incept::train::head::Head;
use incept::Tensor;
use rand::{Rng, SeedableRng};

const CLASSES: usize = 3;

/// Random base (Glorot kernels, BatchNorm statistics and betas drawn at
/// random so no layer is the identity) with its last 15 layers trainable,
/// and a random head.
fn model(gpu: &incept::Gpu) -> Classifier {
    let mut w: TensorMap = random_weights(21);
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
        base: InceptionV3::from_tensor_map(gpu, &w, 15).unwrap(),
        head: Head::new(gpu, 2048, &[32], CLASSES, 0.3, 22).unwrap(),
    }
}

/// Two different 75² images in [0, 1].
fn images(gpu: &incept::Gpu) -> Tensor {
    Tensor::from_slice(gpu, &[2, 75, 75, 3], &random(2 * 75 * 75 * 3, 23, 0.0, 1.0)).unwrap()
}

/// Checks the gradient at `name` against central differences of the
/// explained class's logit, `coords` random coordinates of the layer's
/// output, each perturbed alone; returns (boundary values, layer shape).
fn check_layer(name: &str, coords: usize) -> (usize, [usize; 4]) {
    let gpu = gpu();
    let m = model(&gpu);
    let x = images(&gpu);
    let layer = layer_index(name).unwrap();
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
    let scale = (a.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
    let eps = (1e-2 * scale) as f32;

    let logits_with = |v: &[f32]| {
        let mut b = boundary.clone();
        b.tensors[at].1 = Tensor::from_slice(&gpu, &shape, v).unwrap();
        ag::no_grad(|| m.logits_from_layer(&b, layer)).unwrap().1.value().to_vec().unwrap()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    let (mut fd, mut got) = (Vec::new(), Vec::new());
    for _ in 0..coords {
        let j = rng.random_range(0..a.len());
        let image = j / per_image;
        let other = 1 - image;
        let pick = |logits: &[f32], i: usize| logits[i * CLASSES + found.classes[i]] as f64;
        let mut v = a.clone();
        v[j] = a[j] + eps;
        let up = logits_with(&v);
        v[j] = a[j] - eps;
        let down = logits_with(&v);
        fd.push((pick(&up, image) - pick(&down, image)) / (2.0 * eps as f64));
        got.push(g[j] as f64);
        // Image by image: the other image's logits do not move.
        assert_eq!(pick(&up, other), pick(&down, other), "{name}: perturbing image {image} moved image {other}'s logit");
    }
    let err = rel_l2_f64(&got, &fd);
    eprintln!("{name}: gradient vs finite differences over {coords} coordinates: relative L2 {err:.2e} (eps {eps:.2e})\n  autograd {got:?}\n  fd       {fd:?}");
    assert!(err <= 2e-2, "{name}: gradient vs finite differences: relative L2 {err:.3e}\n  autograd {got:?}\n  fd       {fd:?}");
    assert!(got.iter().any(|v| *v != 0.0), "{name}: every sampled gradient is zero; the check would prove nothing");

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
fn a_chosen_class_is_explained_and_unknown_layers_are_named() {
    let gpu = gpu();
    let m = model(&gpu);
    let x = images(&gpu);
    let layer = layer_index("mixed7").unwrap();
    let found = class_gradients(&m, &x, layer, Some(2)).unwrap();
    assert_eq!(found.classes, [2, 2]);
    assert_eq!(found.predicted.len(), 2);
    assert!(class_gradients(&m, &x, layer, Some(CLASSES)).is_err());
    let err = layer_index("mixed11").unwrap_err().to_string();
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
