//! RUN/split.json: the files a `--validation-split` run drew from train/
//! for each side, as paths relative to DATA/train with each file's size and
//! content hash. Written atomically before run.json, so a run directory that
//! holds a split run always has its split; `--resume` and `evaluate` read it
//! instead of drawing again, and refuse when a recorded file is gone or its
//! contents changed (the split would no longer be the one trained on).

use crate::data::duplicates::ContentKey;
use crate::data::folder::ImageFolder;
use crate::data::split::{SplitIndices, stratified_split};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};

pub const SPLIT_JSON: &str = "split.json";

/// One recorded image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// Relative to DATA/train, '/'-separated (its first part is the class folder).
    pub path: String,
    pub bytes: u64,
    /// [`crate::io::word_hash::WordHash`] of the contents, 16 hex digits.
    pub hash: String,
}

/// The split of a run's train/ folder into training and validation images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// The fraction and seed the split was drawn with (run.json's).
    pub validation_split: f64,
    pub seed: u64,
    pub train: Vec<RecordedFile>,
    pub valid: Vec<RecordedFile>,
}

fn io_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.into() }
}

/// `path` relative to `root`, '/'-separated; errors unless it is UTF-8.
fn relative(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| io_err(path, format!("is not inside {}", root.display())))?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| match c {
        Component::Normal(s) => s.to_str(),
        _ => None,
    }).collect();
    parts.map(|p| p.join("/")).ok_or_else(|| io_err(path, "file name is not UTF-8; rename it (split.json records paths as text)"))
}

fn hex(key: ContentKey) -> String {
    format!("{:016x}", key.hash)
}

impl SplitRecord {
    /// The record of `split` of `folder` (DATA/train), hashing every file.
    /// An unreadable file is recorded with an empty hash (the loader skips it).
    pub fn new(folder: &ImageFolder, split: &SplitIndices, validation_split: f64, seed: u64) -> Result<SplitRecord> {
        let side = |indices: &[usize]| -> Result<Vec<RecordedFile>> {
            indices
                .iter()
                .map(|&i| {
                    let path = &folder.samples()[i].0;
                    let key = ContentKey::of(path).ok();
                    Ok(RecordedFile { path: relative(folder.root(), path)?, bytes: key.map_or(0, |k| k.bytes), hash: key.map_or_else(String::new, hex) })
                })
                .collect()
        };
        Ok(SplitRecord { validation_split, seed, train: side(&split.train)?, valid: side(&split.valid)? })
    }

    /// Writes `dir/split.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SPLIT_JSON);
        let json = serde_json::to_string_pretty(self).map_err(|e| io_err(&path, format!("cannot encode the split: {e}")))?;
        write_atomic(&path, json.as_bytes())
    }

    /// Reads `dir/split.json`; errors name the file.
    pub fn load(dir: &Path) -> Result<SplitRecord> {
        let path = dir.join(SPLIT_JSON);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io_err(&path, format!("cannot read the run's validation split ({e}); the run was started with --validation-split and needs it")))?;
        serde_json::from_str(&text).map_err(|e| io_err(&path, format!("bad split record: {e}")))
    }

    /// The recorded sides as subsets of `folder` (DATA/train as listed now),
    /// `(train, valid)`. Errors, naming the file, when the record was drawn
    /// with another fraction or seed than `validation_split`/`seed` (run.json),
    /// names a file twice, or a recorded file is gone from the folder or its
    /// contents changed. Images added to train/ since are not used; a
    /// warning says how many.
    pub fn apply(&self, dir: &Path, folder: &ImageFolder, validation_split: f64, seed: u64) -> Result<(ImageFolder, ImageFolder)> {
        let file = dir.join(SPLIT_JSON);
        if self.validation_split != validation_split || self.seed != seed {
            return Err(io_err(
                &file,
                format!(
                    "was drawn with --validation-split {} --seed {}, but run.json says {validation_split} and {seed}",
                    self.validation_split, self.seed
                ),
            ));
        }
        let mut listed: HashMap<String, usize> = HashMap::new();
        for (i, (path, _)) in folder.samples().iter().enumerate() {
            listed.insert(relative(folder.root(), path)?, i);
        }
        let mut used = vec![false; folder.len()];
        let mut side = |files: &[RecordedFile]| -> Result<Vec<usize>> {
            files
                .iter()
                .map(|f| {
                    if !Path::new(&f.path).components().all(|c| matches!(c, Component::Normal(_))) {
                        return Err(io_err(
                            &file,
                            format!("records {:?}, which is not a path inside {} (absolute, or with . or ..): split.json names files relative to DATA/train, as the run wrote it; was it edited?", f.path, folder.root().display()),
                        ));
                    }
                    let shown = folder.root().join(&f.path);
                    let &i = listed.get(&f.path).ok_or_else(|| {
                        io_err(&file, format!("records {}, which is gone from {} (the split the run trained on can no longer be rebuilt)", shown.display(), folder.root().display()))
                    })?;
                    if std::mem::replace(&mut used[i], true) {
                        return Err(io_err(&file, format!("records {} twice", f.path)));
                    }
                    let now = ContentKey::of(&shown).ok();
                    if now.map_or(0, |k| k.bytes) != f.bytes || now.map_or_else(String::new, hex) != f.hash {
                        return Err(io_err(
                            &file,
                            format!("records {} with other contents than it has now: the file changed since the run drew its split", shown.display()),
                        ));
                    }
                    Ok(i)
                })
                .collect()
        };
        let (train, valid) = (side(&self.train)?, side(&self.valid)?);
        if train.is_empty() || valid.is_empty() {
            return Err(io_err(&file, "records no training or no validation image"));
        }
        if let Some(moved) = self.first_moved(folder, &train, &valid)? {
            eprintln!(
                "warning: {}: its sides are not the ones --validation-split {validation_split} --seed {seed} draws from its files ({moved}); the file was edited, and the run uses the sides as recorded",
                file.display()
            );
        }
        let unused = used.iter().filter(|&&u| !u).count();
        if unused > 0 {
            eprintln!("warning: {unused} image(s) in {} are not in the run's recorded split ({}) and are not used", folder.root().display(), file.display());
        }
        Ok((folder.subset(&train)?, folder.subset(&valid)?))
    }

    /// Draws the split again over the recorded files (positions `train` and
    /// `valid` in `folder`), which gives the recorded sides unless the
    /// record was edited: then, how many files are on the other side, with
    /// one of them.
    fn first_moved(&self, folder: &ImageFolder, train: &[usize], valid: &[usize]) -> Result<Option<String>> {
        let mut recorded: Vec<usize> = train.iter().chain(valid).copied().collect();
        recorded.sort_unstable();
        let files = folder.subset(&recorded)?;
        // A draw that is refused (a class left without a side) differs from the record too.
        let Ok(draw) = stratified_split(&files, self.validation_split, self.seed) else {
            return Ok(Some("the draw leaves a class without an image on one side".into()));
        };
        let drawn_valid: HashSet<usize> = draw.valid.iter().map(|&k| recorded[k]).collect();
        let valid: HashSet<usize> = valid.iter().copied().collect();
        let mut moved: Vec<usize> = valid.symmetric_difference(&drawn_valid).copied().collect();
        moved.sort_unstable();
        Ok(moved.first().map(|&i| {
            let n = moved.len();
            let side = if valid.contains(&i) { "validation" } else { "train" };
            format!("{n} file(s) on the other side, e.g. {} recorded under {side}", folder.samples()[i].0.display())
        }))
    }
}
