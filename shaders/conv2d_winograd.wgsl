// Forward 3×3, stride-1 convolution by Winograd's minimal filtering
// (Lavin & Gray 2015), in two sizes:
//   F(2×2, 3×3): 4×4 transformed tiles, 16 multiplies per 2×2 output tile instead of 36;
//   F(4×4, 3×3): 6×6 transformed tiles, 36 multiplies per 4×4 output tile instead of 144.
//
//   out[b, oy, ox, out_offset + co] = act(conv(x, w)[b, oy, ox, co] * scale[co] + bias[co])
//
// Four passes, each its own entry point (winograd2_* for F(2×2), winograd4_* for F(4×4)):
//   *_filter        U[ξ][ci][co] = (G g Gᵀ)[ξ] for the 3×3 filter g of (ci, co);
//   *_input         V[ξ][t][ci]  = (Bᵀ d B)[ξ] for the input patch d of tile t, channel ci;
//   winograd_gemm   M[ξ] = V[ξ] · U[ξ] for each point ξ ([tiles, cin] · [cin, cout]);
//   *_output        the output tile Aᵀ m A of each M[·][t][co], the epilogue, the store.
// ξ = row·α + column of the α×α transformed tile (α = 4 or 6); the matrices
// are those of the functions below (points 0, ±1 for F(2×2); 0, ±1, ±2 for F(4×4)).
//
// Layouts (f32): x NHWC [batch, in_h, in_w, cin]; w HWIO [3, 3, cin, cout];
// scale and bias [cout]; out NHWC [batch, out_h, out_w, out_stride], written
// only in channels [out_offset, out_offset + cout). Channels are padded to
// multiples of 4 in the transformed buffers (cin4 = ⌈cin/4⌉, cout4 = ⌈cout/4⌉
// vec4s), the padding filled with zeros by the transforms, so that the GEMM
// reads and writes only vec4s:
//   U [α²][4·cin4][4·cout4], V [α²][tiles][4·cin4], M [α²][tiles][4·cout4].
// Tile t = (b·tiles_h + ty)·tiles_w + tx covers the m×m outputs (m = α - 2)
// from (m·ty, m·tx) of image batch_offset + b and reads the α×α inputs from
// (m·ty - pad_top, m·tx - pad_left); inputs outside the image are zero
// (padding), outputs past out_h/out_w are computed and dropped. The launcher
// splits the batch into chunks so that V and M fit a storage binding; each
// chunk runs the input, GEMM and output passes.
//
// Tiling: the transforms run one invocation per (tile or filter tap set,
// 4 channels), 64 per workgroup, over a 1-D grid folded into y (index
// wid.x + wid.y·nwg.x). The GEMM is conv2d_blocked_vec4 with a 1×1 kernel:
// no workgroup memory, no barriers (lavapipe runs a workgroup as 8-wide SIMD
// on one CPU thread); each invocation computes ROW_GROUPS (1 or 2) groups of
// ROWS = 4 tiles (LANES_M apart) × 8 channels as 8 vec4 accumulators per
// group, per 4 input channels one mat4x4 × vec4 per accumulator; a workgroup
// of LANES_M × LANES_N lanes covers LANES_M·4·ROW_GROUPS tiles × LANES_N·8
// channels. Grid: x over tile blocks (folded into z past
// the dispatch limit), y over (ξ, channel block) as ξ·col_blocks + block.
// Tiles past the end are clamped to the last and not stored; channel vec4s
// past cout4 likewise.

struct Params {
    batch_offset: u32, // first image of the chunk in x and out
    in_h: u32,
    in_w: u32,
    cin: u32,
    out_h: u32,
    out_w: u32,
    cout: u32,
    pad_top: u32,
    pad_left: u32,
    tiles_h: u32,
    tiles_w: u32,
    tiles: u32,        // images in this chunk * tiles_h * tiles_w
    cin4: u32,
    cout4: u32,
    col_blocks: u32,   // GEMM channel blocks per point ξ
    out_stride: u32,   // channels of the output tensor
    out_offset: u32,   // first output channel written
    epilogue: u32,     // bit 0: multiply by scale, bit 1: add bias, bit 2: ReLU (max 0), bit 3: cap at 6 (ReLU6 = bits 2 and 3)
}

