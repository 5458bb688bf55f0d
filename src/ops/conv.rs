//! Forward 2-D convolution (`shaders/conv2d_*.wgsl`) as an implicit GEMM:
//! rows M = batch·out_h·out_w output pixels, columns N = cout, depth
//! K = kh·kw·cin (HWIO weights are already the [K, cout] matrix).
//!
//! Seven variants compute the same thing, side by side:
//! - [`ConvAlgo::Direct`]: one invocation per output element, the oracle;
//! - [`ConvAlgo::RegisterBlocked`]: barrier-free register blocks for CPU adapters;
//! - [`ConvAlgo::Stem`]: register blocks with the whole filter block staged
//!   in workgroup memory, for small depth and cin (the first layer, cin = 3);
//! - [`ConvAlgo::Tiled`]: shared-memory tiles for GPUs, the classic lesson;
//! - [`ConvAlgo::TiledLarge`]: the SGEMM-style GPU kernel (128×64 tiles, 8×4
//!   outputs per invocation, double buffering) with split-K for small grids;
//! - [`ConvAlgo::Winograd`], [`ConvAlgo::Winograd4`]: F(2×2, 3×3) and
//!   F(4×4, 3×3) for 3×3 stride-1 windows only (`ops::conv_winograd`):
//!   transforms and 16 or 36 barrier-free batched GEMMs.
//!
//! A seventh, [`ConvAlgo::Coop`] (`ops::conv_coop`), computes it in mixed
//! precision (f16 products, f32 sums) on cooperative matrices: never picked
//! by the rules, the tuning cache or `INCEPT_CONV_ALGO` (it is not in
//! [`ConvAlgo::ALL`], the f32 variants), only asked for by name — by the
//! executor for the frozen prefix under `--precision mixed`, and by the
//! kernel lab and its tests on adapters that have cooperative matrices.
//!
//! Each applies an optional per-channel epilogue `act(conv * scale + bias)`
//! (`act` none, ReLU or ReLU6: [`Act`])
//! (folded inference BatchNorm) and can write into a channel slice of a wider
//! NHWC tensor, so Inception blocks concatenate without a copy.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Work};
use crate::ops::activation::Act;
use crate::ops::conv_coop;
use crate::ops::conv_tuning::{self, ConvKey};
use crate::ops::conv_winograd::{self, OutputTile};
use crate::{kernel, kernel_params};
use crate::ops::window::{Padding, Window2d};
use crate::tensor::{DType, Tensor};

kernel!(CONV2D_DIRECT, "conv2d_direct.wgsl", "conv2d_direct", reads = 4, writes = 1, params = Params, workgroup = DIRECT_GROUP as u32);
kernel!(CONV2D_BLOCKED, "conv2d_blocked.wgsl", "conv2d_blocked", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_BLOCKED_VEC4, "conv2d_blocked.wgsl", "conv2d_blocked_vec4", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_BLOCKED_STEM, "conv2d_blocked.wgsl", "conv2d_blocked_stem", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_TILED, "conv2d_tiled.wgsl", "conv2d_tiled", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_TILED_LARGE, "conv2d_tiled_large.wgsl", "conv2d_tiled_large", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_TILED_LARGE_VEC4, "conv2d_tiled_large.wgsl", "conv2d_tiled_large_vec4", reads = 4, writes = 1, params = Params);
kernel!(CONV2D_TILED_LARGE_REDUCE, "conv2d_tiled_large.wgsl", "conv2d_tiled_large_reduce", reads = 4, writes = 1, params = Params, workgroup = REDUCE_GROUP as u32);

/// Which kernel computes the convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgo {
    /// One invocation per output element: simple, slow, the reference.
    Direct,
    /// Blocks of outputs per invocation, no workgroup memory (CPU adapters).
    RegisterBlocked,
    /// RegisterBlocked's scalar loop with the workgroup's whole filter block
    /// copied once into workgroup memory: for depths up to [`STEM_MAX_DEPTH`],
    /// picked for the first layer (cin = 3, where vec4 loads do not apply).
    Stem,
    /// Shared-memory tiles with barriers (GPUs): 64×64 tiles, 4×4 per invocation.
    Tiled,
    /// Large shared-memory tiles (128×64, 8×4 per invocation, vec4 reads,
    /// double buffered), K split across workgroups when the grid is small.
    TiledLarge,
    /// Winograd F(2×2, 3×3): 3×3 stride-1 windows only, 16 multiplies per
    /// 2×2 output tile instead of 36 (transforms, then barrier-free GEMMs).
    Winograd,
    /// Winograd F(4×4, 3×3): 36 multiplies per 4×4 output tile instead of 144.
    Winograd4,
    /// Mixed precision on cooperative matrices (tensor cores): f16 operands,
    /// f32 sums, 64×64 (or 32×32) tiles; only on adapters that have them (not in `ALL`).
    Coop,
}

