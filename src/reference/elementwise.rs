//! CPU references for `ops::elementwise`.

pub fn relu(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

pub fn relu_backward(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter().zip(dy).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect()
}

/// min(max(x, 0), 6).
pub fn relu6(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.clamp(0.0, 6.0)).collect()
}

/// dy where 0 < y < 6 (y the saved output), else 0, as TensorFlow's `Relu6Grad`.
pub fn relu6_backward(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter().zip(dy).map(|(&y, &g)| if y > 0.0 && y < 6.0 { g } else { 0.0 }).collect()
}

pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(&a, &b)| a + b).collect()
}
