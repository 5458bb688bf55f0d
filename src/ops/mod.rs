//! Kernel launchers, one module per op family: each checks shapes, allocates
//! its output from the pool and records dispatches of `shaders/*.wgsl`.
//! They work on plain tensors; `autograd` builds differentiation on top.

pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod conv_backward;
mod conv_winograd;
pub mod dropout;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod window;

pub use window::{Padding, Window2d};
