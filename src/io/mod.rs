//! Weight files: TF.js layers models (read), safetensors (read and write,
//! atomically), legacy torch.save state dicts (read, through a strict pickle
//! subset that executes nothing), and the tables that map other files' names
//! onto Keras names (InceptionV3, EfficientNet-Lite0); synthetic InceptionV3
//! weights from a formula (for Keras parity tests).
//!
//! Host-side tensors here are plain `Vec<f32>` with a shape; uploading them to
//! the GPU is the model's business.

pub mod atomic;
pub mod efficientnet_lite;
pub mod hdf5_file;
pub mod inspect;
pub mod keras_archive;
pub mod keras_config;
pub mod keras_import;
pub mod keras_inception_v3;
pub mod keras_weights;
pub mod output_paths;
pub mod pickle;
pub mod safetensors_io;
pub mod synthetic;
pub mod tfjs;
pub mod torch_pth;
pub mod word_hash;

use std::collections::BTreeMap;

/// A tensor in host memory: row-major f32 data and its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Number of elements the shape describes.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Named tensors, ordered by name (so files written from it are deterministic).
pub type TensorMap = BTreeMap<String, HostTensor>;

/// The whole of file `path`, after checking that its length fits the
/// host's memory (a sparse file of many GB is refused before it is read).
/// Errors name the file.
pub fn read_whole_file(path: &std::path::Path) -> crate::Result<Vec<u8>> {
    let err = |reason: String| crate::Error::Io { path: path.display().to_string(), reason };
    let len = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?.len();
    crate::host_memory::check_host_bytes(|| format!("reading {} ({len} bytes)", path.display()), len as u128)?;
    std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))
}

pub use atomic::{write_atomic, write_atomic_with, write_dir_atomic};
pub use safetensors_io::{StorageDtype, read_safetensors, write_safetensors};
pub use tfjs::{ConversionReport, convert_tfjs};
