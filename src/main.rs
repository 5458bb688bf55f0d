//! The `incept` command line: argument parsing here, one module per command in `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "incept", version, about = "Fine-tune a pretrained image model (InceptionV3, MobileNetV2, EfficientNet-Lite0) on any GPU through wgpu")]
struct Cli {
    /// Use the adapter whose name contains this text (case-insensitive).
    #[arg(long, global = true, env = incept::gpu::ADAPTER_ENV)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter wgpu sees, with the limits that matter, and the one incept would use.
    Devices,
    /// Benchmarks (measurements printed as tables, never assertions).
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// Keras-style layer table of a backbone with output shapes, parameters and trainable flags.
    Summary(cli::summary::SummaryArgs),
    /// Outputs of a named layer (default: global average pool of the base's output) for each image.
    Features(cli::features::FeaturesArgs),
    /// Fine-tune a pretrained base on a class-per-folder dataset (the Keras transfer-learning recipe).
    // Boxed: its many flags would make every other command's value as large.
    Train(Box<cli::train::TrainArgs>),
    /// Classify images with a trained run.
    Predict(cli::predict::PredictArgs),
    /// Top-k classes of each image from a weights file's own pretrained head (ImageNet).
    Classify(cli::classify::ClassifyArgs),
    /// Accuracy, per-class precision/recall/F1 and the confusion matrix on a labelled split.
    Evaluate(cli::predict::EvaluateArgs),
    /// Grad-CAM: which parts of each image drove a trained run's class score (picture + raw map per image).
    Explain(cli::explain::ExplainArgs),
    /// Prepare datasets.
    #[command(subcommand)]
    Data(cli::data::DataCommand),
    /// Measure the fastest conv variant per conv shape of a backbone on this adapter and cache the choices.
    Tune(cli::tune::TuneArgs),
    /// Convert pretrained weights to safetensors with Keras names.
    #[command(subcommand)]
    Convert(cli::convert::ConvertCommand),
    /// One self-contained HTML page of a run: configuration, data, curves, evaluation, Grad-CAM, profile.
    Report(cli::report::ReportArgs),
    /// Export a trained run (base + head + softmax) for another runtime: ONNX or TF.js.
    Export(cli::export::ExportArgs),
    /// What a weights or model file is: format, tensors, parameters, the model it matches, its preprocessing.
    Inspect(cli::inspect::InspectArgs),
}

/// Status of a process that its reader stopped (128 + SIGPIPE), as a shell reports it.
const BROKEN_PIPE_STATUS: i32 = 141;

/// A reader that stops early (`incept … | head`) closes the pipe, and
/// `println!` then panics. End quietly with the shell's status for that
/// instead; every other panic keeps the default report.
fn end_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied()).unwrap_or("");
        // EPIPE is 32 on Linux and macOS; the text is std's for a failed print.
        if message.starts_with("failed printing to stdout") && message.contains("(os error 32)") {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    end_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let adapter = cli.adapter;
    let result = match cli.command {
        Command::Devices => cli::devices::run(adapter),
        Command::Bench(cmd) => cli::bench::run(adapter, cmd),
        Command::Summary(args) => cli::summary::run(adapter, args),
        Command::Features(args) => cli::features::run(adapter, args),
        Command::Convert(cmd) => cli::convert::run(cmd),
        Command::Train(args) => cli::train::run(adapter, *args),
        Command::Predict(args) => cli::predict::predict(adapter, args),
        Command::Classify(args) => cli::classify::run(adapter, args),
        Command::Evaluate(args) => cli::predict::evaluate(adapter, args),
        Command::Explain(args) => cli::explain::run(adapter, args),
        Command::Data(cmd) => cli::data::run(cmd),
        Command::Tune(args) => cli::tune::run(adapter, args),
        Command::Report(args) => cli::report::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
