// Forward 2-D convolution, register-blocked for CPU adapters (lavapipe):
// no workgroup memory, no barriers (but for the small-depth entry point,
// which stages its weights in workgroup memory once, behind one barrier).
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
// k = (ky*kw + kx)*cin + ci, so the weights are the [K, cout] matrix as stored
// and each (m, ky, kx) reads a contiguous run of cin input values, whose
// start is computed once per tap, outside the ci loop.
//
// Tiling: each invocation computes ROW_GROUPS groups of ROWS = 4 output
// pixels (spaced LANES_M apart) × 4*VECS = 8 channels, as ROWS*VECS vec4
// accumulators per group. A workgroup of LANES_M × LANES_N invocations covers
// LANES_M*4*ROW_GROUPS rows × LANES_N*8 channels; by default 64 × 1 with one
// group (256 rows × 8 channels), two groups (512 rows) on large row counts
// (vec4 entry point only). For small row counts (the 8×8 and 17×17 stages at
// small images) the launcher moves lanes from rows to channels and shrinks
// the workgroup, so that few lanes compute clamped rows that are thrown away.
// Grid: x (folded into z past the dispatch limit: row block = wid.x + wid.z *
// nwg.x) over row blocks, y over channel blocks. Rows past the end are
// clamped to the last row and computed but not stored; channels past cout
// read a valid column and are not stored.
//
// Entry points:
//   conv2d_blocked_vec4  cin % 4 == 0 and cout % 4 == 0 (every InceptionV3
//                        layer but the first): x and w read as vec4, four
//                        input channels per step, as a mat4x4 × vec4 per
//                        accumulator;
//   conv2d_blocked       any cin and cout, scalar loads;
//   conv2d_blocked_stem  small depth K = kh*kw*cin (the first layer: 3×3×3):
//                        the workgroup first copies its whole filter block,
//                        K × LANES_N*16 channels, into workgroup memory as
//                        vec4 (one barrier), then runs conv2d_blocked's loop
//                        over 4 pixels × 16 channels per invocation (two
//                        8-channel halves), with scalar input loads and vec4
//                        weight reads from workgroup memory, the same address
//                        for every lane of a row block. Each x value loaded
//                        feeds 16 channels, and no weight comes from storage
//                        inside the loop (conv2d_blocked: 8 scalar storage
//                        loads per k). Its block must fit STEM_SLAB vec4,
//                        which the launcher sets (and checks K against).
// Why this shape on lavapipe: a workgroup runs as 8-wide SIMD on one CPU
// thread, and Mesa 25.0 turns every storage load whose offset is not built
// from constants alone (any offset inside a loop) into a loop over the 8
// lanes, each with a bounds-check branch per component, so loads, not
// multiply-adds, bound the speed (GALLIVM_DEBUG=asm shows it). vec4 loads
// cost about half as much per element as scalar ones, and every weight vec4
// loaded serves all the rows of the invocation: 4 pixels × 8 channels, or 8
// × 8 with two row groups. The groups are written out because the compiler
// stops unrolling a row loop longer than 4, and a dynamically indexed
// accumulator array then lives in memory (which is why plain 8×8, 4×16 and
// 16×16 blocks measured slower than 4×8).
//
// Override PADDED = false when no tap can fall outside the input (1×1
// kernels, 'valid' padding): it removes the zero-padding bounds test and mask.

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
    k_split: u32,    // k per split-K slice (conv2d_tiled_large only)
    splits: u32,     // split-K slices (conv2d_tiled_large_reduce only)
}

const EPILOGUE_SCALE: u32 = 1u;
const EPILOGUE_BIAS: u32 = 2u;
const EPILOGUE_RELU: u32 = 4u;
const EPILOGUE_CAP6: u32 = 8u;

override LANES_M: u32 = 64u;
override LANES_N: u32 = 1u;
const ROWS: u32 = 4u;
const VECS: u32 = 2u;

override PADDED: bool = true;

// conv2d_blocked_vec4 only: 1 or 2 groups of ROWS pixels per invocation
// sharing each weight load (2 halves the weight loads per FLOP).
override ROW_GROUPS: u32 = 1u;

// conv2d_blocked_stem only: vec4 capacity of the workgroup's filter block.
override STEM_SLAB: u32 = 1024u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// The same buffers seen as vec4 (conv2d_blocked_vec4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

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

// Where output pixel `row` (clamped into range) starts reading: the input
// row and column of its top-left tap (negative inside the padding) and that
// tap's flat offset in x.
struct Origin {
    iy: i32,
    ix: i32,
    at: i32,
}

