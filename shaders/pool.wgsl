// Pooling over NHWC tensors x: [n, h, w, c] with a kh×kw window, strides
// (stride_h, stride_w) and top/left padding (pad_top, pad_left; 0 for 'valid'):
//   max_pool_forward          y[n, oy, ox, off + ch] = max of the window's in-bounds taps;
//                             y is [n, oh, ow, out_channels], so the result can land in a
//                             channel slice of a wider tensor (off = channel_offset)
//   max_pool_argmax           argmax[n, oy, ox, ch] = iy * w + ix of the first maximal tap
//                             in window order (row-major), u32
//   max_pool_backward         dx[n, iy, ix, ch] = Σ dy[o] over the outputs o whose argmax is (iy, ix)
//   avg_pool_forward          y = mean of the window's in-bounds taps (Keras: padding not counted)
//   avg_pool_backward         dx[n, iy, ix, ch] = Σ dy[o] / count(o) over the windows o covering (iy, ix)
//   global_avg_pool           y[n, ch] = mean over h·w of x[n, ·, ·, ch]
//   global_avg_pool_backward  dx[n, iy, ix, ch] = dy[n, ch] / (h·w)
// Element types: everything is f32, except the two forward kernels' input
// and output (`src`, `dst`), whose types are the aliases SrcElem and DstElem:
// f32 here, and f16 in the variants the launcher derives for the frozen
// prefix's f16 storage under --precision mixed (ops::pool, gpu::variant).
// Sums are taken in f32 either way; a maximum is exact in any type.
// Tiling: one invocation per output element (forward, argmax, global mean over
// (n, ch)) or per input element (the backward gathers, so no atomics), 256 per
// workgroup, channel fastest so neighbouring invocations touch neighbouring
// addresses; the workgroup grid may be folded into y (linear workgroup =
// wid.x + wid.y * nwg.x) when more than 65535 workgroups are needed, and
// invocations past `total` return early.

struct Params {
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    out_channels: u32,
    channel_offset: u32,
    total: u32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// Position of an element of an NHWC tensor [batch, rows, cols, p.c].
struct Pos {
    n: u32,
    y: u32,
    x: u32,
    ch: u32,
}

fn unflatten(i: u32, rows: u32, cols: u32) -> Pos {
    let ch = i % p.c;
    let pix = i / p.c;
    let x = pix % cols;
    let rest = pix / cols;
    return Pos(rest / rows, rest % rows, x, ch);
}

// The in-bounds input rows [begin, end) and columns of the window of output (oy, ox).
struct Span {
    y0: u32,
    y1: u32,
    x0: u32,
    x1: u32,
}

fn window(oy: u32, ox: u32) -> Span {
    // Start of the window in padded coordinates; the input starts at pad_top / pad_left.
    let sy = oy * p.stride_h;
    let sx = ox * p.stride_w;
    let y0 = max(sy, p.pad_top) - p.pad_top;
    let x0 = max(sx, p.pad_left) - p.pad_left;
    let y1 = min(sy + p.kh, p.pad_top + p.h) - p.pad_top;
    let x1 = min(sx + p.kw, p.pad_left + p.w) - p.pad_left;
    return Span(y0, y1, x0, x1);
}

// The outputs [begin, end) per axis whose windows contain input (iy, ix).
fn covering_outputs(iy: u32, ix: u32) -> Span {
    let ty = iy + p.pad_top;
    let tx = ix + p.pad_left;
    // o * stride <= t < o * stride + k  ⇔  (t - k + 1) / stride <= o <= t / stride
    let oy0 = select(0u, (ty + 1u - p.kh + p.stride_h - 1u) / p.stride_h, ty + 1u > p.kh);
    let ox0 = select(0u, (tx + 1u - p.kw + p.stride_w - 1u) / p.stride_w, tx + 1u > p.kw);
    let oy1 = min(ty / p.stride_h + 1u, p.oh);
    let ox1 = min(tx / p.stride_w + 1u, p.ow);
    return Span(oy0, oy1, ox0, ox1);
}

fn x_index(n: u32, iy: u32, ix: u32, ch: u32) -> u32 {
    return ((n * p.h + iy) * p.w + ix) * p.c + ch;
}

fn dy_index(n: u32, oy: u32, ox: u32, ch: u32) -> u32 {
    return ((n * p.oh + oy) * p.ow + ox) * p.c + ch;
}

// ---- forward: one input, one output of the activations' element types ----
alias SrcElem = f32;
alias DstElem = f32;
@group(0) @binding(1) var<storage, read> src: array<SrcElem>;
@group(0) @binding(2) var<storage, read_write> dst: array<DstElem>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let o = unflatten(i, p.oh, p.ow);
    let s = window(o.y, o.x);
    // Every window holds at least one in-bounds tap ('same' pads less than a window).
    var best = f32(src[x_index(o.n, s.y0, s.x0, o.ch)]);
    for (var iy = s.y0; iy < s.y1; iy++) {
        for (var ix = s.x0; ix < s.x1; ix++) {
            best = max(best, f32(src[x_index(o.n, iy, ix, o.ch)]));
        }
    }
    dst[((o.n * p.oh + o.y) * p.ow + o.x) * p.out_channels + p.channel_offset + o.ch] = DstElem(best);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let o = unflatten(i, p.oh, p.ow);
    let s = window(o.y, o.x);
    var sum = 0.0;
    for (var iy = s.y0; iy < s.y1; iy++) {
        for (var ix = s.x0; ix < s.x1; ix++) {
            sum += f32(src[x_index(o.n, iy, ix, o.ch)]);
        }
    }
    dst[i] = DstElem(sum / f32((s.y1 - s.y0) * (s.x1 - s.x0)));
}

