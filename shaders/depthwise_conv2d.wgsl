// Depthwise 2-D convolution (Keras DepthwiseConv2D, depth_multiplier 1, no
// bias of its own), forward and backward, f32. Every channel is convolved
// with its own kh×kw filter:
//
//   y[b, oy, ox, ch] = Σ_{ky, kx} x[b, oy*sh + ky - pad_top, ox*sw + kx - pad_left, ch] * w[ky, kx, ch]
//   out[b, oy, ox, ch] = act(y * scale[ch] + bias[ch])       (forward epilogue, each part optional)
//
// act is none, ReLU or ReLU6 (`epilogue` bits 2 and 3, as in conv2d_*.wgsl).
// Taps outside the input read zero padding (TF 'same', 'valid' or explicit:
// the launcher passes pad_top, pad_left and the output size).
//
// Layouts: x, dx NHWC [batch, in_h, in_w, c]; w, dw [kh, kw, c] (Keras's
// depthwise_kernel [kh, kw, c, 1]); y, out, dy NHWC [batch, out_h, out_w, c];
// scale, bias [c]. When scale or bias is absent the launcher binds another
// read-only tensor in its slot and clears the matching `epilogue` bit.
// The *_vec4 entry points read and write every array as vec4 (c % 4 == 0,
// c4 = c / 4 channel quads).
//
// Entry points (1-D: WORKGROUP_SIZE invocations per workgroup, the grid
// folded into y past the per-dimension limit, invocations past `total`
// return at once; but for depthwise_strip_vec4):
//   depthwise_direct         one invocation per output element, scalar loads: the oracle.
//   depthwise_strip_vec4     one invocation per channel quad × OWB neighbouring output
//                            pixels of a row × a strip of `strip` output rows, walked
//                            top to bottom with a sliding window of the KH input rows
//                            the current output row reads (OWB·SW + KW − SW columns
//                            each, in registers): each step keeps the KH − SH rows still
//                            in the window and loads SH new ones, so every input value
//                            is loaded about once per strip instead of KH·KW times (at
//                            3×3 stride 1, OWB 2: 4 vec4 loads and 2 stores per output
//                            row, against 18 and 2 for a gather per pixel). The KH·KW
//                            filter taps are loaded once per invocation. No workgroup
//                            memory, no barriers: the shape that suits lavapipe, which
//                            runs a workgroup as 8-wide SIMD on one CPU thread and turns
//                            every storage access into a per-lane loop with a bounds
//                            check per component, so the count of loads and stores is
//                            what bounds a memory-bound kernel. KH, KW, SH, SW and OWB
//                            are overrides and the window code is written out per row,
//                            so every index into the window, the taps and the
//                            accumulators is a constant and they stay in registers
//                            (lavapipe's compiler does not unroll a loop over rows of
//                            this size; it would then index memory per lane). Workgroup
//                            LANES_C × LANES_W × 1 over channel quads × pixel blocks,
//                            grid z over (image, strip) pairs, looping when there are
//                            more than the grid's z size. Pixels past out_w in the last
//                            block are computed from zero columns and not stored.
//   depthwise_backward_input, depthwise_backward_input_vec4
//                            dx gathered per input element (per channel quad) over the
//                            taps that reach it (no atomics).
//   depthwise_filter_grad, depthwise_filter_grad_vec4
//                            dw[ky, kx, ch] = Σ_{b, oy, ox} x[…] * dy[b, oy, ox, ch]: the
//                            P = batch·out_h·out_w output positions are split into
//                            `slices` contiguous ranges of `positions_per_slice`;
//                            invocation i sums slice i / units for one weight (one
//                            weight quad) into partial[slice, ·], lanes along channels.
//                            With one slice that is dw itself, else
//   depthwise_sum_slices     dw[j] = Σ_s partial[s, j], one invocation per weight.

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    c: u32,
    out_h: u32,
    out_w: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    c4: u32,                  // channel quads, c / 4 (vec4 entry points)
    total: u32,               // invocations doing work in this dispatch
    epilogue: u32,            // bit 0: multiply by scale, bit 1: add bias, bit 2: ReLU (max 0), bit 3: cap at 6 (ReLU6 = bits 2 and 3)
    slices: u32,              // filter gradient: slices of the reduction over output positions
    positions_per_slice: u32, // filter gradient: output positions per slice
    strip: u32,               // depthwise_strip_vec4: output rows per invocation
}

const EPILOGUE_SCALE: u32 = 1u;
const EPILOGUE_BIAS: u32 = 2u;
const EPILOGUE_RELU: u32 = 4u;
const EPILOGUE_CAP6: u32 = 8u;

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 64u;

