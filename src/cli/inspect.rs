//! `incept inspect FILE`: what a weights or model file is (host only, no GPU device).

use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct InspectArgs {
    /// safetensors, TF.js model.json, ONNX, Keras .h5 / .weights.h5 or .keras file.
    file: PathBuf,
    /// Print the summary without the per-tensor list.
    #[arg(long)]
    brief: bool,
}

pub fn run(args: InspectArgs) -> incept::Result<()> {
    let mut report = incept::io::inspect::inspect(&args.file)?;
    // A run's checkpoint: the run.json beside it says how its images are preprocessed.
    if report.format == "safetensors"
        && let Some(preprocess) = incept::train::run_dir::preprocess_beside(&args.file)
    {
        report.preprocess = preprocess;
    }
    let report = report.to_string();
    let text: String = if args.brief { report.lines().take_while(|l| !l.starts_with("  ")).map(|l| format!("{l}\n")).collect() } else { report };
    // A closed pipe (`| head`) ends the listing quietly.
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(incept::Error::Invalid(format!("writing to stdout: {e}"))),
        _ => Ok(()),
    }
}
