//! incept: fine-tune Keras InceptionV3 from scratch in Rust on any GPU
//! through wgpu, with hand-written WGSL kernels and reverse-mode autograd.

pub mod autograd;
pub mod lab;
pub mod data;
pub mod error;
pub mod explain;
pub mod export;
pub mod gpu;
pub mod host_memory;
pub mod io;
pub mod models;
pub mod ops;
pub mod reference;
pub mod report;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions};
pub use tensor::{DType, Tensor};
