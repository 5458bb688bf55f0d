// Elementwise kernels over flat f32 arrays (layout-agnostic):
//   relu_forward   y = max(x, 0)
//   relu_backward  dx = dy * (y > 0)      (uses the saved output y)
//   relu6_forward  y = min(max(x, 0), 6)  (Keras ReLU(max_value=6), MobileNetV2)
//   relu6_backward dx = dy * (0 < y < 6)  (saved output y; 0 at exactly 0 and 6, as TF's Relu6Grad)
//   add            z = a + b
//   scale          y = alpha * x
//   axpy_inplace   y += alpha * x          (gradient accumulation)
//   mul_by_scalar  z = a * b[0]            (b is a one-element tensor on the GPU)
// Tiling: one invocation per element, 256 per workgroup; the workgroup grid
// may be folded into y (linear workgroup = wid.x + wid.y * nwg.x) when the
// element count needs more than 65535 workgroups.

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