fn origin(row: u32) -> Origin {
    let m = min(row, p.rows - 1u);
    let ox = m % p.out_w;
    let oy = (m / p.out_w) % p.out_h;
    let b = m / (p.out_w * p.out_h);
    let iy = i32(oy * p.stride_h) - i32(p.pad_top);
    let ix = i32(ox * p.stride_w) - i32(p.pad_left);
    return Origin(iy, ix, ((i32(b * p.in_h) + iy) * i32(p.in_w) + ix) * i32(p.cin));
}

// Tap (ky, kx) of a pixel: its offset in x and 1.0, or offset 0 and 0.0 in the padding.
struct Tap {
    at: u32,
    inside: f32,
}

fn tap(o: Origin, ky: u32, kx: u32) -> Tap {
    let iy = o.iy + i32(ky);
    let ix = o.ix + i32(kx);
    let ok = !PADDED || (iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w));
    return Tap(select(0u, u32(o.at + (i32(ky) * i32(p.in_w) + i32(kx)) * i32(p.cin)), ok), select(0.0, 1.0, ok));
}

// Applies the epilogue and stores the in-range part of an invocation's block.
fn store_block(row0: u32, col0: u32, acc: array<vec4<f32>, ROWS * VECS>) {
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r * LANES_M;
        if (row >= p.rows) {
            break;
        }
        let out_base = row * p.out_stride + p.out_offset;
        for (var v = 0u; v < VECS; v++) {
            let co = col0 + 4u * v;
            let y = epilogue(acc[r * VECS + v], min(vec4(co) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u)));
            for (var j = 0u; j < 4u; j++) {
                if (co + j < p.cout) {
                    out[out_base + co + j] = y[j];
                }
            }
        }
    }
}

// One row group's share of a c4 step: its ROWS pixels' 4 input channels
// times the step's weights, into the group's accumulators.
fn mac_group(acc: ptr<function, array<vec4<f32>, ROWS * VECS>>, taps: ptr<function, array<Tap, ROWS>>, c4: u32, wm: array<mat4x4<f32>, VECS>) {
    for (var r = 0u; r < ROWS; r++) {
        var a = x4[(*taps)[r].at + c4];
        if (PADDED) {
            a *= (*taps)[r].inside;
        }
        for (var v = 0u; v < VECS; v++) {
            (*acc)[r * VECS + v] += wm[v] * a;
        }
    }
}

// Tap (ky, kx) of a group's pixels.
fn group_taps(origins: array<Origin, ROWS>, ky: u32, kx: u32) -> array<Tap, ROWS> {
    var taps: array<Tap, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        taps[r] = tap(origins[r], ky, kx);
    }
    return taps;
}

// The same, offsets in vec4 units.
fn group_taps_vec4(origins: array<Origin, ROWS>, ky: u32, kx: u32) -> array<Tap, ROWS> {
    var taps = group_taps(origins, ky, kx);
    for (var r = 0u; r < ROWS; r++) {
        taps[r].at /= 4u;
    }
    return taps;
}

// Pixel r's input value `a` times 8 channels' weights, into its accumulators.
fn mac_pixel(acc: ptr<function, array<vec4<f32>, ROWS * VECS>>, r: u32, a: f32, wv: array<vec4<f32>, VECS>) {
    for (var v = 0u; v < VECS; v++) {
        (*acc)[r * VECS + v] += a * wv[v];
    }
}

// Origins of a group's pixels: rows row0, row0 + LANES_M, ...
fn group_origins(row0: u32) -> array<Origin, ROWS> {
    var origins: array<Origin, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        origins[r] = origin(row0 + r * LANES_M);
    }
    return origins;
}

@compute @workgroup_size(LANES_M * LANES_N)
fn conv2d_blocked_vec4(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.z * nwg.x) * LANES_M * ROWS * ROW_GROUPS + lane % LANES_M;
    let row1 = row0 + ROWS * LANES_M;
    let col0 = (wid.y * LANES_N + lane / LANES_M) * 4u * VECS;
    let cout4 = p.cout / 4u;
    let origins0 = group_origins(row0);
    let origins1 = group_origins(row1);
    var col4: array<u32, VECS>;
    for (var v = 0u; v < VECS; v++) {
        col4[v] = min(col0 / 4u + v, cout4 - 1u);
    }

    var acc0: array<vec4<f32>, ROWS * VECS>;
    var acc1: array<vec4<f32>, ROWS * VECS>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            var taps0 = group_taps_vec4(origins0, ky, kx);
            var taps1 = group_taps_vec4(origins1, ky, kx);
            // w4 index of row k = (ky*kw + kx)*cin + 4*c4 at column vec4 0.
            var w_at = (ky * p.kw + kx) * p.cin * cout4;
            for (var c4 = 0u; c4 < p.cin / 4u; c4++) {
                // Columns: weights of 4 input channels × 4 output channels,
                // loaded once for both row groups.
                var wm: array<mat4x4<f32>, VECS>;
                for (var v = 0u; v < VECS; v++) {
                    let at = w_at + col4[v];
                    wm[v] = mat4x4(w4[at], w4[at + cout4], w4[at + 2u * cout4], w4[at + 3u * cout4]);
                }
                mac_group(&acc0, &taps0, c4, wm);
                if (ROW_GROUPS == 2u) {
                    mac_group(&acc1, &taps1, c4, wm);
                }
                w_at += 4u * cout4;
            }
        }
    }
    store_block(row0, col0, acc0);
    if (ROW_GROUPS == 2u) {
        store_block(row1, col0, acc1);
    }
}

