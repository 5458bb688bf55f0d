//! Differentiable wrappers: each runs an op's forward kernel and records the
//! kernels of its backward. Gradients are only computed for inputs that
//! need one.

use super::Var;
use crate::error::Result;
use crate::ops::{batchnorm, concat, conv, conv_backward, depthwise, dropout as drop, elementwise, loss, matmul, pad, pool, reduce};
use crate::ops::batchnorm::BatchStats;
use crate::ops::window::Window2d;
use crate::tensor::Tensor;
use std::sync::Arc;

pub fn relu(x: &Var) -> Result<Var> {
    let y = elementwise::relu(x.value())?;
    let saved = y.clone();
    Ok(Var::from_op("relu", y, &[x], move |dy, _| Ok(vec![Some(elementwise::relu_backward(&saved, dy)?)])))
}

/// min(max(x, 0), 6) (Keras ReLU(max_value=6)); its backward uses the saved output.
pub fn relu6(x: &Var) -> Result<Var> {
    let y = elementwise::relu6(x.value())?;
    let saved = y.clone();
    Ok(Var::from_op("relu6", y, &[x], move |dy, _| Ok(vec![Some(elementwise::relu6_backward(&saved, dy)?)])))
}

/// a + b (Keras Add, residual connections): the gradient goes to both inputs.
pub fn add(a: &Var, b: &Var) -> Result<Var> {
    let y = elementwise::add(a.value(), b.value())?;
    Ok(Var::from_op("add", y, &[a, b], |dy, _| Ok(vec![Some(dy.clone()), Some(dy.clone())])))
}

/// Same data in a new shape (Keras Flatten, Reshape).
pub fn reshape(x: &Var, shape: &[usize]) -> Result<Var> {
    let y = x.value().reshape(shape)?;
    let in_shape = x.shape().to_vec();
    Ok(Var::from_op("reshape", y, &[x], move |dy, _| Ok(vec![Some(dy.reshape(&in_shape)?)])))
}

/// Convolution without bias (Keras Conv2D(use_bias=False)); x NHWC, w HWIO.
pub fn conv2d(x: &Var, w: &Var, win: Window2d) -> Result<Var> {
    let y = conv::conv2d(x.value(), w.value(), &win)?;
    let (xs, ws) = (x.value().clone(), w.value().clone());
    Ok(Var::from_op("conv2d", y, &[x, w], move |dy, need| {
        let dx = if need[0] { Some(conv_backward::conv2d_backward_input(dy, &ws, &win, xs.dims4()?)?) } else { None };
        let dw = if need[1] { Some(conv_backward::conv2d_backward_filter(&xs, dy, &win, ws.dims4()?)?) } else { None };
        Ok(vec![dx, dw])
    }))
}

/// Depthwise convolution without bias (Keras DepthwiseConv2D(use_bias=False),
/// depth_multiplier 1); x NHWC [n, h, w, c], w [kh, kw, c, 1].
pub fn depthwise_conv2d(x: &Var, w: &Var, win: Window2d) -> Result<Var> {
    let y = depthwise::depthwise_conv2d(x.value(), w.value(), &win)?;
    let (xs, ws) = (x.value().clone(), w.value().clone());
    Ok(Var::from_op("depthwise_conv2d", y, &[x, w], move |dy, need| {
        let dx = if need[0] { Some(depthwise::depthwise_conv2d_backward_input(dy, &ws, &win, xs.dims4()?)?) } else { None };
        let dw = if need[1] { Some(depthwise::depthwise_conv2d_backward_filter(&xs, dy, &win, ws.dims4()?)?) } else { None };
        Ok(vec![dx, dw])
    }))
}

/// The inputs a batch-norm node records: x, gamma when present, beta.
fn bn_inputs<'a>(x: &'a Var, gamma: Option<&'a Var>, beta: &'a Var) -> Vec<&'a Var> {
    std::iter::once(x).chain(gamma).chain(std::iter::once(beta)).collect()
}

/// The gradients in [`bn_inputs`] order.
fn bn_grads(dx: Tensor, dgamma: Option<Tensor>, dbeta: Tensor) -> Vec<Option<Tensor>> {
    let mut out = vec![Some(dx)];
    if dgamma.is_some() {
        out.push(dgamma);
    }
    out.push(Some(dbeta));
    out
}

/// BatchNormalization in training mode: normalises with the batch statistics,
/// which are returned for the moving-average update. `gamma` `None` is Keras
/// `scale=False`.
pub fn batch_norm_train(x: &Var, gamma: Option<&Var>, beta: &Var, eps: f32) -> Result<(Var, Arc<BatchStats>)> {
    let (y, stats) = batchnorm::batchnorm_train(x.value(), gamma.map(Var::value), beta.value(), eps)?;
    let stats = Arc::new(stats);
    let (xs, gs, st) = (x.value().clone(), gamma.map(|g| g.value().clone()), stats.clone());
    let y = Var::from_op("batch_norm_train", y, &bn_inputs(x, gamma, beta), move |dy, _| {
        let (dx, dgamma, dbeta) = batchnorm::batchnorm_train_backward(&xs, dy, gs.as_ref(), &st)?;
        Ok(bn_grads(dx, dgamma, dbeta))
    });
    Ok((y, stats))
}

