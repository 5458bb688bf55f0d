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
    /// Benchmarks (measurements printed as tables, never assertions).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// GFLOP/s of the forward convolution for each distinct InceptionV3 conv shape.
    Kernels {
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 224)]
        image_size: usize,
        /// Kernel variant: auto (per adapter), direct, blocked or tiled.
        #[arg(long, default_value = "auto")]
        algo: String,
        /// Minimum seconds of repetitions per shape (after one warm-up run).
        #[arg(long, default_value_t = 0.5)]
        min_time: f64,
        /// Only the first N shapes (quick checks).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the shapes as CSV (for benches/libtorch/conv_shapes.py) and exit.
        #[arg(long)]
        list: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => devices(&cli.adapter),
        Command::Bench(BenchCommand::Kernels { batch, image_size, algo, min_time, limit, list }) => {
            if list {
                list_conv_shapes(image_size)
            } else {
                bench_kernels(&cli.adapter, batch, image_size, &algo, min_time, limit)
            }
        }
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

fn bench_kernels(adapter: &Option<String>, batch: usize, image: usize, algo: &str, min_time: f64, limit: Option<usize>) -> incept::Result<()> {
    use incept::ops::conv::ConvAlgo;
    if image < 75 {
        return Err(incept::Error::Invalid(format!("--image-size {image}: InceptionV3 needs at least 75")));
    }
    let gpu = Gpu::new(&GpuOptions { adapter: adapter.clone() })?;
    let algo = match algo {
        "auto" => ConvAlgo::for_gpu(&gpu),
        "direct" => ConvAlgo::Direct,
        "blocked" => ConvAlgo::RegisterBlocked,
        "tiled" => ConvAlgo::Tiled,
        other => return Err(incept::Error::Invalid(format!("--algo {other:?}: expected auto, direct, blocked or tiled"))),
    };
    let mut shapes = incept::bench::inception_v3_conv_shapes(image);
    shapes.truncate(limit.unwrap_or(shapes.len()));
    println!("adapter: {}", gpu.name());
    println!("conv2d forward (+ReLU), batch {batch}, {image}x{image} input, {algo:?}, {} distinct shapes", shapes.len());
    println!("{:<3} {:<36} {:>10} {:>9}", "#", "input HxWxCin  kernel stride pad -> Cout", "ms", "GFLOP/s");
    let mut i = 0;
    let rows = incept::bench::bench_conv(&gpu, &shapes, batch, algo, std::time::Duration::from_secs_f64(min_time), |r| {
        i += 1;
        println!("{:<3} {:<36} {:>10.2} {:>9.2}", i, r.shape.label(), r.seconds * 1e3, r.gflops);
    })?;
    let (flops, secs): (f64, f64) = rows.iter().fold((0.0, 0.0), |(f, t), r| (f + r.shape.flops(batch), t + r.seconds));
    println!("total: {:.2} GFLOP in {:.1} ms = {:.2} GFLOP/s", flops / 1e9, secs * 1e3, flops / secs / 1e9);
    Ok(())
}

fn list_conv_shapes(image: usize) -> incept::Result<()> {
    println!("h,w,cin,cout,kh,kw,stride,padding");
    for s in incept::bench::inception_v3_conv_shapes(image) {
        let pad = if s.win.padding == incept::ops::Padding::Same { "same" } else { "valid" };
        println!("{},{},{},{},{},{},{},{pad}", s.h, s.w, s.cin, s.cout, s.win.kh, s.win.kw, s.win.stride_h);
    }
    Ok(())
}
