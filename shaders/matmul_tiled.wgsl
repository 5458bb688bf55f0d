// Shared-memory tiled matrix product for GPUs:
//   matmul  c = op(a) · op(b)                         c: [M, N]
//   dense   y = relu?(op(a) · op(b) + bias)           bias: [N], y: [M, N]
// op(a) is [M, K]: a stored row-major as [M, K], or as [K, M] when TRANS_A.
// op(b) is [K, N]: b stored row-major as [K, N], or as [N, K] when TRANS_B.
// Tiling: a workgroup of 16×16 invocations computes a 64×64 output tile,
// each invocation 4×4 outputs strided by 16 (rows ty + 16i, columns tx + 16j,
// so shared-memory reads are broadcasts or consecutive and global stores
// coalesce). K is walked in steps of 16: the workgroup stages a 64×16 slice of
// op(a) and a 16×64 slice of op(b) in workgroup memory (k-major, rows padded
// by one against bank conflicts), out-of-range elements as zeros, with a
// barrier before and after the 16 rank-1 updates. Staging loads walk the
// operand's contiguous dimension across neighbouring invocations.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override RELU: bool = false;

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
const PER_THREAD: u32 = 4u;
const THREADS: u32 = 256u;
const STRIDE: u32 = TILE + 1u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

// a_tile[kk * STRIDE + row] = op(a)[row0 + row, k0 + kk]; b_tile likewise by column.
var<workgroup> a_tile: array<f32, TILE_K * STRIDE>;
var<workgroup> b_tile: array<f32, TILE_K * STRIDE>;

fn a_at(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn b_at(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

// Stages the k-slice starting at k0; invocation `t` loads 4 elements of each tile.
fn stage(t: u32, row0: u32, col0: u32, k0: u32) {
    for (var r = 0u; r < TILE * TILE_K / THREADS; r++) {
        let e = t + r * THREADS;
        // Neighbouring invocations read neighbouring addresses of the stored operand.
        var kk = e % TILE_K;
        var row = e / TILE_K;
        if (TRANS_A) {
            kk = e / TILE;
            row = e % TILE;
        }
        a_tile[kk * STRIDE + row] = a_at(row0 + row, k0 + kk);
        var bk = e / TILE;
        var col = e % TILE;
        if (TRANS_B) {
            bk = e % TILE_K;
            col = e / TILE_K;
        }
        b_tile[bk * STRIDE + col] = b_at(k0 + bk, col0 + col);
    }
}

fn tile_product(lid: vec3<u32>, wid: vec3<u32>) -> array<vec4<f32>, 4> {
    let t = lid.y * 16u + lid.x;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    // acc[i][j]: output (row0 + ty + 16i, col0 + tx + 16j).
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        stage(t, row0, col0, k0);
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let base = kk * STRIDE;
            let bv = vec4(b_tile[base + lid.x], b_tile[base + lid.x + 16u], b_tile[base + lid.x + 32u], b_tile[base + lid.x + 48u]);
            for (var i = 0u; i < PER_THREAD; i++) {
                acc[i] = fma(vec4(a_tile[base + lid.y + 16u * i]), bv, acc[i]);
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// ---- matmul: a, b → c ----
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Every invocation takes part in the barriers; only the stores are guarded.
    let acc = tile_product(lid, wid);
    for (var i = 0u; i < PER_THREAD; i++) {
        let row = wid.y * TILE + lid.y + 16u * i;
        for (var j = 0u; j < PER_THREAD; j++) {
            let col = wid.x * TILE + lid.x + 16u * j;
            if (row < p.m && col < p.n) {
                c[row * p.n + col] = acc[i][j];
            }
        }
    }
}

// ---- dense: a, b, bias → y ----
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(16, 16)
fn dense(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let acc = tile_product(lid, wid);
    for (var i = 0u; i < PER_THREAD; i++) {
        let row = wid.y * TILE + lid.y + 16u * i;
        for (var j = 0u; j < PER_THREAD; j++) {
            let col = wid.x * TILE + lid.x + 16u * j;
            if (row < p.m && col < p.n) {
                let v = acc[i][j] + bias[col];
                y[row * p.n + col] = select(v, max(v, 0.0), RELU);
            }
        }
    }
}
