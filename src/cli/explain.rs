//! `incept explain`: Grad-CAM pictures and maps of a trained run's
//! decisions (see `incept::explain`), one pair of files per image.

use super::predict::{ModelArgs, check_flags, collect_images, inputs, open_model};
use clap::Args;
use incept::data::load_rgb_with;
use incept::explain::{GradCam, class_gradients, grad_cam, output_stems};
use incept::io::atomic::check_writable;
use incept::io::output_paths::{named, refuse_output_inside_inputs};
use incept::io::{HostTensor, StorageDtype, TensorMap, write_safetensors};
use incept::models::base::layer_index;
use incept::report::grad_cam::{GradCamPicture, save_grad_cam_png};
use incept::train::{TrainConfig, run_dir};
use incept::{Error, Result, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Suffixes of the two files written per image.
pub const PICTURE_SUFFIX: &str = ".gradcam.png";
pub const MAP_SUFFIX: &str = ".gradcam.safetensors";

#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Folder for NAME.gradcam.png (picture) and NAME.gradcam.safetensors (raw map) per image; created when missing.
    #[arg(long)]
    out: PathBuf,
    /// Explain this class (one of the run's class names); default: each image's predicted class.
    #[arg(long)]
    class: Option<String>,
    /// Layer of the base whose output is explained, by its Keras name (mixed7, conv2d_93,
    /// block_13_expand_relu, …) [default: the base's output: mixed10, out_relu, top_activation].
    #[arg(long)]
    layer: Option<String>,
    /// Image files, or folders searched recursively for images.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

pub fn run(adapter: Option<String>, args: ExplainArgs) -> Result<()> {
    // Every flag and every image is checked before anything is written.
    check_flags(&args.model)?;
    if args.model.tta != 1 {
        return Err(Error::Invalid(format!("--tta {}: test-time augmentation applies to predict and evaluate, not explain", args.model.tta)));
    }
    let run_cfg = run_dir::load_config(&args.model.model)?;
    let graph = run_cfg.backbone.graph();
    let layer_name = args.layer.clone().unwrap_or_else(|| graph.output_name());
    let layer = layer_index(run_cfg.backbone, &graph, &layer_name)?;
    let class = args.class.as_deref().map(|name| class_index(&run_cfg.classes, name)).transpose()?;
    let paths = collect_images(&args.inputs)?;
    if paths.is_empty() {
        return Err(Error::Invalid("no image files among the inputs".into()));
    }
    for path in &paths {
        load_rgb_with(path, run_cfg.image_size, &args.model.dicom.over(run_cfg.dicom))?;
    }
    let stems = output_stems(&paths);
    refuse_output_inside_inputs(&[named("--out", &args.out)], &inputs(&args.model, &args.inputs, &paths))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::Io { path: args.out.display().to_string(), reason: format!("cannot create the --out folder: {e}") })?;
    check_writable(&args.out.join(format!("{}{PICTURE_SUFFIX}", stems[0])))?;

    let gpu = super::open_gpu_with(adapter, args.model.precision.or_default())?;
    let (cfg, model, _) = open_model(&gpu, &args.model)?;
    let s = cfg.image_size;
    let [_, h, w, c] = model.base.output_shapes(1, s, s)?[layer];
    if h * w == 1 {
        eprintln!("warning: {layer_name} is 1x1 at the run's image size {s}: the map is a single value; an earlier layer gives a finer one");
    }
    let classes = cfg.classes.len();
    let per_pass = model.base.images_per_binding(args.model.batch, s, s)?;
    let indices: Vec<usize> = (0..paths.len()).collect();
    for chunk in indices.chunks(per_pass) {
        let images = chunk.iter().map(|&i| load_rgb_with(&paths[i], s, &cfg.dicom)).collect::<Result<Vec<_>>>()?;
        let pixels: Vec<f32> = images.iter().flatten().map(|&v| cfg.preprocess.apply(v)).collect();
        let x = Tensor::from_slice(&gpu, &[chunk.len(), s, s, 3], &pixels)?;
        let found = class_gradients(&model, &x, layer, class)?;
        let (activations, gradients) = (found.activations.to_vec()?, found.gradients.to_vec()?);
        let per_image = h * w * c;
        for (k, &i) in chunk.iter().enumerate() {
            let cam = grad_cam(&activations[k * per_image..][..per_image], &gradients[k * per_image..][..per_image], [h, w, c]);
            let probabilities = &found.probabilities[k * classes..][..classes];
            let shown = Shown {
                class: found.classes[k],
                logit: found.logits[k * classes + found.classes[k]],
                predicted: found.predicted[k],
                probabilities,
            };
            let stem = &stems[i];
            let picture = args.out.join(format!("{stem}{PICTURE_SUFFIX}"));
            let map = args.out.join(format!("{stem}{MAP_SUFFIX}"));
            save_map(&map, &cam, &paths[i], (&args, &layer_name), &cfg, &shown)?;
            save_picture(&picture, &cam, &images[k], &paths[i], &layer_name, &cfg, &shown)?;
            println!(
                "{}\tpredicted {} ({:.4})\tGrad-CAM of {} at {} ({h}x{w}): {}",
                paths[i].display(),
                cfg.classes[shown.predicted],
                probabilities[shown.predicted],
                cfg.classes[shown.class],
                layer_name,
                picture.display()
            );
        }
    }
    println!("wrote {} picture(s) and map(s) to {}", paths.len(), args.out.display());
    Ok(())
}

