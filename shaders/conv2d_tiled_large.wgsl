// Forward 2-D convolution for GPUs, high-throughput form: implicit GEMM with
// large shared-memory tiles, an 8×4 register block per invocation, vec4
// workgroup-memory reads, double buffering and an optional split of K.
//
//   out[b, oy, ox, out_offset + co] = act(conv(x, w)[b, oy, ox, co] * scale[co] + bias[co])
//
// Layouts (f32): x NHWC [batch, in_h, in_w, cin]; w HWIO [kh, kw, cin, cout],
// i.e. a row-major [K = kh*kw*cin, cout] matrix; scale and bias [cout];
// out NHWC [batch, out_h, out_w, out_stride] written only in channels
// [out_offset, out_offset + cout). Taps outside the input read zero padding.
// When scale or bias is absent the launcher binds another read-only tensor in
// its slot and clears the matching `epilogue` bit, so the slot is never read.
//
// Implicit GEMM: row m = b*out_h*out_w + oy*out_w + ox, column co, and
// k = (ky*kw + kx)*cin + ci. The A tile (BM rows × BK of k) is gathered from
// x on the fly (im2col without the copy), the B tile (BK × BN) is a block of w.
//
// Tiling: a workgroup of 256 invocations computes a BM×BN = 128×64 output
// tile, stepping through its range of K by BK = 8.
// - Loads (global → registers): invocation t reads 4 consecutive k of pixel
//   row t/2 (k-quad t%2), so a warp reads 16 rows × 32 contiguous bytes; the
//   first 128 invocations also read 4 consecutive columns of w at k = t/16,
//   so a warp reads 256 contiguous bytes of each of two rows of w.
// - Workgroup memory, two stages (one computes while the other fills):
//   A stored transposed as [k][m] (see `a_slot` for the bank swizzle) and B
//   as [k][n], both read as vec4; 12 KiB in all.
// - Compute: invocation (tm, tn) = (t/16, t%16) owns rows 4tm..4tm+3 and
//   64+4tm..64+4tm+3 and columns 4tn..4tn+3 of the tile (8 vec4 accumulators);
//   per k it reads two vec4 of A and one of B and does 32 FMAs. A warp reads
//   2 distinct A vec4 (broadcast) and 16 consecutive B vec4: no bank conflicts.
// - Pipelining: the next step's global loads are issued before computing on
//   the current stage and stored to the other stage after it, so each step
//   needs one barrier. Every invocation runs the same loop and reaches every
//   barrier; out-of-range rows, columns and k load zeros and are not stored.
//
// Grid: x (folded into z past the dispatch limit: row tile = wid.x + wid.z *
// nwg.x) over row tiles; y = column tile + col_tiles * split. Split-K: when
// the grid has too few tiles to fill the GPU, the launcher gives each split
// the k range [split*k_split, (split+1)*k_split) (k_split a multiple of BK),
// binds a [splits, rows, cout] partial-sum buffer as `out` (out_stride = cout,
// out_offset = 0, no epilogue), and then runs conv2d_tiled_large_reduce, which
// sums the splits in order, applies the epilogue and writes the channel slice.
// Without a split, split = 0 and the tile kernel writes the output directly.
//
// Entry points:
//   conv2d_tiled_large_vec4   cin % 4 == 0 and cout % 4 == 0: x and w read as vec4;
//   conv2d_tiled_large        any cin and cout, scalar loads (same tiles);
//   conv2d_tiled_large_reduce the split-K sum and epilogue, one invocation
//                             per output element, 256 per workgroup (grid
//                             folded into y: linear = gid.x + gid.y * nwg.x * 256).

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    cin: u32,
    out_h: u32,
    out_w: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    rows: u32,       // batch * out_h * out_w
    depth: u32,      // kh * kw * cin
    out_stride: u32, // channels of the output tensor
    out_offset: u32, // first output channel written
    epilogue: u32,   // bit 0: multiply by scale, bit 1: add bias, bit 2: ReLU (max 0), bit 3: cap at 6 (ReLU6 = bits 2 and 3)
    k_split: u32,    // k per split (a multiple of BK; >= depth without a split)
    splits: u32,     // number of splits (read by the reduction only)
}

