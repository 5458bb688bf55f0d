//! Sibling convolutions (`shaders/conv2d_sibling.wgsl`): convolutions that
//! read one input with one window — the 1×1 convolutions opening an
//! Inception block's branches — run as one GEMM over their filters
//! concatenated along output channels, each branch with its own folded
//! BatchNorm and activation, writing straight to its own destination (its tensor,
//! or its channel slice of a concatenation).
//!
//! The kernel is the register-blocked conv (`ConvAlgo::RegisterBlocked`)
//! with a routing epilogue, so it sums in the same order: each output equals
//! the separate blocked convolution's when both take the vec4 entry point
//! (cin and every width divisible by 4), and is within rounding otherwise.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Work};
use crate::ops::activation::Act;
use crate::ops::concat;
use crate::ops::conv::{self, ConvAlgo, ConvSpec, Geometry, BLOCKED_COLS, BLOCKED_ROWS};
use crate::ops::conv_tuning::ConvKey;
use crate::ops::window::Window2d;
use crate::tensor::{DType, Tensor};
use crate::{kernel, kernel_params};
use std::sync::OnceLock;

kernel!(CONV2D_SIBLING, "conv2d_sibling.wgsl", "conv2d_sibling", reads = 4, writes = 4, params = Params);
kernel!(CONV2D_SIBLING_VEC4, "conv2d_sibling.wgsl", "conv2d_sibling_vec4", reads = 4, writes = 4, params = Params);

/// Branches one launch routes (the output bindings of the kernel).
pub const MAX_BRANCHES: usize = 4;

/// Environment variable that turns sibling merging on (`1`) or off (`0`).
pub const SIBLING_CONVS_ENV: &str = "INCEPT_SIBLING_CONVS";

/// Whether the executor merges sibling convolutions unless told otherwise:
/// only with `INCEPT_SIBLING_CONVS=1` (read once). Off by default because on
/// lavapipe, the only adapter where it applies (see [`applies`]), the
/// merged kernel measured 0.82–0.86x the separate convolutions in the kernel
/// lab and no consistent gain in the whole model (BENCHMARKS.md, under
/// load): it saves dispatches, which cost little there.
pub fn enabled_by_default() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var(SIBLING_CONVS_ENV).as_deref() {
        Err(_) | Ok("0") => false,
        Ok("1") => true,
        Ok(other) => {
            eprintln!("warning: {SIBLING_CONVS_ENV}={other:?} is not 0 or 1; ignored");
            false
        }
    })
}

/// Whether siblings reading an `h`×`w`×`cin` input with window `win`, of
/// output widths `widths`, may run merged: where each conv alone would run
/// `RegisterBlocked` (`ConvAlgo::for_conv`: `INCEPT_CONV_ALGO`, the tuning
/// cache, the adapter's rule), whose routed form the merged kernel is; so on
/// GPUs the convs keep their tiled kernels, and Winograd keeps its 3×3s.
pub fn applies(gpu: &Gpu, h: usize, w: usize, cin: usize, widths: &[usize], win: &Window2d) -> bool {
    widths.iter().all(|&cout| ConvAlgo::for_conv(gpu, &ConvKey::new(h, w, cin, cout, win)) == ConvAlgo::RegisterBlocked)
}

kernel_params! {
    /// Mirrors `Params` in `shaders/conv2d_sibling.wgsl`.
    struct Params {
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
        relu_mask: u32,
        cap6_mask: u32,
        block_start: [u32; 4],
        block_end: [u32; 4],
        branch_start: [u32; 4],
        branch_end: [u32; 4],
        dest: [u32; 4],
        dest_stride: [u32; 4],
        dest_offset: [u32; 4],
    }
}

/// The concatenated filters and epilogue vectors of a group of sibling convolutions.
pub struct SiblingWeights {
    /// HWIO [kh, kw, cin, sum of widths], the branches' filters side by side.
    pub kernel: Tensor,
    /// Per merged column: the branch's folded BatchNorm scale and bias, or 1 and 0.
    pub scale: Tensor,
    pub bias: Tensor,
    /// Output channels of each branch, in column order.
    pub widths: Vec<usize>,
}

