//! Depthwise 2-D convolution (`shaders/depthwise_conv2d.wgsl`, forward and
//! backward in one file): Keras DepthwiseConv2D with depth_multiplier 1 and
//! no bias of its own. x NHWC [n, h, w, c], w [kh, kw, c, 1] (Keras's
//! depthwise_kernel layout), output NHWC [n, oh, ow, c]: every channel
//! convolved with its own kh×kw filter, any window (kernel size, stride,
//! 'valid', TF 'same' or explicit padding). f32 only.
//!
//! The forward applies the conv epilogue `act(y * scale[c] + bias[c])`
//! (folded inference BatchNorm and ReLU / ReLU6), like `ConvSpec`'s.
//! Two variants ([`DepthwiseAlgo`]): `Direct`, one invocation per output
//! element, the oracle; and `Strip`, 4 channels × 2 output pixels × a strip
//! of output rows per invocation, sliding a window of input rows down the
//! strip so that each input value is loaded about once (barrier-free, vec4),
//! for c % 4 == 0. Depthwise convolutions do a few multiply-adds per byte:
//! judge them by GB/s (kernel lab family `depthwise`).
//!
//! The backward gathers dx per input element and reduces dw over the
//! n·oh·ow output positions in slices (partial sums, then their sum), each
//! in a scalar form and a vec4 one ([`DepthwiseGradKernel`]).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, Work};
use crate::ops::activation::Act;
use crate::ops::conv::{EPILOGUE_BIAS, EPILOGUE_SCALE};
use crate::ops::window::Window2d;
use crate::tensor::{DType, Tensor};
use crate::{kernel, kernel_params};

