//! Matrix products (row-major f32) in three variants side by side, llm.c style:
//! - `Naive` (`shaders/matmul_naive.wgsl`): one output per invocation, the oracle;
//! - `RegisterBlocked` (`shaders/matmul_register.wgsl`): 8×8 outputs per
//!   invocation and no workgroup memory, for CPU adapters where barriers are costly;
//! - `Tiled` (`shaders/matmul_tiled.wgsl`): shared-memory tiles with barriers, for GPUs.
//!
//! Each kernel reads either operand transposed (WGSL override constants), so
//! the backward products `aᵀ·b` and `a·bᵀ` need no transpose pass, and has a
//! `dense` entry point that adds a bias and optionally applies ReLU.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, Work};
use crate::{kernel, kernel_params};
use crate::tensor::{DType, Tensor};

kernel!(NAIVE_MATMUL, "matmul_naive.wgsl", "matmul", reads = 2, writes = 1, params = Params);
kernel!(NAIVE_DENSE, "matmul_naive.wgsl", "dense", reads = 3, writes = 1, params = Params);
kernel!(REGISTER_MATMUL, "matmul_register.wgsl", "matmul", reads = 2, writes = 1, params = Params);
kernel!(REGISTER_DENSE, "matmul_register.wgsl", "dense", reads = 3, writes = 1, params = Params);
kernel!(TILED_MATMUL, "matmul_tiled.wgsl", "matmul", reads = 2, writes = 1, params = Params);
kernel!(TILED_DENSE, "matmul_tiled.wgsl", "dense", reads = 3, writes = 1, params = Params);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulAlgo {
    /// One output per invocation: the oracle.
    Naive,
    /// 8×8 outputs per invocation, no workgroup memory: for CPU adapters.
    RegisterBlocked,
    /// 64×64 shared-memory tiles, 4×4 outputs per invocation: for GPUs.
    Tiled,
}

impl MatmulAlgo {
    /// Every variant, the `Naive` oracle first (the kernel lab and the tests iterate it).
    pub const ALL: [MatmulAlgo; 3] = [MatmulAlgo::Naive, MatmulAlgo::RegisterBlocked, MatmulAlgo::Tiled];

    /// The kernel lab's name for the variant.
    pub fn name(self) -> &'static str {
        match self {
            MatmulAlgo::Naive => "naive",
            MatmulAlgo::RegisterBlocked => "blocked",
            MatmulAlgo::Tiled => "tiled",
        }
    }

    /// The fastest variant for the adapter: barrier-free on CPUs, tiled on GPUs.
    pub fn for_gpu(gpu: &Gpu) -> MatmulAlgo {
        if gpu.is_cpu() { MatmulAlgo::RegisterBlocked } else { MatmulAlgo::Tiled }
    }

    fn kernel(self, with_bias: bool) -> &'static Kernel {
        match (self, with_bias) {
            (MatmulAlgo::Naive, false) => &NAIVE_MATMUL,
            (MatmulAlgo::Naive, true) => &NAIVE_DENSE,
            (MatmulAlgo::RegisterBlocked, false) => &REGISTER_MATMUL,
            (MatmulAlgo::RegisterBlocked, true) => &REGISTER_DENSE,
            (MatmulAlgo::Tiled, false) => &TILED_MATMUL,
            (MatmulAlgo::Tiled, true) => &TILED_DENSE,
        }
    }

    /// Output rows and columns covered by one workgroup.
    fn workgroup_tile(self) -> (usize, usize) {
        match self {
            MatmulAlgo::Naive => (16, 16),
            MatmulAlgo::RegisterBlocked => (32, 128),
            MatmulAlgo::Tiled => (64, 64),
        }
    }
}

/// What to add after the product.
#[derive(Clone, Copy, Debug, Default)]
pub enum Epilogue<'a> {
    #[default]
    None,
    /// `+ bias` (shape [N]).
    Bias(&'a Tensor),
    /// `relu(· + bias)`.
    BiasRelu(&'a Tensor),
}

/// A general product `epilogue(op(a) · op(b))`, where `op` transposes when asked:
/// op(a) is [M, K] (a stored as [K, M] when `trans_a`), op(b) is [K, N]
/// (b stored as [N, K] when `trans_b`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gemm<'a> {
    pub trans_a: bool,
    pub trans_b: bool,
    pub epilogue: Epilogue<'a>,
}