const EPILOGUE_SCALE: u32 = 1u;
const EPILOGUE_BIAS: u32 = 2u;
const EPILOGUE_RELU: u32 = 4u;
const EPILOGUE_CAP6: u32 = 8u;

const BM: u32 = 128u;
const BN: u32 = 64u;
const BK: u32 = 8u;
// vec4 slots of one stage of each tile.
const A_STAGE: u32 = BK * BM / 4u;
const B_STAGE: u32 = BK * BN / 4u;

// Invocations per workgroup of the split-K reduction, set from the Rust launcher
// (`kernel!(…, workgroup = …)`); the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// The same buffers seen as vec4 (conv2d_tiled_large_vec4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
// The split-K partial sums [splits, rows, cout] (conv2d_tiled_large_reduce only).
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> a_tile: array<vec4<f32>, 2u * A_STAGE>; // [stage][k][m / 4], m swizzled
var<workgroup> b_tile: array<vec4<f32>, 2u * B_STAGE>; // [stage][k][n / 4]

fn epilogue(v: f32, co: u32) -> f32 {
    var r = v;
    if ((p.epilogue & EPILOGUE_SCALE) != 0u) {
        r = r * scale[co];
    }
    if ((p.epilogue & EPILOGUE_BIAS) != 0u) {
        r = r + bias[co];
    }
    if ((p.epilogue & EPILOGUE_RELU) != 0u) {
        r = max(r, 0.0);
    }
    if ((p.epilogue & EPILOGUE_CAP6) != 0u) {
        r = min(r, 6.0);
    }
    return r;
}

// The vec4 slot of A rows m..m+3 (m % 4 == 0) at depth kk of a stage. Rows
// of the second k-quad (kk >= 4) are XOR-ed with 16: the transposed stores of
// a warp (16 rows × 2 k-quads, one k each) then fall in 32 distinct banks,
// while each aligned group of 4 rows stays one vec4.
fn a_slot(stage: u32, kk: u32, m: u32) -> u32 {
    return stage * A_STAGE + kk * (BM / 4u) + ((m ^ ((kk & 4u) << 2u)) >> 2u);
}

// (ky, kx, ci) of a depth k; ky >= kh exactly when k >= depth.
struct Tap {
    ky: u32,
    kx: u32,
    ci: u32,
}

fn tap_of(k: u32) -> Tap {
    let t = k / p.cin;
    return Tap(t / p.kw, t % p.kw, k % p.cin);
}

// The tap of k + n, without divisions.
fn advance(t: Tap, n: u32) -> Tap {
    var r = t;
    r.ci += n;
    while (r.ci >= p.cin) {
        r.ci -= p.cin;
        r.kx += 1u;
        if (r.kx == p.kw) {
            r.kx = 0u;
            r.ky += 1u;
        }
    }
    return r;
}

// An output pixel: whether it exists, b * in_h, and the input row and column
// of its top-left tap (negative inside the padding).
struct Pixel {
    ok: bool,
    b_in: u32,
    iy: i32,
    ix: i32,
}

fn pixel(m: u32) -> Pixel {
    let row = min(m, p.rows - 1u);
    let ox = row % p.out_w;
    let oy = (row / p.out_w) % p.out_h;
    let b = row / (p.out_w * p.out_h);
    return Pixel(m < p.rows, b * p.in_h, i32(oy * p.stride_h) - i32(p.pad_top), i32(ox * p.stride_w) - i32(p.pad_left));
}

// Whether tap t of pixel q is a real input value (not padding, not past K).
fn inside(q: Pixel, t: Tap) -> bool {
    let iy = q.iy + i32(t.ky);
    let ix = q.ix + i32(t.kx);
    return q.ok && t.ky < p.kh && iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w);
}

// Flat x index of tap t of pixel q (only meaningful when `inside`).
fn x_index(q: Pixel, t: Tap) -> u32 {
    return ((q.b_in + u32(q.iy + i32(t.ky))) * p.in_w + u32(q.ix + i32(t.kx))) * p.cin + t.ci;
}

