// BatchNorm with an optional gamma (Keras scale=True / scale=False), f32. Data x, y, dy, dx
// are viewed as [rows, channels] row-major (NHWC with rows = n·h·w); per-channel vectors
// are [channels].
//   y = (x − mean)·scale + beta,  scale = gamma·inv_std (inv_std when there is no gamma),
//   inv_std = 1/sqrt(var + eps)
//
// Per-channel reductions run in two barrier-free steps: the rows are cut into `chunks`
// of `rows_per_chunk` (the last may be shorter); a *_partial kernel has one invocation
// per (chunk, channel) (linear index chunk·channels + channel, so neighbouring
// invocations read neighbouring channels of the same row), and a *_combine kernel has
// one invocation per channel that folds the chunks together.
//   moments_partial   partial[chunk, c] = (chunk mean − shift, Σ (x − chunk mean)²), two passes over
//                     the chunk, shift = x[row 0, c] (keeps the precision of data far from zero)
//   moments_combine   mean, biased var (Chan's merge of the chunks), inv_std
//   normalize         y = (x − mean[c])·scale[c] + beta[c]            one invocation per element
//   inv_std           inv_std = 1/sqrt(var + eps)                    one invocation per channel
//   gamma_scale       scale = gamma·inv_std                          per channel
//   fold_bias         bias = beta − moving_mean·scale                per channel
//   update_moving     m = m·momentum + batch·(1 − momentum), in place, for mean and var   per channel
//   grad_sums_partial partial[chunk, c] = (Σ dy, Σ dy·(x − mean))
//   grad_sums_combine dbeta = Σ dy;  dgamma = Σ dy·x̂ = inv_std·Σ dy·(x − mean)   per channel
//   backward_coeffs   coeffs[c] = (−scale·dbeta/rows, −scale·inv_std·dgamma/rows)  per channel
//   backward_dx       dx = scale·dy + coeffs.x + coeffs.y·(x − mean)   one invocation per element
//                     (= gamma·s·(dy − mean(dy) − x̂·mean(dy·x̂)), s = inv_std)
//   sum_partial       partial[chunk, c] = Σ dy;   sum_combine  out[c] = Σ_chunk partial
//   scale_channels    dx = dy·scale[c]                               one invocation per element
// Every kernel: 64 invocations per workgroup, the grid folded into y when it needs more
// than the per-dimension limit; invocations past `total` return at once.

struct Params {
    rows: u32,
    channels: u32,
    rows_per_chunk: u32,
    chunks: u32,
    eps: f32,
    momentum: f32,
    total: u32,   // invocations doing work in this dispatch
    pad: u32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// Rows [first, last) of a chunk.
fn chunk_rows(chunk: u32) -> vec2<u32> {
    let first = chunk * p.rows_per_chunk;
    return vec2<u32>(first, min(first + p.rows_per_chunk, p.rows));
}

// ---- moments_partial: reads x; writes partial [chunks, channels, 2] ----
// Sums are of x − shift with shift = the channel's value in row 0, so that data far
// from zero keeps its precision: the partial holds (chunk mean − shift, Σ (x − chunk mean)²).
@group(0) @binding(1) var<storage, read> mp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mp_partial: array<vec2<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn moments_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    let shift = mp_x[c];
    let range = chunk_rows(i / p.channels);
    var sum = 0.0;
    for (var m = range.x; m < range.y; m++) {
        sum += mp_x[m * p.channels + c] - shift;
    }
    let mean = sum / f32(range.y - range.x);
    var m2 = 0.0;
    for (var m = range.x; m < range.y; m++) {
        let d = (mp_x[m * p.channels + c] - shift) - mean;
        m2 = fma(d, d, m2);
    }
    mp_partial[i] = vec2<f32>(mean, m2);
}

// ---- moments_combine: reads partial, x (for the shift); writes mean, var, inv_std ----
@group(0) @binding(1) var<storage, read> mc_partial: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> mc_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> mc_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> mc_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> mc_inv_std: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn moments_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    var weighted = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        let r = chunk_rows(k);
        weighted += f32(r.y - r.x) * mc_partial[k * p.channels + c].x;
    }
    let shifted_mean = weighted / f32(p.rows);
    // Chan et al.: M2 = Σ_k M2_k + n_k·(mean_k − mean)², exact up to rounding.
    var m2 = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        let r = chunk_rows(k);
        let part = mc_partial[k * p.channels + c];
        let d = part.x - shifted_mean;
        m2 += part.y + f32(r.y - r.x) * d * d;
    }
    let variance = m2 / f32(p.rows);
    mc_mean[c] = mc_x[c] + shifted_mean;
    mc_var[c] = variance;
    mc_inv_std[c] = 1.0 / sqrt(variance + p.eps);
}

// ---- normalize: reads x, mean, scale, beta; writes y ----
@group(0) @binding(1) var<storage, read> nm_x: array<f32>;
@group(0) @binding(2) var<storage, read> nm_mean: array<f32>;
@group(0) @binding(3) var<storage, read> nm_scale: array<f32>;
@group(0) @binding(4) var<storage, read> nm_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> nm_y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    nm_y[i] = fma(nm_x[i] - nm_mean[c], nm_scale[c], nm_beta[c]);
}

// ---- inv_std: reads var; writes inv_std ----
@group(0) @binding(1) var<storage, read> is_var: array<f32>;
@group(0) @binding(2) var<storage, read_write> is_inv_std: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn inv_std(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    is_inv_std[c] = 1.0 / sqrt(is_var[c] + p.eps);
}

