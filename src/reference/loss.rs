//! CPU references for `ops::loss` (rows of `cols` classes, row-major).

pub fn softmax(logits: &[f64], cols: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(cols) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|&x| (x - m).exp()).sum();
        out.extend(row.iter().map(|&x| (x - m).exp() / s));
    }
    out
}

/// (mean over rows of −Σ t·log softmax(x), softmax probabilities).
pub fn softmax_cross_entropy(logits: &[f64], targets: &[f64], cols: usize) -> (f64, Vec<f64>) {
    weighted_softmax_cross_entropy(logits, targets, &vec![1.0; logits.len() / cols], cols)
}

/// (Σ over rows of w·(−Σ t·log softmax(x)) / rows, softmax probabilities):
/// Keras 3's `sum_over_batch_size` of a loss with one weight per row.
pub fn weighted_softmax_cross_entropy(logits: &[f64], targets: &[f64], weights: &[f64], cols: usize) -> (f64, Vec<f64>) {
    let rows = logits.len() / cols;
    let mut total = 0.0;
    for ((x, t), w) in logits.chunks(cols).zip(targets.chunks(cols)).zip(weights) {
        // log Σ exp(v − m) = log1p(Σ over all but the maximum), exact even
        // for a confidently correct row whose loss is far below 1e-16.
        let top = argmax(x);
        let m = x[top];
        let rest: f64 = x.iter().enumerate().filter(|&(i, _)| i != top).map(|(_, &v)| (v - m).exp()).sum();
        let log_sum = rest.ln_1p();
        total += w * x.iter().zip(t).map(|(&v, &t)| t * (log_sum - (v - m))).sum::<f64>();
    }
    (total / rows as f64, softmax(logits, cols))
}

/// Gradient of the mean loss: (probs − targets) / rows.
pub fn softmax_cross_entropy_backward(probs: &[f64], targets: &[f64], cols: usize) -> Vec<f64> {
    weighted_softmax_cross_entropy_backward(probs, targets, &vec![1.0; probs.len() / cols], cols)
}

/// Gradient of the weighted loss: (probs − targets)·w_row / rows.
pub fn weighted_softmax_cross_entropy_backward(probs: &[f64], targets: &[f64], weights: &[f64], cols: usize) -> Vec<f64> {
    let rows = (probs.len() / cols) as f64;
    probs.iter().zip(targets).enumerate().map(|(i, (&p, &t))| (p - t) * weights[i / cols] / rows).collect()
}

/// Index of the largest value (the first one on ties).
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Rows whose argmax of the logits equals the argmax of the targets.
pub fn correct_count(logits: &[f64], targets: &[f64], cols: usize) -> u32 {
    logits.chunks(cols).zip(targets.chunks(cols)).filter(|(x, t)| argmax(x) == argmax(t)).count() as u32
}
