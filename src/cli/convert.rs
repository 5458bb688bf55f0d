//! `incept convert`: pretrained weights → safetensors with Keras 3 names.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ConvertCommand {
    /// A TF.js layers model of Keras InceptionV3 (model.json + concatenated weight shards);
    /// layers after mixed10 are dropped, every tensor is shape-checked.
    Tfjs {
        model_json: PathBuf,
        weights_bin: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Store f16 instead of f32.
        #[arg(long)]
        f16: bool,
    },
    /// Re-store a safetensors weight file in f16 (half the size) or f32, names and metadata kept.
    Storage {
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        f16: bool,
    },
}

pub fn run(cmd: ConvertCommand) -> incept::Result<()> {
    match cmd {
        ConvertCommand::Tfjs { model_json, weights_bin, out, f16 } => {
            let report = incept::io::convert_inception_v3(&model_json, &weights_bin, &out, f16)?;
            print!("{report}");
            Ok(())
        }
        ConvertCommand::Storage { input, out, f16 } => {
            let (tensors, metadata) = incept::io::safetensors_io::read_safetensors_with_metadata(&input)?;
            let storage = if f16 { incept::io::StorageDtype::F16 } else { incept::io::StorageDtype::F32 };
            let bytes = incept::io::write_safetensors(&out, &tensors, storage, &metadata)?;
            println!("wrote {} ({} tensors, {storage:?}, {bytes} bytes)", out.display(), tensors.len());
            Ok(())
        }
    }
}
