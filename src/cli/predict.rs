//! `incept predict` and `incept evaluate`: a trained run applied to images.

use clap::Args;
use super::precision::PrecisionArgs;
use incept::autograd as ag;
use incept::data::folder::ImageFolder;
use incept::data::image_file::load_rgb_with;
use incept::data::tta::{Tta, mean_probabilities};
use incept::data::walk::find_images;
use super::dicom::DicomArgs;
use incept::ops::loss;
use incept::report::evaluation::{Evaluation, EvaluationSource};
use incept::report::predictions::{Prediction, save_predictions_csv};
use incept::report::top_losses::DEFAULT_TOP_LOSSES;
use incept::train::checkpoint::{self, BEST, LAST};
use incept::io::atomic::check_writable;
use incept::io::output_paths::{Named, named, refuse_output_inside_inputs};
use incept::report::curves::{PRECISION_RECALL_PNG, ROC_PNG};
use incept::report::evaluation::{EVALUATION_CSV, METRICS_JSON};
use incept::report::top_losses::TOP_LOSSES_PNG;
use incept::train::run_dir::{self, CONFUSION_PNG};
use incept::train::splits::Splits;
use incept::train::{Classifier, TrainConfig, memory};
use incept::{Error, Gpu, Result, Tensor};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ModelArgs {
    /// Run directory written by `incept train`.
    #[arg(long)]
    pub(super) model: PathBuf,
    /// Which checkpoint: best (the best epoch by the run's --monitor, the final model) or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    pub(super) checkpoint: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub(super) batch: usize,
    /// Test-time augmentation (predict, evaluate): average the class probabilities of N copies of
    /// each image (1: the image alone). Copy 2 is its horizontal mirror,
    /// copies 3.. random draws of the run's training augmentation (shear,
    /// zoom, flip from run.json), seeded with the run's seed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(super) tta: usize,
    /// Override the run's DICOM handling (run.json's by default).
    #[command(flatten)]
    pub(super) dicom: DicomArgs,
    #[command(flatten)]
    pub(super) precision: PrecisionArgs,
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Write `path,predicted,probability_<class>…` rows here (CSV).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Image files, or folders searched recursively for images.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A class-per-folder split (e.g. DATA/test) with the model's classes.
    #[arg(long, required_unless_present = "split", conflicts_with = "split")]
    data: Option<PathBuf>,
    /// One of the run's own splits instead: its validation split (recorded in
    /// RUN/split.json for a --validation-split run), training split or DATA/test.
    #[arg(long, value_parser = ["train", "valid", "test"])]
    split: Option<String>,
    /// Confusion-matrix image (default: RUN_DIR/confusion_matrix.png); the
    /// other outputs (metrics.json, roc.png, precision_recall.png,
    /// top_losses.png, evaluation_predictions.csv) are written beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Show the K images with the highest loss in top_losses.png (0: none).
    #[arg(long, default_value_t = DEFAULT_TOP_LOSSES, value_name = "K")]
    top_losses: usize,
}

/// Refuses flag values that need no file to be wrong, before any work.
pub(super) fn check_flags(args: &ModelArgs) -> Result<()> {
    if args.batch == 0 {
        return Err(Error::Invalid("--batch must be at least 1".into()));
    }
    Tta::check_copies(args.tta)
}

/// What a command that reads the run `args.model` and `images` (as given,
/// and the image files found in them) must never write over.
pub(super) fn inputs(args: &ModelArgs, given: &[PathBuf], images: &[PathBuf]) -> Vec<Named> {
    let mut inputs = run_dir::run_files_as_inputs(&args.model);
    inputs.extend(given.iter().map(|p| named("the input", p)));
    inputs.extend(images.iter().map(|p| named("the input image", p)));
    inputs
}

