//! Kernel variants side by side, llm.c style: each variant is first checked
//! against the simple oracle kernel on the same data, then timed.
//!
//!     cargo bench --bench kernels            (INCEPT_ADAPTER=… picks the adapter)
//!
//! A measurement, not a test: it prints a table and asserts nothing about speed.

use incept::ops::conv::{self, ConvAlgo, ConvSpec};
use incept::ops::matmul::{self, MatmulAlgo};
use incept::ops::window::{Padding, Window2d};
use incept::reference::{random, rel_l2_f64, to_f64};
use incept::{Gpu, Result, Tensor};
use std::time::Instant;

/// Best of `reps` timed runs after one warm-up, in seconds.
fn best_time(gpu: &Gpu, reps: usize, mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    drop(f()?);
    gpu.synchronize()?;
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        drop(f()?);
        gpu.synchronize()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn check(name: &str, got: &Tensor, oracle: &[f64]) -> Result<()> {
    let err = rel_l2_f64(&to_f64(&got.to_vec()?), oracle);
    if err > 1e-4 {
        return Err(incept::Error::Invalid(format!("{name}: relative L2 error {err:.2e} against the oracle")));
    }
    Ok(())
}

fn conv_table(gpu: &Gpu) -> Result<()> {
    // (batch, h, w, cin, cout, kh, kw, stride, padding): a 35×35 1×1, a 17×17 1×7, an 8×8 1×1 at
    // batch 2, and a 35×35 3×3 (the only one the Winograd variants compute).
    let shapes = [
        (8, 35, 35, 64, 96, 3, 3, 1, Padding::Same),
        (8, 35, 35, 288, 64, 1, 1, 1, Padding::Same),
        (8, 17, 17, 768, 192, 1, 7, 1, Padding::Same),
        (2, 8, 8, 2048, 384, 1, 1, 1, Padding::Same),
    ];
    println!("conv2d forward on {}", gpu.name());
    println!("{:<34} {:<16} {:>10} {:>9}", "shape", "variant", "ms", "GFLOP/s");
    for (n, h, w, cin, cout, kh, kw, stride, padding) in shapes {
        let win = Window2d::new(kh, kw, stride, padding);
        let x = Tensor::from_slice(gpu, &[n, h, w, cin], &random(n * h * w * cin, 1, -1.0, 1.0))?;
        let f = Tensor::from_slice(gpu, &[kh, kw, cin, cout], &random(kh * kw * cin * cout, 2, -0.1, 0.1))?;
        let run = |algo| conv::conv2d_fused(&x, &f, &ConvSpec { algo: Some(algo), ..ConvSpec::new(win) });
        let oracle = to_f64(&run(ConvAlgo::Direct)?.to_vec()?);
        let (oh, ow) = win.output_size(h, w)?;
        let flops = 2.0 * (n * oh * ow * cout * kh * kw * cin) as f64;
        for algo in [ConvAlgo::Direct, ConvAlgo::RegisterBlocked, ConvAlgo::Tiled, ConvAlgo::TiledLarge, ConvAlgo::Winograd, ConvAlgo::Winograd4] {
            if !algo.supports(&win) {
                continue;
            }
            check(&format!("{algo:?}"), &run(algo)?, &oracle)?;
            let t = best_time(gpu, 3, || run(algo))?;
            let shape = format!("{n}x{h}x{w}x{cin} {kh}x{kw} -> {cout}");
            println!("{shape:<34} {:<16} {:>10.2} {:>9.2}", format!("{algo:?}"), t * 1e3, flops / t / 1e9);
        }
    }
    Ok(())
}

fn matmul_table(gpu: &Gpu) -> Result<()> {
    println!("\nmatmul on {}", gpu.name());
    println!("{:<34} {:<16} {:>10} {:>9}", "shape", "variant", "ms", "GFLOP/s");
    for (m, k, n) in [(1024, 1024, 1024), (32, 2048, 512)] {
        let a = Tensor::from_slice(gpu, &[m, k], &random(m * k, 3, -1.0, 1.0))?;
        let b = Tensor::from_slice(gpu, &[k, n], &random(k * n, 4, -1.0, 1.0))?;
        let oracle = to_f64(&matmul::matmul_with(MatmulAlgo::Naive, &a, &b)?.to_vec()?);
        for algo in MatmulAlgo::ALL {
            check(&format!("{algo:?}"), &matmul::matmul_with(algo, &a, &b)?, &oracle)?;
            let t = best_time(gpu, 3, || matmul::matmul_with(algo, &a, &b))?;
            let flops = 2.0 * (m * k * n) as f64;
            println!("{:<34} {:<16} {:>10.2} {:>9.2}", format!("{m}x{k} · {k}x{n}"), format!("{algo:?}"), t * 1e3, flops / t / 1e9);
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let gpu = Gpu::shared()?;
    conv_table(&gpu)?;
    matmul_table(&gpu)
}
