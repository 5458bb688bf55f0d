// Forward 2-D convolution, direct form: the oracle the faster variants are
// tested against, and the plainest statement of what they all compute.
//
//   out[b, oy, ox, out_offset + co] =
//       epilogue(Σ_{ky, kx, ci} x[b, oy*sh + ky - pad_top, ox*sw + kx - pad_left, ci] * w[ky, kx, ci, co], co)
//   epilogue(v, co) = act(v * scale[co] + bias[co])   (each part optional, see `epilogue` below)
//
// Layouts (f32): x NHWC [batch, in_h, in_w, cin]; w HWIO [kh, kw, cin, cout],
// i.e. a row-major [K = kh*kw*cin, cout] matrix; scale and bias [cout];
// out NHWC [batch, out_h, out_w, out_stride] written only in channels
// [out_offset, out_offset + cout). Taps outside the input read zero padding.
// When scale or bias is absent the launcher binds another read-only tensor in
// its slot and clears the matching `epilogue` bit, so the slot is never read.
//
// Tiling: none. One invocation per output element (row = b*out_h*out_w +
// oy*out_w + ox, column co), 64 per workgroup; the workgroup grid may be folded
// into y (linear workgroup = wid.x + wid.y * nwg.x), and invocations past the
// last element return early.

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

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

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

@compute @workgroup_size(WORKGROUP_SIZE)
fn conv2d_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    if (i >= p.rows * p.cout) {
        return;
    }
    let co = i % p.cout;
    let row = i / p.cout;
    let ox = row % p.out_w;
    let oy = (row / p.out_w) % p.out_h;
    let b = row / (p.out_w * p.out_h);

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
            let x_base = ((b * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.cin;
            let w_base = (ky * p.kw + kx) * p.cin;
            for (var ci = 0u; ci < p.cin; ci++) {
                acc += x[x_base + ci] * w[(w_base + ci) * p.cout + co];
            }
        }
    }
    out[row * p.out_stride + p.out_offset + co] = epilogue(acc, co);
}
