//! Mixed-precision forward convolution on cooperative matrices
//! (`shaders/conv2d_coop.wgsl`, `ConvAlgo::Coop`): the implicit GEMM of
//! `ops::conv` with f16 operands and f32 sums on 16×16×16 tensor-core tiles,
//! the same fused epilogue and channel-slice output. Only on adapters that
//! `gpu::coop::mixed_precision_support` accepts; elsewhere launching it is an
//! error naming what the adapter lacks.

use super::conv::{Geometry, Params, grid};
use crate::error::{Error, Result};
use crate::gpu::Work;
use crate::kernel;
use crate::tensor::Tensor;

kernel!(CONV2D_COOP, "conv2d_coop.wgsl", "conv2d_coop", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_COOP_VEC4, "conv2d_coop.wgsl", "conv2d_coop_vec4", reads = 4, writes = 1, params = Params);

/// The shader's override that sets the subgroup size (the workgroup is
/// `gpu::coop::COOP_SUBGROUPS` subgroups).
pub const SUBGROUP_SIZE_OVERRIDE: &str = "SUBGROUP_SIZE";
/// Output tile of one workgroup (`BM`, `BN` in the shader).
pub const TILE_M: usize = 64;
pub const TILE_N: usize = 64;

/// The overrides a pipeline of the kernel is built with on an adapter of subgroup size `size`.
pub fn constants(size: u32) -> [(&'static str, f64); 1] {
    [(SUBGROUP_SIZE_OVERRIDE, size as f64)]
}

/// Records the convolution `g` with the parameters and bindings `ops::conv` prepared.
pub(crate) fn launch(g: &Geometry, params: &Params, reads: &[&Tensor; 4], out: &Tensor, work: Work) -> Result<()> {
    let gpu = out.gpu();
    let size = gpu.coop_support().map_err(|why| {
        Error::Adapter(format!("conv2d: the cooperative-matrix kernel cannot run on {}: {why}; use --precision f32", gpu.name()))
    })?;
    // vec4 loads need 16-byte aligned rows of x and w.
    let kernel = if g.cin.is_multiple_of(4) && g.cout.is_multiple_of(4) { &CONV2D_COOP_VEC4 } else { &CONV2D_COOP };
    let groups = grid(gpu, g.rows().div_ceil(TILE_M), g.cout.div_ceil(TILE_N));
    gpu.with_work(work).launch(kernel, &constants(size), params, reads, &[out], groups)
}