// A values at k..k+3 (tap t = tap_of(k), k % 4 == 0, cin % 4 == 0).
fn load_a_vec4(q: Pixel, t: Tap) -> vec4<f32> {
    if (inside(q, t)) {
        return x4[x_index(q, t) / 4u];
    }
    return vec4(0.0);
}

// A values at k..k+3, any cin.
fn load_a(q: Pixel, t: Tap) -> vec4<f32> {
    var v = vec4(0.0);
    var u = t;
    for (var c = 0u; c < 4u; c++) {
        if (inside(q, u)) {
            v[c] = x[x_index(q, u)];
        }
        u = advance(u, 1u);
    }
    return v;
}

// w[k, col..col+3] (col % 4 == 0, cout % 4 == 0).
fn load_b_vec4(k: u32, col: u32) -> vec4<f32> {
    if (k < p.depth && col < p.cout) {
        return w4[(k * p.cout + col) / 4u];
    }
    return vec4(0.0);
}

// w[k, col..col+3], any cout.
fn load_b(k: u32, col: u32) -> vec4<f32> {
    var v = vec4(0.0);
    if (k < p.depth) {
        for (var c = 0u; c < 4u; c++) {
            if (col + c < p.cout) {
                v[c] = w[k * p.cout + col + c];
            }
        }
    }
    return v;
}

// Where a workgroup's tile lies: its first row and column, its split and
// that split's k range as k_begin and a number of BK steps. Depends only on
// the workgroup (uniform), so the step loop may hold barriers.
struct Tile {
    m: u32,
    n: u32,
    split: u32,
    k_begin: u32,
    steps: u32,
}

fn tile_of(wid: vec3<u32>, nwg: vec3<u32>) -> Tile {
    let col_tiles = (p.cout + BN - 1u) / BN;
    let split = wid.y / col_tiles;
    let k_begin = min(split * p.k_split, p.depth);
    let k_end = min(k_begin + p.k_split, p.depth);
    return Tile((wid.x + wid.z * nwg.x) * BM, (wid.y % col_tiles) * BN, split, k_begin, (k_end - k_begin + BK - 1u) / BK);
}

// What an invocation loads each step: A pixel row lid/2 of the tile at the
// k-quad lid%2, and (lid < B_STAGE only) B at k = lid/16, columns
// b_col..b_col+3.
struct Loads {
    a_row: u32,
    a_kq: u32,
    b_k: u32,
    b_col: u32,
    loads_b: bool,
}

fn loads_of(lid: u32, tile: Tile) -> Loads {
    return Loads(lid / 2u, lid % 2u, lid / (BN / 4u), tile.n + 4u * (lid % (BN / 4u)), lid < B_STAGE);
}

// Stores one step's loads into a stage: A transposed (4 k of one row), B as is.
fn store_stage(stage: u32, ld: Loads, lid: u32, a: vec4<f32>, b: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        a_tile[a_slot(stage, 4u * ld.a_kq + c, ld.a_row & ~3u)][ld.a_row & 3u] = a[c];
    }
    if (ld.loads_b) {
        b_tile[stage * B_STAGE + lid] = b;
    }
}

// acc[i] += A[row i] * B[columns 4tn..4tn+3] over the BK depths of a stage;
// rows i = 0..3 are 4tm+i of the tile, rows i = 4..7 are 64+4tm+i-4.
fn multiply(stage: u32, tm: u32, tn: u32, acc_in: array<vec4<f32>, 8>) -> array<vec4<f32>, 8> {
    var acc = acc_in;
    for (var kk = 0u; kk < BK; kk++) {
        let lo = a_tile[a_slot(stage, kk, 4u * tm)];
        let hi = a_tile[a_slot(stage, kk, BM / 2u + 4u * tm)];
        let b = b_tile[stage * B_STAGE + kk * (BN / 4u) + tn];
        acc[0] += lo.x * b;
        acc[1] += lo.y * b;
        acc[2] += lo.z * b;
        acc[3] += lo.w * b;
        acc[4] += hi.x * b;
        acc[5] += hi.y * b;
        acc[6] += hi.z * b;
        acc[7] += hi.w * b;
    }
    return acc;
}