/// BatchNormalization with moving statistics (frozen layers, inference).
/// `gamma` `None` is Keras `scale=False`.
pub fn batch_norm_inference(x: &Var, gamma: Option<&Var>, beta: &Var, moving_mean: &Tensor, moving_var: &Tensor, eps: f32) -> Result<Var> {
    let y = batchnorm::batchnorm_inference(x.value(), gamma.map(Var::value), beta.value(), moving_mean, moving_var, eps)?;
    let (mean, var) = (moving_mean.clone(), moving_var.clone());
    // x is needed only for dgamma: without gamma the node keeps no activation.
    let (xs, gs) = (gamma.map(|_| x.value().clone()), gamma.map(|g| g.value().clone()));
    Ok(Var::from_op("batch_norm_inference", y, &bn_inputs(x, gamma, beta), move |dy, _| {
        let (dx, dgamma, dbeta) = batchnorm::batchnorm_inference_backward(xs.as_ref().unwrap_or(dy), dy, gs.as_ref(), &mean, &var, eps)?;
        Ok(bn_grads(dx, dgamma, dbeta))
    }))
}

/// Keras ZeroPadding2D, `pads` = [top, bottom, left, right]; the gradient is
/// the interior of dy.
pub fn zero_pad2d(x: &Var, pads: [usize; 4]) -> Result<Var> {
    let y = pad::zero_pad2d(x.value(), pads)?;
    Ok(Var::from_op("zero_pad2d", y, &[x], move |dy, _| Ok(vec![Some(pad::crop2d(dy, pads)?)])))
}

pub fn max_pool2d(x: &Var, win: Window2d) -> Result<Var> {
    let y = pool::max_pool2d(x.value(), &win)?;
    let xs = x.value().clone();
    Ok(Var::from_op("max_pool2d", y, &[x], move |dy, _| Ok(vec![Some(pool::max_pool2d_backward(&xs, dy, &win)?)])))
}

pub fn avg_pool2d(x: &Var, win: Window2d) -> Result<Var> {
    let y = pool::avg_pool2d(x.value(), &win)?;
    let shape = x.value().dims4()?;
    Ok(Var::from_op("avg_pool2d", y, &[x], move |dy, _| Ok(vec![Some(pool::avg_pool2d_backward(dy, &win, shape)?)])))
}

pub fn global_avg_pool(x: &Var) -> Result<Var> {
    let y = pool::global_avg_pool(x.value())?;
    let shape = x.value().dims4()?;
    Ok(Var::from_op("global_avg_pool", y, &[x], move |dy, _| Ok(vec![Some(pool::global_avg_pool_backward(dy, shape)?)])))
}

/// Keras Dense: `relu?(x·w + b)`, x [M,K], w [K,N], b [N].
pub fn dense(x: &Var, w: &Var, b: &Var, relu: bool) -> Result<Var> {
    let y = matmul::dense(x.value(), w.value(), b.value(), relu)?;
    let (xs, ws, ys) = (x.value().clone(), w.value().clone(), y.clone());
    Ok(Var::from_op("dense", y, &[x, w, b], move |dy, need| {
        let dz = if relu { elementwise::relu_backward(&ys, dy)? } else { dy.clone() };
        let dx = if need[0] { Some(matmul::matmul_nt(&dz, &ws)?) } else { None };
        let dw = if need[1] { Some(matmul::matmul_tn(&xs, &dz)?) } else { None };
        let db = if need[2] { Some(reduce::sum_rows(&dz)?) } else { None };
        Ok(vec![dx, dw, db])
    }))
}

/// Inverted dropout with a mask derived from `seed` (pass a new seed each step).
pub fn dropout(x: &Var, rate: f32, seed: u64) -> Result<Var> {
    let y = drop::dropout(x.value(), rate, seed)?;
    Ok(Var::from_op("dropout", y, &[x], move |dy, _| Ok(vec![Some(drop::dropout_backward(dy, rate, seed)?)])))
}

/// Concatenation along channels (last axis) of NHWC tensors with equal n, h, w.
pub fn concat_channels(parts: &[&Var]) -> Result<Var> {
    let tensors: Vec<&Tensor> = parts.iter().map(|v| v.value()).collect();
    let y = concat::concat_channels(&tensors)?;
    let widths: Vec<usize> = parts.iter().map(|v| *v.shape().last().unwrap_or(&0)).collect();
    Ok(Var::from_op("concat_channels", y, parts, move |dy, need| {
        let mut offset = 0;
        let mut out = Vec::with_capacity(widths.len());
        for (&c, &n) in widths.iter().zip(need) {
            out.push(if n { Some(concat::slice_channels(dy, offset, c)?) } else { None });
            offset += c;
        }
        Ok(out)
    }))
}

/// Mean categorical cross-entropy of softmax(logits) against `targets`
/// (one-hot or soft rows), fused for stability. Returns the scalar loss and
/// the probabilities (for metrics).
pub fn softmax_cross_entropy(logits: &Var, targets: &Tensor) -> Result<(Var, Tensor)> {
    weighted_softmax_cross_entropy(logits, targets, None)
}

/// [`softmax_cross_entropy`] with one loss weight per sample (`weights`
/// `[N]`, Keras `sample_weight`): Σ w·loss / N, the reduction Keras 3
/// applies (`sum_over_batch_size`). `None` weighs every sample 1.
pub fn weighted_softmax_cross_entropy(logits: &Var, targets: &Tensor, weights: Option<&Tensor>) -> Result<(Var, Tensor)> {
    let (l, probs) = loss::weighted_softmax_cross_entropy(logits.value(), targets, weights)?;
    let (p, t, w) = (probs.clone(), targets.clone(), weights.cloned());
    let l = Var::from_op("softmax_cross_entropy", l, &[logits], move |dy, _| {
        let g = loss::weighted_softmax_cross_entropy_backward(&p, &t, w.as_ref())?;
        Ok(vec![Some(elementwise::mul_by_scalar(&g, dy)?)])
    });
    Ok((l, probs))
}