// depthwise_strip_vec4 only, set by the launcher: the window (equal to
// p.kh, p.kw, p.stride_h, p.stride_w) and the output pixels per invocation.
// The launcher keeps KH <= MAX_KH, KH·KW <= MAX_TAPS and COLS <= MAX_COLS.
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override OWB: u32 = 2u;
const MAX_OWB: u32 = 4u;
const MAX_KH: u32 = 7u;
const MAX_COLS: u32 = 12u;
const MAX_TAPS: u32 = 49u;
// Input columns an invocation reads per input row.
override COLS: u32 = (OWB - 1u) * SW + KW;
// Input rows of the window still in it after one step down (SH rows).
override KEEP: u32 = max(KH, SH) - SH;
// Steps that fill the window before a strip's first output row.
override WARM: u32 = (KEEP + SH - 1u) / SH;
// Lanes of a workgroup along channel quads and along pixel blocks.
override LANES_C: u32 = 8u;
override LANES_W: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// ---- forward, scalar: reads x, w, scale, bias; writes out ----
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn epilogue(v: f32, ch: u32) -> f32 {
    var r = v;
    if ((p.epilogue & EPILOGUE_SCALE) != 0u) {
        r = r * scale[ch];
    }
    if ((p.epilogue & EPILOGUE_BIAS) != 0u) {
        r = r + bias[ch];
    }
    if ((p.epilogue & EPILOGUE_RELU) != 0u) {
        r = max(r, 0.0);
    }
    if ((p.epilogue & EPILOGUE_CAP6) != 0u) {
        r = min(r, 6.0);
    }
    return r;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn depthwise_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let pixel = i / p.c;
    let ox = pixel % p.out_w;
    let oy = (pixel / p.out_w) % p.out_h;
    let b = pixel / (p.out_w * p.out_h);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride_h + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            acc += x[((b * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.c + ch] * w[(ky * p.kw + kx) * p.c + ch];
        }
    }
    out[i] = epilogue(acc, ch);
}

// ---- forward, vec4 strips: the same bindings seen as vec4 ----
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> scale4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out4: array<vec4<f32>>;

fn epilogue4(v: vec4<f32>, cv: u32) -> vec4<f32> {
    var r = v;
    if ((p.epilogue & EPILOGUE_SCALE) != 0u) {
        r = r * scale4[cv];
    }
    if ((p.epilogue & EPILOGUE_BIAS) != 0u) {
        r = r + bias4[cv];
    }
    if ((p.epilogue & EPILOGUE_RELU) != 0u) {
        r = max(r, vec4(0.0));
    }
    if ((p.epilogue & EPILOGUE_CAP6) != 0u) {
        r = min(r, vec4(6.0));
    }
    return r;
}

// The COLS input columns of row iy of image b that a pixel block starting at
// column ix0 reads, channel quad cv; zero outside the input.
fn input_row(b: u32, iy: i32, ix0: i32, cv: u32) -> array<vec4<f32>, MAX_COLS> {
    var cols: array<vec4<f32>, MAX_COLS>;
    if (iy >= 0 && iy < i32(p.in_h)) {
        let row_at = (b * p.in_h + u32(iy)) * p.in_w;
        for (var k = 0u; k < COLS; k++) {
            let ix = ix0 + i32(k);
            let inside = ix >= 0 && ix < i32(p.in_w);
            let v = x4[select(0u, (row_at + u32(ix)) * p.c4 + cv, inside)];
            cols[k] = select(vec4(0.0), v, inside);
        }
    }
    return cols;
}

// acc[j] += Σ_kx cols[j·SW + kx] · taps[ky·KW + kx]: filter row ky over the OWB pixels.
fn filter_row(acc: ptr<function, array<vec4<f32>, MAX_OWB>>, taps: ptr<function, array<vec4<f32>, MAX_TAPS>>, cols: array<vec4<f32>, MAX_COLS>, ky: u32) {
    for (var kx = 0u; kx < KW; kx++) {
        for (var j = 0u; j < OWB; j++) {
            (*acc)[j] = fma(cols[j * SW + kx], (*taps)[ky * KW + kx], (*acc)[j]);
        }
    }
}

