//! `incept export`: a trained run as a model other runtimes load. Builds the
//! whole export in memory first, then writes it atomically, so a failure
//! leaves nothing behind. Opens no GPU device.

use clap::{Args, ValueEnum};
use incept::export::tfjs::{self, TfjsStorage};
use incept::export::{ExportModel, onnx};
use incept::io::output_paths::{named, refuse_output_inside_inputs};
use incept::io::{write_atomic, write_dir_atomic};
use incept::train::run_dir::run_files_as_inputs;
use incept::{Error, Result};
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX model (opset 17), one .onnx file.
    Onnx,
    /// TF.js layers model: a folder with model.json and weight shards.
    Tfjs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Quantize {
    /// One byte per weight (value = min + scale·q per tensor), as nsfwjs ships.
    Uint8,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Run directory written by `incept train`.
    #[arg(long)]
    model: PathBuf,
    /// Which checkpoint: best (the best epoch by the run's --monitor, the final model) or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    checkpoint: String,
    #[arg(long, value_enum)]
    format: Format,
    /// Output file (onnx) or folder (tfjs).
    #[arg(long)]
    out: PathBuf,
    /// ONNX input in NCHW ([batch, 3, S, S]) instead of NHWC ([batch, S, S, 3]).
    #[arg(long)]
    nchw: bool,
    /// TF.js weight storage: float32 unless given.
    #[arg(long, value_enum)]
    quantize: Option<Quantize>,
}

pub fn run(args: ExportArgs) -> Result<()> {
    match (args.format, args.nchw, args.quantize) {
        (Format::Tfjs, true, _) => return Err(Error::Invalid("--nchw applies to --format onnx; TF.js layers models are NHWC".into())),
        (Format::Onnx, _, Some(_)) => return Err(Error::Invalid("--quantize applies to --format tfjs".into())),
        _ => {}
    }
    refuse_output_inside_inputs(&[named("--out", &args.out)], &run_files_as_inputs(&args.model))?;
    let model = ExportModel::from_run(&args.model, &args.checkpoint)?;
    match args.format {
        Format::Onnx => export_onnx(&model, &args),
        Format::Tfjs => export_tfjs(&model, &args),
    }
}

fn export_tfjs(model: &ExportModel, args: &ExportArgs) -> Result<()> {
    let out = &args.out;
    // Replace only a folder that is empty or holds an earlier export.
    let replace = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_none() || out.join(tfjs::MODEL_JSON).is_file(),
        Err(_) if out.exists() => {
            return Err(Error::Io { path: out.display().to_string(), reason: "is a file; --format tfjs writes a folder".into() });
        }
        Err(_) => false,
    };
    if out.exists() && !replace {
        return Err(Error::Io { path: out.display().to_string(), reason: format!("is a folder without {} (not an earlier export); not replacing it", tfjs::MODEL_JSON) });
    }
    let storage = if args.quantize == Some(Quantize::Uint8) { TfjsStorage::U8 } else { TfjsStorage::F32 };
    let export = tfjs::to_tfjs(model, storage)?;
    write_dir_atomic(out, &export.files, replace)?;
    let bytes: usize = export.files.iter().map(|(_, b)| b.len()).sum();
    println!(
        "wrote {}: TF.js layers model, {} layers, {} weights ({} parameters, {}), {} shards, {bytes} bytes",
        out.display(),
        export.layers,
        export.weights,
        export.parameters,
        if storage == TfjsStorage::U8 { "uint8-quantised" } else { "float32" },
        export.files.len() - 1
    );
    println!("  from {}", model.source.display());
    println!("  input float32 [null, {s}, {s}, 3] NHWC", s = model.image_size);
    println!(
        "  preprocessing NOT in the model, stated in model.json userDefinedMetadata incept.preprocess = {}: {}",
        model.preprocess.name(),
        model.preprocess.formula()
    );
    println!("  output: softmax over classes {:?}", model.classes);
    Ok(())
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
