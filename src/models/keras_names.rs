//! Keras's auto-generated layer names, which incept's weight names follow
//! so that a file converted from Keras and a run's checkpoint agree.

/// Keras 3 name of the k-th Dense layer: `dense`, `dense_1`, …
pub fn dense_name(k: usize) -> String {
    if k == 0 { "dense".into() } else { format!("dense_{k}") }
}