@compute @workgroup_size(LANES_C, LANES_W, 1)
fn depthwise_strip_vec4(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let cv = wid.x * LANES_C + lid.x;
    let ox0 = (wid.y * LANES_W + lid.y) * OWB;
    if (cv >= p.c4 || ox0 >= p.out_w) {
        return;
    }
    var taps: array<vec4<f32>, MAX_TAPS>;
    for (var k = 0u; k < KH * KW; k++) {
        taps[k] = w4[k * p.c4 + cv];
    }
    let ix0 = i32(ox0 * SW) - i32(p.pad_left);
    let strips = (p.out_h + p.strip - 1u) / p.strip;
    for (var i = wid.z; i < p.batch * strips; i += nwg.z) {
        let b = i / strips;
        let oy0 = (i % strips) * p.strip;
        let oy_end = min(oy0 + p.strip, p.out_h);
        // rows[ky]: the input row that filter row ky reads for output row oy.
        // Each step moves the window down SH rows: it keeps the KEEP rows
        // still in it and loads the others. The first WARM steps (output rows
        // above the strip) only fill the window.
        var rows: array<array<vec4<f32>, MAX_COLS>, MAX_KH>;
        for (var step = 0u; step < oy_end - oy0 + WARM; step++) {
            let oy = i32(oy0 + step) - i32(WARM);
            let iy = oy * i32(SH) - i32(p.pad_top);
            // Written out per row of the window (KH <= 7): with constant
            // indices the window stays in registers (a loop over it would not
            // unroll, and its indices would then address memory).
            if (KEEP > 0u) { rows[0] = rows[min(SH, MAX_KH - 1u)]; }
            if (KEEP > 1u) { rows[1] = rows[min(1u + SH, MAX_KH - 1u)]; }
            if (KEEP > 2u) { rows[2] = rows[min(2u + SH, MAX_KH - 1u)]; }
            if (KEEP > 3u) { rows[3] = rows[min(3u + SH, MAX_KH - 1u)]; }
            if (KEEP > 4u) { rows[4] = rows[min(4u + SH, MAX_KH - 1u)]; }
            if (KEEP > 5u) { rows[5] = rows[min(5u + SH, MAX_KH - 1u)]; }
            if (KEEP <= 0u && KH > 0u) { rows[0] = input_row(b, iy, ix0, cv); }
            if (KEEP <= 1u && KH > 1u) { rows[1] = input_row(b, iy + 1, ix0, cv); }
            if (KEEP <= 2u && KH > 2u) { rows[2] = input_row(b, iy + 2, ix0, cv); }
            if (KEEP <= 3u && KH > 3u) { rows[3] = input_row(b, iy + 3, ix0, cv); }
            if (KEEP <= 4u && KH > 4u) { rows[4] = input_row(b, iy + 4, ix0, cv); }
            if (KEEP <= 5u && KH > 5u) { rows[5] = input_row(b, iy + 5, ix0, cv); }
            if (KEEP <= 6u && KH > 6u) { rows[6] = input_row(b, iy + 6, ix0, cv); }
            if (oy < i32(oy0)) {
                continue;
            }
            var acc: array<vec4<f32>, MAX_OWB>;
            if (KH > 0u) { filter_row(&acc, &taps, rows[0], 0u); }
            if (KH > 1u) { filter_row(&acc, &taps, rows[1], 1u); }
            if (KH > 2u) { filter_row(&acc, &taps, rows[2], 2u); }
            if (KH > 3u) { filter_row(&acc, &taps, rows[3], 3u); }
            if (KH > 4u) { filter_row(&acc, &taps, rows[4], 4u); }
            if (KH > 5u) { filter_row(&acc, &taps, rows[5], 5u); }
            if (KH > 6u) { filter_row(&acc, &taps, rows[6], 6u); }
            let at = ((b * p.out_h + u32(oy)) * p.out_w + ox0) * p.c4 + cv;
            for (var j = 0u; j < OWB; j++) {
                if (ox0 + j < p.out_w) {
                    out4[at + j * p.c4] = epilogue4(acc[j], cv);
                }
            }
        }
    }
}

// Output coordinate reached by input coordinate `i` through filter tap `k`, or
// `count` (out of range) when no output position uses that tap.
fn output_coord(i: u32, k: u32, pad: u32, stride: u32, count: u32) -> u32 {
    let shifted = i + pad;
    if (shifted < k || (shifted - k) % stride != 0u) {
        return count;
    }
    return min((shifted - k) / stride, count);
}