/// Environment variable that forces a variant everywhere (benchmarks, comparisons).
pub const CONV_ALGO_ENV: &str = "INCEPT_CONV_ALGO";

impl ConvAlgo {
    /// Every variant, the `Direct` oracle first: the kernel lab, the tests and
    /// `from_name` iterate this list, so a new variant is one line here.
    pub const ALL: [ConvAlgo; 7] = [
        ConvAlgo::Direct,
        ConvAlgo::RegisterBlocked,
        ConvAlgo::Stem,
        ConvAlgo::Tiled,
        ConvAlgo::TiledLarge,
        ConvAlgo::Winograd,
        ConvAlgo::Winograd4,
    ];

    /// The command-line name (`--algo`, `INCEPT_CONV_ALGO`, the kernel lab).
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::Direct => "direct",
            ConvAlgo::RegisterBlocked => "blocked",
            ConvAlgo::Stem => "stem",
            ConvAlgo::Tiled => "tiled",
            ConvAlgo::TiledLarge => "tiled-large",
            ConvAlgo::Winograd => "winograd",
            ConvAlgo::Winograd4 => "winograd4",
            ConvAlgo::Coop => "coop",
        }
    }

    /// Whether the variant computes this convolution (the general ones all
    /// do; Winograd only 3×3 stride 1, Stem only depths up to [`STEM_MAX_DEPTH`]).
    pub fn applies_to(self, key: &ConvKey) -> bool {
        match self {
            ConvAlgo::Winograd | ConvAlgo::Winograd4 => ConvAlgo::winograd_applies(&key.window()),
            ConvAlgo::Stem => key.kh * key.kw * key.cin <= STEM_MAX_DEPTH,
            ConvAlgo::Direct | ConvAlgo::RegisterBlocked | ConvAlgo::Tiled | ConvAlgo::TiledLarge | ConvAlgo::Coop => true,
        }
    }

    /// The variant for the adapter: `INCEPT_CONV_ALGO` when set, else
    /// RegisterBlocked on CPU adapters and TiledLarge on GPUs (5.5x Tiled on an H200).
    /// A convolution picks with [`ConvAlgo::for_conv`], which also looks at the window.
    pub fn for_gpu(gpu: &Gpu) -> ConvAlgo {
        ConvAlgo::forced().unwrap_or_else(|| ConvAlgo::general(gpu))
    }

    /// The variant for one convolution: `INCEPT_CONV_ALGO` when set and able
    /// to compute the window (a forced `winograd` falls back on a 1×7 kernel,
    /// say), else the measured choice of `incept tune` for this adapter and
    /// shape, else [`ConvAlgo::rule`].
    pub fn for_conv(gpu: &Gpu, key: &ConvKey) -> ConvAlgo {
        if let Some(algo) = ConvAlgo::forced()
            && algo.applies_to(key)
        {
            return algo;
        }
        conv_tuning::tuned(gpu, key).unwrap_or_else(|| ConvAlgo::rule(gpu, key))
    }

    /// The built-in rule for a convolution. Where cin rules out vec4 loads
    /// (the first layer, cin = 3) and the depth is small, Stem, on every
    /// adapter: on lavapipe 1.6–1.9× RegisterBlocked's scalar kernel at the
    /// first layer (BENCHMARKS.md); on GPUs it avoids TiledLarge's 64-column
    /// tile, half empty at cout = 32 (unmeasured there: `incept tune` decides
    /// per shape once it has run). On CPU
    /// adapters, for 3×3 stride-1 windows, Winograd by output size, as
    /// measured on lavapipe: F(4×4) from 3×3 outputs up (1.6–3.9×
    /// RegisterBlocked), F(2×2) at 2 (1.4–2.2×), none for a single pixel
    /// (0.2–0.4×: the transforms and the padded tile cost more than the 9
    /// taps). Else the adapter's general-purpose variant.
    pub fn rule(gpu: &Gpu, key: &ConvKey) -> ConvAlgo {
        let win = key.window();
        if !key.cin.is_multiple_of(4) && ConvAlgo::Stem.applies_to(key) {
            return ConvAlgo::Stem;
        }
        let Ok((out_h, out_w)) = win.output_size(key.h, key.w) else { return ConvAlgo::general(gpu) };
        match out_h.min(out_w) {
            _ if !gpu.is_cpu() || !ConvAlgo::winograd_applies(&win) => ConvAlgo::general(gpu),
            3.. => ConvAlgo::Winograd4,
            2 => ConvAlgo::Winograd,
            _ => ConvAlgo::RegisterBlocked,
        }
    }

    /// The adapter's general-purpose variant, for every window: barrier-free
    /// register blocks on CPU adapters, large shared-memory tiles on GPUs.
    fn general(gpu: &Gpu) -> ConvAlgo {
        if gpu.is_cpu() { ConvAlgo::RegisterBlocked } else { ConvAlgo::TiledLarge }
    }

    /// The variant `INCEPT_CONV_ALGO` forces, if set to a valid name (read once).
    fn forced() -> Option<ConvAlgo> {
        static FORCED: std::sync::OnceLock<Option<ConvAlgo>> = std::sync::OnceLock::new();
        *FORCED.get_or_init(|| {
            let name = std::env::var(CONV_ALGO_ENV).ok()?;
            let algo = ConvAlgo::from_name(&name);
            if algo.is_none() {
                eprintln!("warning: {CONV_ALGO_ENV}={name:?} is not one of {}; ignored", ConvAlgo::names());
            }
            algo
        })
    }

    /// The names of all variants, comma-separated (for messages).
    pub fn names() -> String {
        ConvAlgo::ALL.map(ConvAlgo::name).join(", ")
    }

    /// Parses a command-line name (see [`ConvAlgo::name`]).
    pub fn from_name(name: &str) -> Option<ConvAlgo> {
        ConvAlgo::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the Winograd variants compute this window: 3×3, stride 1 (either padding).
    pub fn winograd_applies(win: &Window2d) -> bool {
        [win.kh, win.kw, win.stride_h, win.stride_w] == [3, 3, 1, 1]
    }

    /// The output tile of a Winograd variant.
    fn winograd_tile(self) -> Option<OutputTile> {
        match self {
            ConvAlgo::Winograd => Some(OutputTile::Two),
            ConvAlgo::Winograd4 => Some(OutputTile::Four),
            ConvAlgo::Direct | ConvAlgo::RegisterBlocked | ConvAlgo::Stem | ConvAlgo::Tiled | ConvAlgo::TiledLarge | ConvAlgo::Coop => None,
        }
    }
}

