// Naive matrix product, the oracle and the lesson for the faster variants:
//   matmul  c = op(a) · op(b)                         c: [M, N]
//   dense   y = relu?(op(a) · op(b) + bias)           bias: [N], y: [M, N]
// op(a) is [M, K]: a stored row-major as [M, K], or as [K, M] when TRANS_A.
// op(b) is [K, N]: b stored row-major as [K, N], or as [N, K] when TRANS_B.
// Tiling: one invocation per output element; workgroup 16×16 with x along
// columns (n) and y along rows (m); invocations past M or N return early.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override RELU: bool = false;

struct Params {
    m: u32,
    n: u32,
    k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn a_at(row: u32, kk: u32) -> f32 {
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn b_at(kk: u32, col: u32) -> f32 {
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

fn dot_row_col(row: u32, col: u32) -> f32 {
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        acc = fma(a_at(row, kk), b_at(kk, col), acc);
    }
    return acc;
}

// ---- matmul: a, b → c ----
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (row >= p.m || col >= p.n) {
        return;
    }
    c[row * p.n + col] = dot_row_col(row, col);
}

// ---- dense: a, b, bias → y ----
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(16, 16)
fn dense(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (row >= p.m || col >= p.n) {
        return;
    }
    let v = dot_row_col(row, col) + bias[col];
    y[row * p.n + col] = select(v, max(v, 0.0), RELU);
}