pub(super) fn open_model(gpu: &Gpu, args: &ModelArgs) -> Result<(TrainConfig, Classifier, Tta)> {
    let mut cfg = run_dir::load_config(&args.model)?;
    // --tta copies of every batch: checked before the copies are drawn or allocated.
    memory::check_inference_fits(gpu, args.batch, cfg.image_size, args.tta)?;
    let tta = Tta::new(args.tta, cfg.augmentation(), cfg.seed)?;
    if tta.copies() > 1 && !cfg.augment {
        eprintln!(
            "warning: {} was trained without augmentation; the --tta copies use its recorded settings (shear {}°, zoom {}, flip {}) all the same",
            args.model.display(),
            cfg.shear_degrees,
            cfg.zoom,
            cfg.horizontal_flip
        );
    }
    let file = args.model.join(if args.checkpoint == "best" { BEST } else { LAST });
    let weights = checkpoint::load_matching(&file, &cfg)?.tensors;
    let model = Classifier::from_tensor_map(gpu, &cfg, &weights)
        .map_err(|e| Error::Io { path: file.display().to_string(), reason: format!("does not match run.json: {e}") })?;
    // How images are read, not part of the model: checked against the checkpoint as trained, then overridden.
    cfg.dicom = args.dicom.over(cfg.dicom);
    Ok((cfg, model, tta))
}

/// Class probabilities for each readable image, in batches, inference mode,
/// with the index of each into `paths`: the mean over the copies `tta` makes
/// of each image (one forward pass of the batch per copy). Unreadable images
/// are skipped with one warning each.
fn classify(gpu: &Gpu, cfg: &TrainConfig, model: &Classifier, tta: &Tta, paths: &[PathBuf], batch: usize) -> Result<Vec<(usize, Prediction)>> {
    let (s, c) = (cfg.image_size, cfg.classes.len());
    let mut out = Vec::with_capacity(paths.len());
    let indices: Vec<usize> = (0..paths.len()).collect();
    for chunk in indices.chunks(batch) {
        // copies[k]: the batch's pixels under copy k.
        let mut copies = vec![Vec::with_capacity(chunk.len() * s * s * 3); tta.copies()];
        let mut loaded = Vec::with_capacity(chunk.len());
        for &i in chunk {
            match load_rgb_with(&paths[i], s, &cfg.dicom).and_then(|rgb| tta.inputs(&rgb, s, cfg.preprocess)) {
                Ok(inputs) => {
                    copies.iter_mut().zip(inputs).for_each(|(pixels, x)| pixels.extend(x));
                    loaded.push(i);
                }
                Err(e) => eprintln!("warning: skipping {e}"),
            }
        }
        if loaded.is_empty() {
            continue;
        }
        let mut per_copy = Vec::with_capacity(copies.len());
        for pixels in &copies {
            let x = Tensor::from_slice(gpu, &[loaded.len(), s, s, 3], pixels)?;
            per_copy.push(ag::no_grad(|| -> Result<Tensor> { loss::softmax(model.logits(&x, false, 0)?.value()) })?.to_vec()?);
        }
        for (j, &i) in loaded.iter().enumerate() {
            let rows: Vec<Vec<f32>> = per_copy.iter().map(|p| p[j * c..(j + 1) * c].to_vec()).collect();
            out.push((i, Prediction { path: paths[i].clone(), probabilities: mean_probabilities(&rows) }));
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!("none of the {} images could be read", paths.len())));
    }
    if out.len() < paths.len() {
        eprintln!("skipped {} unreadable image(s) of {}", paths.len() - out.len(), paths.len());
    }
    Ok(out)
}

/// The image files among `inputs` (see `data::walk`), warning about each link skipped.
pub(super) fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let found = find_images(inputs)?;
    for (path, why) in &found.skipped {
        eprintln!("warning: skipping {}: {why}", path.display());
    }
    Ok(found.files)
}