// ---- one f32 input, one f32 output ----
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// x is the upstream gradient dy [n, oh, ow, c], y the input gradient dx [n, h, w, c].
@compute @workgroup_size(WORKGROUP_SIZE)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let e = unflatten(i, p.h, p.w);
    let outs = covering_outputs(e.y, e.x);
    var sum = 0.0;
    for (var oy = outs.y0; oy < outs.y1; oy++) {
        for (var ox = outs.x0; ox < outs.x1; ox++) {
            let s = window(oy, ox);
            sum += x[dy_index(e.n, oy, ox, e.ch)] / f32((s.y1 - s.y0) * (s.x1 - s.x0));
        }
    }
    y[i] = sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn global_avg_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let n = i / p.c;
    let ch = i % p.c;
    let pixels = p.h * p.w;
    var sum = 0.0;
    for (var q = 0u; q < pixels; q++) {
        sum += x[(n * pixels + q) * p.c + ch];
    }
    y[i] = sum / f32(pixels);
}

// x is the upstream gradient dy [n, c], y the input gradient dx [n, h, w, c].
@compute @workgroup_size(WORKGROUP_SIZE)
fn global_avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let e = unflatten(i, p.h, p.w);
    y[i] = x[e.n * p.c + e.ch] / f32(p.h * p.w);
}

// ---- one input, one u32 output ----
@group(0) @binding(2) var<storage, read_write> argmax: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn max_pool_argmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let o = unflatten(i, p.oh, p.ow);
    let s = window(o.y, o.x);
    var best = x[x_index(o.n, s.y0, s.x0, o.ch)];
    var best_at = s.y0 * p.w + s.x0;
    for (var iy = s.y0; iy < s.y1; iy++) {
        for (var ix = s.x0; ix < s.x1; ix++) {
            let v = x[x_index(o.n, iy, ix, o.ch)];
            if (v > best) { // strictly greater: ties keep the first tap
                best = v;
                best_at = iy * p.w + ix;
            }
        }
    }
    argmax[i] = best_at;
}

// ---- argmax and dy in, dx out ----
@group(0) @binding(1) var<storage, read> saved_argmax: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let e = unflatten(i, p.h, p.w);
    let here = e.y * p.w + e.x;
    let outs = covering_outputs(e.y, e.x);
    var sum = 0.0;
    for (var oy = outs.y0; oy < outs.y1; oy++) {
        for (var ox = outs.x0; ox < outs.x1; ox++) {
            let o = dy_index(e.n, oy, ox, e.ch);
            if (saved_argmax[o] == here) {
                sum += dy[o];
            }
        }
    }
    dx[i] = sum;
}