impl SiblingWeights {
    /// Concatenates each branch's HWIO filter and its folded (scale, bias),
    /// or the identity for a branch without BatchNorm.
    pub fn concat(branches: &[(&Tensor, Option<(&Tensor, &Tensor)>)]) -> Result<SiblingWeights> {
        let Some((first, _)) = branches.first() else {
            return Err(Error::Shape("sibling convolutions: no branch".into()));
        };
        let gpu = first.gpu();
        let mut widths = Vec::with_capacity(branches.len());
        let (mut scales, mut biases) = (Vec::new(), Vec::new());
        for (kernel, folded) in branches {
            let [kh, kw, cin, cout] = kernel.dims4()?;
            if [kh, kw, cin] != first.shape()[..3] {
                return Err(Error::Shape(format!("sibling convolutions: filter {:?} does not match {:?}", kernel.shape(), first.shape())));
            }
            widths.push(cout);
            let (s, b) = match folded {
                Some((s, b)) => ((*s).clone(), (*b).clone()),
                None => (Tensor::full(gpu, &[cout], 1.0)?, Tensor::zeros(gpu, &[cout])?),
            };
            scales.push(s);
            biases.push(b);
        }
        let kernels: Vec<&Tensor> = branches.iter().map(|(k, _)| *k).collect();
        Ok(SiblingWeights {
            kernel: concat::concat_channels(&kernels)?,
            scale: concat::concat_channels(&scales.iter().collect::<Vec<_>>())?,
            bias: concat::concat_channels(&biases.iter().collect::<Vec<_>>())?,
            widths,
        })
    }
}

/// Where one branch's channels go.
#[derive(Clone, Copy)]
pub struct Destination<'a> {
    /// NHWC [batch, out_h, out_w, c] with the branch's width fitting from `channel_offset`.
    pub out: &'a Tensor,
    pub channel_offset: usize,
    /// The branch's activation, applied after its scale and bias.
    pub act: Act,
}

