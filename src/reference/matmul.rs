//! CPU references for `ops::matmul` (row-major, f64), and the backward of a
//! Dense layer written with the transposed products.

/// `a` [m, k] · `b` [k, n] → [m, n].
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    assert_eq!((a.len(), b.len()), (m * k, k * n), "matmul reference: lengths");
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for kk in 0..k {
            let av = a[i * k + kk];
            for j in 0..n {
                c[i * n + j] += av * b[kk * n + j];
            }
        }
    }
    c
}

/// `a` [rows, cols] → [cols, rows].
pub fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

/// `aᵀ·b`: a [k, m], b [k, n] → [m, n].
pub fn matmul_tn(a: &[f64], b: &[f64], k: usize, m: usize, n: usize) -> Vec<f64> {
    matmul(&transpose(a, k, m), b, m, k, n)
}

/// `a·bᵀ`: a [m, k], b [n, k] → [m, n].
pub fn matmul_nt(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    matmul(a, &transpose(b, n, k), m, k, n)
}

/// `relu?(x·w + bias)`: x [m, k], w [k, n], bias [n].
pub fn dense(x: &[f64], w: &[f64], bias: &[f64], m: usize, k: usize, n: usize, relu: bool) -> Vec<f64> {
    let mut y = matmul(x, w, m, k, n);
    for row in y.chunks_mut(n) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
            if relu {
                *v = v.max(0.0);
            }
        }
    }
    y
}

/// Gradients of a Dense layer with respect to its input, weights and bias.
pub struct DenseGrads {
    pub dx: Vec<f64>,
    pub dw: Vec<f64>,
    pub dbias: Vec<f64>,
}

/// Backward of `dense` from its saved output `y` and the upstream gradient `dy`:
/// g = dy ⊙ (y > 0) when `relu` (else dy); dx = g·wᵀ, dw = xᵀ·g, dbias = Σ_rows g.
/// `[m, k, n]` are the forward's sizes.
pub fn dense_backward(x: &[f64], w: &[f64], y: &[f64], dy: &[f64], [m, k, n]: [usize; 3], relu: bool) -> DenseGrads {
    let g: Vec<f64> = y.iter().zip(dy).map(|(&y, &d)| if !relu || y > 0.0 { d } else { 0.0 }).collect();
    let mut dbias = vec![0.0; n];
    for row in g.chunks(n) {
        for (s, &v) in dbias.iter_mut().zip(row) {
            *s += v;
        }
    }
    DenseGrads { dx: matmul_nt(&g, w, m, n, k), dw: matmul_tn(x, &g, m, k, n), dbias }
}