@compute @workgroup_size(LANES_M * LANES_N)
fn conv2d_blocked(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.z * nwg.x) * LANES_M * ROWS + lane % LANES_M;
    let col0 = (wid.y * LANES_N + lane / LANES_M) * 4u * VECS;
    let origins = group_origins(row0);
    var cols: array<vec4<u32>, VECS>;
    for (var v = 0u; v < VECS; v++) {
        cols[v] = min(vec4(col0 + 4u * v) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u));
    }

    var acc: array<vec4<f32>, ROWS * VECS>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let taps = group_taps(origins, ky, kx);
            let k0 = (ky * p.kw + kx) * p.cin;
            for (var ci = 0u; ci < p.cin; ci++) {
                let w_at = (k0 + ci) * p.cout;
                var wv: array<vec4<f32>, VECS>;
                for (var v = 0u; v < VECS; v++) {
                    let c = cols[v] + vec4(w_at);
                    wv[v] = vec4(w[c.x], w[c.y], w[c.z], w[c.w]);
                }
                for (var r = 0u; r < ROWS; r++) {
                    var a = x[taps[r].at + ci];
                    if (PADDED) {
                        a *= taps[r].inside;
                    }
                    mac_pixel(&acc, r, a, wv);
                }
            }
        }
    }
    store_block(row0, col0, acc);
}

// conv2d_blocked_stem's filter block: row k of the [K, cout] weights, columns
// wid.y*LANES_N*16 .. +LANES_N*16, at ws[k * 4 * LANES_N ..] (columns past
// cout hold column cout - 1, computed and not stored).
var<workgroup> ws: array<vec4<f32>, STEM_SLAB>;

@compute @workgroup_size(LANES_M * LANES_N)
fn conv2d_blocked_stem(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    // Each lane: ROWS pixels × two halves of 8 channels (acc0, acc1).
    let block_vecs = 2u * VECS * LANES_N;
    let block_col0 = wid.y * LANES_N * 8u * VECS;
    for (var i = lane; i < p.depth * block_vecs; i += LANES_M * LANES_N) {
        let k = i / block_vecs;
        let c = min(vec4(block_col0 + 4u * (i % block_vecs)) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u)) + vec4(k * p.cout);
        ws[i] = vec4(w[c.x], w[c.y], w[c.z], w[c.w]);
    }
    workgroupBarrier();

    let row0 = (wid.x + wid.z * nwg.x) * LANES_M * ROWS + lane % LANES_M;
    let jn = lane / LANES_M;
    let col0 = block_col0 + jn * 8u * VECS;
    let origins = group_origins(row0);
    var acc0: array<vec4<f32>, ROWS * VECS>;
    var acc1: array<vec4<f32>, ROWS * VECS>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let taps = group_taps(origins, ky, kx);
            var ws_at = (ky * p.kw + kx) * p.cin * block_vecs + jn * 2u * VECS;
            for (var ci = 0u; ci < p.cin; ci++) {
                var wv0: array<vec4<f32>, VECS>;
                var wv1: array<vec4<f32>, VECS>;
                for (var v = 0u; v < VECS; v++) {
                    wv0[v] = ws[ws_at + v];
                    wv1[v] = ws[ws_at + VECS + v];
                }
                for (var r = 0u; r < ROWS; r++) {
                    var a = x[taps[r].at + ci];
                    if (PADDED) {
                        a *= taps[r].inside;
                    }
                    mac_pixel(&acc0, r, a, wv0);
                    mac_pixel(&acc1, r, a, wv1);
                }
                ws_at += block_vecs;
            }
        }
    }
    store_block(row0, col0, acc0);
    store_block(row0, col0 + 4u * VECS, acc1);
}