/// A convolution with its optional fused epilogue and a forced variant.
#[derive(Clone, Copy)]
pub struct ConvSpec<'a> {
    /// Kernel size, stride and padding.
    pub win: Window2d,
    /// Per-output-channel multiplier [cout] (folded inference BatchNorm).
    pub scale: Option<&'a Tensor>,
    /// Per-output-channel addend [cout].
    pub bias: Option<&'a Tensor>,
    /// The activation applied last (default none).
    pub act: Act,
    /// `None` picks [`ConvAlgo::for_conv`]; a variant that cannot compute the
    /// convolution (see [`ConvAlgo::applies_to`]) is an error.
    pub algo: Option<ConvAlgo>,
}

impl<'a> ConvSpec<'a> {
    /// A plain convolution: no epilogue, the adapter's default variant.
    pub fn new(win: Window2d) -> Self {
        ConvSpec { win, scale: None, bias: None, act: Act::Linear, algo: None }
    }
}

impl Default for ConvSpec<'_> {
    /// A 1×1, stride 1 convolution (the most common one in InceptionV3).
    fn default() -> Self {
        ConvSpec::new(Window2d::new(1, 1, 1, Padding::Valid))
    }
}

/// `x` NHWC [n, h, w, cin], `w` HWIO [kh, kw, cin, cout] → [n, oh, ow, cout].
pub fn conv2d(x: &Tensor, w: &Tensor, win: &Window2d) -> Result<Tensor> {
    conv2d_fused(x, w, &ConvSpec::new(*win))
}

/// `act(conv2d(x, w) * scale + bias)` in one pass.
pub fn conv2d_fused(x: &Tensor, w: &Tensor, spec: &ConvSpec) -> Result<Tensor> {
    let g = Geometry::new(x, w, spec)?;
    let out = Tensor::empty(x.gpu(), &[g.batch, g.out_h, g.out_w, g.cout], DType::F32)?;
    launch(x, w, spec, &g, &out, g.cout, 0)?;
    Ok(out)
}

