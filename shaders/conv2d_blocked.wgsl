// Forward 2-D convolution, register-blocked for CPU adapters (lavapipe):
// no workgroup memory, no barriers.
//
//   out[b, oy, ox, out_offset + co] = relu?(conv(x, w)[b, oy, ox, co] * scale[co] + bias[co])
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
// and each (m, ky, kx) reads a contiguous run of cin input values.
//
// Tiling: each invocation computes ROWS output pixels × 4*VECS channels
// (ROWS rows spaced LANES apart, the channels as VECS vec4 accumulators);
// a workgroup of LANES invocations covers LANES*ROWS rows and the same 4*VECS
// channels. Grid: x (folded into z past the dispatch limit: row block =
// wid.x + wid.z * nwg.x) over row blocks, y over channel blocks.
//
// Why this shape on lavapipe: a workgroup runs as SIMD lanes on one CPU
// thread, and a load whose address is the same in every lane becomes one
// scalar load plus a broadcast, while any other load is a gather. The weight
// addresses depend only on the workgroup id and the loop counters, so they
// are uniform; only the ROWS input values per k are gathered. For the same
// reason there is no early return (it would make later loads non-uniform):
// rows past the end are clamped to the last row, computed and not stored;
// channels past cout read the last column and are not stored.
//
// Override PADDED = false when no tap can fall outside the input (1×1
// kernels, 'valid' padding): it removes the zero-padding mask multiply.

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
    epilogue: u32,   // bit 0: multiply by scale, bit 1: add bias, bit 2: ReLU
    _pad0: u32,
    _pad1: u32,
}

const EPILOGUE_SCALE: u32 = 1u;
const EPILOGUE_BIAS: u32 = 2u;
const EPILOGUE_RELU: u32 = 4u;

const LANES: u32 = 64u;
const ROWS: u32 = 4u;
const VECS: u32 = 2u;

override PADDED: bool = true;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
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
    return r;
}

@compute @workgroup_size(64)
fn conv2d_blocked(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.z * nwg.x) * LANES * ROWS + lane;
    let col0 = wid.y * 4u * VECS;

    // Per output pixel: the top-left tap and its offset in x (may lie in the padding).
    var iy0: array<i32, ROWS>;
    var ix0: array<i32, ROWS>;
    var x_base: array<i32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        let row = min(row0 + r * LANES, p.rows - 1u);
        let ox = row % p.out_w;
        let oy = (row / p.out_w) % p.out_h;
        let b = row / (p.out_w * p.out_h);
        iy0[r] = i32(oy * p.stride_h) - i32(p.pad_top);
        ix0[r] = i32(ox * p.stride_w) - i32(p.pad_left);
        x_base[r] = ((i32(b * p.in_h) + iy0[r]) * i32(p.in_w) + ix0[r]) * i32(p.cin);
    }
    // Weight columns, clamped into range (uniform across the workgroup).
    var cols: array<vec4<u32>, VECS>;
    for (var v = 0u; v < VECS; v++) {
        cols[v] = min(vec4(col0 + 4u * v) + vec4(0u, 1u, 2u, 3u), vec4(p.cout - 1u));
    }

    var acc: array<vec4<f32>, ROWS * VECS>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            var x_off: array<u32, ROWS>;
            var inside: array<f32, ROWS>;
            let tap = (i32(ky) * i32(p.in_w) + i32(kx)) * i32(p.cin);
            for (var r = 0u; r < ROWS; r++) {
                let iy = iy0[r] + i32(ky);
                let ix = ix0[r] + i32(kx);
                let ok = !PADDED || (iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w));
                x_off[r] = select(0u, u32(x_base[r] + tap), ok);
                inside[r] = select(0.0, 1.0, ok);
            }
            let w_row0 = (ky * p.kw + kx) * p.cin;
            for (var ci = 0u; ci < p.cin; ci++) {
                let w_off = (w_row0 + ci) * p.cout;
                var wv: array<vec4<f32>, VECS>;
                for (var v = 0u; v < VECS; v++) {
                    let c = cols[v] + vec4(w_off);
                    wv[v] = vec4(w[c.x], w[c.y], w[c.z], w[c.w]);
                }
                for (var r = 0u; r < ROWS; r++) {
                    var a = x[x_off[r] + ci];
                    if (PADDED) {
                        a = a * inside[r];
                    }
                    for (var v = 0u; v < VECS; v++) {
                        acc[r * VECS + v] += a * wv[v];
                    }
                }
            }
        }
    }

    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r * LANES;
        if (row >= p.rows) {
            break;
        }
        let out_base = row * p.out_stride + p.out_offset;
        for (var v = 0u; v < VECS; v++) {
            let co = col0 + 4u * v;
            let y = epilogue(acc[r * VECS + v], cols[v]);
            for (var j = 0u; j < 4u; j++) {
                if (co + j < p.cout) {
                    out[out_base + co + j] = y[j];
                }
            }
        }
    }
}