kernel!(DEPTHWISE_DIRECT, "depthwise_conv2d.wgsl", "depthwise_direct", reads = 4, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(DEPTHWISE_STRIP_VEC4, "depthwise_conv2d.wgsl", "depthwise_strip_vec4", reads = 4, writes = 1, params = Params);
kernel!(DEPTHWISE_BACKWARD_INPUT, "depthwise_conv2d.wgsl", "depthwise_backward_input", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(DEPTHWISE_BACKWARD_INPUT_VEC4, "depthwise_conv2d.wgsl", "depthwise_backward_input_vec4", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(DEPTHWISE_FILTER_GRAD, "depthwise_conv2d.wgsl", "depthwise_filter_grad", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(DEPTHWISE_FILTER_GRAD_VEC4, "depthwise_conv2d.wgsl", "depthwise_filter_grad_vec4", reads = 2, writes = 1, params = Params, workgroup = WORKGROUP);
kernel!(DEPTHWISE_SUM_SLICES, "depthwise_conv2d.wgsl", "depthwise_sum_slices", reads = 1, writes = 1, params = Params, workgroup = WORKGROUP);

/// Invocations per workgroup of every kernel here (the WGSL `WORKGROUP_SIZE` override).
const WORKGROUP: u32 = 64;
/// Output pixels along a row per `Strip` invocation (`OWB` in the shader):
/// 2 measured fastest on lavapipe at MobileNetV2's layers (BENCHMARKS.md;
/// 1.2–2× 4 pixels at stride 2, within noise at stride 1).
const STRIP_PIXELS: usize = 2;
/// Limits of `Strip`'s register arrays (`MAX_KH`, `MAX_COLS`, `MAX_TAPS` in
/// the shader): filter rows in the window, input columns per row, taps.
const MAX_KH: usize = 7;
const MAX_COLS: usize = 12;
const MAX_TAPS: usize = 49;
/// `Strip` invocations wanted before a column of output rows is cut into
/// several strips (each strip re-reads the KH − SH rows above it): enough
/// workgroups of 64 for a many-core CPU adapter.
const STRIP_TARGET_INVOCATIONS: usize = 8192;
/// Fewest output rows a strip gets.
const MIN_STRIP: usize = 16;
/// Filter-gradient invocations wanted before the reduction is left unsplit.
const TARGET_INVOCATIONS: usize = 16384;
/// Fewest output positions a slice of the filter-gradient reduction gets.
const MIN_POSITIONS_PER_SLICE: usize = 256;

/// Which kernel computes the forward depthwise convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DepthwiseAlgo {
    /// One invocation per output element, scalar loads: the oracle.
    Direct,
    /// One invocation per 4 channels × 2 output pixels × a strip of output
    /// rows, a sliding window of input rows in registers (vec4, no
    /// barriers); c % 4 == 0, kernels up to 7 rows and 49 taps.
    Strip,
}

impl DepthwiseAlgo {
    /// Every variant, the `Direct` oracle first (the kernel lab and the tests iterate it).
    pub const ALL: [DepthwiseAlgo; 2] = [DepthwiseAlgo::Direct, DepthwiseAlgo::Strip];

    /// The command-line name (the kernel lab's `--variant`).
    pub fn name(self) -> &'static str {
        match self {
            DepthwiseAlgo::Direct => "direct",
            DepthwiseAlgo::Strip => "strip",
        }
    }

    /// Parses a name (see [`DepthwiseAlgo::name`]).
    pub fn from_name(name: &str) -> Option<DepthwiseAlgo> {
        DepthwiseAlgo::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The variant for the adapter: `Strip` (on lavapipe 10–30× `Direct`,
    /// above the GB/s of an elementwise ReLU, BENCHMARKS.md; unmeasured on
    /// GPUs, where its neighbouring lanes read neighbouring vec4 as GPUs
    /// like, though long strips leave fewer invocations than a GPU has
    /// lanes). A convolution it cannot compute ([`DepthwiseAlgo::applies_to`])
    /// falls back to `Direct`.
    pub fn rule(_gpu: &Gpu) -> DepthwiseAlgo {
        DepthwiseAlgo::Strip
    }

    /// Whether the variant computes a depthwise convolution of `c` channels
    /// with window `win`: `Direct` always; `Strip` for c % 4 == 0 (vec4)
    /// and windows that fit its registers: at most [`MAX_KH`] rows,
    /// [`MAX_TAPS`] taps and [`MAX_COLS`] columns.
    pub fn applies_to(self, c: usize, win: &Window2d) -> bool {
        match self {
            DepthwiseAlgo::Direct => true,
            DepthwiseAlgo::Strip => c.is_multiple_of(4) && win.kh <= MAX_KH && win.kh * win.kw <= MAX_TAPS && win.kw <= MAX_COLS,
        }
    }
}

/// Which kernels compute the gradients: per element (the oracle) or per
/// channel quad (vec4 loads, c % 4 == 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DepthwiseGradKernel {
    PerElement,
    Vec4,
}

impl DepthwiseGradKernel {
    /// Every kernel, the `PerElement` oracle first (the kernel lab iterates it).
    pub const ALL: [DepthwiseGradKernel; 2] = [DepthwiseGradKernel::PerElement, DepthwiseGradKernel::Vec4];

    pub fn name(self) -> &'static str {
        match self {
            DepthwiseGradKernel::PerElement => "per-element",
            DepthwiseGradKernel::Vec4 => "vec4",
        }
    }

    /// Whether the kernel handles `c` channels.
    pub fn applies_to(self, c: usize) -> bool {
        self == DepthwiseGradKernel::PerElement || c.is_multiple_of(4)
    }

    /// The kernel the backward ops use for `c` channels: vec4 where it applies.
    pub fn for_channels(c: usize) -> DepthwiseGradKernel {
        if DepthwiseGradKernel::Vec4.applies_to(c) { DepthwiseGradKernel::Vec4 } else { DepthwiseGradKernel::PerElement }
    }
}

/// A depthwise convolution with its optional fused epilogue and a forced variant.
#[derive(Clone, Copy)]
pub struct DepthwiseSpec<'a> {
    /// Kernel size, stride and padding.
    pub win: Window2d,
    /// Per-channel multiplier [c] (folded inference BatchNorm).
    pub scale: Option<&'a Tensor>,
    /// Per-channel addend [c].
    pub bias: Option<&'a Tensor>,
    /// The activation applied last (default none).
    pub act: Act,
    /// `None` picks [`DepthwiseAlgo::rule`] (`Direct` where that variant does
    /// not apply); a variant that cannot compute the convolution is an error.
    pub algo: Option<DepthwiseAlgo>,
}

impl<'a> DepthwiseSpec<'a> {
    /// A plain depthwise convolution: no epilogue, the adapter's variant.
    pub fn new(win: Window2d) -> Self {
        DepthwiseSpec { win, scale: None, bias: None, act: Act::Linear, algo: None }
    }
}

kernel_params! {
    /// Mirrors `Params` in `shaders/depthwise_conv2d.wgsl`.
    struct Params {
        batch: u32,
        in_h: u32,
        in_w: u32,
        c: u32,
        out_h: u32,
        out_w: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_top: u32,
        pad_left: u32,
        c4: u32,
        total: u32,
        epilogue: u32,
        slices: u32,
        positions_per_slice: u32,
        strip: u32,
    }
}

/// Checked sizes of one depthwise convolution: x [n, h, w, c], filter
/// [kh, kw, c, 1], output [n, oh, ow, c].
struct Geometry {
    x: [usize; 4],
    y: [usize; 4],
    params: Params,
}

impl Geometry {
    /// `op` names the caller in errors; `x` and `w` are the input and filter shapes.
    fn new(op: &str, x: [usize; 4], w: [usize; 4], win: &Window2d) -> Result<Geometry> {
        let [n, h, wi, c] = x;
        let [kh, kw, wc, multiplier] = w;
        if multiplier != 1 {
            return Err(Error::Shape(format!(
                "{op}: filter {w:?} has depth_multiplier {multiplier}; only 1 is supported (filter [kh, kw, channels, 1])"
            )));
        }
        if wc != c {
            return Err(Error::Shape(format!("{op}: filter {w:?} has {wc} channels but input {x:?} has {c}")));
        }
        if [kh, kw] != [win.kh, win.kw] {
            return Err(Error::Shape(format!("{op}: filter {w:?} is not {}x{} as window {win:?} is", win.kh, win.kw)));
        }
        let (oh, ow) = win.output_size(h, wi).map_err(|e| match e {
            Error::Shape(m) => Error::Shape(format!("{op}: input {x:?}, window {win:?}: {m}")),
            other => other,
        })?;
        let (pad_top, pad_left) = win.pad_before(h, wi)?;
        let y = [n, oh, ow, c];
        for (what, shape) in [("input", x), ("filter", w), ("output", y)] {
            if shape.iter().product::<usize>() > u32::MAX as usize {
                return Err(Error::Shape(format!("{op}: {what} {shape:?} has more than 2^32 elements")));
            }
        }
        let u = |v: usize| v as u32;
        let params = Params {
            batch: u(n),
            in_h: u(h),
            in_w: u(wi),
            c: u(c),
            out_h: u(oh),
            out_w: u(ow),
            kh: u(kh),
            kw: u(kw),
            stride_h: u(win.stride_h),
            stride_w: u(win.stride_w),
            pad_top: u(pad_top),
            pad_left: u(pad_left),
            c4: u(c / 4),
            total: 0,
            epilogue: 0,
            slices: 1,
            positions_per_slice: 0,
            strip: 0,
        };
        Ok(Geometry { x, y, params })
    }

    fn taps(&self) -> usize {
        (self.params.kh * self.params.kw) as usize
    }

    /// Multiply-adds × 2 of the forward (and of each gradient).
    fn flops(&self) -> f64 {
        2.0 * (self.y.iter().product::<usize>() * self.taps()) as f64
    }

    fn positions(&self) -> usize {
        self.y[0] * self.y[1] * self.y[2]
    }
}

/// The NHWC shape of an f32 tensor, or an error naming `op` and `what`.
fn f32_nhwc(op: &str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op}: {what} must be f32 (the depthwise kernels have no f16 form), got {:?} {:?}", t.dtype(), t.shape())));
    }
    t.dims4().map_err(|_| Error::Shape(format!("{op}: {what} must be 4-D, got {:?}", t.shape())))
}

