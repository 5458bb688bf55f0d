// Zero padding of NHWC f32 tensors (Keras ZeroPadding2D) and its gradient, the crop
// of the interior (Keras Cropping2D):
//   zero_pad2d  dst[n, y, x, c] = src[n, y − top, x − left, c] inside, 0 in the border
//               src [n, height, width, channels] → dst [n, padded_height, padded_width, channels]
//   crop2d      dst[n, y, x, c] = src[n, y + top, x + left, c]
//               src [n, padded_height, padded_width, channels] → dst [n, height, width, channels]
// Tiling: one invocation per destination element (`total` of them), 256 per workgroup,
// linear index = element index of dst, so neighbouring invocations touch neighbouring
// channels (contiguous reads and writes); the workgroup grid may be folded into y
// (linear workgroup = wid.x + wid.y * nwg.x) when it needs more than 65535 workgroups.

struct Params {
    height: u32,          // interior (unpadded) size
    width: u32,
    channels: u32,
    padded_height: u32,   // height + top + bottom
    padded_width: u32,    // width + left + right
    top: u32,
    left: u32,
    total: u32,           // destination elements
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn zero_pad2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    let pixel = i / p.channels;
    let px = pixel % p.padded_width;
    let row = pixel / p.padded_width;
    let py = row % p.padded_height;
    let n = row / p.padded_height;
    // Unsigned wrap-around makes positions left of or above the interior large, hence outside.
    let x = px - p.left;
    let y = py - p.top;
    var v = 0.0;
    if (x < p.width && y < p.height) {
        v = src[((n * p.height + y) * p.width + x) * p.channels + c];
    }
    dst[i] = v;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn crop2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    let pixel = i / p.channels;
    let x = pixel % p.width;
    let row = pixel / p.width;
    let y = row % p.height;
    let n = row / p.height;
    dst[i] = src[((n * p.padded_height + y + p.top) * p.padded_width + x + p.left) * p.channels + c];
}