/// Computes every branch of `weights` on `x` with window `win` in one
/// dispatch: branch b's channels, `act(conv * scale + bias)`, land in
/// channels `[channel_offset, channel_offset + widths[b])` of `dests[b].out`.
/// Branches may share an output tensor at channel ranges that do not overlap.
pub fn conv2d_siblings(x: &Tensor, weights: &SiblingWeights, win: Window2d, dests: &[Destination]) -> Result<()> {
    let spec = ConvSpec { scale: Some(&weights.scale), bias: Some(&weights.bias), ..ConvSpec::new(win) };
    let g = Geometry::new(x, &weights.kernel, &spec)?;
    if weights.widths.iter().sum::<usize>() != g.cout {
        return Err(Error::Shape(format!("sibling convolutions: widths {:?} do not add up to the filter's {} channels", weights.widths, g.cout)));
    }
    if dests.len() != weights.widths.len() || dests.is_empty() || dests.len() > MAX_BRANCHES {
        return Err(Error::Shape(format!(
            "sibling convolutions: {} destinations for {} branches (1 to {MAX_BRANCHES})",
            dests.len(),
            weights.widths.len()
        )));
    }
    // Distinct output buffers, in order of first use; branch b writes bindings[dest[b]].
    let mut bindings: Vec<&Tensor> = Vec::new();
    let mut params = Params {
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
        rows: g.rows() as u32,
        relu_mask: 0,
        cap6_mask: 0,
        block_start: [0; 4],
        block_end: [0; 4],
        branch_start: [g.cout as u32; 4],
        branch_end: [g.cout as u32; 4],
        dest: [0; 4],
        dest_stride: [0; 4],
        dest_offset: [0; 4],
    };
    // Each workgroup computes column blocks of one branch (see the shader's tiling).
    let rows = g.rows();
    let (lanes_m, lanes_n) = conv::blocked_lanes_for(rows, &weights.widths);
    let block_cols = BLOCKED_COLS * lanes_n;
    let (mut start, mut blocks) = (0, 0);
    for (b, (d, &width)) in dests.iter().zip(&weights.widths).enumerate() {
        let [n, oh, ow, c] = d.out.dims4()?;
        if [n, oh, ow] != [g.batch, g.out_h, g.out_w] || d.channel_offset + width > c || d.out.dtype() != DType::F32 {
            return Err(Error::Shape(format!(
                "sibling convolutions: branch {b}'s output {:?} cannot hold [{}, {}, {}, {width}] at channel offset {}",
                d.out.shape(),
                g.batch,
                g.out_h,
                g.out_w,
                d.channel_offset
            )));
        }
        let overlaps = dests[..b].iter().zip(&weights.widths).any(|(o, &ow)| {
            o.out.same_buffer(d.out) && o.channel_offset < d.channel_offset + width && d.channel_offset < o.channel_offset + ow
        });
        if overlaps {
            return Err(Error::Shape(format!("sibling convolutions: branch {b} overlaps another branch's channels in {:?}", d.out.shape())));
        }
        let slot = match bindings.iter().position(|t| t.same_buffer(d.out)) {
            Some(slot) => slot,
            None => {
                bindings.push(d.out);
                bindings.len() - 1
            }
        };
        params.block_start[b] = blocks as u32;
        blocks += width.div_ceil(block_cols);
        params.block_end[b] = blocks as u32;
        params.branch_start[b] = start as u32;
        params.branch_end[b] = (start + width) as u32;
        params.dest[b] = slot as u32;
        params.dest_stride[b] = c as u32;
        params.dest_offset[b] = d.channel_offset as u32;
        params.relu_mask |= u32::from(d.act != Act::Linear) << b;
        params.cap6_mask |= u32::from(d.act == Act::Relu6) << b;
        start += width;
    }
    for b in dests.len()..MAX_BRANCHES {
        params.block_start[b] = blocks as u32;
        params.block_end[b] = blocks as u32;
    }
    let largest = [x.numel(), weights.kernel.numel()].into_iter().chain(bindings.iter().map(|t| t.numel())).max().unwrap_or(0);
    if largest > u32::MAX as usize {
        return Err(Error::Shape(format!("sibling convolutions: input {:?} or an output has more than 2^32 elements", x.shape())));
    }
    if rows == 0 || g.cout == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    // Unused output slots get one-element tensors of their own (an output may not be bound twice).
    let spare = (bindings.len()..MAX_BRANCHES).map(|_| Tensor::empty(gpu, &[1], DType::F32)).collect::<Result<Vec<_>>>()?;
    let outs: Vec<&Tensor> = bindings.iter().copied().chain(&spare).collect();
    let depth = win.kh * win.kw * g.cin;
    // A multiply-add per output and step of depth; bytes: input, filters, outputs, scale and bias.
    let work = Work::new(2.0 * (rows * g.cout * depth) as f64, (x.numel() + weights.kernel.numel() + rows * g.cout + 2 * g.cout) as f64 * 4.0);
    let constants = [
        ("PADDED", if conv::reaches_padding(&g, &win) { 1.0 } else { 0.0 }),
        ("LANES_M", lanes_m as f64),
        ("LANES_N", lanes_n as f64),
    ];
    // vec4 loads need 16-byte aligned rows of x and w; branch widths of 4s keep the blocked conv's summation order.
    let vec4 = g.cin.is_multiple_of(4) && weights.widths.iter().all(|w| w.is_multiple_of(4));
    let kernel = if vec4 { &CONV2D_SIBLING_VEC4 } else { &CONV2D_SIBLING };
    let groups = conv::grid(gpu, rows.div_ceil(BLOCKED_ROWS * lanes_m), blocks);
    let reads = [x, &weights.kernel, &weights.scale, &weights.bias];
    gpu.with_work(work).launch(kernel, &constants, &params, &reads, &outs, groups)
}