fn groups(gpu: &Gpu, invocations: usize) -> [u32; 3] {
    gpu.groups_1d((invocations as u32).div_ceil(WORKGROUP))
}

/// `x` NHWC [n, h, w, c], `w` [kh, kw, c, 1] → [n, oh, ow, c].
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, win: &Window2d) -> Result<Tensor> {
    let [n, h, wi, c] = f32_nhwc("depthwise_conv2d", "input", x)?;
    let (oh, ow) = win.output_size(h, wi).map_err(|e| match e {
        Error::Shape(m) => Error::Shape(format!("depthwise_conv2d: input {:?}, window {win:?}: {m}", x.shape())),
        other => other,
    })?;
    let out = Tensor::empty(x.gpu(), &[n, oh, ow, c], DType::F32)?;
    depthwise_conv2d_into(x, w, &DepthwiseSpec::new(*win), &out)?;
    Ok(out)
}

/// Writes `act(depthwise_conv2d(x, w) * scale + bias)` into `out` [n, oh, ow, c].
pub fn depthwise_conv2d_into(x: &Tensor, w: &Tensor, spec: &DepthwiseSpec, out: &Tensor) -> Result<()> {
    const OP: &str = "depthwise_conv2d";
    let g = Geometry::new(OP, f32_nhwc(OP, "input", x)?, f32_nhwc(OP, "filter", w)?, &spec.win)?;
    let c = g.x[3];
    if f32_nhwc(OP, "output", out)? != g.y {
        return Err(Error::Shape(format!("{OP}: output {:?} is not {:?} (input {:?}, window {:?})", out.shape(), g.y, x.shape(), spec.win)));
    }
    for (name, t) in [("scale", spec.scale), ("bias", spec.bias)] {
        if let Some(t) = t
            && (t.shape() != [c] || t.dtype() != DType::F32)
        {
            return Err(Error::Shape(format!("{OP}: {name} {:?} {:?} must be [{c}] f32 (input {:?})", t.dtype(), t.shape(), x.shape())));
        }
    }
    let algo = match spec.algo {
        Some(algo) if !algo.applies_to(c, &spec.win) => {
            return Err(Error::Shape(format!(
                "{OP}: variant {} cannot compute {c} channels with window {:?} (it needs c % 4 == 0 and at most {MAX_KH} rows, {MAX_COLS} columns and {MAX_TAPS} taps)",
                algo.name(),
                spec.win
            )));
        }
        Some(algo) => algo,
        None => Some(DepthwiseAlgo::rule(x.gpu())).filter(|a| a.applies_to(c, &spec.win)).unwrap_or(DepthwiseAlgo::Direct),
    };
    if out.numel() == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    let epilogue = spec.scale.map_or(0, |_| EPILOGUE_SCALE) | spec.bias.map_or(0, |_| EPILOGUE_BIAS) | spec.act.epilogue_bits();
    let vectors = usize::from(spec.scale.is_some()) + usize::from(spec.bias.is_some());
    let work = Work::new(g.flops(), (x.byte_size() + w.byte_size() + out.byte_size()) as f64 + (vectors * c * 4) as f64);
    // Absent epilogue operands: bind the filter in their slot; the kernel never reads it.
    let reads = [x, w, spec.scale.unwrap_or(w), spec.bias.unwrap_or(w)];
    let params = Params { epilogue, ..g.params };
    match algo {
        DepthwiseAlgo::Direct => {
            let total = out.numel();
            let params = Params { total: total as u32, ..params };
            gpu.with_work(work).launch(&DEPTHWISE_DIRECT, &[], &params, &reads, &[out], groups(gpu, total))
        }
        DepthwiseAlgo::Strip => {
            let win = &spec.win;
            // Pixels per invocation: STRIP_PIXELS, or 1 where their columns would not fit.
            let owb = if (STRIP_PIXELS - 1) * win.stride_w + win.kw <= MAX_COLS { STRIP_PIXELS } else { 1 };
            let [n, oh, ow, _] = g.y;
            let (c4, blocks) = (c / 4, ow.div_ceil(owb));
            let (lanes_c, lanes_w) = strip_lanes(c4, blocks);
            let columns = n * c4 * blocks;
            let strip = oh.div_ceil(STRIP_TARGET_INVOCATIONS.div_ceil(columns).clamp(1, oh.div_ceil(MIN_STRIP)));
            let strips = n * oh.div_ceil(strip);
            let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
            let groups = [c4.div_ceil(lanes_c) as u32, blocks.div_ceil(lanes_w) as u32, strips.min(max) as u32];
            let params = Params { strip: strip as u32, ..params };
            let constants = [
                ("KH", win.kh as f64),
                ("KW", win.kw as f64),
                ("SH", win.stride_h as f64),
                ("SW", win.stride_w as f64),
                ("OWB", owb as f64),
                ("LANES_C", lanes_c as f64),
                ("LANES_W", lanes_w as f64),
            ];
            gpu.with_work(work).launch(&DEPTHWISE_STRIP_VEC4, &constants, &params, &reads, &[out], groups)
        }
    }
}