/// The class explained for one image, and what the model said.
struct Shown<'a> {
    class: usize,
    logit: f32,
    predicted: usize,
    probabilities: &'a [f32],
}

fn class_index(classes: &[String], name: &str) -> Result<usize> {
    classes
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| Error::Invalid(format!("--class '{name}' is not one of the run's classes: {}", classes.join(", "))))
}

/// The raw map [h, w] and the channel weights [c], with what they are in the metadata.
fn save_map(path: &Path, cam: &GradCam, image: &Path, (args, layer): (&ExplainArgs, &str), cfg: &TrainConfig, shown: &Shown<'_>) -> Result<()> {
    let mut tensors = TensorMap::new();
    tensors.insert("gradcam".into(), HostTensor { shape: vec![cam.height, cam.width], data: cam.map.clone() });
    tensors.insert("channel_weights".into(), HostTensor { shape: vec![cam.channel_weights.len()], data: cam.channel_weights.clone() });
    let metadata = BTreeMap::from([
        ("image".to_string(), image.display().to_string()),
        ("layer".to_string(), layer.to_string()),
        ("class".to_string(), cfg.classes[shown.class].clone()),
        ("class_index".to_string(), shown.class.to_string()),
        ("logit".to_string(), shown.logit.to_string()),
        ("probability".to_string(), shown.probabilities[shown.class].to_string()),
        ("predicted".to_string(), cfg.classes[shown.predicted].clone()),
        ("image_size".to_string(), cfg.image_size.to_string()),
        ("preprocess".to_string(), cfg.preprocess.name().to_string()),
        ("run".to_string(), args.model.model.display().to_string()),
        ("checkpoint".to_string(), args.model.checkpoint.clone()),
        (
            "definition".to_string(),
            "gradcam = ReLU(sum_k channel_weights[k] * A[:, :, k]) at the layer's own size (not upsampled); channel_weights[k] = mean over space of d logit(class) / d A[:, :, k]; A = the layer's output".to_string(),
        ),
    ]);
    write_safetensors(path, &tensors, StorageDtype::F32, &metadata)?;
    Ok(())
}

fn save_picture(path: &Path, cam: &GradCam, image: &[u8], source: &Path, layer: &str, cfg: &TrainConfig, shown: &Shown<'_>) -> Result<()> {
    let (p, classes, s) = (shown.probabilities, &cfg.classes, cfg.image_size);
    let title = [
        source.display().to_string(),
        format!("predicted: {} (p = {:.3})", classes[shown.predicted], p[shown.predicted]),
        format!("Grad-CAM of {} (p = {:.3}, logit {:.3}) at {layer}, {}x{}", classes[shown.class], p[shown.class], shown.logit, cam.height, cam.width),
    ];
    let input_caption = format!("network input ({s}x{s})");
    let overlay_caption = format!("Grad-CAM at {layer}");
    save_grad_cam_png(
        path,
        &GradCamPicture {
            title: &title,
            captions: [&input_caption, &overlay_caption],
            image,
            image_size: s,
            map: &cam.map,
            map_size: (cam.height, cam.width),
        },
    )
}
