//! InceptionV3 as Keras builds it: layer counts and order, parameters,
//! weight loading, and the fused/concat-free frozen path against the plain
//! layer-by-layer path.
use crate::common;
use common::*;
use incept::autograd as ag;
use incept::io::TensorMap;
use incept::models::{Backbone, Base};
use incept::reference::random;
use incept::Tensor;

fn input(gpu: &incept::Gpu, n: usize, s: usize, seed: u64) -> Tensor {
    Tensor::from_slice(gpu, &[n, s, s, 3], &random(n * s * s * 3, seed, 0.0, 1.0)).unwrap()
}

#[test]
fn summary_matches_keras_counts() {
    let gpu = gpu();
    let model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(1), 15).unwrap();
    let rows = model.summary(299).unwrap();
    assert_eq!(rows.len(), 311);
    assert_eq!(rows[0].class, "InputLayer");
    assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 21_802_784);
    assert_eq!(rows.iter().map(|r| r.trainable_params).sum::<usize>(), 394_880);
    let last = rows.last().unwrap();
    assert_eq!((last.name.as_str(), last.output_shape), ("mixed10", [1, 8, 8, 2048]));
    let names: Vec<String> = model.trainable_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["batch_normalization_88/beta", "batch_normalization_91/beta", "batch_normalization_92/beta", "conv2d_93/kernel", "batch_normalization_85/beta", "batch_normalization_93/beta"]
    );
    assert_eq!(model.summary(75).unwrap().last().unwrap().output_shape, [1, 1, 1, 2048]);
}

#[test]
fn fused_frozen_path_equals_the_plain_layer_path() {
    let gpu = gpu();
    let weights = Backbone::InceptionV3.random_weights(2);
    let x = input(&gpu, 2, 75, 3);
    let frozen = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &weights, 0).unwrap();
    let fused = frozen.infer_layers(&x, &["mixed0", "mixed9_0", "mixed10"]).unwrap();
    // Every layer trainable and recording: plain conv, BN, ReLU and copying concatenation.
    let plain_model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &weights, 311).unwrap();
    let plain = plain_model.forward(&x, false).unwrap();
    let want = plain.value().to_vec().unwrap();
    assert_close("mixed10 fused vs plain", &fused[2].to_vec().unwrap(), &incept::reference::to_f64(&want));
    assert_eq!(fused[0].shape(), &[2, 7, 7, 256]);
    assert_eq!(fused[1].shape(), &[2, 1, 1, 768]);
}

#[test]
fn batch_chunking_gives_the_same_outputs_and_gradients() {
    let gpu = gpu();
    let weights = Backbone::InceptionV3.random_weights(4);
    let x = input(&gpu, 3, 75, 5);
    let run = |limit: Option<u64>| {
        let mut model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &weights, 15).unwrap();
        if let Some(l) = limit {
            model.set_binding_limit(l);
        }
        let y = model.forward(&x, true).unwrap();
        let g = ag::global_avg_pool(&y).unwrap();
        let t = Tensor::from_slice(&gpu, &[3, 2048], &random(3 * 2048, 6, 0.0, 1.0)).unwrap();
        let (loss, _) = ag::softmax_cross_entropy(&g, &t).unwrap();
        let grads = loss.backward().unwrap();
        let (_, conv93) = model.trainable_params().into_iter().find(|(n, _)| n == "conv2d_93/kernel").unwrap();
        (y.value().to_vec().unwrap(), grads.get(&conv93).unwrap().to_vec().unwrap())
    };
    let (y1, g1) = run(None);
    // 37x37x64 floats per image is the largest activation at 75²: one image per chunk.
    let (y2, g2) = run(Some(37 * 37 * 64 * 4 + 16));
    assert_close("chunked forward", &y2, &incept::reference::to_f64(&y1));
    assert_close("chunked gradient", &g2, &incept::reference::to_f64(&g1));
}

#[test]
fn keras2_numbering_loads_by_position() {
    let gpu = gpu();
    let k3 = Backbone::InceptionV3.random_weights(7);
    let mut k2 = TensorMap::new();
    for (name, t) in &k3 {
        let (layer, var) = name.split_once('/').unwrap();
        let renamed = match layer {
            "conv2d" => format!("conv2d_1/{var}"),
            "batch_normalization" => format!("batch_normalization_1/{var}"),
            l => {
                let (p, k) = l.rsplit_once('_').unwrap();
                format!("{p}_{}/{var}", k.parse::<usize>().unwrap() + 1)
            }
        };
        k2.insert(renamed, t.clone());
    }
    let x = input(&gpu, 1, 75, 8);
    let a = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &k3, 0).unwrap().infer_layers(&x, &["mixed10"]).unwrap();
    let b = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &k2, 0).unwrap().infer_layers(&x, &["mixed10"]).unwrap();
    assert_eq!(a[0].to_vec().unwrap(), b[0].to_vec().unwrap());
}

