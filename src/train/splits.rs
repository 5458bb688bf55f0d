//! A run's dataset splits: training, validation (DATA/valid, or a recorded
//! `--validation-split` of DATA/train) and optionally test, each with the
//! run's classes, and no image in two of them (see `data::duplicates`).

use super::config::TrainConfig;
use super::split_record::SplitRecord;
use crate::data::duplicates::{SplitFiles, check_no_leaks};
use crate::data::folder::ImageFolder;
use crate::data::split::stratified_split;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The dataset's splits, checked against the run's classes.
pub struct Splits {
    pub train: ImageFolder,
    pub valid: ImageFolder,
    pub test: Option<ImageFolder>,
}

/// Opens DATA/`split`, warning about each file skipped because it is a link
/// to one listed already.
fn open(cfg: &TrainConfig, split: &str) -> Result<ImageFolder> {
    let f = ImageFolder::open(&cfg.data.join(split))?;
    for p in f.skipped_links() {
        eprintln!("warning: skipping {}: the same file as one listed before it (a link)", p.display());
    }
    Ok(f)
}

/// Where the validation images come from.
enum Validation<'a> {
    /// A new run: draw the split (when the run has one).
    Draw,
    /// The run in this directory: read its recorded split.
    Recorded(&'a Path),
}

impl Splits {
    /// The splits of a new run, and the split to record in the run
    /// directory when it draws its validation images from train/.
    pub fn for_new_run(cfg: &TrainConfig) -> Result<(Splits, Option<SplitRecord>)> {
        Splits::open(cfg, Validation::Draw)
    }

    /// The splits of the run in `run_dir` (`--resume`, `evaluate`): its
    /// recorded split when it has one.
    pub fn for_run(cfg: &TrainConfig, run_dir: &Path) -> Result<Splits> {
        Ok(Splits::open(cfg, Validation::Recorded(run_dir))?.0)
    }

    fn open(cfg: &TrainConfig, validation: Validation) -> Result<(Splits, Option<SplitRecord>)> {
        let train = open(cfg, "train")?;
        let valid_dir = cfg.data.join("valid");
        let (train, valid, record) = match (cfg.validation_split, valid_dir.exists()) {
            (Some(f), true) => {
                return Err(Error::Invalid(format!(
                    "--validation-split {f}: {} exists; validate on it (drop --validation-split) or hold out part of train/ (remove or rename valid/), not both",
                    valid_dir.display()
                )));
            }
            (None, false) => {
                return Err(Error::Invalid(format!(
                    "{} has no valid/ folder: give --validation-split F (e.g. 0.2) to validate on a stratified fraction of train/",
                    cfg.data.display()
                )));
            }
            (None, true) => {
                let valid = open(cfg, "valid")?;
                valid.check_same_classes(&train)?;
                (train, valid, None)
            }
            (Some(f), false) => match validation {
                Validation::Draw => {
                    let split = stratified_split(&train, f, cfg.seed)?;
                    let record = SplitRecord::new(&train, &split, f, cfg.seed)?;
                    (train.subset(&split.train)?, train.subset(&split.valid)?, Some(record))
                }
                Validation::Recorded(dir) => {
                    let (t, v) = SplitRecord::load(dir)?.apply(dir, &train, f, cfg.seed)?;
                    (t, v, None)
                }
            },
        };
        let test = match cfg.data.join("test") {
            p if p.is_dir() => {
                let f = open(cfg, "test")?;
                f.check_same_classes(&train)?;
                Some(f)
            }
            _ => None,
        };
        if train.classes() != cfg.classes.as_slice() {
            return Err(Error::Invalid(format!(
                "{}: classes {:?} differ from the run's classes {:?}",
                train.root().display(),
                train.classes(),
                cfg.classes
            )));
        }
        let splits = Splits { train, valid, test };
        splits.check_no_leaks()?;
        Ok((splits, record))
    }

    /// Errors, naming both files, when an image is in two splits.
    fn check_no_leaks(&self) -> Result<()> {
        let files = |f: &ImageFolder| -> Vec<PathBuf> { f.samples().iter().map(|(p, _)| p.clone()).collect() };
        let (train, valid) = (files(&self.train), files(&self.valid));
        let test = self.test.as_ref().map(files).unwrap_or_default();
        check_no_leaks(&[
            SplitFiles { name: "train", files: &train },
            SplitFiles { name: "validation", files: &valid },
            SplitFiles { name: "test", files: &test },
        ])
    }
}
