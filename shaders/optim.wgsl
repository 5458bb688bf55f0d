// Optimiser steps, in place, one invocation per parameter element (flat f32
// arrays of n elements, any layout), in the exact forms of Keras 3:
//
//   adam          m += (g − m)·(1 − β1);  v += (g² − v)·(1 − β2);
//                 param −= (m·alpha) / (sqrt(v) + ε)
//                 with alpha = lr·sqrt(1 − β2^t)/(1 − β1^t) computed on the host
//   sgd           param −= g·lr
//   sgd_momentum  velocity = velocity·momentum − g·lr;  param += velocity
//
// Bindings: grad (read), then param, and the state tensors (m and v, or the
// velocity), all read_write. Tiling: 256 invocations per workgroup; grid
// folded into y (linear workgroup = wid.x + wid.y * nwg.x) past 65535
// workgroups.

struct AdamParams {
    n: u32,
    alpha: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
}

struct SgdParams {
    n: u32,
    lr: f32,
    momentum: f32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(0) var<uniform> adam_p: AdamParams;
@group(0) @binding(0) var<uniform> sgd_p: SgdParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= adam_p.n) {
        return;
    }
    let g = grad[i];
    let m_new = m[i] + (g - m[i]) * (1.0 - adam_p.beta1);
    let v_new = v[i] + (g * g - v[i]) * (1.0 - adam_p.beta2);
    m[i] = m_new;
    v[i] = v_new;
    param[i] = param[i] - (m_new * adam_p.alpha) / (sqrt(v_new) + adam_p.epsilon);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= sgd_p.n) {
        return;
    }
    param[i] = param[i] - grad[i] * sgd_p.lr;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= sgd_p.n) {
        return;
    }
    let vel = velocity[i] * sgd_p.momentum - grad[i] * sgd_p.lr;
    velocity[i] = vel;
    param[i] = param[i] + vel;
}