#[test]
fn bad_weights_and_inputs_are_clear_errors() {
    let gpu = gpu();
    let mut w = Backbone::InceptionV3.random_weights(9);
    w.remove("batch_normalization_17/moving_mean");
    let msg = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &w, 0).err().unwrap().to_string();
    assert!(msg.contains("batch_normalization_17/moving_mean"), "{msg}");
    let mut w = Backbone::InceptionV3.random_weights(9);
    w.get_mut("conv2d_5/kernel").unwrap().shape = vec![1, 1, 192, 65];
    let msg = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &w, 0).err().unwrap().to_string();
    assert!(msg.contains("conv2d_5/kernel") && msg.contains("[1, 1, 192, 64]"), "{msg}");
    let model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(9), 0).unwrap();
    assert!(model.infer_layers(&input(&gpu, 1, 74, 1), &["mixed10"]).err().unwrap().to_string().contains("75"));
    assert!(model.infer_layers(&input(&gpu, 1, 75, 1), &["mixed11"]).err().unwrap().to_string().contains("mixed11"));
    assert!(Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(9), 312).is_err());
}

#[test]
fn forward_from_a_frozen_boundary_is_bit_identical() {
    let gpu = gpu();
    let weights = Backbone::InceptionV3.random_weights(10);
    let x = input(&gpu, 3, 75, 11);
    let targets = Tensor::from_slice(&gpu, &[3, 2048], &random(3 * 2048, 12, 0.0, 1.0)).unwrap();
    // Two identical models, so BatchNorm moving statistics evolve alike in both.
    let direct = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &weights, 15).unwrap();
    let mut cached = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &weights, 15).unwrap();
    // One image per chunk: the boundary is joined from chunks, as for large images.
    cached.set_binding_limit(37 * 37 * 64 * 4 + 16);
    let boundary = cached.frozen_boundary(&x).unwrap();
    assert!(!boundary.tensors.is_empty());

    let inference = |m: &Base, from_boundary: bool| {
        ag::no_grad(|| if from_boundary { m.forward_from_boundary(&boundary, false) } else { m.forward(&x, false) })
            .unwrap()
            .value()
            .to_vec()
            .unwrap()
    };
    assert_eq!(inference(&direct, false), inference(&cached, true), "inference from the boundary");

    let step = |m: &Base, from_boundary: bool| {
        let y = if from_boundary { m.forward_from_boundary(&boundary, true) } else { m.forward(&x, true) }.unwrap();
        let (loss, _) = ag::softmax_cross_entropy(&ag::global_avg_pool(&y).unwrap(), &targets).unwrap();
        let grads = loss.backward().unwrap();
        let mut all = y.value().to_vec().unwrap();
        for (_, p) in m.trainable_params() {
            all.extend(grads.get(&p).unwrap().to_vec().unwrap());
        }
        all
    };
    assert_eq!(step(&direct, false), step(&cached, true), "training outputs and gradients from the boundary");
    // Moving statistics were updated identically by the training step.
    assert_eq!(direct.to_tensor_map().unwrap()["batch_normalization_93/moving_variance"].data, cached.to_tensor_map().unwrap()["batch_normalization_93/moving_variance"].data);
}

/// Which values `--precision mixed` stores in f16 (planned on any adapter):
/// the frozen prefix's activations, pools and block outputs that only frozen
/// convolutions and pools read; never a value the trainable tail or the
/// caller reads (the boundary, the output), nor anything in the tail.
#[test]
fn mixed_precision_stores_only_frozen_values_in_f16() {
    let gpu = gpu();
    let tuned = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(11), 15).unwrap();
    let half = tuned.f16_storage_layers(2, 75, 75).unwrap();
    let has = |name: &str| half.iter().any(|h| h == name);
    // mixed9 is read by frozen convolutions and mixed10's average pool only; mixed9_0 is a slice of it.
    for name in ["activation", "max_pooling2d", "average_pooling2d", "mixed0", "mixed4", "mixed8", "mixed9", "mixed9_0", "activation_86"] {
        assert!(has(name), "{name} is not stored in f16: {half:?}");
    }
    // average_pooling2d_8 is read by the trainable conv2d_93, conv2d_85 by the trainable
    // batch_normalization_85 (both are the boundary); the rest is the tail.
    for name in ["average_pooling2d_8", "conv2d_85", "activation_85", "batch_normalization_85", "mixed10"] {
        assert!(!has(name), "{name} is stored in f16: {half:?}");
    }
    // Frozen throughout: only the output (the caller reads it) and the slices written into it stay f32.
    let frozen = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(11), 0).unwrap();
    let all = frozen.f16_storage_layers(2, 75, 75).unwrap();
    assert!(all.iter().any(|h| h == "mixed9") && !all.iter().any(|h| h == "mixed10" || h == "mixed9_1"), "{all:?}");
    assert!(all.len() > half.len(), "{} values in f16 when frozen, {} with a trainable tail", all.len(), half.len());
}
