// Softmax, fused softmax + categorical cross-entropy, its backward, and the
// count of correct predictions, for logits and targets [rows, cols] f32,
// row-major (rows = batch N, cols = classes C). Targets are one-hot or soft
// rows that sum to 1; weights [rows] f32 are per-sample loss weights (Keras
// sample_weight / class_weight; all 1 for the plain loss).
//
//   softmax_rows                 probs = exp(x − max) / Σ exp(x − max)
//   softmax_cross_entropy_rows   probs as above and
//                                row_loss[n] = w[n] · Σ_c t·(log Σ exp(x − max) − (x − max))
//                                (−Σ t·log softmax in log-sum-exp form: no
//                                log of an underflowed probability, and no
//                                cancellation against a large max); the batch
//                                loss Σ row_loss / N (Keras 3's
//                                sum_over_batch_size: not divided by Σ w) is a
//                                reduce.wgsl pass, still on the GPU
//   softmax_cross_entropy_backward  dlogits = (probs − targets) · w[row] · scale, scale = 1/N
//   correct_count                count[0] += 1 for each row whose argmax of
//                                the logits equals the argmax of the targets
//                                (ties: first index); count must start at 0
//
// Tiling: the row kernels use one invocation per row (three passes over its
// C values: max, sum of exponentials, outputs); N is a batch, so this is
// cheap even for thousands of classes. The backward uses one invocation per
// element. 64 invocations per workgroup; the grid is folded into y (linear
// workgroup = wid.x + wid.y * nwg.x) past 65535 workgroups.

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// The row maximum (first index on ties) and the sum of exp(x − max) over the
// other entries: the full sum is 1 + rest, and log1p(rest) keeps the loss of
// a confidently correct row accurate even when it is far below 1 ulp of 1.
struct RowStats {
    max: f32,
    rest: f32,
}

fn row_stats(base: u32) -> RowStats {
    var m = logits[base];
    var arg = 0u;
    for (var c = 1u; c < p.cols; c++) {
        if (logits[base + c] > m) {
            m = logits[base + c];
            arg = c;
        }
    }
    var rest = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        if (c != arg) {
            rest += exp(logits[base + c] - m);
        }
    }
    return RowStats(m, rest);
}

// log(1 + x) for x ≥ 0: a Taylor series where log's absolute error (2⁻²¹ on
// some GPUs) would swamp the result, log elsewhere.
fn log1p(x: f32) -> f32 {
    if (x < 0.01) {
        return x * (1.0 - x * (1.0 / 2.0 - x * (1.0 / 3.0 - x * (1.0 / 4.0 - x * (1.0 / 5.0)))));
    }
    return log(1.0 + x);
}

// ---- softmax: logits → probs ----
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> softmax_out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_index(gid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    let stats = row_stats(base);
    let sum = 1.0 + stats.rest;
    for (var c = 0u; c < p.cols; c++) {
        softmax_out[base + c] = exp(logits[base + c] - stats.max) / sum;
    }
}

// ---- cross-entropy: (logits, targets, weights) → (probs, row_loss) ----
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_loss: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_cross_entropy_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_index(gid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    let stats = row_stats(base);
    let sum = 1.0 + stats.rest;
    let log_sum = log1p(stats.rest);
    var loss = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let shifted = logits[base + c] - stats.max;
        probs[base + c] = exp(shifted) / sum;
        loss += targets[base + c] * (log_sum - shifted);
    }
    row_loss[row] = weights[row] * loss;
}

// ---- backward: (probs, targets, weights) → dlogits ----
@group(0) @binding(1) var<storage, read> saved_probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_cross_entropy_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = linear_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    dlogits[i] = (saved_probs[i] - targets[i]) * (weights[i / p.cols] * p.scale);
}

// ---- accuracy: (logits, targets) → count ----
@group(0) @binding(3) var<storage, read_write> count: array<atomic<u32>>;

fn argmax_logits(base: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < p.cols; c++) {
        if (logits[base + c] > logits[base + best]) {
            best = c;
        }
    }
    return best;
}

fn argmax_targets(base: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < p.cols; c++) {
        if (targets[base + c] > targets[base + best]) {
            best = c;
        }
    }
    return best;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn correct_count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_index(gid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    if (argmax_logits(base) == argmax_targets(base)) {
        atomicAdd(&count[0], 1u);
    }
}
