//! `incept classify`: a weights file's own pretrained classifier applied to
//! images (EfficientNet-Lite0's ImageNet head): the top-k classes of each.

use super::base::{base_for_batches, image_batch};
use super::dicom::DicomArgs;
use super::precision::PrecisionArgs;
use super::predict::collect_images;
use clap::Args;
use incept::data::{DicomOptions, Preprocess};
use incept::io::atomic::check_writable;
use incept::io::output_paths::{named, refuse_output_inside_inputs};
use incept::io::write_atomic;
use incept::models::weights_file::HEAD_LAYER;
use incept::models::{Backbone, WeightsFile};
use incept::ops::{loss, matmul, pool};
use incept::report::predictions::{Prediction, top_k_csv};
use incept::{Error, Result, Tensor};
use std::path::PathBuf;

#[derive(Args)]
pub struct ClassifyArgs {
    /// Weights with a pretrained head (safetensors written by `bash weights/fetch.sh`,
    /// e.g. weights/efficientnet_lite0.safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// Refuse a weights file of another backbone.
    #[arg(long, value_enum)]
    backbone: Option<Backbone>,
    /// Classes listed per image, most probable first.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Also write `path,rank,index,name,probability` rows here (CSV).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Input side [default: the backbone's native size].
    #[arg(long)]
    image_size: Option<usize>,
    /// [default: what the weights file says its network expects]
    #[arg(long, value_enum)]
    preprocess: Option<Preprocess>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[command(flatten)]
    dicom: DicomArgs,
    #[command(flatten)]
    precision: PrecisionArgs,
    /// Image files, or folders searched recursively for images.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

pub fn run(adapter: Option<String>, args: ClassifyArgs) -> Result<()> {
    if args.batch == 0 || args.top == 0 {
        return Err(Error::Invalid(format!("--batch {} --top {}: both must be at least 1", args.batch, args.top)));
    }
    let file = WeightsFile::read_expecting(&args.weights, args.backbone)?;
    let Some(head) = &file.head else {
        return Err(Error::Io {
            path: args.weights.display().to_string(),
            reason: format!(
                "holds no pretrained classifier ('{HEAD_LAYER}/kernel', '{HEAD_LAYER}/bias'): classify needs one (weights/efficientnet_lite0.safetensors has ImageNet's); a run you trained classifies with `incept predict --model RUN`"
            ),
        });
    };
    let size = args.image_size.unwrap_or(file.backbone.native_size());
    file.backbone.check_size(size, size)?;
    let preprocess = args.preprocess.unwrap_or(file.preprocess);
    let dicom = args.dicom.over(DicomOptions::default());
    let paths = collect_images(&args.inputs)?;
    if paths.is_empty() {
        return Err(Error::Invalid("no image files among the inputs".into()));
    }
    if let Some(out) = &args.out {
        let inputs: Vec<_> = std::iter::once(named("--weights", &args.weights)).chain(args.inputs.iter().map(|p| named("the input", p))).collect();
        refuse_output_inside_inputs(&[named("--out", out)], &inputs)?;
        check_writable(out)?;
    }
    let gpu = super::open_gpu_with(adapter, args.precision.or_default())?;
    let base = base_for_batches(&gpu, &file, args.batch, size)?;
    let output = base.graph().output_name();
    let kernel = Tensor::from_slice(&gpu, &head.kernel.shape, &head.kernel.data)?;
    let bias = Tensor::from_slice(&gpu, &head.bias.shape, &head.bias.data)?;
    let top = args.top.min(head.classes.len());
    let mut predictions = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(args.batch) {
        let x = image_batch(&gpu, chunk, size, preprocess, &dicom)?;
        let features = pool::global_avg_pool(&base.infer_layers(&x, &[output.as_str()])?.remove(0))?;
        let probabilities = loss::softmax(&matmul::dense(&features, &kernel, &bias, false)?)?.to_vec()?;
        for (path, p) in chunk.iter().zip(probabilities.chunks(head.classes.len())) {
            let prediction = Prediction { path: path.clone(), probabilities: p.to_vec() };
            let listed: Vec<String> = prediction.top_k(top).into_iter().map(|i| format!("{} {:.4}", head.classes[i], p[i])).collect();
            println!("{}\t{}", path.display(), listed.join("\t"));
            predictions.push(prediction);
        }
    }
    if let Some(out) = &args.out {
        write_atomic(out, &top_k_csv(&head.classes, &predictions, top)?)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