/// Writes `act(conv2d(x, w) * scale + bias)` into channels
/// `[channel_offset, channel_offset + cout)` of `out` [n, oh, ow, ctotal];
/// the other channels are left untouched.
pub fn conv2d_into(x: &Tensor, w: &Tensor, spec: &ConvSpec, out: &Tensor, channel_offset: usize) -> Result<()> {
    let g = Geometry::new(x, w, spec)?;
    let [on, oh, ow, ctotal] = out.dims4()?;
    if [on, oh, ow] != [g.batch, g.out_h, g.out_w] || channel_offset + g.cout > ctotal || !activation_type_fits(spec, out.dtype()) {
        return Err(Error::Shape(format!(
            "conv2d_into: {:?} output {:?} cannot hold [{}, {}, {}, {}] at channel offset {channel_offset}",
            out.dtype(),
            out.shape(),
            g.batch,
            g.out_h,
            g.out_w,
            g.cout
        )));
    }
    launch(x, w, spec, &g, out, ctotal, channel_offset)
}

/// Whether an input or output of this element type can be read or written:
/// f32 always, f16 (the frozen prefix's storage under `--precision mixed`)
/// by the cooperative-matrix kernel only.
fn activation_type_fits(spec: &ConvSpec, dtype: DType) -> bool {
    dtype == DType::F32 || (dtype == DType::F16 && spec.algo == Some(ConvAlgo::Coop))
}

/// Checked sizes of one convolution.
pub(crate) struct Geometry {
    pub(crate) batch: usize,
    pub(crate) in_h: usize,
    pub(crate) in_w: usize,
    pub(crate) cin: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) cout: usize,
    pub(crate) pad_top: usize,
    pub(crate) pad_left: usize,
}

impl Geometry {
    pub(crate) fn new(x: &Tensor, w: &Tensor, spec: &ConvSpec) -> Result<Geometry> {
        let shapes = || format!("input {:?}, filter {:?}, window {:?}", x.shape(), w.shape(), spec.win);
        let (Ok([batch, in_h, in_w, cin]), Ok([kh, kw, wcin, cout])) = (x.dims4(), w.dims4()) else {
            return Err(Error::Shape(format!("conv2d needs a 4-D NHWC input and a 4-D HWIO filter: {}", shapes())));
        };
        if !activation_type_fits(spec, x.dtype()) || w.dtype() != DType::F32 {
            return Err(Error::Shape(format!("conv2d needs an f32 filter and an f32 input (f16 only with the cooperative-matrix kernel): {}", shapes())));
        }
        if [kh, kw] != [spec.win.kh, spec.win.kw] || wcin != cin || cin == 0 {
            return Err(Error::Shape(format!("conv2d: filter does not fit the input and window: {}", shapes())));
        }
        for (name, t) in [("scale", spec.scale), ("bias", spec.bias)] {
            if let Some(t) = t
                && (t.shape() != [cout] || t.dtype() != DType::F32)
            {
                return Err(Error::Shape(format!("conv2d: {name} {:?} must be [{cout}] f32: {}", t.shape(), shapes())));
            }
        }
        let (out_h, out_w) = spec.win.output_size(in_h, in_w).map_err(|e| match e {
            Error::Shape(m) => Error::Shape(format!("conv2d: {m}: {}", shapes())),
            other => other,
        })?;
        let (pad_top, pad_left) = spec.win.pad_before(in_h, in_w)?;
        Ok(Geometry { batch, in_h, in_w, cin, out_h, out_w, cout, pad_top, pad_left })
    }

    pub(crate) fn rows(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }
}

kernel_params! {
    /// Mirrors `Params` in `shaders/conv2d_*.wgsl`.
    pub(crate) struct Params {
        batch: u32,
        in_h: u32,
        in_w: u32,
        cin: u32,
        out_h: u32,
        out_w: u32,
        cout: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        rows: u32,
        depth: u32,
        out_stride: u32,
        out_offset: u32,
        epilogue: u32,
        /// Depth per split-K slice (conv2d_tiled_large only).
        k_split: u32,
        /// Split-K slices (conv2d_tiled_large_reduce only).
        splits: u32,
    }
}

pub(crate) const EPILOGUE_SCALE: u32 = 1;
pub(crate) const EPILOGUE_BIAS: u32 = 2;

/// Output rows and channels of one register-blocked invocation.
pub(crate) const BLOCKED_ROWS: usize = 4;
pub(crate) const BLOCKED_COLS: usize = 8;
const TILE: usize = 64;
const DIRECT_GROUP: usize = 64;

