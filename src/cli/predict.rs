//! `incept predict` and `incept evaluate`: a trained run applied to images.

use clap::Args;
use incept::autograd as ag;
use incept::data::folder::ImageFolder;
use incept::data::walk::find_images;
use incept::data::load_image_with;
use super::dicom::DicomArgs;
use incept::ops::loss;
use incept::report::metrics::ConfusionMatrix;
use incept::report::predictions::{Prediction, save_predictions_csv};
use incept::train::checkpoint::{self, BEST, LAST};
use incept::io::atomic::check_writable;
use incept::train::run_dir::{self, CONFUSION_PNG};
use incept::train::{Classifier, TrainConfig, memory};
use incept::{Error, Gpu, Result, Tensor};
use std::path::PathBuf;

#[derive(Args)]
pub struct ModelArgs {
    /// Run directory written by `incept train`.
    #[arg(long)]
    model: PathBuf,
    /// Which checkpoint: best (lowest val_loss) or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    checkpoint: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Override the run's DICOM handling (run.json's by default).
    #[command(flatten)]
    dicom: DicomArgs,
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
    #[arg(long)]
    data: PathBuf,
    /// Confusion-matrix image (default: RUN_DIR/confusion_matrix.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn open_model(gpu: &Gpu, args: &ModelArgs) -> Result<(TrainConfig, Classifier)> {
    if args.batch == 0 {
        return Err(Error::Invalid("--batch must be at least 1".into()));
    }
    let mut cfg = run_dir::load_config(&args.model)?;
    memory::check_inference_fits(gpu, args.batch, cfg.image_size)?;
    let file = args.model.join(if args.checkpoint == "best" { BEST } else { LAST });
    let weights = checkpoint::load_matching(&file, &cfg)?.tensors;
    let model = Classifier::from_tensor_map(gpu, &cfg, &weights)
        .map_err(|e| Error::Io { path: file.display().to_string(), reason: format!("does not match run.json: {e}") })?;
    // How images are read, not part of the model: checked against the checkpoint as trained, then overridden.
    cfg.dicom = args.dicom.over(cfg.dicom);
    Ok((cfg, model))
}

/// Class probabilities for each readable image, in batches, inference mode,
/// with the index of each into `paths`. Unreadable images are skipped with
/// one warning each.
fn classify(gpu: &Gpu, cfg: &TrainConfig, model: &Classifier, paths: &[PathBuf], batch: usize) -> Result<Vec<(usize, Prediction)>> {
    let s = cfg.image_size;
    let mut out = Vec::with_capacity(paths.len());
    let indices: Vec<usize> = (0..paths.len()).collect();
    for chunk in indices.chunks(batch) {
        let mut pixels = Vec::with_capacity(chunk.len() * s * s * 3);
        let mut loaded = Vec::with_capacity(chunk.len());
        for &i in chunk {
            match load_image_with(&paths[i], s, cfg.preprocess, &cfg.dicom) {
                Ok(p) => {
                    pixels.extend(p);
                    loaded.push(i);
                }
                Err(e) => eprintln!("warning: skipping {e}"),
            }
        }
        if loaded.is_empty() {
            continue;
        }
        let x = Tensor::from_slice(gpu, &[loaded.len(), s, s, 3], &pixels)?;
        let probs = ag::no_grad(|| -> Result<Tensor> { loss::softmax(model.logits(&x, false, 0)?.value()) })?.to_vec()?;
        let c = cfg.classes.len();
        out.extend(loaded.iter().zip(probs.chunks(c)).map(|(&i, row)| (i, Prediction { path: paths[i].clone(), probabilities: row.to_vec() })));
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
fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let found = find_images(inputs)?;
    for (path, why) in &found.skipped {
        eprintln!("warning: skipping {}: {why}", path.display());
    }
    Ok(found.files)
}

pub fn predict(adapter: Option<String>, args: PredictArgs) -> Result<()> {
    let paths = collect_images(&args.inputs)?;
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    let gpu = super::open_gpu(adapter)?;
    let (cfg, model) = open_model(&gpu, &args.model)?;
    let predictions: Vec<Prediction> = classify(&gpu, &cfg, &model, &paths, args.model.batch)?.into_iter().map(|(_, p)| p).collect();
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

pub fn evaluate(adapter: Option<String>, args: EvaluateArgs) -> Result<()> {
    let png = args.out.clone().unwrap_or_else(|| args.model.model.join(CONFUSION_PNG));
    check_writable(&png)?;
    let gpu = super::open_gpu(adapter)?;
    let (cfg, model) = open_model(&gpu, &args.model)?;
    let folder = ImageFolder::open(&args.data)?;
    for p in folder.skipped_links() {
        eprintln!("warning: skipping {}: the same file as one listed before it (a link)", p.display());
    }
    if folder.classes() != cfg.classes.as_slice() {
        return Err(Error::Invalid(format!(
            "{}: classes {:?} differ from the model's {:?}",
            args.data.display(),
            folder.classes(),
            cfg.classes
        )));
    }
    let paths: Vec<PathBuf> = folder.samples().iter().map(|(p, _)| p.clone()).collect();
    let mut cm = ConfusionMatrix::new(cfg.classes.clone());
    for (i, p) in classify(&gpu, &cfg, &model, &paths, args.model.batch)? {
        cm.add(folder.samples()[i].1, p.predicted())?;
    }
    println!("{}", cm.to_text());
    cm.save_png(&png)?;
    println!("accuracy: {:.4}\nconfusion matrix image: {}", cm.accuracy(), png.display());
    Ok(())
}
