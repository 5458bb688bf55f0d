// Sibling convolutions: several convolutions with one input and one window
// (the 1×1 convolutions that open an Inception block's branches) computed as
// one GEMM over their filters concatenated along output channels, each
// branch's channels routed in the epilogue to its own destination.
//
//   y[m, co]  = act_b(conv(x, w)[m, co] * scale[co] + bias[co]), act_b = branch b's activation:
//               max(·, 0) when its bit of relu_mask is set, then min(·, 6) when its bit of cap6_mask is (ReLU6)
//   out_d[m * dest_stride[b] + dest_offset[b] + co - branch_start[b]] = y[m, co]
//
// for merged column co in branch b (branch_start[b] <= co < branch_end[b]),
// d = dest[b] (one of the bindings out0..out3), m the output pixel.
//
// Layouts (f32): x NHWC [batch, in_h, in_w, cin]; w HWIO [kh, kw, cin, cout]
// with cout the sum of the branches' channels, i.e. a row-major [K, cout]
// matrix whose column ranges are the branches' filters; scale and bias [cout]
// (the launcher fills 1 and 0 for a branch without a folded BatchNorm);
// out0..out3 NHWC [batch, out_h, out_w, dest_stride[b]], each branch writing
// channels [dest_offset[b], dest_offset[b] + its width): its own tensor, or
// its channel slice of a concatenation (several branches may share one
// output binding at different offsets). The launcher binds a one-element
// tensor in each unused output slot; no branch names it.
//
// Tiling: conv2d_blocked.wgsl's (and its two entry points, which sum in
// the same order as conv2d_blocked's, so each output equals the separate
// convolution's bit for bit when both take the same entry point): each
// invocation computes ROWS = 4 output pixels (spaced LANES_M apart) ×
// 4*VECS = 8 columns as vec4 accumulators; a workgroup of LANES_M × LANES_N
// invocations covers LANES_M*4 rows × LANES_N*8 columns of ONE branch: grid
// y runs over each branch's column blocks in turn (branch b owns blocks
// [block_start[b], block_end[b])), so the branch, hence the output binding,
// is uniform across a workgroup: the store computes the block's values,
// then writes them in the one of four loops (one per binding) that every
// lane selects alike (choosing the binding per element cost up to 2x on
// lavapipe, which runs every case of a switch masked). Grid x (folded into z
// past the dispatch limit) over row blocks. Rows past the end are clamped
// and not stored; columns past the branch's end read a valid column and are
// not stored. One dispatch instead of one per branch.
//
// Entry points:
//   conv2d_sibling_vec4  cin % 4 == 0 and every branch's width % 4 == 0;
//   conv2d_sibling       any cin and widths, scalar loads.
// Override PADDED = false when no tap can fall outside the input.

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    cin: u32,
    out_h: u32,
    out_w: u32,
    cout: u32,      // merged columns: the sum of the branches' widths
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    rows: u32,      // batch * out_h * out_w
    relu_mask: u32, // bit b: branch b applies ReLU
    cap6_mask: u32, // bit b: branch b then caps at 6 (ReLU6); also aligns the branch table below to 16 bytes
    // Per branch b (unused entries: block_start = block_end = the grid's y size, never matched).
    block_start: vec4<u32>, // first column block (workgroup y) of the branch
    block_end: vec4<u32>,   // one past its last
    branch_start: vec4<u32>, // first merged column of the branch
    branch_end: vec4<u32>,   // one past its last
    dest: vec4<u32>,        // output binding 0..3
    dest_stride: vec4<u32>, // channels of that output tensor
    dest_offset: vec4<u32>, // its first channel the branch writes
}

override LANES_M: u32 = 64u;
override LANES_N: u32 = 1u;
const ROWS: u32 = 4u;
const VECS: u32 = 2u;
const COLS: u32 = 4u * VECS;

override PADDED: bool = true;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
// The same buffers seen as vec4 (conv2d_sibling_vec4 only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out0: array<f32>;
@group(0) @binding(6) var<storage, read_write> out1: array<f32>;
@group(0) @binding(7) var<storage, read_write> out2: array<f32>;
@group(0) @binding(8) var<storage, read_write> out3: array<f32>;

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

// The branch a workgroup computes: the one whose column blocks contain wid.y.
fn branch_of(block: u32) -> u32 {
    let past = select(vec4(0u), vec4(1u), vec4(block) >= p.block_end);
    return past.x + past.y + past.z + past.w;
}

// First merged column of an invocation of branch b.
fn first_column(b: u32, block: u32, lane: u32) -> u32 {
    return p.branch_start[b] + ((block - p.block_start[b]) * LANES_N + lane / LANES_M) * COLS;
}

fn epilogue(v: vec4<f32>, co: vec4<u32>, relu: bool, cap6: bool) -> vec4<f32> {
    var r = v * vec4(scale[co.x], scale[co.y], scale[co.z], scale[co.w]);
    r = r + vec4(bias[co.x], bias[co.y], bias[co.z], bias[co.w]);
    if (relu) {
        r = max(r, vec4(0.0));
    }
    if (cap6) {
        r = min(r, vec4(6.0));
    }
    return r;
}

