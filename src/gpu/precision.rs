//! The arithmetic and storage precision of the frozen prefix (`--precision`).

use serde::{Deserialize, Serialize};

/// `f32`: every kernel in f32 (the default, and the only choice on adapters
/// without cooperative matrices). `mixed`: the frozen prefix's convolutions
/// multiply f16 operands on cooperative matrices (tensor cores) and add in
/// f32 (`shaders/conv2d_coop.wgsl`), and the values only those convolutions
/// and the prefix's pools read are stored in f16 (`models::executor`);
/// everything else stays f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Mixed,
}

impl Precision {
    /// The `--precision` value.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Mixed => "mixed",
        }
    }
}
