//! `incept summary`: the Keras-style layer table.

use super::base::BaseArgs;
use clap::Args;

#[derive(Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    base: BaseArgs,
    /// Input side [default: the backbone's native size: 299 for InceptionV3, 224 for the others].
    #[arg(long)]
    image_size: Option<usize>,
    /// Trainable tail: the last N layers as Keras lists them (`model.layers[-N:]`).
    #[arg(long, default_value_t = 15)]
    unfreeze_last: usize,
}

pub fn run(adapter: Option<String>, args: SummaryArgs) -> incept::Result<()> {
    let gpu = super::open_gpu(adapter)?;
    let model = args.base.load(&gpu, args.unfreeze_last)?;
    let size = args.image_size.unwrap_or(model.backbone().native_size());
    let rows = model.summary(size)?;
    println!("Model: {} (include_top=False), input {size}x{size}x3", model.backbone().title());
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