// ---- gamma_scale: reads gamma, inv_std; writes scale ----
@group(0) @binding(1) var<storage, read> gm_gamma: array<f32>;
@group(0) @binding(2) var<storage, read> gm_inv_std: array<f32>;
@group(0) @binding(3) var<storage, read_write> gm_scale: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn gamma_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    gm_scale[c] = gm_gamma[c] * gm_inv_std[c];
}

// ---- fold_bias: reads beta, moving_mean, scale; writes bias ----
@group(0) @binding(1) var<storage, read> fd_beta: array<f32>;
@group(0) @binding(2) var<storage, read> fd_mean: array<f32>;
@group(0) @binding(3) var<storage, read> fd_scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> fd_bias: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn fold_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    fd_bias[c] = fd_beta[c] - fd_mean[c] * fd_scale[c];
}

// ---- update_moving: reads batch mean, batch var; updates moving mean, moving var ----
@group(0) @binding(1) var<storage, read> um_mean: array<f32>;
@group(0) @binding(2) var<storage, read> um_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> um_moving_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> um_moving_var: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn update_moving(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    let keep = p.momentum;
    let take = 1.0 - p.momentum;
    um_moving_mean[c] = um_moving_mean[c] * keep + um_mean[c] * take;
    um_moving_var[c] = um_moving_var[c] * keep + um_var[c] * take;
}

// ---- grad_sums_partial: reads x, dy, mean; writes partial [chunks, channels, 2] ----
@group(0) @binding(1) var<storage, read> gs_x: array<f32>;
@group(0) @binding(2) var<storage, read> gs_dy: array<f32>;
@group(0) @binding(3) var<storage, read> gs_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> gs_partial: array<vec2<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn grad_sums_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    let mean = gs_mean[c];
    let range = chunk_rows(i / p.channels);
    var sum_dy = 0.0;
    var sum_dy_xc = 0.0;
    for (var m = range.x; m < range.y; m++) {
        let g = gs_dy[m * p.channels + c];
        sum_dy += g;
        sum_dy_xc = fma(g, gs_x[m * p.channels + c] - mean, sum_dy_xc);
    }
    gs_partial[i] = vec2<f32>(sum_dy, sum_dy_xc);
}

// ---- grad_sums_combine: reads partial [chunks, channels, 2], inv_std; writes dbeta, dgamma ----
@group(0) @binding(1) var<storage, read> gc_partial: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> gc_inv_std: array<f32>;
@group(0) @binding(3) var<storage, read_write> gc_dbeta: array<f32>;
@group(0) @binding(4) var<storage, read_write> gc_dgamma: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn grad_sums_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    var sums = vec2<f32>(0.0);
    for (var k = 0u; k < p.chunks; k++) {
        sums += gc_partial[k * p.channels + c];
    }
    gc_dbeta[c] = sums.x;
    gc_dgamma[c] = gc_inv_std[c] * sums.y;
}

// ---- backward_coeffs: reads dbeta, dgamma, inv_std, scale; writes coeffs [channels, 2] ----
@group(0) @binding(1) var<storage, read> bc_dbeta: array<f32>;
@group(0) @binding(2) var<storage, read> bc_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read> bc_inv_std: array<f32>;
@group(0) @binding(4) var<storage, read> bc_scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> bc_coeffs: array<vec2<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_coeffs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    let k = -bc_scale[c] / f32(p.rows);
    bc_coeffs[c] = vec2<f32>(k * bc_dbeta[c], k * bc_inv_std[c] * bc_dgamma[c]);
}

// ---- backward_dx: reads x, dy, mean, scale, coeffs; writes dx ----
@group(0) @binding(1) var<storage, read> bd_x: array<f32>;
@group(0) @binding(2) var<storage, read> bd_dy: array<f32>;
@group(0) @binding(3) var<storage, read> bd_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bd_scale: array<f32>;
@group(0) @binding(5) var<storage, read> bd_coeffs: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> bd_dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn backward_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    let k = bd_coeffs[c];
    bd_dx[i] = bd_scale[c] * bd_dy[i] + k.x + k.y * (bd_x[i] - bd_mean[c]);
}

// ---- sum_partial: reads dy; writes partial [chunks, channels] ----
@group(0) @binding(1) var<storage, read> sp_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> sp_partial: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    let c = i % p.channels;
    let range = chunk_rows(i / p.channels);
    var sum = 0.0;
    for (var m = range.x; m < range.y; m++) {
        sum += sp_dy[m * p.channels + c];
    }
    sp_partial[i] = sum;
}

// ---- sum_combine: reads partial [chunks, channels]; writes out [channels] ----
@group(0) @binding(1) var<storage, read> sc_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> sc_out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_index(gid, nwg);
    if (c >= p.total) {
        return;
    }
    var sum = 0.0;
    for (var k = 0u; k < p.chunks; k++) {
        sum += sc_partial[k * p.channels + c];
    }
    sc_out[c] = sum;
}

// ---- scale_channels: reads dy, scale; writes dx ----
@group(0) @binding(1) var<storage, read> sh_dy: array<f32>;
@group(0) @binding(2) var<storage, read> sh_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> sh_dx: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn scale_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= p.total) {
        return;
    }
    sh_dx[i] = sh_dy[i] * sh_scale[i % p.channels];
}
