// Register-blocked matrix product without workgroup memory or barriers, for
// CPU adapters (lavapipe runs a workgroup on one thread, 8-wide SIMD, where
// barriers are very expensive):
//   matmul  c = op(a) · op(b)                         c: [M, N]
//   dense   y = relu?(op(a) · op(b) + bias)           bias: [N], y: [M, N]
// op(a) is [M, K]: a stored row-major as [M, K], or as [K, M] when TRANS_A.
// op(b) is [K, N]: b stored row-major as [K, N], or as [N, K] when TRANS_B.
// Tiling: each invocation computes an 8×8 block of outputs, kept as 16 vec4
// accumulators; per k it reads 8 values of op(a) (one per row, as scalars)
// and 8 of op(b) (one per column, as two vec4) and does 16 vec4 FMAs.
// Workgroup 16×4: x along column blocks, y along row blocks, so a workgroup
// covers 32 rows × 128 columns.
// Edges and N % 4 ≠ 0: each vec4 of op(b) is assembled from four scalar loads
// at column indices clamped into [0, N) (rows of op(a) likewise clamped into
// [0, M)), so loads stay in bounds without a per-k test, no alignment of N is
// needed, and transposed b takes the same path; only outputs that exist are
// stored, so any M, N, K works. (Binding b as array<vec4<f32>>, possible only
// for untransposed b with N % 4 = 0, measured no faster on lavapipe.)

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override RELU: bool = false;

const BLOCK: u32 = 8u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

// Accumulates the 8×8 block whose top-left output is (row0, col0);
// acc[2 * i] holds columns col0..col0+3 of row row0 + i, acc[2 * i + 1] the next four.
fn block_product(row0: u32, col0: u32) -> array<vec4<f32>, 16> {
    // Element offsets of each clamped row of op(a) and column of op(b), and
    // the step from one k to the next.
    var a_off: array<u32, 8>;
    var b_off: array<u32, 8>;
    for (var i = 0u; i < BLOCK; i++) {
        let row = min(row0 + i, p.m - 1u);
        let col = min(col0 + i, p.n - 1u);
        a_off[i] = select(row * p.k, row, TRANS_A);
        b_off[i] = select(col, col * p.k, TRANS_B);
    }
    let a_step = select(1u, p.m, TRANS_A);
    let b_step = select(p.n, 1u, TRANS_B);

    var acc: array<vec4<f32>, 16>;
    for (var kk = 0u; kk < p.k; kk++) {
        let ak = kk * a_step;
        let bk = kk * b_step;
        let b_lo = vec4(b[b_off[0] + bk], b[b_off[1] + bk], b[b_off[2] + bk], b[b_off[3] + bk]);
        let b_hi = vec4(b[b_off[4] + bk], b[b_off[5] + bk], b[b_off[6] + bk], b[b_off[7] + bk]);
        for (var i = 0u; i < BLOCK; i++) {
            let av = a[a_off[i] + ak];
            acc[2u * i] = fma(vec4(av), b_lo, acc[2u * i]);
            acc[2u * i + 1u] = fma(vec4(av), b_hi, acc[2u * i + 1u]);
        }
    }
    return acc;
}

// ---- matmul: a, b → c ----
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 4)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * BLOCK;
    let col0 = gid.x * BLOCK;
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    let acc = block_product(row0, col0);
    for (var i = 0u; i < BLOCK && row0 + i < p.m; i++) {
        for (var j = 0u; j < BLOCK && col0 + j < p.n; j++) {
            c[(row0 + i) * p.n + col0 + j] = acc[2u * i + j / 4u][j % 4u];
        }
    }
}

// ---- dense: a, b, bias → y ----
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(16, 4)
fn dense(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * BLOCK;
    let col0 = gid.x * BLOCK;
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    let acc = block_product(row0, col0);
    for (var i = 0u; i < BLOCK && row0 + i < p.m; i++) {
        for (var j = 0u; j < BLOCK && col0 + j < p.n; j++) {
            let v = acc[2u * i + j / 4u][j % 4u] + bias[col0 + j];
            y[(row0 + i) * p.n + col0 + j] = select(v, max(v, 0.0), RELU);
        }
    }
}