/// Lanes of a `Strip` workgroup (64 invocations) along channel quads and
/// along pixel blocks: the split that computes the fewest idle lanes for
/// `c4` quads × `blocks` blocks per row, the most along channels among equals
/// (neighbouring lanes then read neighbouring memory).
fn strip_lanes(c4: usize, blocks: usize) -> (usize, usize) {
    let computed = |lc: usize| c4.div_ceil(lc) * lc * blocks.div_ceil(64 / lc) * (64 / lc);
    [64, 32, 16, 8, 4, 2, 1].into_iter().map(|lc| (lc, 64 / lc)).min_by_key(|&(lc, _)| computed(lc)).unwrap_or((64, 1))
}

/// dL/dx [n, h, w, c] = `x_shape` from dy [n, oh, ow, c] and the filter w [kh, kw, c, 1].
pub fn depthwise_conv2d_backward_input(dy: &Tensor, w: &Tensor, win: &Window2d, x_shape: [usize; 4]) -> Result<Tensor> {
    depthwise_conv2d_backward_input_using(DepthwiseGradKernel::for_channels(x_shape[3]), dy, w, win, x_shape)
}

/// `depthwise_conv2d_backward_input` with a chosen kernel (tests, the kernel lab).
pub fn depthwise_conv2d_backward_input_using(kernel: DepthwiseGradKernel, dy: &Tensor, w: &Tensor, win: &Window2d, x_shape: [usize; 4]) -> Result<Tensor> {
    const OP: &str = "depthwise_conv2d_backward_input";
    let g = Geometry::new(OP, x_shape, f32_nhwc(OP, "filter", w)?, win)?;
    check_dy(OP, &g, dy)?;
    let k = grad_kernel(OP, kernel, g.x[3], [&DEPTHWISE_BACKWARD_INPUT, &DEPTHWISE_BACKWARD_INPUT_VEC4])?;
    let gpu = dy.gpu();
    let dx = Tensor::empty(gpu, &x_shape, DType::F32)?;
    let total = if kernel == DepthwiseGradKernel::Vec4 { dx.numel() / 4 } else { dx.numel() };
    if total == 0 {
        return Ok(dx);
    }
    let params = Params { total: total as u32, ..g.params };
    let work = Work::new(g.flops(), (dy.byte_size() + w.byte_size() + dx.byte_size()) as f64);
    gpu.with_work(work).launch(k, &[], &params, &[dy, w], &[&dx], groups(gpu, total))?;
    Ok(dx)
}

