// Forward 2-D convolution for GPUs: implicit GEMM with shared-memory tiles.
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
// k = (ky*kw + kx)*cin + ci. The A tile (TM rows × TK of k) is gathered from
// x on the fly (im2col without the copy), the B tile (TK × TN) is a plain
// block of w.
//
// Tiling: a workgroup of 256 invocations computes a TM×TN = 64×64 output
// tile, stepping through K by TK = 16. Per step each invocation loads 4
// A values (one k, rows spaced 16 apart) and one vec4 of B into workgroup
// memory; after a barrier it accumulates a 4×4 block (rows 4*ty.., columns
// 4*tx..). Out-of-range rows, columns and k load zeros; only in-range
// outputs are stored. Grid: x (folded into z past the dispatch limit: row
// tile = wid.x + wid.z * nwg.x) over row tiles, y over column tiles.

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

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
// Row pitch of the A tile: one more than TM, so that the 16 k values a warp
// stores for one row land in different banks.
const A_PITCH: u32 = TM + 1u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> a_tile: array<f32, TK * A_PITCH>;     // [k][m]
var<workgroup> b_tile: array<vec4<f32>, TK * TN / 4u>; // [k][n / 4]

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

@compute @workgroup_size(256)
fn conv2d_tiled(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let tile_m = (wid.x + wid.z * nwg.x) * TM;
    let tile_n = wid.y * TN;

    // A loads: this invocation's k column within the tile and its 4 rows.
    let a_k = lid % TK;
    let a_row = lid / TK;
    var row_ok: array<bool, 4>;
    var iy0: array<i32, 4>;
    var ix0: array<i32, 4>;
    var x_base: array<i32, 4>;
    for (var j = 0u; j < 4u; j++) {
        let m = tile_m + a_row + 16u * j;
        row_ok[j] = m < p.rows;
        let row = min(m, p.rows - 1u);
        let ox = row % p.out_w;
        let oy = (row / p.out_w) % p.out_h;
        let b = row / (p.out_w * p.out_h);
        iy0[j] = i32(oy * p.stride_h) - i32(p.pad_top);
        ix0[j] = i32(ox * p.stride_w) - i32(p.pad_left);
        x_base[j] = ((i32(b * p.in_h) + iy0[j]) * i32(p.in_w) + ix0[j]) * i32(p.cin);
    }
    // (ky, kx, ci) of k = k0 + a_k, advanced by TK each step without divisions.
    var ci = a_k % p.cin;
    var kx = (a_k / p.cin) % p.kw;
    var ky = a_k / (p.cin * p.kw);

    // B loads: one k row and 4 consecutive columns.
    let b_k = lid / (TN / 4u);
    let b_n = (lid % (TN / 4u)) * 4u;

    // Compute: a 4×4 block.
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<vec4<f32>, 4>;

    for (var k0 = 0u; k0 < p.depth; k0 += TK) {
        for (var j = 0u; j < 4u; j++) {
            let iy = iy0[j] + i32(ky);
            let ix = ix0[j] + i32(kx);
            var v = 0.0;
            if (row_ok[j] && ky < p.kh && iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w)) {
                v = x[u32(x_base[j] + (i32(ky) * i32(p.in_w) + i32(kx)) * i32(p.cin)) + ci];
            }
            a_tile[a_k * A_PITCH + a_row + 16u * j] = v;
        }
        ci += TK;
        while (ci >= p.cin) {
            ci -= p.cin;
            kx += 1u;
            if (kx == p.kw) {
                kx = 0u;
                ky += 1u;
            }
        }

        let k = k0 + b_k;
        var bv = vec4(0.0);
        if (k < p.depth) {
            let base = k * p.cout + tile_n + b_n;
            for (var j = 0u; j < 4u; j++) {
                if (tile_n + b_n + j < p.cout) {
                    bv[j] = w[base + j];
                }
            }
        }
        b_tile[lid] = bv;
        workgroupBarrier();

        for (var kk = 0u; kk < TK; kk++) {
            let bk = b_tile[kk * (TN / 4u) + tx];
            let a_at = kk * A_PITCH + 4u * ty;
            for (var i = 0u; i < 4u; i++) {
                acc[i] += a_tile[a_at + i] * bk;
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let m = tile_m + 4u * ty + i;
        if (m >= p.rows) {
            break;
        }
        let out_base = m * p.out_stride + p.out_offset;
        for (var j = 0u; j < 4u; j++) {
            let co = tile_n + 4u * tx + j;
            if (co < p.cout) {
                out[out_base + co] = epilogue(acc[i][j], co);
            }
        }
    }
}
