// Convolution backward, f32, NHWC activations and HWIO filters (row-major):
//   x, dx [n, h, w, cin]    w, dw [kh, kw, cin, cout]    dy [n, oh, ow, cout]
// with the forward tap  iy = oy·stride_h + ky − pad_top,  ix = ox·stride_w + kx − pad_left.
//
//   backward_input          dx[b,iy,ix,ci] = Σ_{ky,kx,co} dy[b,oy,ox,co] · w[ky,kx,ci,co]
//                           over the (oy, ox) whose taps reach (iy, ix).
//                           One invocation per dx element gathers over its taps (no atomics).
//   filter_grad_per_weight  dw[ky,kx,ci,co] = Σ_{b,oy,ox} x[b,iy,ix,ci] · dy[b,oy,ox,co]
//                           One invocation per weight element (the simple oracle).
//   filter_grad_blocked     same sum, one invocation per 4 cin × 4 cout block of one (ky, kx):
//                           4 vec4 accumulators in registers, 8 loads per 16 FMAs.
//   sum_slices              dw[j] = Σ_s partial[s, j]
//
// The filter-gradient reduction runs over the P = n·oh·ow output positions, which are
// split into `slices` contiguous ranges of `positions_per_slice`; invocation i works on
// slice i / units and writes out[i], i.e. partial[slice, weight]. With one slice that
// is dw itself; otherwise sum_slices adds the slices (one invocation per weight).
// Every kernel: 64 invocations per workgroup, the workgroup grid folded into y when it
// needs more than the per-dimension limit; invocations past `total` return at once.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    cin: u32,
    oh: u32,
    ow: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    slices: u32,
    positions_per_slice: u32,
    total: u32,   // invocations doing work in this dispatch
}

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
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

// Input coordinate read by output coordinate `o` through tap `k`, or `size`
// when it falls in the padding.
fn input_coord(o: u32, k: u32, pad: u32, stride: u32, size: u32) -> u32 {
    let shifted = o * stride + k;
    if (shifted < pad || shifted - pad >= size) {
        return size;
    }
    return shifted - pad;
}

// ---- backward_input: reads dy, w; writes dx ----
@group(0) @binding(1) var<storage, read> bi_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bi_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> bi_dx: array<f32>;

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let ci = i % p.cin;
    let pixel = i / p.cin;
    let ix = pixel % p.w;
    let iy = (pixel / p.w) % p.h;
    let b = pixel / (p.w * p.h);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = output_coord(iy, ky, p.pad_top, p.stride_h, p.oh);
        if (oy == p.oh) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = output_coord(ix, kx, p.pad_left, p.stride_w, p.ow);
            if (ox == p.ow) {
                continue;
            }
            let dy_base = ((b * p.oh + oy) * p.ow + ox) * p.cout;
            let w_base = ((ky * p.kw + kx) * p.cin + ci) * p.cout;
            for (var co = 0u; co < p.cout; co++) {
                acc = fma(bi_dy[dy_base + co], bi_w[w_base + co], acc);
            }
        }
    }
    bi_dx[i] = acc;
}

// ---- filter gradients: read x, dy; write dw (or the per-slice partials) ----
@group(0) @binding(1) var<storage, read> fg_x: array<f32>;
@group(0) @binding(2) var<storage, read> fg_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> fg_dw: array<f32>;

// Walks the output positions [first, last) of a slice in (b, oy, ox) order.
struct Position {
    b: u32,
    oy: u32,
    ox: u32,
}

fn position_of(index: u32) -> Position {
    return Position(index / (p.oh * p.ow), (index / p.ow) % p.oh, index % p.ow);
}

fn next_position(q: Position) -> Position {
    var r = q;
    r.ox += 1u;
    if (r.ox == p.ow) {
        r.ox = 0u;
        r.oy += 1u;
        if (r.oy == p.oh) {
            r.oy = 0u;
            r.b += 1u;
        }
    }
    return r;
}

fn slice_range(slice: u32) -> vec2<u32> {
    let positions = p.n * p.oh * p.ow;
    let first = min(slice * p.positions_per_slice, positions);
    return vec2<u32>(first, min(first + p.positions_per_slice, positions));
}