fn launch(x: &Tensor, w: &Tensor, spec: &ConvSpec, g: &Geometry, out: &Tensor, out_stride: usize, out_offset: usize) -> Result<()> {
    let gpu = x.gpu();
    let rows = g.rows();
    // Every flat index the kernels compute must fit in u32.
    let largest = [x.numel(), w.numel(), out.numel(), rows * g.cout].into_iter().max().unwrap_or(0);
    if largest > u32::MAX as usize {
        return Err(Error::Shape(format!(
            "conv2d: input {:?}, filter {:?} or output {:?} has more than 2^32 elements",
            x.shape(),
            w.shape(),
            out.shape()
        )));
    }
    if rows == 0 || g.cout == 0 {
        return Ok(());
    }
    let win = &spec.win;
    let epilogue = spec.scale.map_or(0, |_| EPILOGUE_SCALE)
        | spec.bias.map_or(0, |_| EPILOGUE_BIAS)
        | spec.act.epilogue_bits();
    let params = Params {
        batch: g.batch as u32,
        in_h: g.in_h as u32,
        in_w: g.in_w as u32,
        cin: g.cin as u32,
        out_h: g.out_h as u32,
        out_w: g.out_w as u32,
        cout: g.cout as u32,
        kh: win.kh as u32,
        kw: win.kw as u32,
        stride_h: win.stride_h as u32,
        stride_w: win.stride_w as u32,
        pad_top: g.pad_top as u32,
        pad_left: g.pad_left as u32,
        rows: rows as u32,
        depth: (win.kh * win.kw * g.cin) as u32,
        out_stride: out_stride as u32,
        out_offset: out_offset as u32,
        epilogue,
        k_split: 0,
        splits: 1,
    };
    // A multiply-add per output element and step of depth; bytes: inputs, filter, output slice, epilogue.
    let flops = 2.0 * (rows * g.cout) as f64 * params.depth as f64;
    let out_bytes = (rows * g.cout) as u64 * out.dtype().size();
    let work = Work::new(flops, (x.byte_size() + w.byte_size() + out_bytes + (epilogue_vectors(spec) * g.cout) as u64 * 4) as f64);
    // Absent epilogue operands: bind the filter in their slot; the kernel never reads it.
    let reads = [x, w, spec.scale.unwrap_or(w), spec.bias.unwrap_or(w)];
    let key = ConvKey::new(g.in_h, g.in_w, g.cin, g.cout, win);
    let algo = match spec.algo {
        Some(algo) if !algo.applies_to(&key) => {
            return Err(Error::Shape(format!(
                "conv2d: {algo:?} cannot compute window {win:?} at depth {} (input {:?}, filter {:?})",
                params.depth,
                x.shape(),
                w.shape()
            )));
        }
        Some(algo) => algo,
        // An automatic Winograd whose transformed filter would not fit a binding falls back.
        None => match ConvAlgo::for_conv(gpu, &key) {
            algo if algo.winograd_tile().is_some_and(|tile| !conv_winograd::filter_fits(gpu, tile, g)) => ConvAlgo::general(gpu),
            algo => algo,
        },
    };
    let (kernel, groups) = match algo {
        ConvAlgo::Direct => (&CONV2D_DIRECT, gpu.groups_1d((rows * g.cout).div_ceil(DIRECT_GROUP) as u32)),
        ConvAlgo::RegisterBlocked => return launch_register_blocked(g, win, &params, &reads, out, work),
        ConvAlgo::Stem => return launch_stem(g, win, &params, &reads, out, work),
        ConvAlgo::Tiled => (&CONV2D_TILED, grid(gpu, rows.div_ceil(TILE), g.cout.div_ceil(TILE))),
        ConvAlgo::TiledLarge => return launch_tiled_large(g, &params, &reads, out, work),
        ConvAlgo::Winograd => return conv_winograd::launch(OutputTile::Two, g, &reads, out, out_stride, out_offset, epilogue),
        ConvAlgo::Winograd4 => return conv_winograd::launch(OutputTile::Four, g, &reads, out, out_stride, out_offset, epilogue),
        ConvAlgo::Coop => return conv_coop::launch(g, &params, &reads, out, work),
    };
    gpu.with_work(work).launch(kernel, &[], &params, &reads, &[out], groups)
}

