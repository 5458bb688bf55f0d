//! `incept export`: a trained run as a model other runtimes load. Builds the
//! whole export in memory first, then writes it atomically, so a failure
//! leaves nothing behind. Opens no GPU device.

use clap::{Args, ValueEnum};
use incept::export::{ExportModel, onnx};
use incept::io::write_atomic;
use incept::{Error, Result};
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX model (opset 17), one .onnx file.
    Onnx,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Run directory written by `incept train`.
    #[arg(long)]
    model: PathBuf,
    /// Which checkpoint: best (lowest val_loss) or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    checkpoint: String,
    #[arg(long, value_enum)]
    format: Format,
    /// Output file (onnx).
    #[arg(long)]
    out: PathBuf,
    /// ONNX input in NCHW ([batch, 3, S, S]) instead of NHWC ([batch, S, S, 3]).
    #[arg(long)]
    nchw: bool,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let model = ExportModel::from_run(&args.model, &args.checkpoint)?;
    match args.format {
        Format::Onnx => export_onnx(&model, &args),
    }
}

fn export_onnx(model: &ExportModel, args: &ExportArgs) -> Result<()> {
    if args.out.is_dir() {
        return Err(Error::Io { path: args.out.display().to_string(), reason: "is a folder; --format onnx writes one file (e.g. model.onnx)".into() });
    }
    let onnx = onnx::to_onnx(model, args.nchw)?;
    write_atomic(&args.out, &onnx.bytes)?;
    println!(
        "wrote {}: ONNX opset {}, {} nodes ({} BatchNorms folded into their convs), {} parameters, {} bytes",
        args.out.display(),
        onnx::OPSET,
        onnx.nodes,
        onnx.folded_batchnorms,
        onnx.parameters,
        onnx.bytes.len()
    );
    println!("  from {} ({} parameters with moving statistics)", model.source.display(), model.parameters());
    println!("  input  '{}' float32 [{}] {}", onnx::INPUT, onnx.input_shape.join(", "), if args.nchw { "NCHW" } else { "NHWC" });
    println!(
        "  preprocessing NOT in the graph, stated in metadata_props incept.preprocess = {}: {}",
        model.preprocess.name(),
        model.preprocess.formula()
    );
    println!("  output '{}' float32 [{}]: softmax over classes {:?}", onnx::OUTPUT, onnx.output_shape.join(", "), model.classes);
    Ok(())
}
