// Elementwise kernels over flat f32 arrays (layout-agnostic):
//   relu_forward   y = max(x, 0)
//   relu_backward  dx = dy * (y > 0)      (uses the saved output y)
//   relu6_forward  y = min(max(x, 0), 6)  (Keras ReLU(max_value=6), MobileNetV2)
//   relu6_backward dx = dy * (0 < y < 6)  (saved output y; 0 at exactly 0 and 6, as TF's Relu6Grad)
//   add            z = a + b
//   scale          y = alpha * x
//   axpy_inplace   y += alpha * x          (gradient accumulation)
//   mul_by_scalar  z = a * b[0]            (b is a one-element tensor on the GPU)
// The *_vec4 twins do the same on arrays of vec4 (lengths divisible by 4, `n` counts
// vec4s): one 16-byte load per input and one store per invocation, which lavapipe
// streams 2-4x faster than four scalar invocations.
// Tiling: one invocation per element (per vec4), 256 per workgroup; the workgroup grid
// may be folded into y (linear workgroup = wid.x + wid.y * nwg.x) when the element
// count needs more than 65535 workgroups.

struct Params {
    n: u32,
    alpha: f32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// ---- one input, one output ----
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y[i] = max(x[i], 0.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu6_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y[i] = clamp(x[i], 0.0, 6.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y[i] = p.alpha * x[i];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn axpy_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y[i] = y[i] + p.alpha * x[i];
    }
}

// ---- two inputs, one output ----
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // a = saved output y, b = upstream gradient dy
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z[i] = select(0.0, b[i], a[i] > 0.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu6_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // a = saved output y, b = upstream gradient dy
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z[i] = select(0.0, b[i], a[i] > 0.0 && a[i] < 6.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z[i] = a[i] + b[i];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn mul_by_scalar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z[i] = a[i] * b[0];
    }
}

// ---- vec4 twins: one input, one output ----
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y4[i] = max(x4[i], vec4<f32>(0.0));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu6_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        y4[i] = clamp(x4[i], vec4<f32>(0.0), vec4<f32>(6.0));
    }
}

// ---- vec4 twins: two inputs, one output ----
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> z4: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // a4 = saved output y, b4 = upstream gradient dy
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z4[i] = select(vec4<f32>(0.0), b4[i], a4[i] > vec4<f32>(0.0));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relu6_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // a4 = saved output y, b4 = upstream gradient dy
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        let y = a4[i];
        z4[i] = select(vec4<f32>(0.0), b4[i], (y > vec4<f32>(0.0)) & (y < vec4<f32>(6.0)));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn add_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        z4[i] = a4[i] + b4[i];
    }
}
