//! `incept features`: a named layer's output for each image, written to safetensors.

use clap::Args;
use super::base::{base_for_batches, image_batch};
use super::dicom::DicomArgs;
use super::precision::PrecisionArgs;
use incept::data::{DicomOptions, Preprocess};
use incept::io::output_paths::{named, refuse_output_inside_inputs};
use incept::io::{HostTensor, StorageDtype, TensorMap, write_safetensors};
use incept::models::{Backbone, WeightsFile};
use incept::ops::pool;
use incept::Error;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct FeaturesArgs {
    /// Weights (safetensors, Keras names); the file says which backbone it holds.
    #[arg(long)]
    weights: PathBuf,
    /// Refuse a weights file of another backbone.
    #[arg(long, value_enum)]
    backbone: Option<Backbone>,
    /// Layer whose output to keep (e.g. mixed7, block_13_expand_relu); default: the global
    /// average pool of the base's output (mixed10, out_relu, top_activation).
    #[arg(long)]
    layer: Option<String>,
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Output safetensors file: tensor `features` [images, ...], file names in the metadata.
    #[arg(long)]
    out: PathBuf,
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
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(adapter: Option<String>, args: FeaturesArgs) -> incept::Result<()> {
    if args.batch == 0 {
        return Err(Error::Invalid("--batch must be at least 1".into()));
    }
    let inputs: Vec<_> = std::iter::once(named("--weights", &args.weights)).chain(args.images.iter().map(|p| named("the input image", p))).collect();
    refuse_output_inside_inputs(&[named("--out", &args.out)], &inputs)?;
    let dicom = args.dicom.over(DicomOptions::default());
    let gpu = super::open_gpu_with(adapter, args.precision.or_default())?;
    let file = WeightsFile::read_expecting(&args.weights, args.backbone)?;
    file.backbone.check_size(args.image_size, args.image_size).map_err(|e| Error::Invalid(format!("--image-size {}: {e}", args.image_size)))?;
    let preprocess = args.preprocess.unwrap_or(file.preprocess);
    let model = base_for_batches(&gpu, &file, args.batch, args.image_size)?;
    let output = model.graph().output_name();
    let layer = args.layer.as_deref().unwrap_or(&output);
    let s = args.image_size;
    let mut rows: Vec<f32> = Vec::new();
    let mut per_image: Vec<usize> = Vec::new();
    for chunk in args.images.chunks(args.batch) {
        let x = image_batch(&gpu, chunk, s, preprocess, &dicom)?;
        let mut y = model.infer_layers(&x, &[layer])?.remove(0);
        if args.layer.is_none() {
            y = pool::global_avg_pool(&y)?;
        }
        per_image = y.shape()[1..].to_vec();
        rows.extend(y.to_vec()?);
    }
    let mut shape = vec![args.images.len()];
    shape.extend(&per_image);
    let mut tensors = TensorMap::new();
    tensors.insert("features".into(), HostTensor { shape: shape.clone(), data: rows });
    let names: Vec<String> = args.images.iter().map(|p| p.display().to_string()).collect();
    let preprocess = preprocess.name();
    let metadata = BTreeMap::from([
        ("images".to_string(), serde_json::to_string(&names).expect("strings serialise")),
        ("backbone".to_string(), file.backbone.name().to_string()),
        ("layer".to_string(), args.layer.clone().unwrap_or_else(|| format!("global_average_pooling({output})"))),
        ("image_size".to_string(), s.to_string()),
        ("preprocess".to_string(), preprocess.to_string()),
        ("dicom".to_string(), dicom.describe()),
    ]);
    write_safetensors(&args.out, &tensors, StorageDtype::F32, &metadata)?;
    println!("wrote {} ({} images, features {shape:?}, preprocess {preprocess})", args.out.display(), args.images.len());
    Ok(())
}