/// The register-blocked conv: vec4 loads (and two row groups where
/// [`blocked_layout`] takes them) when cin and cout allow, else scalar.
fn launch_register_blocked(g: &Geometry, win: &Window2d, params: &Params, reads: &[&Tensor; 4], out: &Tensor, work: Work) -> Result<()> {
    let gpu = reads[0].gpu();
    let rows = g.rows();
    // vec4 loads need 16-byte aligned rows of x and w.
    let vec4 = g.cin.is_multiple_of(4) && g.cout.is_multiple_of(4);
    let (row_groups, lanes_m, lanes_n) = if vec4 {
        blocked_layout(rows, g.cout)
    } else {
        let (m, n) = blocked_lanes(rows, g.cout);
        (1, m, n)
    };
    let padded = if reaches_padding(g, win) { 1.0 } else { 0.0 };
    let constants = [("PADDED", padded), ("LANES_M", lanes_m as f64), ("LANES_N", lanes_n as f64), ("ROW_GROUPS", row_groups as f64)];
    // Only the vec4 entry point declares ROW_GROUPS.
    let (kernel, constants) = if vec4 { (&CONV2D_BLOCKED_VEC4, &constants[..]) } else { (&CONV2D_BLOCKED, &constants[..3]) };
    let groups = grid(gpu, rows.div_ceil(BLOCKED_ROWS * row_groups * lanes_m), g.cout.div_ceil(BLOCKED_COLS * lanes_n));
    gpu.with_work(work).launch(kernel, constants, params, reads, &[out], groups)
}

/// Vec4 capacity of the Stem kernel's filter block in workgroup memory
/// (16 KiB, WebGPU's default workgroup storage limit), set as its
/// `STEM_SLAB` override.
const STEM_SLAB: usize = 1024;
/// Output channels of one Stem invocation (two halves of RegisterBlocked's 8).
const STEM_COLS: usize = 2 * BLOCKED_COLS;
const STEM_VEC4_PER_K: usize = STEM_COLS / 4;
/// Largest depth kh·kw·cin Stem computes: a block of one lane's channels
/// must fit [`STEM_SLAB`].
pub const STEM_MAX_DEPTH: usize = STEM_SLAB / STEM_VEC4_PER_K;

/// Stem: RegisterBlocked's lane rule applied to blocks of [`STEM_COLS`]
/// channels (as if cout were half as wide in its 8-channel blocks), with
/// fewer channel lanes where the workgroup's filter block (depth ×
/// [`STEM_COLS`] channels per channel lane) would not fit [`STEM_SLAB`];
/// rows take the lanes given up.
fn launch_stem(g: &Geometry, win: &Window2d, params: &Params, reads: &[&Tensor; 4], out: &Tensor, work: Work) -> Result<()> {
    let gpu = reads[0].gpu();
    let rows = g.rows();
    let depth = params.depth as usize;
    let (mut lanes_m, mut lanes_n) = blocked_lanes(rows, g.cout.div_ceil(STEM_COLS / BLOCKED_COLS));
    while lanes_n > 1 && depth * STEM_VEC4_PER_K * lanes_n > STEM_SLAB {
        (lanes_m, lanes_n) = (lanes_m * 2, lanes_n / 2);
    }
    let padded = if reaches_padding(g, win) { 1.0 } else { 0.0 };
    let constants = [("PADDED", padded), ("LANES_M", lanes_m as f64), ("LANES_N", lanes_n as f64), ("STEM_SLAB", STEM_SLAB as f64)];
    let groups = grid(gpu, rows.div_ceil(BLOCKED_ROWS * lanes_m), g.cout.div_ceil(STEM_COLS * lanes_n));
    gpu.with_work(work).launch(&CONV2D_BLOCKED_STEM, &constants, params, reads, &[out], groups)
}

/// Per-channel vectors the epilogue reads (scale, bias).
fn epilogue_vectors(spec: &ConvSpec) -> usize {
    usize::from(spec.scale.is_some()) + usize::from(spec.bias.is_some())
}

/// Output tile of one `TiledLarge` workgroup, and its step through K.
const LARGE_TILE_M: usize = 128;
const LARGE_TILE_N: usize = 64;
const LARGE_STEP_K: usize = 8;
/// Workgroups a `TiledLarge` grid should have: about two per SM on the
/// largest GPUs (132 SMs), beyond what a handful of cores needs.
const SPLIT_K_TARGET: usize = 256;
/// Fewest K steps per split-K slice, so that the partial sums (written and
/// read once per slice) stay small next to the slice's arithmetic.
const SPLIT_K_MIN_STEPS: usize = 8;
/// Invocations per workgroup of the split-K reduction.
const REDUCE_GROUP: usize = 256;