/// dL/dw [kh, kw, c, 1] = `w_shape` from the input x [n, h, w, c] and dy [n, oh, ow, c].
pub fn depthwise_conv2d_backward_filter(x: &Tensor, dy: &Tensor, win: &Window2d, w_shape: [usize; 4]) -> Result<Tensor> {
    depthwise_conv2d_backward_filter_using(DepthwiseGradKernel::for_channels(w_shape[2]), None, x, dy, win, w_shape)
}

/// `depthwise_conv2d_backward_filter` with a chosen kernel and, optionally, a
/// chosen number of slices of the reduction over output positions (tests, the kernel lab).
pub fn depthwise_conv2d_backward_filter_using(
    kernel: DepthwiseGradKernel,
    slices: Option<usize>,
    x: &Tensor,
    dy: &Tensor,
    win: &Window2d,
    w_shape: [usize; 4],
) -> Result<Tensor> {
    const OP: &str = "depthwise_conv2d_backward_filter";
    let g = Geometry::new(OP, f32_nhwc(OP, "input", x)?, w_shape, win)?;
    check_dy(OP, &g, dy)?;
    let c = g.x[3];
    let k = grad_kernel(OP, kernel, c, [&DEPTHWISE_FILTER_GRAD, &DEPTHWISE_FILTER_GRAD_VEC4])?;
    let gpu = x.gpu();
    let dw = Tensor::empty(gpu, &w_shape, DType::F32)?;
    let weights = dw.numel();
    // Invocations per slice: one per weight, or per weight quad.
    let units = if kernel == DepthwiseGradKernel::Vec4 { weights / 4 } else { weights };
    let positions = g.positions();
    if weights == 0 {
        return Ok(dw);
    }
    if positions == 0 {
        gpu.clear(&dw);
        return Ok(dw);
    }
    let wanted = match slices {
        Some(0) => return Err(Error::Invalid(format!("{OP}: the reduction needs at least one slice"))),
        Some(s) => s,
        None => TARGET_INVOCATIONS.div_ceil(units).min(positions.div_ceil(MIN_POSITIONS_PER_SLICE)),
    };
    let per_slice = positions.div_ceil(wanted.max(1)).max(1);
    let slices = positions.div_ceil(per_slice);
    if slices * weights > u32::MAX as usize {
        return Err(Error::Shape(format!("{OP}: {slices} slices of {weights} partial sums exceed the kernels' 32-bit indices")));
    }
    let params = Params { slices: slices as u32, positions_per_slice: per_slice as u32, total: (slices * units) as u32, ..g.params };
    let operands = (x.byte_size() + dy.byte_size()) as f64;
    if slices == 1 {
        gpu.with_work(Work::new(g.flops(), operands + dw.byte_size() as f64)).launch(k, &[], &params, &[x, dy], &[&dw], groups(gpu, units))?;
        return Ok(dw);
    }
    let partial = Tensor::empty(gpu, &[slices, weights], DType::F32)?;
    gpu.with_work(Work::new(g.flops(), operands + partial.byte_size() as f64)).launch(k, &[], &params, &[x, dy], &[&partial], groups(gpu, slices * units))?;
    let sum = Params { total: weights as u32, ..params };
    let work = Work::new((slices * weights) as f64, (partial.byte_size() + dw.byte_size()) as f64);
    gpu.with_work(work).launch(&DEPTHWISE_SUM_SLICES, &[], &sum, &[&partial], &[&dw], groups(gpu, weights))?;
    Ok(dw)
}

/// dy must be the f32 [n, oh, ow, c] of the geometry.
fn check_dy(op: &str, g: &Geometry, dy: &Tensor) -> Result<()> {
    if f32_nhwc(op, "dy", dy)? != g.y {
        return Err(Error::Shape(format!("{op}: dy has shape {:?}, but input {:?} and window give {:?}", dy.shape(), g.x, g.y)));
    }
    Ok(())
}

/// The (scalar, vec4) kernel of `kernel`, or an error where vec4 does not apply.
fn grad_kernel(op: &str, kernel: DepthwiseGradKernel, c: usize, [scalar, vec4]: [&'static Kernel; 2]) -> Result<&'static Kernel> {
    match kernel {
        DepthwiseGradKernel::PerElement => Ok(scalar),
        DepthwiseGradKernel::Vec4 if kernel.applies_to(c) => Ok(vec4),
        DepthwiseGradKernel::Vec4 => Err(Error::Shape(format!("{op}: the vec4 kernel needs channels divisible by 4, got {c}"))),
    }
}
