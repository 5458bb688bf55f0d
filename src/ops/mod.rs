//! Kernel launchers, one module per op family: each checks shapes, allocates
//! its output from the pool and records dispatches of `shaders/*.wgsl`.
//! They work on plain tensors; `autograd` builds differentiation on top.

pub mod activation;
pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod conv_backward;
pub mod conv_coop;
pub mod conv_sibling;
pub mod conv_tuning;
mod conv_winograd;
pub mod depthwise;
pub mod dropout;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pad;
pub mod pool;
pub mod probe;
pub mod reduce;
pub mod window;

pub use activation::Act;
pub use window::{Padding, Window2d};

use crate::gpu::Kernel;

/// Every kernel the ops launch. A test (tests/kernel_layout.rs) checks that
/// it covers every compute entry point in `shaders/` and that each kernel's
/// Rust parameter struct and workgroup size match its WGSL.
pub const KERNELS: &[&Kernel] = &[
    &batchnorm::MOMENTS_PARTIAL,
    &batchnorm::MOMENTS_COMBINE,
    &batchnorm::NORMALIZE,
    &batchnorm::INV_STD,
    &batchnorm::GAMMA_SCALE,
    &batchnorm::FOLD_BIAS,
    &batchnorm::UPDATE_MOVING,
    &batchnorm::GRAD_SUMS_PARTIAL,
    &batchnorm::GRAD_SUMS_COMBINE,
    &batchnorm::BACKWARD_COEFFS,
    &batchnorm::BACKWARD_DX,
    &batchnorm::SUM_PARTIAL,
    &batchnorm::SUM_COMBINE,
    &batchnorm::SCALE_CHANNELS,
    &concat::COPY_CHANNELS,
    &conv::CONV2D_DIRECT,
    &conv::CONV2D_BLOCKED,
    &conv::CONV2D_BLOCKED_VEC4,
    &conv::CONV2D_BLOCKED_STEM,
    &conv::CONV2D_TILED,
    &conv::CONV2D_TILED_LARGE,
    &conv::CONV2D_TILED_LARGE_VEC4,
    &conv::CONV2D_TILED_LARGE_REDUCE,
    &conv_coop::CONV2D_COOP,
    &conv_coop::CONV2D_COOP_VEC4,
    &conv_sibling::CONV2D_SIBLING,
    &conv_sibling::CONV2D_SIBLING_VEC4,
    &conv_winograd::WINOGRAD2_FILTER,
    &conv_winograd::WINOGRAD2_INPUT,
    &conv_winograd::WINOGRAD2_OUTPUT,
    &conv_winograd::WINOGRAD4_FILTER,
    &conv_winograd::WINOGRAD4_INPUT,
    &conv_winograd::WINOGRAD4_OUTPUT,
    &conv_winograd::WINOGRAD_GEMM,
    &conv_backward::BACKWARD_INPUT,
    &conv_backward::BACKWARD_INPUT_BLOCKED,
    &conv_backward::FILTER_GRAD_PER_WEIGHT,
    &conv_backward::FILTER_GRAD_BLOCKED,
    &conv_backward::SUM_SLICES,
    &depthwise::DEPTHWISE_DIRECT,
    &depthwise::DEPTHWISE_STRIP_VEC4,
    &depthwise::DEPTHWISE_BACKWARD_INPUT,
    &depthwise::DEPTHWISE_BACKWARD_INPUT_VEC4,
    &depthwise::DEPTHWISE_FILTER_GRAD,
    &depthwise::DEPTHWISE_FILTER_GRAD_VEC4,
    &depthwise::DEPTHWISE_SUM_SLICES,
    &dropout::DROPOUT,
    &probe::STREAM_COPY,
    &probe::FMA_PEAK,
    &elementwise::RELU_FORWARD,
    &elementwise::RELU_FORWARD_VEC4,
    &elementwise::RELU_BACKWARD,
    &elementwise::RELU_BACKWARD_VEC4,
    &elementwise::RELU6_FORWARD,
    &elementwise::RELU6_FORWARD_VEC4,
    &elementwise::RELU6_BACKWARD,
    &elementwise::RELU6_BACKWARD_VEC4,
    &elementwise::ADD,
    &elementwise::ADD_VEC4,
    &elementwise::SCALE,
    &elementwise::AXPY_INPLACE,
    &elementwise::MUL_BY_SCALAR,
    &loss::SOFTMAX_ROWS,
    &loss::SOFTMAX_CROSS_ENTROPY_ROWS,
    &loss::SOFTMAX_CROSS_ENTROPY_BACKWARD,
    &loss::CORRECT_COUNT,
    &matmul::NAIVE_MATMUL,
    &matmul::NAIVE_DENSE,
    &matmul::REGISTER_MATMUL,
    &matmul::REGISTER_DENSE,
    &matmul::TILED_MATMUL,
    &matmul::TILED_DENSE,
    &optim::ADAM,
    &optim::SGD,
    &optim::SGD_MOMENTUM,
    &pad::ZERO_PAD2D,
    &pad::CROP2D,
    &pool::MAX_POOL_FORWARD,
    &pool::MAX_POOL_ARGMAX,
    &pool::MAX_POOL_BACKWARD,
    &pool::AVG_POOL_FORWARD,
    &pool::AVG_POOL_BACKWARD,
    &pool::GLOBAL_AVG_POOL,
    &pool::GLOBAL_AVG_POOL_BACKWARD,
    &reduce::SUM_ROWS_PARTIAL,
];
