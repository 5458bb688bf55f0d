//! CPU references for `ops::batchnorm`, f64: y = γ·(x − mean)/sqrt(var + eps) + β,
//! with γ = `None` for Keras `scale=False` (γ = 1). Data is viewed as [M, C]:
//! the last axis is the channel, every other axis is a row of the per-channel
//! statistics.

/// Per-channel mean and biased variance (divide by M) of `x` viewed as [M, c].
pub fn batch_stats(x: &[f64], c: usize) -> (Vec<f64>, Vec<f64>) {
    let m = (x.len() / c) as f64;
    let mut mean = vec![0.0; c];
    for row in x.chunks(c) {
        for (s, &v) in mean.iter_mut().zip(row) {
            *s += v;
        }
    }
    mean.iter_mut().for_each(|s| *s /= m);
    let mut var = vec![0.0; c];
    for row in x.chunks(c) {
        for ((s, &v), &mu) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - mu) * (v - mu);
        }
    }
    var.iter_mut().for_each(|s| *s /= m);
    (mean, var)
}

pub fn inv_std(var: &[f64], eps: f64) -> Vec<f64> {
    var.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect()
}

/// γ·s per channel (s when γ is `None`).
fn gamma_times(gamma: Option<&[f64]>, s: &[f64]) -> Vec<f64> {
    match gamma {
        Some(g) => g.iter().zip(s).map(|(&g, &s)| g * s).collect(),
        None => s.to_vec(),
    }
}

/// x̂ = (x − mean)·inv_std per element.
fn x_hat(x: &[f64], mean: &[f64], inv_std: &[f64]) -> Vec<f64> {
    let c = mean.len();
    x.iter().enumerate().map(|(i, &v)| (v - mean[i % c]) * inv_std[i % c]).collect()
}

/// Σ over rows of `v` viewed as [M, c].
fn channel_sums(v: &[f64], c: usize) -> Vec<f64> {
    let mut out = vec![0.0; c];
    for (i, &g) in v.iter().enumerate() {
        out[i % c] += g;
    }
    out
}

/// y = γ·(x − mean)·inv_std + beta per channel.
pub fn normalize(x: &[f64], gamma: Option<&[f64]>, beta: &[f64], mean: &[f64], inv_std: &[f64]) -> Vec<f64> {
    let c = beta.len();
    let scale = gamma_times(gamma, inv_std);
    x.iter().enumerate().map(|(i, &v)| (v - mean[i % c]) * scale[i % c] + beta[i % c]).collect()
}

pub fn batchnorm_inference(x: &[f64], gamma: Option<&[f64]>, beta: &[f64], moving_mean: &[f64], moving_var: &[f64], eps: f64) -> Vec<f64> {
    normalize(x, gamma, beta, moving_mean, &inv_std(moving_var, eps))
}

/// Training mode: returns (y, batch mean, batch biased variance).
pub fn batchnorm_train(x: &[f64], gamma: Option<&[f64]>, beta: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats(x, beta.len());
    (normalize(x, gamma, beta, &mean, &inv_std(&var, eps)), mean, var)
}

/// (scale, bias) with x·scale + bias == batchnorm_inference(x):
/// scale = γ/sqrt(var + eps), bias = β − mean·scale.
pub fn fold_batchnorm(gamma: Option<&[f64]>, beta: &[f64], moving_mean: &[f64], moving_var: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>) {
    let scale = gamma_times(gamma, &inv_std(moving_var, eps));
    let bias = beta.iter().zip(moving_mean).zip(&scale).map(|((&b, &m), &s)| b - m * s).collect();
    (scale, bias)
}

/// x·scale + bias per channel (the folded form).
pub fn channel_affine(x: &[f64], scale: &[f64], bias: &[f64]) -> Vec<f64> {
    let c = scale.len();
    x.iter().enumerate().map(|(i, &v)| v * scale[i % c] + bias[i % c]).collect()
}

/// Keras 3: moving = moving·momentum + batch·(1 − momentum), with the biased batch variance.
pub fn update_moving_stats(
    moving_mean: &[f64],
    moving_var: &[f64],
    mean: &[f64],
    var: &[f64],
    momentum: f64,
) -> (Vec<f64>, Vec<f64>) {
    let ema = |m: &[f64], b: &[f64]| m.iter().zip(b).map(|(&m, &b)| m * momentum + b * (1.0 - momentum)).collect();
    (ema(moving_mean, mean), ema(moving_var, var))
}

/// Training-mode backward through the batch statistics: returns (dx, dgamma, dbeta).
/// dx = γ·s·(dy − mean(dy) − x̂·mean(dy·x̂)), dgamma = Σ dy·x̂, dbeta = Σ dy, with
/// x̂ = (x − μ)·s, s = 1/sqrt(var + eps). dgamma is what γ receives (at γ = 1 when
/// `gamma` is `None`, where no layer has one).
pub fn batchnorm_train_backward(x: &[f64], dy: &[f64], gamma: Option<&[f64]>, c: usize, eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let m = (x.len() / c) as f64;
    let (mean, var) = batch_stats(x, c);
    let s = inv_std(&var, eps);
    let scale = gamma_times(gamma, &s);
    let xhat = x_hat(x, &mean, &s);
    let sum_dy = channel_sums(dy, c);
    let dy_xhat: Vec<f64> = dy.iter().zip(&xhat).map(|(&g, &xh)| g * xh).collect();
    let sum_dy_xhat = channel_sums(&dy_xhat, c);
    let dx = dy
        .iter()
        .zip(&xhat)
        .enumerate()
        .map(|(i, (&g, &xh))| {
            let k = i % c;
            scale[k] * (g - sum_dy[k] / m - xh * sum_dy_xhat[k] / m)
        })
        .collect();
    (dx, sum_dy_xhat, sum_dy)
}

/// Inference-mode backward (moving statistics are constants): returns
/// (dx = dy·γ·s, dgamma = Σ dy·x̂, dbeta = Σ dy), x̂ = (x − moving_mean)·s.
pub fn batchnorm_inference_backward(
    x: &[f64],
    dy: &[f64],
    gamma: Option<&[f64]>,
    moving_mean: &[f64],
    moving_var: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let c = moving_var.len();
    let s = inv_std(moving_var, eps);
    let scale = gamma_times(gamma, &s);
    let dx = dy.iter().enumerate().map(|(i, &g)| g * scale[i % c]).collect();
    let dy_xhat: Vec<f64> = dy.iter().zip(x_hat(x, moving_mean, &s)).map(|(&g, xh)| g * xh).collect();
    (dx, channel_sums(&dy_xhat, c), channel_sums(dy, c))
}