kernel_params! {
    struct Params {
        m: u32,
        n: u32,
        k: u32,
    }
}

/// `[M, K]·[K, N] → [M, N]` with the adapter's preferred variant.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    matmul_with(MatmulAlgo::for_gpu(a.gpu()), a, b)
}

pub fn matmul_with(algo: MatmulAlgo, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    gemm(algo, a, b, Gemm::default())
}

/// `relu?(x·w + bias)`: x [M, K], w [K, N], bias [N].
pub fn dense(x: &Tensor, w: &Tensor, bias: &Tensor, relu: bool) -> Result<Tensor> {
    let epilogue = if relu { Epilogue::BiasRelu(bias) } else { Epilogue::Bias(bias) };
    gemm(MatmulAlgo::for_gpu(x.gpu()), x, w, Gemm { epilogue, ..Gemm::default() })
}

/// `aᵀ·b`: a [K, M], b [K, N] → [M, N] (a Dense layer's dW = Xᵀ·dY).
pub fn matmul_tn(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    gemm(MatmulAlgo::for_gpu(a.gpu()), a, b, Gemm { trans_a: true, ..Gemm::default() })
}

/// `a·bᵀ`: a [M, K], b [N, K] → [M, N] (a Dense layer's dX = dY·Wᵀ).
pub fn matmul_nt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    gemm(MatmulAlgo::for_gpu(a.gpu()), a, b, Gemm { trans_b: true, ..Gemm::default() })
}

/// The general product with an explicit variant (every public product above is one of these).
pub fn gemm(algo: MatmulAlgo, a: &Tensor, b: &Tensor, spec: Gemm) -> Result<Tensor> {
    let (m, k, n) = product_dims(a, b, &spec)?;
    let (bias, relu) = match spec.epilogue {
        Epilogue::None => (None, false),
        Epilogue::Bias(t) => (Some(t), false),
        Epilogue::BiasRelu(t) => (Some(t), true),
    };
    if let Some(bias) = bias
        && (bias.shape() != [n] || bias.dtype() != DType::F32)
    {
        return Err(Error::Shape(format!(
            "dense: bias of shape {:?} for a product with {n} columns (expected [{n}])",
            bias.shape()
        )));
    }
    let gpu = a.gpu();
    let out = Tensor::empty(gpu, &[m, n], DType::F32)?;
    let as_flag = |on: bool| if on { 1.0 } else { 0.0 };
    let constants = [("TRANS_A", as_flag(spec.trans_a)), ("TRANS_B", as_flag(spec.trans_b)), ("RELU", as_flag(relu))];
    let params = Params { m: m as u32, n: n as u32, k: k as u32 };
    let (tile_rows, tile_cols) = algo.workgroup_tile();
    let groups = [n.div_ceil(tile_cols) as u32, m.div_ceil(tile_rows) as u32, 1];
    let elements = m * k + k * n + m * n + bias.map_or(0, |_| n);
    let launcher = gpu.with_work(Work::new(2.0 * (m * n) as f64 * k as f64, elements as f64 * 4.0));
    match bias {
        None => launcher.launch(algo.kernel(false), &constants, &params, &[a, b], &[&out], groups)?,
        Some(bias) => launcher.launch(algo.kernel(true), &constants, &params, &[a, b, bias], &[&out], groups)?,
    }
    Ok(out)
}

/// (M, K, N) of `op(a) · op(b)`, or an error naming both shapes.
fn product_dims(a: &Tensor, b: &Tensor, spec: &Gemm) -> Result<(usize, usize, usize)> {
    let describe = |t: &Tensor, trans: bool| format!("{:?}{}", t.shape(), if trans { "ᵀ" } else { "" });
    let mismatch = || Error::Shape(format!("matmul: cannot multiply {} by {}", describe(a, spec.trans_a), describe(b, spec.trans_b)));
    let ([ar, ac], [br, bc]) = (a.dims2().map_err(|_| mismatch())?, b.dims2().map_err(|_| mismatch())?);
    let (m, ka) = if spec.trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if spec.trans_b { (bc, br) } else { (br, bc) };
    if ka != kb || a.dtype() != DType::F32 || b.dtype() != DType::F32 {
        return Err(mismatch());
    }
    Ok((m, ka, n))
}