pub fn predict(adapter: Option<String>, args: PredictArgs) -> Result<()> {
    check_flags(&args.model)?;
    let paths = collect_images(&args.inputs)?;
    if let Some(out) = &args.out {
        refuse_output_inside_inputs(&[named("--out", out)], &inputs(&args.model, &args.inputs, &paths))?;
        check_writable(out)?;
    }
    let gpu = super::open_gpu_with(adapter, args.model.precision.or_default())?;
    let (cfg, model, tta) = open_model(&gpu, &args.model)?;
    let predictions: Vec<Prediction> =
        classify(&gpu, &cfg, &model, &tta, &paths, args.model.batch)?.into_iter().map(|(_, p)| p).collect();
    for p in &predictions {
        let probs: Vec<String> = cfg.classes.iter().zip(&p.probabilities).map(|(c, v)| format!("{c}={v:.4}")).collect();
        println!("{}\t{}\t{}", p.path.display(), cfg.classes[p.predicted()], probs.join(" "));
    }
    if let Some(out) = &args.out {
        save_predictions_csv(out, &cfg.classes, &predictions)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// The run's own `split` (train, valid or test), as its training saw it.
fn run_split(cfg: &TrainConfig, run: &std::path::Path, split: &str) -> Result<ImageFolder> {
    let splits = Splits::for_run(cfg, run)?;
    match split {
        "train" => Ok(splits.train),
        "test" => splits.test.ok_or_else(|| Error::Invalid(format!("--split test: {} has no test/ folder", cfg.data.display()))),
        _ => Ok(splits.valid),
    }
}

pub fn evaluate(adapter: Option<String>, args: EvaluateArgs) -> Result<()> {
    check_flags(&args.model)?;
    let png = args.out.clone().unwrap_or_else(|| args.model.model.join(CONFUSION_PNG));
    let dir = png.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    // The image and the files written beside it never replace the run's files or the images.
    let mut outputs = vec![named("--out", &png)];
    outputs.extend([METRICS_JSON, EVALUATION_CSV, ROC_PNG, PRECISION_RECALL_PNG, TOP_LOSSES_PNG].map(|f| named(format!("--out (beside it: {f})"), dir.join(f))));
    let data = match &args.data {
        Some(d) => vec![named("--data", d)],
        // --split: the run's data tree, as run.json names it (a run.json that cannot be read is reported below).
        None => run_dir::load_config(&args.model.model).map(|c| vec![named("the run's data tree", c.data)]).unwrap_or_default(),
    };
    refuse_output_inside_inputs(&outputs, &[inputs(&args.model, &[], &[]), data].concat())?;
    check_writable(&png)?;
    let gpu = super::open_gpu_with(adapter, args.model.precision.or_default())?;
    let (cfg, model, tta) = open_model(&gpu, &args.model)?;
    let folder = match (&args.data, args.split.as_deref()) {
        (Some(data), _) => {
            let folder = ImageFolder::open(data)?;
            for (p, why) in folder.skipped_links() {
                eprintln!("warning: skipping {}: {why}", p.display());
            }
            if folder.classes() != cfg.classes.as_slice() {
                return Err(Error::Invalid(format!("{}: classes {:?} differ from the model's {:?}", data.display(), folder.classes(), cfg.classes)));
            }
            folder
        }
        (None, split) => run_split(&cfg, &args.model.model, split.unwrap_or("valid"))?,
    };
    let paths: Vec<PathBuf> = folder.samples().iter().map(|(p, _)| p.clone()).collect();
    let (labels, predictions): (Vec<usize>, Vec<Prediction>) = classify(&gpu, &cfg, &model, &tta, &paths, args.model.batch)?
        .into_iter()
        .map(|(i, p)| (folder.samples()[i].1, p))
        .unzip();
    let evaluation = Evaluation::new(cfg.classes.clone(), predictions, labels)?;
    let source = EvaluationSource {
        data: match &args.data {
            Some(data) => data.display().to_string(),
            None => format!("the run's {} split", args.split.as_deref().unwrap_or("valid")),
        },
        checkpoint: args.model.checkpoint.clone(),
        tta: tta.copies(),
    };
    let report = evaluation.report(source);
    println!("{}", evaluation.to_text(&report));
    evaluation.confusion().save_png(&png)?;
    let files = evaluation.save(&dir, &report, args.top_losses)?;
    if tta.copies() > 1 {
        println!("test-time augmentation: mean of {} copies per image", tta.copies());
    }
    println!("accuracy: {:.4}\nconfusion matrix image: {}", report.accuracy, png.display());
    println!("metrics: {}\nper-image predictions: {}", files.metrics.display(), files.predictions.display());
    println!("ROC curves: {}\nprecision-recall curves: {}", files.roc.display(), files.precision_recall.display());
    if let Some(top) = &files.top_losses {
        println!("top losses: {}", top.display());
    }
    Ok(())
}
