// Inverted dropout, forward and backward (the same kernel):
//   y[i] = keep(i) ? x[i] * scale : 0,   scale = 1 / (1 − rate)
// x and y are flat f32 arrays of n elements (any layout); the backward pass
// applies it to dy with the same seed.
//
// The mask is never stored: keep(i) is a pure function of the 64-bit seed
// and the element index, so forward and backward (and the CPU reference in
// src/reference/dropout.rs, bit for bit) agree on every adapter:
//   mix32(x)  = lowbias32 (C. Wellons): x ^= x >> 16; x *= 0x7feb352d;
//               x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16   (a bijection)
//   key       = mix32(seed_lo ^ mix32(seed_hi ^ 0x9e3779b9))
//   bits(i)   = mix32(mix32(i ^ key) + key)        (uniform u32)
//   keep(i)   = bits(i) ≥ threshold,   threshold = ceil(rate · 2³²)
// The key enters both rounds so that masks of different seeds are not index
// permutations of each other.
// Tiling: one invocation per element, 256 per workgroup; grid folded into y
// (linear workgroup = wid.x + wid.y * nwg.x) past 65535 workgroups.

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    threshold: u32,
    scale: f32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn mix32(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    if (i >= p.n) {
        return;
    }
    let key = mix32(p.seed_lo ^ mix32(p.seed_hi ^ 0x9e3779b9u));
    let bits = mix32(mix32(i ^ key) + key);
    y[i] = select(0.0, x[i] * p.scale, bits >= p.threshold);
}
