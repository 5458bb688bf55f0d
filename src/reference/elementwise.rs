//! CPU references for `ops::elementwise`.

pub fn relu(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

pub fn relu_backward(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter().zip(dy).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect()
}