// Applies branch b's epilogue and stores the in-range part of an
// invocation's block at the branch's destination. The values and their
// places are gathered first, then stored by one loop per output binding,
// chosen once: the binding is the same for every invocation of a workgroup.
fn store_block(b: u32, row0: u32, col0: u32, acc: array<vec4<f32>, ROWS * VECS>) {
    let stride = p.dest_stride[b];
    let end = p.branch_end[b];
    let relu = ((p.relu_mask >> b) & 1u) != 0u;
    let cap6 = ((p.cap6_mask >> b) & 1u) != 0u;
    var ys: array<vec4<f32>, ROWS * VECS>;
    var ats: array<u32, ROWS>;
    var rows = 0u;
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r * LANES_M;
        if (row >= p.rows) {
            break;
        }
        rows = r + 1u;
        // Channel of merged column co in the destination: ats[r] + co.
        ats[r] = row * stride + p.dest_offset[b] - p.branch_start[b];
        for (var v = 0u; v < VECS; v++) {
            let co = col0 + 4u * v;
            ys[r * VECS + v] = epilogue(acc[r * VECS + v], min(vec4(co) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u)), relu, cap6);
        }
    }
    let cols = min(COLS, end - min(col0, end));
    switch p.dest[b] {
        case 0u: {
            for (var r = 0u; r < rows; r++) {
                for (var c = 0u; c < cols; c++) {
                    out0[ats[r] + col0 + c] = ys[r * VECS + c / 4u][c % 4u];
                }
            }
        }
        case 1u: {
            for (var r = 0u; r < rows; r++) {
                for (var c = 0u; c < cols; c++) {
                    out1[ats[r] + col0 + c] = ys[r * VECS + c / 4u][c % 4u];
                }
            }
        }
        case 2u: {
            for (var r = 0u; r < rows; r++) {
                for (var c = 0u; c < cols; c++) {
                    out2[ats[r] + col0 + c] = ys[r * VECS + c / 4u][c % 4u];
                }
            }
        }
        default: {
            for (var r = 0u; r < rows; r++) {
                for (var c = 0u; c < cols; c++) {
                    out3[ats[r] + col0 + c] = ys[r * VECS + c / 4u][c % 4u];
                }
            }
        }
    }
}

@compute @workgroup_size(LANES_M * LANES_N)
fn conv2d_sibling_vec4(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.z * nwg.x) * LANES_M * ROWS + lane % LANES_M;
    let b = branch_of(wid.y);
    let col0 = first_column(b, wid.y, lane);
    let cout4 = p.cout / 4u;
    var origins: array<Origin, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        origins[r] = origin(row0 + r * LANES_M);
    }
    var col4: array<u32, VECS>;
    for (var v = 0u; v < VECS; v++) {
        col4[v] = min(col0 / 4u + v, cout4 - 1u);
    }

    var acc: array<vec4<f32>, ROWS * VECS>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            var taps: array<Tap, ROWS>;
            for (var r = 0u; r < ROWS; r++) {
                taps[r] = tap(origins[r], ky, kx);
                taps[r].at /= 4u;
            }
            var w_at = (ky * p.kw + kx) * p.cin * cout4;
            for (var c4 = 0u; c4 < p.cin / 4u; c4++) {
                var wm: array<mat4x4<f32>, VECS>;
                for (var v = 0u; v < VECS; v++) {
                    let at = w_at + col4[v];
                    wm[v] = mat4x4(w4[at], w4[at + cout4], w4[at + 2u * cout4], w4[at + 3u * cout4]);
                }
                for (var r = 0u; r < ROWS; r++) {
                    var a = x4[taps[r].at + c4];
                    if (PADDED) {
                        a *= taps[r].inside;
                    }
                    for (var v = 0u; v < VECS; v++) {
                        acc[r * VECS + v] += wm[v] * a;
                    }
                }
                w_at += 4u * cout4;
            }
        }
    }
    store_block(b, row0, col0, acc);
}

@compute @workgroup_size(LANES_M * LANES_N)
fn conv2d_sibling(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.z * nwg.x) * LANES_M * ROWS + lane % LANES_M;
    let b = branch_of(wid.y);
    let col0 = first_column(b, wid.y, lane);
    var origins: array<Origin, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        origins[r] = origin(row0 + r * LANES_M);
    }
    var cols: array<vec4<u32>, VECS>;
    for (var v = 0u; v < VECS; v++) {
        cols[v] = min(vec4(col0 + 4u * v) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u));
    }

    var acc: array<vec4<f32>, ROWS * VECS>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            var taps: array<Tap, ROWS>;
            for (var r = 0u; r < ROWS; r++) {
                taps[r] = tap(origins[r], ky, kx);
            }
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
                    for (var v = 0u; v < VECS; v++) {
                        acc[r * VECS + v] += a * wv[v];
                    }
                }
            }
        }
    }
    store_block(b, row0, col0, acc);
}