// Applies the epilogue and stores the in-range part of the block of
// invocation (tm, tn) at rows split * rows + m of `out`.
fn store_block(tile: Tile, tm: u32, tn: u32, acc: array<vec4<f32>, 8>) {
    let col = tile.n + 4u * tn;
    for (var i = 0u; i < 8u; i++) {
        let m = tile.m + 4u * tm + (i & 3u) + (i >> 2u) * (BM / 2u);
        if (m < p.rows) {
            let at = (tile.split * p.rows + m) * p.out_stride + p.out_offset + col;
            for (var j = 0u; j < 4u; j++) {
                if (col + j < p.cout) {
                    out[at + j] = epilogue(acc[i][j], col + j);
                }
            }
        }
    }
}

// The two tile kernels differ only in their loads (load_a_vec4/load_b_vec4
// against load_a/load_b): WGSL cannot bind x and x4 in one entry point.
@compute @workgroup_size(256)
fn conv2d_tiled_large_vec4(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile = tile_of(wid, nwg);
    let ld = loads_of(lid, tile);
    let q = pixel(tile.m + ld.a_row);
    var a_tap = tap_of(tile.k_begin + 4u * ld.a_kq);
    var b_k = tile.k_begin + ld.b_k;
    var a_next = load_a_vec4(q, a_tap);
    var b_next = vec4(0.0);
    if (ld.loads_b) {
        b_next = load_b_vec4(b_k, ld.b_col);
    }
    store_stage(0u, ld, lid, a_next, b_next);
    workgroupBarrier();

    let tm = lid / (BN / 4u);
    let tn = lid % (BN / 4u);
    var acc: array<vec4<f32>, 8>;
    for (var s = 0u; s < tile.steps; s++) {
        let more = s + 1u < tile.steps;
        if (more) {
            a_tap = advance(a_tap, BK);
            a_next = load_a_vec4(q, a_tap);
            b_k += BK;
            if (ld.loads_b) {
                b_next = load_b_vec4(b_k, ld.b_col);
            }
        }
        acc = multiply(s & 1u, tm, tn, acc);
        if (more) {
            store_stage((s + 1u) & 1u, ld, lid, a_next, b_next);
        }
        workgroupBarrier();
    }
    store_block(tile, tm, tn, acc);
}

@compute @workgroup_size(256)
fn conv2d_tiled_large(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile = tile_of(wid, nwg);
    let ld = loads_of(lid, tile);
    let q = pixel(tile.m + ld.a_row);
    var a_tap = tap_of(tile.k_begin + 4u * ld.a_kq);
    var b_k = tile.k_begin + ld.b_k;
    var a_next = load_a(q, a_tap);
    var b_next = vec4(0.0);
    if (ld.loads_b) {
        b_next = load_b(b_k, ld.b_col);
    }
    store_stage(0u, ld, lid, a_next, b_next);
    workgroupBarrier();

    let tm = lid / (BN / 4u);
    let tn = lid % (BN / 4u);
    var acc: array<vec4<f32>, 8>;
    for (var s = 0u; s < tile.steps; s++) {
        let more = s + 1u < tile.steps;
        if (more) {
            a_tap = advance(a_tap, BK);
            a_next = load_a(q, a_tap);
            b_k += BK;
            if (ld.loads_b) {
                b_next = load_b(b_k, ld.b_col);
            }
        }
        acc = multiply(s & 1u, tm, tn, acc);
        if (more) {
            store_stage((s + 1u) & 1u, ld, lid, a_next, b_next);
        }
        workgroupBarrier();
    }
    store_block(tile, tm, tn, acc);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn conv2d_tiled_large_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    let n = p.rows * p.cout;
    if (i >= n) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        sum += partials[s * n + i];
    }
    let co = i % p.cout;
    out[(i / p.cout) * p.out_stride + p.out_offset + co] = epilogue(sum, co);
}
