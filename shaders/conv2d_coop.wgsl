// Forward 2-D convolution in mixed precision on cooperative matrices (tensor
// cores): implicit GEMM with f16 operands staged through workgroup memory and
// f32 accumulation in FRAG×FRAG×FRAG (16, or 8) cooperative-matrix multiply-adds.
//
//   out[b, oy, ox, out_offset + co] = act(conv(x, w)[b, oy, ox, co] * scale[co] + bias[co])
//
// Layouts: x NHWC [batch, in_h, in_w, cin]; w HWIO
// [kh, kw, cin, cout], i.e. a row-major [K = kh*kw*cin, cout] matrix; scale
// and bias [cout]; out NHWC [batch, out_h, out_w, out_stride] written only in
// channels [out_offset, out_offset + cout). Taps outside the input read zero
// padding. When scale or bias is absent the launcher binds another read-only
// tensor in its slot and clears the matching `epilogue` bit. w, scale and
// bias are f32; x and out are f32 or f16 (the element aliases XElem and
// OutElem below: f32 in this file, rewritten by the launcher for the frozen
// prefix's f16 storage, see ops::conv_coop). x and w are rounded to f16
// (round to nearest) as they are staged: values beyond f16's
// range (±65504) are not representable, which the frozen InceptionV3 prefix
// (post-ReLU activations, raw filters; the BatchNorm scale is applied in f32
// by the epilogue) stays far from. Products are summed in f32, and the
// epilogue runs in f32 before the result is stored as OutElem.
//
// Implicit GEMM: row m = b*out_h*out_w + oy*out_w + ox, column co, and
// k = (ky*kw + kx)*cin + ci. The A tile (BM rows × BK of k) is gathered from
// x on the fly (im2col without the copy), the B tile (BK × BN) is a block of w.
//
// Tiling: a workgroup of SUBGROUPS = 4 subgroups (SUBGROUP_SIZE invocations
// each, an override the launcher sets to the adapter's one subgroup size, so
// that the workgroup's x size is a multiple of it) computes a BM×BN output
// tile, stepping through K by BK = 32. Subgroup s owns the quadrant (s/2, s%2)
// of the tile: 2×2 cooperative FRAG×FRAG f32 accumulators, so BM = BN =
// 4·FRAG. This file is the FRAG = 16 kernel (64×64 tiles: NVIDIA, AMD); the
// launcher derives the FRAG = 8 one (32×32 tiles: adapters that multiply
// 8×8×8 f16 matrices only, e.g. Apple GPUs and Mesa's lavapipe) by replacing
// the fragment-size lines marked below, nothing else (ops::conv_coop).
// - Staging (global → f16 workgroup memory), two stages so that one is
//   filled while the other is multiplied (one barrier per step): A row-major
//   [m][k] with a row stride of BK + 8 halves, B row-major [k][n] with a row
//   stride of BN + 8 halves (the padding staggers rows over the banks and
//   keeps every fragment's rows 16-byte aligned). Work is split in quads of
//   4 consecutive k (A) or 4 consecutive columns (B): invocation t stages A
//   quad t%8 of rows t/8, t/8 + GROUP/8, … and B quad t%(BN/4) of k rows
//   t/(BN/4), …, so its k (A) and columns (B) are fixed and its tap
//   advances by BK per step without a division. Each A row's pixel (batch
//   row, top-left input tap) is computed once per tile into `pixels`.
// - Multiply: per FRAG of k, each subgroup loads 2 A and 2 B fragments from
//   workgroup memory (coopLoadT: row-major, with the stage's row stride) and
//   does 4 coopMultiplyAdd. Every cooperative op runs in uniform control flow.
// - Epilogue: each accumulator in turn is stored (coopStoreT) to the
//   subgroup's FRAG×FRAG f32 scratch; after a barrier all invocations apply
//   scale, bias and ReLU and write the in-range elements to the channel slice.
// Out-of-range rows, columns and k stage zeros and are not stored.
//
// Grid: x (folded into z past the dispatch limit: row tile = wid.x + wid.z *
// nwg.x) over row tiles, y over column tiles. K is never split (k_split and
// splits are unused; the struct is shared with the other conv kernels).
//
// Entry points:
//   conv2d_coop_vec4   cin % 4 == 0 and cout % 4 == 0: x and w read as vec4;
//   conv2d_coop        any cin and cout, scalar loads (same tiles).

