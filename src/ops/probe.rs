//! The kernel lab's ceiling probes (`shaders/probe.wgsl`): a streaming copy
//! and an FMA-bound loop, whose measured rates are the bandwidth and compute
//! ceilings of a roofline on the adapter at hand (see `lab::roofline`).
//! They compute nothing a model uses; each has a CPU check in the lab's test.

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
use crate::{kernel, kernel_params};

kernel!(STREAM_COPY, "probe.wgsl", "stream_copy", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(FMA_PEAK, "probe.wgsl", "fma_peak", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 256;
/// FLOPs per invocation per round of `fma_peak`: 8 chains × vec4 × (multiply + add).
pub const FLOPS_PER_ROUND: usize = 8 * 4 * 2;

kernel_params! {
    struct Params {
        n: u32,
        iterations: u32,
    }
}

fn vec4_count(x: &Tensor) -> Result<u32> {
    if !x.numel().is_multiple_of(4) {
        return Err(Error::Shape(format!("probe: {} values is not a whole number of vec4s", x.numel())));
    }
    u32::try_from(x.numel() / 4).map_err(|_| Error::Shape(format!("probe: {} values is too many for one dispatch", x.numel())))
}

/// A copy of `x` (a length divisible by 4), moved as vec4s.
pub fn stream_copy(x: &Tensor) -> Result<Tensor> {
    let gpu = x.gpu();
    let n = vec4_count(x)?;
    let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
    gpu.launch(&STREAM_COPY, &[], &Params { n, iterations: 0 }, &[x], &[&y], gpu.groups_1d(n.div_ceil(WORKGROUP)))?;
    Ok(y)
}

/// Per vec4 of `x`: `rounds` rounds of 8 chains a ← fma(a, m, k) started at
/// x + j (j = 0..8), summed; see `reference` for the exact arithmetic.
pub fn fma_peak(x: &Tensor, rounds: u32) -> Result<Tensor> {
    let gpu = x.gpu();
    let n = vec4_count(x)?;
    let y = Tensor::empty(gpu, x.shape(), DType::F32)?;
    gpu.launch(&FMA_PEAK, &[], &Params { n, iterations: rounds }, &[x], &[&y], gpu.groups_1d(n.div_ceil(WORKGROUP)))?;
    Ok(y)
}

/// `fma_peak` on the CPU, in f64 (the kernel's f32 FMAs agree to rounding).
pub fn fma_peak_reference(x: &[f32], rounds: u32) -> Vec<f64> {
    const M: [f64; 4] = [0.999, 0.998, 0.997, 0.996];
    const K: [f64; 4] = [0.001, 0.002, 0.003, 0.004];
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let lane = i % 4;
            (0..8)
                .map(|j| {
                    let mut a = f64::from(v) + f64::from(j);
                    for _ in 0..rounds {
                        a = a * M[lane] + K[lane];
                    }
                    a
                })
                .sum()
        })
        .collect()
}
