//! A run's dataset splits: training, validation (DATA/valid, or a recorded
//! `--validation-split` of DATA/train) and optionally test, each with the
//! run's classes, and no image in two of them (see `data::duplicates`).

use super::config::TrainConfig;
use super::split_record::SplitRecord;
use crate::data::duplicates::{SplitFiles, check_duplicates};
use crate::data::folder::ImageFolder;
use crate::data::split::stratified_split;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Images per class (in class order) of each split, by split name.
pub type SplitCounts = BTreeMap<String, Vec<usize>>;

/// The dataset's splits, checked against the run's classes.
pub struct Splits {
    pub train: ImageFolder,
    pub valid: ImageFolder,
    pub test: Option<ImageFolder>,
}

/// Opens DATA/`split`, warning about each file or folder skipped (see
/// `ImageFolder::skipped_links`).
fn open(cfg: &TrainConfig, split: &str) -> Result<ImageFolder> {
    let f = ImageFolder::open(&cfg.data.join(split))?;
    for (p, why) in f.skipped_links() {
        eprintln!("warning: skipping {}: {why}", p.display());
    }
    Ok(f)
}

/// Duplicate warnings printed one by one; the rest are counted.
const MAX_WARNINGS: usize = 10;

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
        splits.check_duplicates()?;
        Ok((splits, record))
    }

    /// Images per class of each split.
    pub fn counts(&self) -> SplitCounts {
        let mut counts = SplitCounts::from([("train".to_string(), self.train.class_counts()), ("validation".to_string(), self.valid.class_counts())]);
        if let Some(t) = &self.test {
            counts.insert("test".into(), t.class_counts());
        }
        counts
    }

    /// Warns, per split and class, where the images now number other than
    /// `before` (what the run last trained on, from its checkpoint): a
    /// resumed run trains on the data as it is now.
    pub fn warn_if_changed(&self, before: &SplitCounts, classes: &[String]) {
        let now = self.counts();
        for (split, counts) in &now {
            let Some(old) = before.get(split) else {
                eprintln!("warning: the data has a {split} split now that the run did not have when it last trained");
                continue;
            };
            for (c, (n, o)) in counts.iter().zip(old).enumerate() {
                if n != o {
                    eprintln!(
                        "warning: the {split} split of class {} has {n} images now, {o} when the run last trained: the resumed epochs use the data as it is now (start a new run to train on it from the beginning)",
                        classes[c]
                    );
                }
            }
        }
        for split in before.keys().filter(|s| !now.contains_key(*s)) {
            eprintln!("warning: the data has no {split} split now; the run had one when it last trained");
        }
    }

    /// Errors, naming both files, when an image is in two splits; warns
    /// about an image under two classes and the same PNG pixels in two splits.
    fn check_duplicates(&self) -> Result<()> {
        fn split<'a>(name: &'a str, f: &'a ImageFolder) -> SplitFiles<'a> {
            SplitFiles { name, samples: f.samples(), classes: f.classes() }
        }
        let mut all = vec![split("train", &self.train), split("validation", &self.valid)];
        all.extend(self.test.as_ref().map(|t| split("test", t)));
        let warnings = check_duplicates(&all)?;
        for w in warnings.iter().take(MAX_WARNINGS) {
            eprintln!("warning: {w}");
        }
        if warnings.len() > MAX_WARNINGS {
            eprintln!("warning: {} more duplicate image(s) like these", warnings.len() - MAX_WARNINGS);
        }
        Ok(())
    }
}
