// Column sums by a tree of sequential partial sums (no atomics, no barriers).
//
//   sum_rows_partial: x viewed row-major as [rows, cols] (element (r, c) at
//   r*cols + c; indices ≥ numel read as 0, so a flat vector can be viewed as
//   a padded [ceil(len/cols), cols] matrix). Invocation (k, c) adds rows
//   k*chunk .. min((k+1)*chunk, rows) of column c into out[k*cols + c],
//   multiplied by `scale` (1 except on the last pass, where it turns a sum
//   into a mean). out is [chunks, cols], chunks = ceil(rows / chunk).
//
// The host repeats the pass on its output until one chunk is left, so every
// value is a sum of at most `chunk` terms per level: log_chunk(rows) levels.
// Tiling: one invocation per (chunk, column), linear index k*cols + c so that
// neighbouring invocations read neighbouring columns (coalesced on GPUs) and
// a single column still fills whole workgroups; 64 per workgroup, grid folded
// into y (linear workgroup = wid.x + wid.y * nwg.x) past 65535 workgroups.

struct Params {
    rows: u32,
    cols: u32,
    numel: u32,
    chunk: u32,
    chunks: u32,
    scale: f32,
}

// Invocations per workgroup, set from the Rust launcher (`kernel!(…, workgroup = …)`);
// the default is the value it sets.
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_rows_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
    if (i >= p.chunks * p.cols) {
        return;
    }
    let c = i % p.cols;
    let k = i / p.cols;
    let r_end = min((k + 1u) * p.chunk, p.rows);
    var sum = 0.0;
    for (var r = k * p.chunk; r < r_end; r++) {
        let idx = r * p.cols + c;
        if (idx < p.numel) {
            sum += x[idx];
        }
    }
    out[i] = sum * p.scale;
}
