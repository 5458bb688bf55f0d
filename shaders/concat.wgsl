// Channel-slice copies between NHWC tensors, the backbone of concat-free
// Inception blocks:
//   write_channels  dst[m, offset + c] = src[m, c]   for c < width
//   read_channels   dst[m, c] = src[m, offset + c]   for c < width
// Both tensors are viewed as rows m = (n, h, w): `src`/`dst` rows are
// `src_stride`/`dst_stride` floats long. Tiling: one invocation per copied
// element (m, c), 256 per workgroup, grid folded into y past 65535 groups.

struct Params {
    rows: u32,
    width: u32,
    src_stride: u32,
    dst_stride: u32,
    src_offset: u32,
    dst_offset: u32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    if (i >= p.rows * p.width) {
        return;
    }
    let m = i / p.width;
    let c = i % p.width;
    dst[m * p.dst_stride + p.dst_offset + c] = src[m * p.src_stride + p.src_offset + c];
}