// ---- backward input: reads dy, w; writes dx ----
@group(0) @binding(1) var<storage, read> bi_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bi_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> bi_dx: array<f32>;
@group(0) @binding(1) var<storage, read> bi_dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bi_w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> bi_dx4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn depthwise_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let pixel = i / p.c;
    let ix = pixel % p.in_w;
    let iy = (pixel / p.in_w) % p.in_h;
    let b = pixel / (p.in_w * p.in_h);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = output_coord(iy, ky, p.pad_top, p.stride_h, p.out_h);
        if (oy == p.out_h) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = output_coord(ix, kx, p.pad_left, p.stride_w, p.out_w);
            if (ox == p.out_w) {
                continue;
            }
            acc = fma(bi_dy[((b * p.out_h + oy) * p.out_w + ox) * p.c + ch], bi_w[(ky * p.kw + kx) * p.c + ch], acc);
        }
    }
    bi_dx[i] = acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn depthwise_backward_input_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let cv = i % p.c4;
    let pixel = i / p.c4;
    let ix = pixel % p.in_w;
    let iy = (pixel / p.in_w) % p.in_h;
    let b = pixel / (p.in_w * p.in_h);
    var acc = vec4(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = output_coord(iy, ky, p.pad_top, p.stride_h, p.out_h);
        if (oy == p.out_h) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = output_coord(ix, kx, p.pad_left, p.stride_w, p.out_w);
            if (ox == p.out_w) {
                continue;
            }
            acc = fma(bi_dy4[((b * p.out_h + oy) * p.out_w + ox) * p.c4 + cv], bi_w4[(ky * p.kw + kx) * p.c4 + cv], acc);
        }
    }
    bi_dx4[i] = acc;
}

// ---- filter gradient: reads x, dy; writes dw or the per-slice partials ----
@group(0) @binding(1) var<storage, read> fg_x: array<f32>;
@group(0) @binding(2) var<storage, read> fg_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> fg_dw: array<f32>;
@group(0) @binding(1) var<storage, read> fg_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fg_dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> fg_dw4: array<vec4<f32>>;

// An output position (b, oy, ox), walked in that order through a slice.
struct Position {
    b: u32,
    oy: u32,
    ox: u32,
}

fn position_of(index: u32) -> Position {
    return Position(index / (p.out_h * p.out_w), (index / p.out_w) % p.out_h, index % p.out_w);
}

fn next_position(q: Position) -> Position {
    var r = q;
    r.ox += 1u;
    if (r.ox == p.out_w) {
        r.ox = 0u;
        r.oy += 1u;
        if (r.oy == p.out_h) {
            r.oy = 0u;
            r.b += 1u;
        }
    }
    return r;
}

// [first, last) output positions of a slice.
fn slice_range(slice: u32) -> vec2<u32> {
    let positions = p.batch * p.out_h * p.out_w;
    let first = min(slice * p.positions_per_slice, positions);
    return vec2<u32>(first, min(first + p.positions_per_slice, positions));
}

// Input pixel index (b, iy, ix) read by position q through tap (ky, kx), or -1 in the padding.
fn input_pixel(q: Position, ky: u32, kx: u32) -> i32 {
    let iy = i32(q.oy * p.stride_h + ky) - i32(p.pad_top);
    let ix = i32(q.ox * p.stride_w + kx) - i32(p.pad_left);
    if (iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
        return -1;
    }
    return (i32(q.b * p.in_h) + iy) * i32(p.in_w) + ix;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn depthwise_filter_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let weights = p.kh * p.kw * p.c;
    let j = i % weights;
    let ch = j % p.c;
    let kx = (j / p.c) % p.kw;
    let ky = j / (p.c * p.kw);
    let range = slice_range(i / weights);
    var q = position_of(range.x);
    var acc = 0.0;
    for (var pos = range.x; pos < range.y; pos++) {
        let at = input_pixel(q, ky, kx);
        if (at >= 0) {
            acc = fma(fg_x[u32(at) * p.c + ch], fg_dy[pos * p.c + ch], acc);
        }
        q = next_position(q);
    }
    fg_dw[i] = acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn depthwise_filter_grad_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let units = p.kh * p.kw * p.c4;
    let u = i % units;
    let cv = u % p.c4;
    let kx = (u / p.c4) % p.kw;
    let ky = u / (p.c4 * p.kw);
    let range = slice_range(i / units);
    var q = position_of(range.x);
    var acc = vec4(0.0);
    for (var pos = range.x; pos < range.y; pos++) {
        let at = input_pixel(q, ky, kx);
        if (at >= 0) {
            acc = fma(fg_x4[u32(at) * p.c4 + cv], fg_dy4[pos * p.c4 + cv], acc);
        }
        q = next_position(q);
    }
    fg_dw4[i] = acc;
}

// ---- sum of the slices: reads partial [slices, total]; writes dw [total] ----
@group(0) @binding(1) var<storage, read> ss_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> ss_dw: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn depthwise_sum_slices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg);
    if (j >= p.total) {
        return;
    }
    var acc = 0.0;
    for (var s = 0u; s < p.slices; s++) {
        acc += ss_partial[s * p.total + j];
    }
    ss_dw[j] = acc;
}