enable f16;
enable wgpu_cooperative_matrix;

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
    k_split: u32,    // unused here
    splits: u32,     // unused here
}

const EPILOGUE_SCALE: u32 = 1u;
const EPILOGUE_BIAS: u32 = 2u;
const EPILOGUE_RELU: u32 = 4u;
const EPILOGUE_CAP6: u32 = 8u;

// Element types of x and out in memory (the launcher rewrites these two lines
// for f16 storage).
alias XElem = f32;
alias OutElem = f32;

// Fragment size (the 8×8 variant's launcher rewrites these four lines).
const FRAG: u32 = 16u;
alias FragA = coop_mat16x16<f16, A>;
alias FragB = coop_mat16x16<f16, B>;
alias FragC = coop_mat16x16<f32, C>;

const SUBGROUPS: u32 = 4u;
const BM: u32 = 4u * FRAG;
const BN: u32 = 4u * FRAG;
const BK: u32 = 32u;
// Row strides (halves) and sizes of one stage of the staged tiles.
const A_STRIDE: u32 = BK + 8u;
const B_STRIDE: u32 = BN + 8u;
const A_STAGE: u32 = BM * A_STRIDE;
const B_STAGE: u32 = BK * B_STRIDE;
// Quads (4 values) per row of a staged tile.
const A_QUADS: u32 = BK / 4u;
const B_QUADS: u32 = BN / 4u;

// Invocations per subgroup, set by the launcher; the workgroup is SUBGROUPS of them.
override SUBGROUP_SIZE: u32 = 32u;
override GROUP: u32 = SUBGROUPS * SUBGROUP_SIZE;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<XElem>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// The same buffers seen as vec4 (conv2d_coop_vec4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<XElem>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<OutElem>;

var<workgroup> a_tile: array<f16, 2u * A_STAGE>; // [stage][m][k]
var<workgroup> b_tile: array<f16, 2u * B_STAGE>; // [stage][k][n]
var<workgroup> c_scratch: array<f32, SUBGROUPS * FRAG * FRAG>; // [subgroup][16][16]
// Per A row of the tile: (in range, b * in_h, top-left input row, column).
var<workgroup> pixels: array<vec4<i32>, BM>;

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

// Fills `pixels` for the tile's rows starting at m0.
fn fill_pixels(lid: u32, m0: u32) {
    for (var r = lid; r < BM; r += GROUP) {
        let m = m0 + r;
        let row = min(m, p.rows - 1u);
        let ox = row % p.out_w;
        let oy = (row / p.out_w) % p.out_h;
        let b = row / (p.out_w * p.out_h);
        pixels[r] = vec4(select(0, 1, m < p.rows), i32(b * p.in_h), i32(oy * p.stride_h) - i32(p.pad_top), i32(ox * p.stride_w) - i32(p.pad_left));
    }
}

// Flat x index of tap t of tile row q, or -1 when it is padding, past K or past the rows.
fn x_at(q: vec4<i32>, t: Tap) -> i32 {
    let iy = q.z + i32(t.ky);
    let ix = q.w + i32(t.kx);
    if (q.x == 0 || t.ky >= p.kh || iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
        return -1;
    }
    return ((q.y + iy) * i32(p.in_w) + ix) * i32(p.cin) + i32(t.ci);
}

// A values at k..k+3 of tile row q (tap t = tap_of(k), k % 4 == 0, cin % 4 == 0).
fn load_a_vec4(q: vec4<i32>, t: Tap) -> vec4<f32> {
    let at = x_at(q, t);
    if (at >= 0) {
        return vec4<f32>(x4[u32(at) / 4u]);
    }
    return vec4(0.0);
}

