//! The executor on a small graph that is not InceptionV3: a residual Add, a
//! conv followed by ReLU without BatchNorm, a bare conv, a max pool and a
//! conv chain writing into one concatenation. The fused, slice-writing frozen
//! path, the batch-chunked path and the prefix-boundary path must agree with
//! the plain layer-by-layer path (every layer trainable, recorded op by op).
use crate::common;
use common::*;
use incept::autograd as ag;
use incept::io::{HostTensor, TensorMap};
use incept::models::executor::weight_table;
use incept::models::graph::{Graph, LayerKind};
use incept::models::inception_v3_graph::BATCH_NORM as BN;
use incept::models::Network;
use incept::ops::{Padding, Window2d};
use incept::reference::random;
use incept::Tensor;

fn conv(filters: usize, k: usize, stride: usize, padding: Padding) -> LayerKind {
    LayerKind::Conv2d { filters, win: Window2d::new(k, k, stride, padding) }
}

fn residual_graph() -> Graph {
    use Padding::{Same, Valid};
    let mut g = Graph::default();
    let input = g.add("input".into(), LayerKind::Input, vec![]);
    let c0 = g.add("conv_a".into(), conv(6, 3, 1, Same), vec![input]);
    let b0 = g.add("bn_a".into(), LayerKind::BatchNorm(BN), vec![c0]);
    let a = g.add("relu_a".into(), LayerKind::Relu, vec![b0]);
    // A conv followed by ReLU with no BatchNorm, added back to its input.
    let c1 = g.add("conv_b".into(), conv(6, 1, 1, Valid), vec![a]);
    let b = g.add("relu_b".into(), LayerKind::Relu, vec![c1]);
    let sum = g.add("add".into(), LayerKind::Add, vec![a, b]);
    let pool = g.add("pool".into(), LayerKind::MaxPool(Window2d::new(3, 3, 2, Valid)), vec![sum]);
    let c2 = g.add("conv_c".into(), conv(4, 3, 2, Valid), vec![sum]);
    let b2 = g.add("bn_c".into(), LayerKind::BatchNorm(BN), vec![c2]);
    let r2 = g.add("relu_c".into(), LayerKind::Relu, vec![b2]);
    // A bare conv (no BatchNorm, no ReLU) as a concatenation input.
    let c3 = g.add("conv_d".into(), conv(5, 3, 2, Valid), vec![sum]);
    let cat = g.add("concat".into(), LayerKind::Concat, vec![pool, r2, c3]);
    let c4 = g.add("conv_e".into(), conv(7, 1, 1, Same), vec![cat]);
    let b4 = g.add("bn_e".into(), LayerKind::BatchNorm(BN), vec![c4]);
    g.add("relu_e".into(), LayerKind::Relu, vec![b4]);
    g
}

fn weights(g: &Graph, seed: u64) -> TensorMap {
    let mut map = TensorMap::new();
    for (k, (name, shape)) in weight_table(g, 3).unwrap().into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let (lo, hi) = if name.ends_with("moving_variance") { (0.5, 1.5) } else { (-0.5, 0.5) };
        map.insert(name, HostTensor { shape, data: random(n, seed + k as u64, lo, hi) });
    }
    map
}

fn input(gpu: &incept::Gpu) -> Tensor {
    Tensor::from_slice(gpu, &[3, 9, 11, 3], &random(3 * 9 * 11 * 3, 99, -1.0, 1.0)).unwrap()
}

#[test]
fn weight_table_and_shapes_come_from_the_graph() {
    let g = residual_graph();
    let table = weight_table(&g, 3).unwrap();
    let conv_d = table.iter().find(|(n, _)| n == "conv_d/kernel").unwrap();
    assert_eq!(conv_d.1, vec![3, 3, 6, 5]);
    assert_eq!(table.iter().filter(|(n, _)| n.starts_with("bn_")).count(), 9);
    let shapes = g.output_shapes(3, 9, 11, 3).unwrap();
    assert_eq!(shapes[g.find("concat").unwrap()], [3, 4, 5, 6 + 4 + 5]);
}

#[test]
fn fused_frozen_path_equals_the_layer_by_layer_path() {
    let gpu = gpu();
    let g = residual_graph();
    let w = weights(&g, 1);
    let x = input(&gpu);
    let frozen = Network::new(&gpu, g.clone(), 3, &w, 0).unwrap();
    let got = frozen.infer_layers(&x, &["relu_e", "add", "concat"]).unwrap();
    let plain_model = Network::new(&gpu, g.clone(), 3, &w, g.layers.len()).unwrap();
    for (name, got) in ["relu_e", "add", "concat"].iter().zip(&got) {
        let want = plain_model.infer_layers(&x, &[name]).unwrap();
        assert_eq!(got.shape(), want[0].shape(), "{name}");
    }
    // The plain path, recorded op by op (all layers trainable), in inference mode.
    let plain = plain_model.forward(&x, false).unwrap().value().to_vec().unwrap();
    assert!(plain.iter().any(|&v| v != 0.0));
    assert_close("relu_e fused vs plain", &got[0].to_vec().unwrap(), &incept::reference::to_f64(&plain));
}

#[test]
fn chunked_and_boundary_paths_equal_the_whole_batch() {
    let gpu = gpu();
    let g = residual_graph();
    let w = weights(&g, 2);
    let x = input(&gpu);
    let targets = Tensor::from_slice(&gpu, &[3, 7], &random(21, 5, 0.0, 1.0)).unwrap();
    // The last 4 Keras layers trainable: conv_e, bn_e, relu_e and whatever precedes them in Keras order.
    let step = |net: &Network, from_boundary: bool| {
        let y = if from_boundary { net.forward_from_boundary(&net.frozen_boundary(&x).unwrap(), true) } else { net.forward(&x, true) }.unwrap();
        let (loss, _) = ag::softmax_cross_entropy(&ag::global_avg_pool(&y).unwrap(), &targets).unwrap();
        let grads = loss.backward().unwrap();
        let mut all = y.value().to_vec().unwrap();
        for (_, p) in net.trainable_params() {
            all.extend(grads.get(&p).unwrap().to_vec().unwrap());
        }
        all
    };
    let whole = Network::new(&gpu, g.clone(), 3, &w, 4).unwrap();
    assert!(!whole.trainable_params().is_empty());
    let want = step(&whole, false);
    let mut chunked = Network::new(&gpu, g.clone(), 3, &w, 4).unwrap();
    // The largest activation is 9x11x6 floats per image: one image per chunk.
    chunked.set_binding_limit(9 * 11 * 6 * 4 + 8);
    assert_close("chunked", &step(&chunked, false), &incept::reference::to_f64(&want));
    let cached = Network::new(&gpu, g, 3, &w, 4).unwrap();
    assert_eq!(step(&cached, true), want, "from the frozen boundary, bit for bit");
}

#[test]
fn missing_and_misshapen_weights_name_the_tensor() {
    let gpu = gpu();
    let g = residual_graph();
    let mut w = weights(&g, 3);
    w.remove("bn_c/moving_mean");
    let msg = Network::new(&gpu, g.clone(), 3, &w, 0).err().unwrap().to_string();
    assert!(msg.contains("bn_c/moving_mean"), "{msg}");
    let mut w = weights(&g, 3);
    w.get_mut("conv_b/kernel").unwrap().shape = vec![1, 1, 6, 7];
    let msg = Network::new(&gpu, g, 3, &w, 0).err().unwrap().to_string();
    assert!(msg.contains("conv_b/kernel") && msg.contains("[1, 1, 6, 6]"), "{msg}");
}
