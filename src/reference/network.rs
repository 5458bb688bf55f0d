//! A whole layer graph on the CPU in f64, layer by layer through the other
//! references, in inference mode (BatchNorm with moving statistics): the
//! oracle of every network the executor runs (tests compare the executor's
//! fused, chunked and differentiated paths with it).

use super::{batchnorm, concat, conv, depthwise, elementwise, pad, pool, to_f64};
use crate::io::TensorMap;
use crate::models::graph::{Graph, LayerKind};
use std::collections::HashMap;

/// A value and its NHWC shape.
pub type Value = (Vec<f64>, [usize; 4]);

/// Evaluates, in creation order, every layer for which `run` holds, from the
/// values already in `values` (creation index → value); the results are
/// added to `values`. Weights are Keras-named (`LAYER/VARIABLE`).
///
/// Panics when a weight or an input value is missing: this is a test oracle,
/// fed by the tests' own graphs and weights.
pub fn run_layers(graph: &Graph, weights: &TensorMap, values: &mut HashMap<usize, Value>, run: impl Fn(usize) -> bool) {
    let w = |layer: &str, var: &str| to_f64(&weights[&format!("{layer}/{var}")].data);
    for (l, layer) in graph.layers.iter().enumerate().filter(|(l, _)| run(*l)) {
        let input = |k: usize| &values[&layer.inputs[k]];
        let name = layer.name.as_str();
        let out = match &layer.kind {
            LayerKind::Input => panic!("{name}: the input layer's value must be given"),
            LayerKind::Conv2d { filters, win } => {
                let (x, xs) = input(0);
                conv::conv2d(x, *xs, &w(name, "kernel"), *filters, win)
            }
            LayerKind::DepthwiseConv2d { win } => {
                let (x, xs) = input(0);
                depthwise::depthwise_conv2d(x, *xs, &w(name, "depthwise_kernel"), win)
            }
            LayerKind::BatchNorm(spec) => {
                let (x, xs) = input(0);
                let gamma = spec.scale.then(|| w(name, "gamma"));
                let y = batchnorm::batchnorm_inference(x, gamma.as_deref(), &w(name, "beta"), &w(name, "moving_mean"), &w(name, "moving_variance"), spec.epsilon as f64);
                (y, *xs)
            }
            LayerKind::Relu => (elementwise::relu(&input(0).0), input(0).1),
            LayerKind::Relu6 => (elementwise::relu6(&input(0).0), input(0).1),
            LayerKind::ZeroPad(pads) => pad::zero_pad2d(&input(0).0, input(0).1, *pads),
            LayerKind::MaxPool(win) => pool::max_pool2d(&input(0).0, input(0).1, win),
            LayerKind::AvgPool(win) => pool::avg_pool2d(&input(0).0, input(0).1, win),
            LayerKind::Concat => {
                let parts: Vec<(&[f64], usize)> = (0..layer.inputs.len()).map(|k| (input(k).0.as_slice(), input(k).1[3])).collect();
                let [n, h, wd, _] = input(0).1;
                (concat::concat_channels(&parts), [n, h, wd, parts.iter().map(|p| p.1).sum()])
            }
            LayerKind::Add => {
                let mut sum = input(0).0.clone();
                for k in 1..layer.inputs.len() {
                    sum = elementwise::add(&sum, &input(k).0);
                }
                (sum, input(0).1)
            }
        };
        values.insert(l, out);
    }
}

/// Every layer's value for the batch `x` of shape `xs` (NHWC), by creation index.
pub fn forward(graph: &Graph, weights: &TensorMap, x: &[f64], xs: [usize; 4]) -> HashMap<usize, Value> {
    let mut values = HashMap::from([(0, (x.to_vec(), xs))]);
    run_layers(graph, weights, &mut values, |l| l > 0);
    values
}