/// Split-K rule for `TiledLarge`: with `tiles` output tiles, split K into
/// enough slices to reach [`SPLIT_K_TARGET`] workgroups, but keep at least
/// [`SPLIT_K_MIN_STEPS`] steps of K per slice. Returns (slices, depth per
/// slice, a multiple of the K step); one slice means no split.
///
/// E.g. at batch 8, 224² images: 5×5×2048 1×1 → 192 has 2×3 tiles and 256
/// steps, so 32 slices of 64; 12×12×768 1×1 → 192 has 9×3 tiles and 96
/// steps, so 10 slices of 80; 54×54×80 3×3 → 192 has 183×3 tiles: no split.
fn split_k(tiles: usize, depth: usize) -> (usize, usize) {
    let steps = depth.div_ceil(LARGE_STEP_K);
    let wanted = SPLIT_K_TARGET.div_ceil(tiles).min(steps / SPLIT_K_MIN_STEPS).max(1);
    let k_split = steps.div_ceil(wanted) * LARGE_STEP_K;
    (depth.div_ceil(k_split), k_split)
}

/// `TiledLarge`: one tile kernel, writing the output directly, or with a
/// split K, partial sums [splits, rows, cout] and the reduction that adds
/// them and applies the epilogue.
fn launch_tiled_large(g: &Geometry, params: &Params, reads: &[&Tensor; 4], out: &Tensor, work: Work) -> Result<()> {
    let gpu = out.gpu();
    let rows = g.rows();
    let (row_tiles, col_tiles) = (rows.div_ceil(LARGE_TILE_M), g.cout.div_ceil(LARGE_TILE_N));
    let depth = params.depth as usize;
    let (splits, k_split) = split_k(row_tiles * col_tiles, depth);
    // vec4 loads need 16-byte aligned rows of x and w.
    let kernel = if g.cin.is_multiple_of(4) && g.cout.is_multiple_of(4) { &CONV2D_TILED_LARGE_VEC4 } else { &CONV2D_TILED_LARGE };
    let groups = grid(gpu, row_tiles, col_tiles * splits);
    let tile_params = Params { k_split: k_split as u32, ..*params };
    if splits == 1 {
        return gpu.with_work(work).launch(kernel, &[], &tile_params, reads, &[out], groups);
    }
    // Small: splits > 1 only with fewer than SPLIT_K_TARGET tiles, and then
    // splits · rows · cout < 2 · SPLIT_K_TARGET · 128 · 64 floats (16 MiB).
    let partials = Tensor::empty(gpu, &[splits, rows, g.cout], DType::F32)?;
    let partial_params = Params { out_stride: g.cout as u32, out_offset: 0, epilogue: 0, ..tile_params };
    let [x, w, scale, bias] = *reads;
    let operands = (x.numel() + w.numel()) as f64 * 4.0;
    gpu.with_work(Work::new(work.flops, operands + partials.byte_size() as f64)).launch(kernel, &[], &partial_params, reads, &[&partials], groups)?;
    let reduce_params = Params { splits: splits as u32, ..*params };
    let groups = gpu.groups_1d((rows * g.cout).div_ceil(REDUCE_GROUP) as u32);
    // Reads every partial sum and the epilogue vectors, writes the output slice: the rest of `work`'s bytes.
    let reduce = Work::new((splits * rows * g.cout) as f64, partials.byte_size() as f64 + work.bytes.unwrap_or(0.0) - operands);
    gpu.with_work(reduce).launch(&CONV2D_TILED_LARGE_REDUCE, &[], &reduce_params, &[&partials, w, scale, bias], &[out], groups)
}

/// Lanes of a register-blocked workgroup (4 rows × 8 columns per lane) along
/// rows and column blocks, for a `rows` × `cols` output (the blocked conv and
/// Winograd's batched GEMM share this rule). Few rows: just enough row lanes
/// and the rest (to 8, lavapipe's SIMD width) along columns. Else 64 lanes,
/// all along rows unless that computes (and drops) at least 10 % more clamped
/// rows and columns than the least wasteful split of the 64, which is then
/// taken. Measured on lavapipe (Winograd F(4×4), batch 8–32): 800 × 192
/// (17×17 at 75²) takes 8 × 8 lanes, 800 × 192 computed instead of 1024 ×
/// 192, 20–25 % faster; 1568 × 192 (8 × 8) and 392 × 96 (16 × 4) 12–20 %
/// faster; at 2–9 % waste the splits were within noise of 64 × 1 or up to
/// 14 % slower.
pub(crate) fn blocked_lanes(rows: usize, cols: usize) -> (usize, usize) {
    blocked_lanes_for(rows, &[cols])
}

