//! Mixed-precision forward convolution on cooperative matrices
//! (`shaders/conv2d_coop.wgsl`, `ConvAlgo::Coop`): the implicit GEMM of
//! `ops::conv` with f16 operands and f32 sums on tensor-core tiles, the same
//! fused epilogue and channel-slice output. Only on adapters that
//! `gpu::coop::mixed_precision_support` accepts; elsewhere launching it is an
//! error naming what the adapter lacks.
//!
//! One source, several compiled forms (`gpu::variant`): the file is the
//! 16×16×16 kernel (64×64 output tiles) over f32 x and out; the 8×8×8 one
//! (32×32 tiles, for adapters that list only 8×8×8 f16 configurations) and
//! the forms that read or write f16 activations (the frozen prefix's storage
//! under `--precision mixed`) are the same file with its fragment-size or
//! element-type lines rewritten ([`CoopVariant`]).

use super::conv::{Geometry, Params, grid};
use crate::error::{Error, Result};
use crate::gpu::variant::{self, wgsl_type};
use crate::gpu::{Kernel, Work};
use crate::kernel;
use crate::tensor::{DType, Tensor};

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
/// The lines of the file that fix the element types of x and out, as written (f32).
const X_LINE: &str = "alias XElem = f32;";
const OUT_LINE: &str = "alias OutElem = f32;";

/// One compiled form of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopVariant {
    /// Fragment side: 16 or 8.
    pub tile: u32,
    /// Element type of the input x: f32 or f16.
    pub x: DType,
    /// Element type of the output: f32 or f16.
    pub out: DType,
}

impl CoopVariant {
    /// Every form the launcher can build: both fragment sizes, f32 or f16 in and out.
    pub fn all() -> Vec<CoopVariant> {
        let types = [DType::F32, DType::F16];
        let mut all = Vec::new();
        for tile in crate::gpu::coop::COOP_TILES {
            for x in types {
                for out in types {
                    all.push(CoopVariant { tile, x, out });
                }
            }
        }
        all
    }

    /// The file's own form: 16×16 fragments, f32 in and out.
    fn is_base(&self) -> bool {
        *self == CoopVariant { tile: 16, x: DType::F32, out: DType::F32 }
    }

    fn check(&self) -> Result<()> {
        let activation = |t: DType| matches!(t, DType::F32 | DType::F16);
        if !matches!(self.tile, 16 | 8) || !activation(self.x) || !activation(self.out) {
            return Err(Error::Invalid(format!("conv2d_coop: no kernel for {self:?} (16x16 or 8x8 fragments, f32 or f16 in and out)")));
        }
        Ok(())
    }

    /// The module's label: the file and what differs from it.
    fn label(&self) -> String {
        let (t, x, out) = (self.tile, wgsl_type(self.x), wgsl_type(self.out));
        format!("{} ({t}x{t} fragments, {x} in, {out} out)", CONV2D_COOP.file)
    }

    fn rewrites(&self) -> Vec<(&'static str, String)> {
        let mut r = Vec::new();
        if self.tile != 16 {
            let t = self.tile;
            r.extend(FRAGMENT_LINES.map(|line| (line, line.replace("16u", &format!("{t}u")).replace("coop_mat16x16", &format!("coop_mat{t}x{t}")))));
        }
        r.push((X_LINE, format!("alias XElem = {};", wgsl_type(self.x))));
        r.push((OUT_LINE, format!("alias OutElem = {};", wgsl_type(self.out))));
        r
    }

    /// The WGSL of this form (for validation without a device).
    pub fn source(&self) -> Result<String> {
        self.check()?;
        variant::rewrite(&CONV2D_COOP, &self.rewrites())
    }

    /// (scalar-load kernel, vec4-load kernel) of this form.
    pub fn kernels(&self) -> Result<[&'static Kernel; 2]> {
        self.check()?;
        if self.is_base() {
            return Ok([&CONV2D_COOP, &CONV2D_COOP_VEC4]);
        }
        let (label, rewrites) = (self.label(), self.rewrites());
        Ok([variant::variant(&CONV2D_COOP, &label, &rewrites)?, variant::variant(&CONV2D_COOP_VEC4, &label, &rewrites)?])
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
    let [scalar, vec4] = CoopVariant { tile: config.tile, x: reads[0].dtype(), out: out.dtype() }.kernels()?;
    // vec4 loads need 16-byte aligned rows of x and w.
    let kernel = if g.cin.is_multiple_of(4) && g.cout.is_multiple_of(4) { vec4 } else { scalar };
    let side = tile_size(config.tile);
    let groups = grid(gpu, g.rows().div_ceil(side), g.cout.div_ceil(side));
    gpu.with_work(work).launch(kernel, &constants(config.subgroup_size), params, reads, &[out], groups)
}
