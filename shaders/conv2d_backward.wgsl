// Convolution backward, f32, NHWC activations and HWIO filters (row-major):
//   x, dx [n, h, w, cin]    w, dw [kh, kw, cin, cout]    dy [n, oh, ow, cout]
// with the forward tap  iy = oy·stride_h + ky − pad_top,  ix = ox·stride_w + kx − pad_left.
//
//   backward_input          dx[b,iy,ix,ci] = Σ_{ky,kx,co} dy[b,oy,ox,co] · w[ky,kx,ci,co]
//                           over the (oy, ox) whose taps reach (iy, ix).
//                           One invocation per dx element gathers over its taps (the simple oracle).
//   backward_input_blocked  same sum, one invocation per 4 images × 4 cin at one (iy, ix): the
//                           images share their taps; 4 vec4 accumulators, 8 loads per 16 FMAs.
//   filter_grad_per_weight  dw[ky,kx,ci,co] = Σ_{b,oy,ox} x[b,iy,ix,ci] · dy[b,oy,ox,co]
//                           One invocation per weight element (the simple oracle).
//   filter_grad_blocked     same sum, one invocation per 4 cin × 4 cout block of one (ky, kx):
//                           4 vec4 accumulators in registers, 8 loads per 16 FMAs.
//   sum_slices              dw[j] = Σ_s partial[s, j]
//
// The filter-gradient reduction runs over the P = n·oh·ow output positions, which are
// split into `slices` contiguous ranges of `positions_per_slice`; invocation i works on
// slice i / units (units: weights or blocks per slice) and writes its weights of
// partial[slice, :]. With one slice that is dw itself; otherwise sum_slices adds the
// slices (one invocation per weight).
// Blocked kernels cover partial blocks at the edges by clamping the indices they load
// (so the inner loops have no branches) and storing only the valid results.
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

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
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

@compute @workgroup_size(WORKGROUP_SIZE)
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

// Stores 4 cin values of one image's dx pixel, skipping channels past cin.
fn store_dx_pixel(base: u32, ci0: u32, v: vec4<f32>) {
    for (var k = 0u; k < 4u; k++) {
        if (ci0 + k < p.cin) {
            bi_dx[base + k] = v[k];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_input_blocked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let cin_blocks = (p.cin + 3u) / 4u;
    let ci0 = (i % cin_blocks) * 4u;
    let pixel = i / cin_blocks;
    let ix = pixel % p.w;
    let iy = (pixel / p.w) % p.h;
    let b0 = (pixel / (p.w * p.h)) * 4u;
    // Offsets of the 4 channels in w and of the 4 images in dy, clamped to the last valid one.
    let w_offsets = vec4<u32>(0u, min(ci0 + 1u, p.cin - 1u) - ci0, min(ci0 + 2u, p.cin - 1u) - ci0,
                              min(ci0 + 3u, p.cin - 1u) - ci0) * p.cout;
    let image = p.oh * p.ow * p.cout;
    let dy_offsets = vec4<u32>(0u, min(b0 + 1u, p.n - 1u) - b0, min(b0 + 2u, p.n - 1u) - b0,
                               min(b0 + 3u, p.n - 1u) - b0) * image;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
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
            let dy_base = ((b0 * p.oh + oy) * p.ow + ox) * p.cout;
            let w_base = ((ky * p.kw + kx) * p.cin + ci0) * p.cout;
            for (var co = 0u; co < p.cout; co++) {
                let g = vec4<f32>(bi_dy[dy_base + dy_offsets.x + co], bi_dy[dy_base + dy_offsets.y + co],
                                  bi_dy[dy_base + dy_offsets.z + co], bi_dy[dy_base + dy_offsets.w + co]);
                let wv = vec4<f32>(bi_w[w_base + w_offsets.x + co], bi_w[w_base + w_offsets.y + co],
                                   bi_w[w_base + w_offsets.z + co], bi_w[w_base + w_offsets.w + co]);
                acc0 = fma(vec4<f32>(g.x), wv, acc0);
                acc1 = fma(vec4<f32>(g.y), wv, acc1);
                acc2 = fma(vec4<f32>(g.z), wv, acc2);
                acc3 = fma(vec4<f32>(g.w), wv, acc3);
            }
        }
    }
    let out = ((b0 * p.h + iy) * p.w + ix) * p.cin + ci0;
    let next_image = p.h * p.w * p.cin;
    store_dx_pixel(out, ci0, acc0);
    if (b0 + 1u < p.n) { store_dx_pixel(out + next_image, ci0, acc1); }
    if (b0 + 2u < p.n) { store_dx_pixel(out + 2u * next_image, ci0, acc2); }
    if (b0 + 3u < p.n) { store_dx_pixel(out + 3u * next_image, ci0, acc3); }
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

@compute @workgroup_size(WORKGROUP_SIZE)
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

// Stores the 4 cout values of one cin row of a block, skipping columns past cout.
fn store_block_row(base: u32, co0: u32, row: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        if (co0 + c < p.cout) {
            fg_dw[base + c] = row[c];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
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
    // Offsets of the 4 channels in x and the 4 outputs in dy, clamped to the last valid one.
    let x_offsets = vec4<u32>(0u, min(ci0 + 1u, p.cin - 1u) - ci0, min(ci0 + 2u, p.cin - 1u) - ci0,
                              min(ci0 + 3u, p.cin - 1u) - ci0);
    let dy_offsets = vec4<u32>(0u, min(co0 + 1u, p.cout - 1u) - co0, min(co0 + 2u, p.cout - 1u) - co0,
                               min(co0 + 3u, p.cout - 1u) - co0);
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
            let xv = vec4<f32>(fg_x[xb + x_offsets.x], fg_x[xb + x_offsets.y],
                               fg_x[xb + x_offsets.z], fg_x[xb + x_offsets.w]);
            let db = pos * p.cout + co0;
            let g = vec4<f32>(fg_dy[db + dy_offsets.x], fg_dy[db + dy_offsets.y],
                              fg_dy[db + dy_offsets.z], fg_dy[db + dy_offsets.w]);
            acc0 = fma(vec4<f32>(xv.x), g, acc0);
            acc1 = fma(vec4<f32>(xv.y), g, acc1);
            acc2 = fma(vec4<f32>(xv.z), g, acc2);
            acc3 = fma(vec4<f32>(xv.w), g, acc3);
        }
        q = next_position(q);
    }
    let out = slice * p.kh * p.kw * p.cin * p.cout + ((ky * p.kw + kx) * p.cin + ci0) * p.cout + co0;
    store_block_row(out, co0, acc0);
    if (ci0 + 1u < p.cin) { store_block_row(out + p.cout, co0, acc1); }
    if (ci0 + 2u < p.cin) { store_block_row(out + 2u * p.cout, co0, acc2); }
    if (ci0 + 3u < p.cin) { store_block_row(out + 3u * p.cout, co0, acc3); }
}

// ---- sum_slices: reads partial [slices, weights]; writes dw [weights] ----
@group(0) @binding(1) var<storage, read> ss_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> ss_dw: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
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