/// [`blocked_lanes`] for column ranges blocked separately (the branches of
/// sibling convolutions): the clamped columns are counted per range.
pub(crate) fn blocked_lanes_for(rows: usize, ranges: &[usize]) -> (usize, usize) {
    if rows < BLOCKED_ROWS * 64 {
        let lanes_m = rows.div_ceil(BLOCKED_ROWS).next_power_of_two().min(64);
        return (lanes_m, (8 / lanes_m).max(1));
    }
    lanes_of_64(rows, ranges, BLOCKED_ROWS)
}

/// Rows × columns computed (clamped ones included) by lanes of
/// `rows_per_lane` × 8 in workgroups of `lanes_m` × `lanes_n`.
fn computed(rows: usize, ranges: &[usize], rows_per_lane: usize, (lanes_m, lanes_n): (usize, usize)) -> usize {
    let (block_rows, block_cols) = (rows_per_lane * lanes_m, BLOCKED_COLS * lanes_n);
    rows.div_ceil(block_rows) * block_rows * ranges.iter().map(|c| c.div_ceil(block_cols) * block_cols).sum::<usize>()
}

/// The split of 64 lanes between rows and column blocks: all along rows
/// unless that computes at least 10 % more than the least wasteful split.
fn lanes_of_64(rows: usize, ranges: &[usize], rows_per_lane: usize) -> (usize, usize) {
    let cost = |m: usize| computed(rows, ranges, rows_per_lane, (m, 64 / m));
    let least = [32, 16, 8].into_iter().min_by_key(|&m| cost(m)).unwrap_or(64);
    let lanes_m = if 10 * cost(64) >= 11 * cost(least) { least } else { 64 };
    (lanes_m, 64 / lanes_m)
}

/// Row groups and lanes (groups, lanes along rows, lanes along columns) of
/// the vec4 blocked conv and of Winograd's GEMM for a `rows` × `cols` output.
/// Two groups (8 rows × 8 columns per lane, each weight load shared by 8
/// pixels: 16 vec4 loads per 256 multiply-adds against 12 per 128) where
/// 64 lanes of 8 rows (split as [`blocked_lanes`] splits 4-row lanes)
/// compute under 1.2× the rows × columns one group computes; else one.
/// Measured on lavapipe at batch 32, 75² (kernel lab, alternated runs): the
/// 35×35 and 7×7 stages 20–35 % faster, the 3×3 stage (288 rows, 8 × 8
/// lanes, 11 % clamped rows) about 5 %.
/// Larger blocks need the groups written out: lavapipe's compiler stops
/// unrolling the row loop past 4 rows, and a dynamically indexed
/// accumulator array then lives in memory.
pub(crate) fn blocked_layout(rows: usize, cols: usize) -> (usize, usize, usize) {
    let one = blocked_lanes(rows, cols);
    let two = lanes_of_64(rows, &[cols], 2 * BLOCKED_ROWS);
    if 10 * computed(rows, &[cols], 2 * BLOCKED_ROWS, two) < 12 * computed(rows, &[cols], BLOCKED_ROWS, one) {
        (2, two.0, two.1)
    } else {
        (1, one.0, one.1)
    }
}

/// Whether some tap of some output pixel falls outside the input.
pub(crate) fn reaches_padding(g: &Geometry, win: &Window2d) -> bool {
    let beyond = |out: usize, stride: usize, k: usize, pad: usize, size: usize| (out - 1) * stride + k > pad + size;
    g.pad_top > 0
        || g.pad_left > 0
        || beyond(g.out_h, win.stride_h, win.kh, g.pad_top, g.in_h)
        || beyond(g.out_w, win.stride_w, win.kw, g.pad_left, g.in_w)
}

/// Workgroups for `row_blocks` × `col_blocks`: rows in x, folded into z past
/// the per-dimension limit (kernels use `wid.x + wid.z * nwg.x`), columns in y.
pub(crate) fn grid(gpu: &Gpu, row_blocks: usize, col_blocks: usize) -> [u32; 3] {
    let [x, z, _] = gpu.groups_1d(row_blocks as u32);
    [x, col_blocks as u32, z]
}
