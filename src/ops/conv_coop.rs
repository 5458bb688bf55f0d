//! Mixed-precision forward convolution on cooperative matrices
//! (`shaders/conv2d_coop.wgsl`, `ConvAlgo::Coop`): the implicit GEMM of
//! `ops::conv` with f16 operands and f32 sums on tensor-core tiles, the same
//! fused epilogue and channel-slice output. Only on adapters that
//! `gpu::coop::mixed_precision_support` accepts; elsewhere launching it is an
//! error naming what the adapter lacks.
//!
//! Two fragment sizes, one source: the file is the 16×16×16 kernel (64×64
//! output tiles); the 8×8×8 one (32×32 tiles, for adapters that list only
//! 8×8×8 f16 configurations) is the same file with its four fragment-size
//! lines rewritten ([`source`]).

use super::conv::{Geometry, Params, grid};
use crate::error::{Error, Result};
use crate::gpu::{Kernel, KernelParams, Work};
use crate::kernel;
use crate::tensor::Tensor;
use std::sync::LazyLock;

kernel!(CONV2D_COOP, "conv2d_coop.wgsl", "conv2d_coop", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_COOP_VEC4, "conv2d_coop.wgsl", "conv2d_coop_vec4", reads = 4, writes = 1, params = Params);

/// The shader's override that sets the subgroup size (the workgroup is
/// `gpu::coop::COOP_SUBGROUPS` subgroups).
pub const SUBGROUP_SIZE_OVERRIDE: &str = "SUBGROUP_SIZE";

/// The lines of the file that fix the fragment size, as written for 16.
const FRAGMENT_LINES: [&str; 4] = [
    "const FRAG: u32 = 16u;",
    "alias FragA = coop_mat16x16<f16, A>;",
    "alias FragB = coop_mat16x16<f16, B>;",
    "alias FragC = coop_mat16x16<f32, C>;",
];

/// The 8×8×8 kernel's source: the file with its fragment-size lines for 8.
/// Fails (in the shader tests, at the first launch) if the file no longer
/// holds each line exactly once.
fn source_8x8() -> std::result::Result<String, String> {
    let mut s = CONV2D_COOP.source.to_string();
    for line in FRAGMENT_LINES {
        if s.matches(line).count() != 1 {
            return Err(format!("{}: expected the line {line:?} exactly once", CONV2D_COOP.file));
        }
        s = s.replacen(line, &line.replace("16u", "8u").replace("coop_mat16x16", "coop_mat8x8"), 1);
    }
    Ok(s)
}

static SOURCE_8X8: LazyLock<std::result::Result<String, String>> = LazyLock::new(source_8x8);

/// The WGSL of the kernel with fragments of `tile` (16 or 8).
pub fn source(tile: u32) -> Result<&'static str> {
    match tile {
        16 => Ok(CONV2D_COOP.source),
        8 => SOURCE_8X8.as_deref().map_err(|e| Error::Invalid(e.clone())),
        _ => Err(Error::Invalid(format!("conv2d_coop: no kernel with {tile}x{tile} fragments (16 or 8)"))),
    }
}

/// The 8×8 kernels: built once from [`source`], under a module name of their own.
static KERNELS_8X8: LazyLock<Result<[Kernel; 2]>> = LazyLock::new(|| {
    let source = source(8)?;
    let kernel = |entry| Kernel {
        file: "conv2d_coop.wgsl (8x8 fragments)",
        source,
        entry,
        reads: 4,
        writes: 1,
        params: &<Params as KernelParams>::LAYOUT,
        workgroup_size: None,
    };
    Ok([kernel(CONV2D_COOP.entry), kernel(CONV2D_COOP_VEC4.entry)])
});

/// (scalar-load kernel, vec4-load kernel) with fragments of `tile`.
pub fn kernels(tile: u32) -> Result<[&'static Kernel; 2]> {
    match tile {
        16 => Ok([&CONV2D_COOP, &CONV2D_COOP_VEC4]),
        8 => match &*KERNELS_8X8 {
            Ok([scalar, vec4]) => Ok([scalar, vec4]),
            Err(e) => Err(Error::Invalid(e.to_string())),
        },
        _ => Err(Error::Invalid(format!("conv2d_coop: no kernel with {tile}x{tile} fragments (16 or 8)"))),
    }
}

/// Output rows and columns of one workgroup with fragments of `tile` (`BM`, `BN` in the shader).
pub const fn tile_size(tile: u32) -> usize {
    4 * tile as usize
}

/// The overrides a pipeline of the kernel is built with on an adapter of subgroup size `size`.
pub fn constants(size: u32) -> [(&'static str, f64); 1] {
    [(SUBGROUP_SIZE_OVERRIDE, size as f64)]
}

/// Records the convolution `g` with the parameters and bindings `ops::conv` prepared.
pub(crate) fn launch(g: &Geometry, params: &Params, reads: &[&Tensor; 4], out: &Tensor, work: Work) -> Result<()> {
    let gpu = out.gpu();
    let config = gpu.coop_support().map_err(|why| {
        Error::Adapter(format!("conv2d: the cooperative-matrix kernel cannot run on {}: {why}; use --precision f32", gpu.name()))
    })?;
    let [scalar, vec4] = kernels(config.tile)?;
    // vec4 loads need 16-byte aligned rows of x and w.
    let kernel = if g.cin.is_multiple_of(4) && g.cout.is_multiple_of(4) { vec4 } else { scalar };
    let side = tile_size(config.tile);
    let groups = grid(gpu, g.rows().div_ceil(side), g.cout.div_ceil(side));
    gpu.with_work(work).launch(kernel, &constants(config.subgroup_size), params, reads, &[out], groups)
}