const EPILOGUE_SCALE: u32 = 1u;
const EPILOGUE_BIAS: u32 = 2u;
const EPILOGUE_RELU: u32 = 4u;
const EPILOGUE_CAP6: u32 = 8u;

override WORKGROUP_SIZE: u32 = 64u; // the transforms' 1-D workgroup (Rust: conv_winograd::GROUP)

override LANES_M: u32 = 64u;
override LANES_N: u32 = 1u;
const ROWS: u32 = 4u;
const VECS: u32 = 2u;
// winograd_gemm: 1 or 2 groups of ROWS tiles per invocation sharing each U
// load, as in conv2d_blocked_vec4 (the launcher's rule is the same).
override ROW_GROUPS: u32 = 1u;

@group(0) @binding(0) var<uniform> p: Params;

fn flat_index(lane: u32, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lane;
}

// Image, tile row and tile column of tile `tile` of the chunk.
fn tile_position(tile: u32) -> vec3<u32> {
    return vec3(p.batch_offset + tile / (p.tiles_w * p.tiles_h), (tile / p.tiles_w) % p.tiles_h, tile % p.tiles_w);
}

// ---- the 1-D transforms: G (α×3), Bᵀ (α×α), Aᵀ (m×α) ----

fn g2(g: array<f32, 3>) -> array<f32, 4> {
    return array(g[0], 0.5 * (g[0] + g[1] + g[2]), 0.5 * (g[0] - g[1] + g[2]), g[2]);
}