@compute @workgroup_size(64)
fn filter_grad_per_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let weights = p.kh * p.kw * p.cin * p.cout;
    let j = i % weights;
    let co = j % p.cout;
    let ci = (j / p.cout) % p.cin;
    let kx = (j / (p.cout * p.cin)) % p.kw;
    let ky = j / (p.cout * p.cin * p.kw);
    let range = slice_range(i / weights);
    var q = position_of(range.x);
    var acc = 0.0;
    for (var pos = range.x; pos < range.y; pos++) {
        let iy = input_coord(q.oy, ky, p.pad_top, p.stride_h, p.h);
        let ix = input_coord(q.ox, kx, p.pad_left, p.stride_w, p.w);
        if (iy < p.h && ix < p.w) {
            acc = fma(fg_x[((q.b * p.h + iy) * p.w + ix) * p.cin + ci], fg_dy[pos * p.cout + co], acc);
        }
        q = next_position(q);
    }
    fg_dw[i] = acc;
}

fn x_or_zero(index: u32, valid: bool) -> f32 {
    if (valid) {
        return fg_x[index];
    }
    return 0.0;
}

fn dy_or_zero(index: u32, valid: bool) -> f32 {
    if (valid) {
        return fg_dy[index];
    }
    return 0.0;
}

// Stores the 4 cout values of one cin row of a block, skipping columns past cout.
fn store_block_row(base: u32, co0: u32, row: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        if (co0 + c < p.cout) {
            fg_dw[base + c] = row[c];
        }
    }
}

@compute @workgroup_size(64)
fn filter_grad_blocked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let cin_blocks = (p.cin + 3u) / 4u;
    let cout_blocks = (p.cout + 3u) / 4u;
    let units = p.kh * p.kw * cin_blocks * cout_blocks;
    let slice = i / units;
    let u = i % units;
    let co0 = (u % cout_blocks) * 4u;
    let ci0 = ((u / cout_blocks) % cin_blocks) * 4u;
    let kx = (u / (cout_blocks * cin_blocks)) % p.kw;
    let ky = u / (cout_blocks * cin_blocks * p.kw);
    let ci_ok = vec4<bool>(ci0 < p.cin, ci0 + 1u < p.cin, ci0 + 2u < p.cin, ci0 + 3u < p.cin);
    let co_ok = vec4<bool>(co0 < p.cout, co0 + 1u < p.cout, co0 + 2u < p.cout, co0 + 3u < p.cout);
    let range = slice_range(slice);
    var q = position_of(range.x);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var pos = range.x; pos < range.y; pos++) {
        let iy = input_coord(q.oy, ky, p.pad_top, p.stride_h, p.h);
        let ix = input_coord(q.ox, kx, p.pad_left, p.stride_w, p.w);
        if (iy < p.h && ix < p.w) {
            let xb = ((q.b * p.h + iy) * p.w + ix) * p.cin + ci0;
            let xv = vec4<f32>(x_or_zero(xb, ci_ok.x), x_or_zero(xb + 1u, ci_ok.y),
                               x_or_zero(xb + 2u, ci_ok.z), x_or_zero(xb + 3u, ci_ok.w));
            let db = pos * p.cout + co0;
            let g = vec4<f32>(dy_or_zero(db, co_ok.x), dy_or_zero(db + 1u, co_ok.y),
                              dy_or_zero(db + 2u, co_ok.z), dy_or_zero(db + 3u, co_ok.w));
            acc0 = fma(vec4<f32>(xv.x), g, acc0);
            acc1 = fma(vec4<f32>(xv.y), g, acc1);
            acc2 = fma(vec4<f32>(xv.z), g, acc2);
            acc3 = fma(vec4<f32>(xv.w), g, acc3);
        }
        q = next_position(q);
    }
    let out = slice * p.kh * p.kw * p.cin * p.cout + ((ky * p.kw + kx) * p.cin + ci0) * p.cout + co0;
    if (ci_ok.x) { store_block_row(out, co0, acc0); }
    if (ci_ok.y) { store_block_row(out + p.cout, co0, acc1); }
    if (ci_ok.z) { store_block_row(out + 2u * p.cout, co0, acc2); }
    if (ci_ok.w) { store_block_row(out + 3u * p.cout, co0, acc3); }
}

// ---- sum_slices: reads partial [slices, weights]; writes dw [weights] ----
@group(0) @binding(1) var<storage, read> ss_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> ss_dw: array<f32>;

@compute @workgroup_size(64)
fn sum_slices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
