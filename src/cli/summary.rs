//! `incept summary`: the Keras-style layer table.

use clap::Args;
use incept::models::InceptionV3;
use std::path::PathBuf;

#[derive(Args)]
pub struct SummaryArgs {
    /// Weights (safetensors, Keras names); random Keras initialisation when absent.
    #[arg(long)]
    weights: Option<PathBuf>,
    #[arg(long, default_value_t = 299)]
    image_size: usize,
    /// Trainable tail: the last N layers as Keras lists them (`model.layers[-N:]`).
    #[arg(long, default_value_t = 15)]
    unfreeze_last: usize,
}

pub fn run(adapter: Option<String>, args: SummaryArgs) -> incept::Result<()> {
    let gpu = super::open_gpu(adapter)?;
    let model = match &args.weights {
        Some(path) => InceptionV3::from_safetensors(&gpu, path, args.unfreeze_last)?,
        None => InceptionV3::random(&gpu, 0, args.unfreeze_last)?,
    };
    let rows = model.summary(args.image_size)?;
    println!("Model: InceptionV3 (include_top=False), input {0}x{0}x3", args.image_size);
    println!("{:>4}  {:<26} {:<20} {:<22} {:>10}  Trainable", "#", "Layer", "Type", "Output shape", "Param #");
    for r in &rows {
        let [_, h, w, c] = r.output_shape;
        let shape = format!("(None, {h}, {w}, {c})");
        println!("{:>4}  {:<26} {:<20} {:<22} {:>10}  {}", r.index, r.name, r.class, shape, group(r.params), if r.trainable { "yes" } else { "no" });
    }
    let total: usize = rows.iter().map(|r| r.params).sum();
    let trainable: usize = rows.iter().map(|r| r.trainable_params).sum();
    println!("Total params: {}", group(total));
    println!("Trainable params: {}", group(trainable));
    println!("Non-trainable params: {}", group(total - trainable));
    Ok(())
}

/// 21802784 → "21,802,784".
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