// A values at k..k+3, any cin.
fn load_a(q: vec4<i32>, t: Tap) -> vec4<f32> {
    var v = vec4(0.0);
    var u = t;
    for (var c = 0u; c < 4u; c++) {
        let at = x_at(q, u);
        if (at >= 0) {
            v[c] = f32(x[u32(at)]);
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

fn put_a(stage: u32, r: u32, quad: u32, v: vec4<f32>) {
    let at = stage * A_STAGE + r * A_STRIDE + 4u * quad;
    a_tile[at] = f16(v.x);
    a_tile[at + 1u] = f16(v.y);
    a_tile[at + 2u] = f16(v.z);
    a_tile[at + 3u] = f16(v.w);
}

fn put_b(stage: u32, kr: u32, quad: u32, v: vec4<f32>) {
    let at = stage * B_STAGE + kr * B_STRIDE + 4u * quad;
    b_tile[at] = f16(v.x);
    b_tile[at + 1u] = f16(v.y);
    b_tile[at + 2u] = f16(v.z);
    b_tile[at + 3u] = f16(v.w);
}

// Stages the step whose A quad of this invocation starts at tap `tap` and
// whose B rows start at depth k0 (vec4 loads / scalar loads).
fn stage_vec4(stage: u32, lid: u32, tap: Tap, k0: u32, n0: u32) {
    for (var r = lid / A_QUADS; r < BM; r += GROUP / A_QUADS) {
        put_a(stage, r, lid % A_QUADS, load_a_vec4(pixels[r], tap));
    }
    let col = n0 + 4u * (lid % B_QUADS);
    for (var kr = lid / B_QUADS; kr < BK; kr += GROUP / B_QUADS) {
        put_b(stage, kr, lid % B_QUADS, load_b_vec4(k0 + kr, col));
    }
}

fn stage_scalar(stage: u32, lid: u32, tap: Tap, k0: u32, n0: u32) {
    for (var r = lid / A_QUADS; r < BM; r += GROUP / A_QUADS) {
        put_a(stage, r, lid % A_QUADS, load_a(pixels[r], tap));
    }
    let col = n0 + 4u * (lid % B_QUADS);
    for (var kr = lid / B_QUADS; kr < BK; kr += GROUP / B_QUADS) {
        put_b(stage, kr, lid % B_QUADS, load_b(k0 + kr, col));
    }
}

// Where a workgroup's tile lies (uniform: depends only on the workgroup).
struct Tile {
    m: u32,
    n: u32,
    steps: u32,
}

fn tile_of(wid: vec3<u32>, nwg: vec3<u32>) -> Tile {
    return Tile((wid.x + wid.z * nwg.x) * BM, wid.y * BN, (p.depth + BK - 1u) / BK);
}

// Writes fragment (fi, fj) of every subgroup's quadrant from `c_scratch`
// (after the accumulators were stored there) through the epilogue.
fn write_fragments(lid: u32, tile: Tile, fi: u32, fj: u32) {
    for (var e = lid; e < SUBGROUPS * FRAG * FRAG; e += GROUP) {
        let s = e / (FRAG * FRAG);
        let r = (e / FRAG) % FRAG;
        let c = e % FRAG;
        let m = tile.m + (s / 2u) * (2u * FRAG) + fi * FRAG + r;
        let n = tile.n + (s % 2u) * (2u * FRAG) + fj * FRAG + c;
        if (m < p.rows && n < p.cout) {
            out[m * p.out_stride + p.out_offset + n] = OutElem(epilogue(c_scratch[e], n));
        }
    }
}

// The two kernels differ only in their staging (stage_vec4 against
// stage_scalar): WGSL cannot bind x and x4 in one entry point. The bodies
// are kept identical otherwise; cooperative matrices are not passed to
// functions, so that every cooperative op sits in the entry point.
@compute @workgroup_size(GROUP)
fn conv2d_coop_vec4(
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile = tile_of(wid, nwg);
    fill_pixels(lid, tile.m);
    workgroupBarrier();
    var tap = tap_of(4u * (lid % A_QUADS));
    stage_vec4(0u, lid, tap, 0u, tile.n);
    workgroupBarrier();

    // This subgroup's quadrant: its first A row and B column in a stage.
    let a_row = (sid / 2u) * (2u * FRAG) * A_STRIDE;
    let b_col = (sid % 2u) * (2u * FRAG);
    var c00 = FragC();
    var c01 = FragC();
    var c10 = FragC();
    var c11 = FragC();
    for (var s = 0u; s < tile.steps; s++) {
        if (s + 1u < tile.steps) {
            tap = advance(tap, BK);
            stage_vec4((s + 1u) & 1u, lid, tap, (s + 1u) * BK, tile.n);
        }
        for (var kk = 0u; kk < BK; kk += FRAG) {
            let ia0 = (s & 1u) * A_STAGE + a_row + kk;
            let ia1 = ia0 + FRAG * A_STRIDE;
            let ib0 = (s & 1u) * B_STAGE + kk * B_STRIDE + b_col;
            let ib1 = ib0 + FRAG;
            let a0 = coopLoadT<FragA>(&a_tile[ia0], A_STRIDE);
            let a1 = coopLoadT<FragA>(&a_tile[ia1], A_STRIDE);
            let b0 = coopLoadT<FragB>(&b_tile[ib0], B_STRIDE);
            let b1 = coopLoadT<FragB>(&b_tile[ib1], B_STRIDE);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }

    let scratch = sid * FRAG * FRAG;
    coopStoreT(c00, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 0u, 0u);
    workgroupBarrier();
    coopStoreT(c01, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 0u, 1u);
    workgroupBarrier();
    coopStoreT(c10, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 1u, 0u);
    workgroupBarrier();
    coopStoreT(c11, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 1u, 1u);
}

@compute @workgroup_size(GROUP)
fn conv2d_coop(
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile = tile_of(wid, nwg);
    fill_pixels(lid, tile.m);
    workgroupBarrier();
    var tap = tap_of(4u * (lid % A_QUADS));
    stage_scalar(0u, lid, tap, 0u, tile.n);
    workgroupBarrier();

    let a_row = (sid / 2u) * (2u * FRAG) * A_STRIDE;
    let b_col = (sid % 2u) * (2u * FRAG);
    var c00 = FragC();
    var c01 = FragC();
    var c10 = FragC();
    var c11 = FragC();
    for (var s = 0u; s < tile.steps; s++) {
        if (s + 1u < tile.steps) {
            tap = advance(tap, BK);
            stage_scalar((s + 1u) & 1u, lid, tap, (s + 1u) * BK, tile.n);
        }
        for (var kk = 0u; kk < BK; kk += FRAG) {
            let ia0 = (s & 1u) * A_STAGE + a_row + kk;
            let ia1 = ia0 + FRAG * A_STRIDE;
            let ib0 = (s & 1u) * B_STAGE + kk * B_STRIDE + b_col;
            let ib1 = ib0 + FRAG;
            let a0 = coopLoadT<FragA>(&a_tile[ia0], A_STRIDE);
            let a1 = coopLoadT<FragA>(&a_tile[ia1], A_STRIDE);
            let b0 = coopLoadT<FragB>(&b_tile[ib0], B_STRIDE);
            let b1 = coopLoadT<FragB>(&b_tile[ib1], B_STRIDE);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }

    let scratch = sid * FRAG * FRAG;
    coopStoreT(c00, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 0u, 0u);
    workgroupBarrier();
    coopStoreT(c01, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 0u, 1u);
    workgroupBarrier();
    coopStoreT(c10, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 1u, 0u);
    workgroupBarrier();
    coopStoreT(c11, &c_scratch[scratch], FRAG);
    workgroupBarrier();
    write_fragments(lid, tile, 1u, 1u);
}