fn bt2(d: array<vec4<f32>, 4>) -> array<vec4<f32>, 4> {
    return array(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
}

fn at2(m: array<vec4<f32>, 4>) -> array<vec4<f32>, 2> {
    return array(m[0] + m[1] + m[2], m[1] - m[2] - m[3]);
}

fn g4(g: array<f32, 3>) -> array<f32, 6> {
    let even = g[0] + g[2];
    return array(
        0.25 * g[0],
        -(even + g[1]) / 6.0,
        -(even - g[1]) / 6.0,
        (g[0] + 2.0 * g[1] + 4.0 * g[2]) / 24.0,
        (g[0] - 2.0 * g[1] + 4.0 * g[2]) / 24.0,
        g[2],
    );
}

fn bt4(d: array<vec4<f32>, 6>) -> array<vec4<f32>, 6> {
    return array(
        4.0 * d[0] - 5.0 * d[2] + d[4],
        d[3] + d[4] - 4.0 * (d[1] + d[2]),
        d[4] - d[3] + 4.0 * (d[1] - d[2]),
        d[4] - d[2] + 2.0 * (d[3] - d[1]),
        d[4] - d[2] - 2.0 * (d[3] - d[1]),
        4.0 * d[1] - 5.0 * d[3] + d[5],
    );
}

fn at4(m: array<vec4<f32>, 6>) -> array<vec4<f32>, 4> {
    let sum12 = m[1] + m[2];
    let dif12 = m[1] - m[2];
    let sum34 = m[3] + m[4];
    let dif34 = m[3] - m[4];
    return array(m[0] + sum12 + sum34, dif12 + 2.0 * dif34, sum12 + 4.0 * sum34, dif12 + 8.0 * dif34 + m[5]);
}

// ---- *_filter: w → U ----
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> u_out: array<f32>;

// Filter (ci, co) of invocation i, zero in the channel padding; i past the
// padded channel pairs gives ci = 4·cin4, which the caller skips.
struct Filter {
    ci: u32,
    co: u32,
    g: array<f32, 9>,
}

fn load_filter(i: u32) -> Filter {
    let cout_p = 4u * p.cout4;
    var f = Filter(i / cout_p, i % cout_p, array<f32, 9>());
    if (f.ci < p.cin && f.co < p.cout) {
        for (var k = 0u; k < 9u; k++) {
            f.g[k] = w[(k * p.cin + f.ci) * p.cout + f.co];
        }
    }
    return f;
}

fn u_index(point: u32, f: Filter) -> u32 {
    return (point * 4u * p.cin4 + f.ci) * 4u * p.cout4 + f.co;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn winograd2_filter(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let f = load_filter(flat_index(lane, wid, nwg));
    if (f.ci >= 4u * p.cin4) {
        return;
    }
    // G g: columns kx; then (G g) Gᵀ: rows.
    var t: array<array<f32, 4>, 3>;
    for (var kx = 0u; kx < 3u; kx++) {
        t[kx] = g2(array(f.g[kx], f.g[3u + kx], f.g[6u + kx]));
    }
    for (var r = 0u; r < 4u; r++) {
        let row = g2(array(t[0][r], t[1][r], t[2][r]));
        for (var c = 0u; c < 4u; c++) {
            u_out[u_index(4u * r + c, f)] = row[c];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn winograd4_filter(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let f = load_filter(flat_index(lane, wid, nwg));
    if (f.ci >= 4u * p.cin4) {
        return;
    }
    var t: array<array<f32, 6>, 3>;
    for (var kx = 0u; kx < 3u; kx++) {
        t[kx] = g4(array(f.g[kx], f.g[3u + kx], f.g[6u + kx]));
    }
    for (var r = 0u; r < 6u; r++) {
        let row = g4(array(t[0][r], t[1][r], t[2][r]));
        for (var c = 0u; c < 6u; c++) {
            u_out[u_index(6u * r + c, f)] = row[c];
        }
    }
}

// ---- *_input: x → V ----
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v_out: array<vec4<f32>>;

// Channels 4·c4 .. 4·c4+3 of input pixel (iy, ix) of image b; zero outside the
// image and past cin.
fn input_pixel(b: u32, iy: i32, ix: i32, c4: u32) -> vec4<f32> {
    if (iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
        return vec4(0.0);
    }
    let at = ((b * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.cin;
    var v = vec4(0.0);
    for (var j = 0u; j < 4u; j++) {
        let c = 4u * c4 + j;
        if (c < p.cin) {
            v[j] = x[at + c];
        }
    }
    return v;
}

// The input patch of invocation i: its image and top-left input pixel, its
// channel vec4 and its V index at point 0 (the stride between points is
// tiles·cin4); valid is false past the work.
struct Patch {
    b: u32,
    iy: i32,
    ix: i32,
    c4: u32,
    at: u32,
    valid: bool,
}

fn input_patch(i: u32, m: u32) -> Patch {
    let tile = i / p.cin4;
    let t = tile_position(min(tile, p.tiles - 1u));
    return Patch(t.x, i32(m * t.y) - i32(p.pad_top), i32(m * t.z) - i32(p.pad_left), i % p.cin4, i, tile < p.tiles);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn winograd2_input(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let q = input_patch(flat_index(lane, wid, nwg), 2u);
    if (!q.valid) {
        return;
    }
    // Bᵀ d: columns; then (Bᵀ d) B: rows.
    var t: array<array<vec4<f32>, 4>, 4>;
    for (var c = 0u; c < 4u; c++) {
        var col: array<vec4<f32>, 4>;
        for (var r = 0u; r < 4u; r++) {
            col[r] = input_pixel(q.b, q.iy + i32(r), q.ix + i32(c), q.c4);
        }
        t[c] = bt2(col);
    }
    let stride = p.tiles * p.cin4;
    for (var r = 0u; r < 4u; r++) {
        let row = bt2(array(t[0][r], t[1][r], t[2][r], t[3][r]));
        for (var c = 0u; c < 4u; c++) {
            v_out[q.at + (4u * r + c) * stride] = row[c];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn winograd4_input(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let q = input_patch(flat_index(lane, wid, nwg), 4u);
    if (!q.valid) {
        return;
    }
    var t: array<array<vec4<f32>, 6>, 6>;
    for (var c = 0u; c < 6u; c++) {
        var col: array<vec4<f32>, 6>;
        for (var r = 0u; r < 6u; r++) {
            col[r] = input_pixel(q.b, q.iy + i32(r), q.ix + i32(c), q.c4);
        }
        t[c] = bt4(col);
    }
    let stride = p.tiles * p.cin4;
    for (var r = 0u; r < 6u; r++) {
        let row = bt4(array(t[0][r], t[1][r], t[2][r], t[3][r], t[4][r], t[5][r]));
        for (var c = 0u; c < 6u; c++) {
            v_out[q.at + (6u * r + c) * stride] = row[c];
        }
    }
}

// ---- winograd_gemm: V, U → M ----
@group(0) @binding(1) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> u4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m_out: array<vec4<f32>>;

// V offsets of a row group's tiles (clamped into range) for point `point`.
fn gemm_rows(point: u32, row0: u32) -> array<u32, ROWS> {
    var a_at: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        a_at[r] = (point * p.tiles + min(row0 + r * LANES_M, p.tiles - 1u)) * p.cin4;
    }
    return a_at;
}

// One row group's share of a c4 step: its tiles' 4 input channels times the
// step's U columns, into the group's accumulators.
fn gemm_mac(acc: ptr<function, array<vec4<f32>, ROWS * VECS>>, a_at: ptr<function, array<u32, ROWS>>, c4: u32, wm: array<mat4x4<f32>, VECS>) {
    for (var r = 0u; r < ROWS; r++) {
        let a = v4[(*a_at)[r] + c4];
        for (var v = 0u; v < VECS; v++) {
            (*acc)[r * VECS + v] += wm[v] * a;
        }
    }
}

// Stores the in-range rows of a row group.
fn gemm_store(point: u32, row0: u32, col4_0: u32, acc: array<vec4<f32>, ROWS * VECS>) {
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r * LANES_M;
        if (row >= p.tiles) {
            break;
        }
        let out_at = (point * p.tiles + row) * p.cout4;
        for (var v = 0u; v < VECS; v++) {
            if (col4_0 + v < p.cout4) {
                m_out[out_at + col4_0 + v] = acc[r * VECS + v];
            }
        }
    }
}

@compute @workgroup_size(LANES_M * LANES_N)
fn winograd_gemm(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let point = wid.y / p.col_blocks;
    let row0 = (wid.x + wid.z * nwg.x) * LANES_M * ROWS * ROW_GROUPS + lane % LANES_M;
    let row1 = row0 + ROWS * LANES_M;
    let col4_0 = ((wid.y % p.col_blocks) * LANES_N + lane / LANES_M) * VECS;
    var a_at0 = gemm_rows(point, row0);
    var a_at1 = gemm_rows(point, row1);
    var col4: array<u32, VECS>;
    for (var v = 0u; v < VECS; v++) {
        col4[v] = min(col4_0 + v, p.cout4 - 1u);
    }

    var acc0: array<vec4<f32>, ROWS * VECS>;
    var acc1: array<vec4<f32>, ROWS * VECS>;
    // u4 index of row k = 4·c4 of U[point] at column vec4 0.
    var w_at = point * 4u * p.cin4 * p.cout4;
    for (var c4 = 0u; c4 < p.cin4; c4++) {
        // Columns: U rows of 4 input channels × 4 output channels, loaded
        // once for both row groups.
        var wm: array<mat4x4<f32>, VECS>;
        for (var v = 0u; v < VECS; v++) {
            let at = w_at + col4[v];
            wm[v] = mat4x4(u4[at], u4[at + p.cout4], u4[at + 2u * p.cout4], u4[at + 3u * p.cout4]);
        }
        gemm_mac(&acc0, &a_at0, c4, wm);
        if (ROW_GROUPS == 2u) {
            gemm_mac(&acc1, &a_at1, c4, wm);
        }
        w_at += 4u * p.cout4;
    }
    gemm_store(point, row0, col4_0, acc0);
    if (ROW_GROUPS == 2u) {
        gemm_store(point, row1, col4_0, acc1);
    }
}

// ---- *_output: M, scale, bias → out ----
@group(0) @binding(1) var<storage, read> m4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn epilogue(v: vec4<f32>, co: vec4<u32>) -> vec4<f32> {
    var r = v;
    if ((p.epilogue & EPILOGUE_SCALE) != 0u) {
        r = r * vec4(scale[co.x], scale[co.y], scale[co.z], scale[co.w]);
    }
    if ((p.epilogue & EPILOGUE_BIAS) != 0u) {
        r = r + vec4(bias[co.x], bias[co.y], bias[co.z], bias[co.w]);
    }
    if ((p.epilogue & EPILOGUE_RELU) != 0u) {
        r = max(r, vec4(0.0));
    }
    if ((p.epilogue & EPILOGUE_CAP6) != 0u) {
        r = min(r, vec4(6.0));
    }
    return r;
}

// The m×m outputs of invocation i's tile, its channel vec4 and its M index at
// point 0 (the stride between points is tiles·cout4); valid is false past the work.
struct OutTile {
    b: u32,
    oy: u32,
    ox: u32,
    co: u32,
    at: u32,
    valid: bool,
}

fn out_tile(i: u32, m: u32) -> OutTile {
    let tile = i / p.cout4;
    let t = tile_position(min(tile, p.tiles - 1u));
    return OutTile(t.x, m * t.y, m * t.z, 4u * (i % p.cout4), i, tile < p.tiles);
}

// Applies the epilogue to output (oy, ox) of image b, channels co..co+3, and
// stores the part inside the image and below cout.
fn store(b: u32, oy: u32, ox: u32, co: u32, v: vec4<f32>) {
    if (oy >= p.out_h || ox >= p.out_w) {
        return;
    }
    let y = epilogue(v, min(vec4(co) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u)));
    let at = ((b * p.out_h + oy) * p.out_w + ox) * p.out_stride + p.out_offset + co;
    for (var j = 0u; j < 4u; j++) {
        if (co + j < p.cout) {
            out[at + j] = y[j];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn winograd2_output(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let o = out_tile(flat_index(lane, wid, nwg), 2u);
    if (!o.valid) {
        return;
    }
    // Aᵀ m: columns; then (Aᵀ m) A: rows.
    let stride = p.tiles * p.cout4;
    var s: array<array<vec4<f32>, 2>, 4>;
    for (var c = 0u; c < 4u; c++) {
        var col: array<vec4<f32>, 4>;
        for (var r = 0u; r < 4u; r++) {
            col[r] = m4[o.at + (4u * r + c) * stride];
        }
        s[c] = at2(col);
    }
    for (var r = 0u; r < 2u; r++) {
        let row = at2(array(s[0][r], s[1][r], s[2][r], s[3][r]));
        for (var c = 0u; c < 2u; c++) {
            store(o.b, o.oy + r, o.ox + c, o.co, row[c]);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn winograd4_output(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let o = out_tile(flat_index(lane, wid, nwg), 4u);
    if (!o.valid) {
        return;
    }
    let stride = p.tiles * p.cout4;
    var s: array<array<vec4<f32>, 4>, 6>;
    for (var c = 0u; c < 6u; c++) {
        var col: array<vec4<f32>, 6>;
        for (var r = 0u; r < 6u; r++) {
            col[r] = m4[o.at + (6u * r + c) * stride];
        }
        s[c] = at4(col);
    }
    for (var r = 0u; r < 4u; r++) {
        let row = at4(array(s[0][r], s[1][r], s[2][r], s[3][r], s[4][r], s[5][r]));
        for (var c = 0u; c < 4u; c++) {
            store(o.b, o.oy + r, o.ox + c, o.co, row[c]);
        }
    }
}
