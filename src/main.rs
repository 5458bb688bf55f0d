//! The `incept` command line.

use clap::{Parser, Subcommand};
use incept::gpu::{self, Gpu, GpuOptions};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "incept", version, about = "Fine-tune InceptionV3 on any GPU through wgpu")]
struct Cli {
    /// Use the adapter whose name contains this text (case-insensitive).
    #[arg(long, global = true, env = gpu::ADAPTER_ENV)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter wgpu sees, with the limits that matter, and the one incept would use.
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => devices(&cli.adapter),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn devices(adapter: &Option<String>) -> incept::Result<()> {
    let all = gpu::list_adapters();
    if all.is_empty() {
        println!("no adapters found");
    }
    for (i, d) in all.iter().enumerate() {
        println!("[{i}] {d}");
    }
    let chosen = Gpu::new(&GpuOptions { adapter: adapter.clone() })?;
    println!("\nselected: {}", chosen.name());
    Ok(())
}
