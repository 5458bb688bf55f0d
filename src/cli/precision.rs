//! `--precision`, shared by the commands that run the model (train, predict,
//! evaluate and explain through their model flags, features, bench model).

use clap::Args;
use incept::gpu::Precision;

/// No clap default: `train --resume` must know whether it was given.
#[derive(Args, Clone, Copy, Default)]
pub struct PrecisionArgs {
    /// Arithmetic of the frozen base: f32, or mixed (its convolutions multiply f16 operands and sum
    /// in f32 on cooperative matrices, i.e. tensor cores, and its activations are stored in f16; only on
    /// adapters that have them, see `incept devices`) [default: f32].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
}

impl PrecisionArgs {
    /// The precision given, else f32.
    pub fn or_default(self) -> Precision {
        self.precision.unwrap_or_default()
    }
}
