//! CPU references for `ops::reduce`.

/// Column sums of `x` viewed as `[x.len() / cols, cols]`.
pub fn sum_rows(x: &[f64], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for row in x.chunks(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out
}

pub fn sum_all(x: &[f64]) -> f64 {
    x.iter().sum()
}
