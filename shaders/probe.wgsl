// Ceiling probes for the kernel lab's roofline (`incept bench kernels --roofline`):
//   stream_copy  dst[i] = src[i]: one 16-byte load and one 16-byte store per
//                invocation, nothing else; its bytes / time is the bandwidth
//                ceiling a kernel that streams its data once can reach.
//   fma_peak     from one loaded vec4, `iterations` rounds of 8 independent
//                vec4 fused multiply-adds (8 chains hide the FMA latency), then
//                one store so the compiler cannot drop the work; 64 FLOPs per
//                round per invocation, and so few bytes that time is all arithmetic.
// Layout: flat arrays of vec4 (`n` counts vec4s). Tiling: one invocation per vec4,
// WORKGROUP_SIZE per workgroup; the workgroup grid may be folded into y
// (linear workgroup = wid.x + wid.y * nwg.x) when n needs more than 65535 workgroups.

struct Params {
    n: u32,
    iterations: u32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`).
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn stream_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        dst[i] = src[i];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let x = src[i];
    // Contracting maps (|m| < 1): the chains stay finite however many rounds run.
    let m = vec4<f32>(0.999, 0.998, 0.997, 0.996);
    let k = vec4<f32>(0.001, 0.002, 0.003, 0.004);
    var a0 = x;
    var a1 = x + 1.0;
    var a2 = x + 2.0;
    var a3 = x + 3.0;
    var a4 = x + 4.0;
    var a5 = x + 5.0;
    var a6 = x + 6.0;
    var a7 = x + 7.0;
    for (var r = 0u; r < p.iterations; r = r + 1u) {
        a0 = fma(a0, m, k);
        a1 = fma(a1, m, k);
        a2 = fma(a2, m, k);
        a3 = fma(a3, m, k);
        a4 = fma(a4, m, k);
        a5 = fma(a5, m, k);
        a6 = fma(a6, m, k);
        a7 = fma(a7, m, k);
    }
    dst[i] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}
