//! A class-per-folder image split, listed as Keras's
//! `flow_from_directory` lists it: classes are the sorted names of the
//! subfolders (label = position in that order); each class folder is walked
//! recursively without following symlinked folders, folders in sorted path
//! order and files sorted by name within each; a file counts when its
//! extension names a format the `image` crate can decode, or when it is a
//! DICOM file (`.dcm`/`.dicom`, or the DICOM preamble and magic, see
//! `data::dicom`).
//!
//! Unlike Keras, a class folder without images, or a split without any, is an
//! error rather than a silently empty class; and class folder names must be
//! UTF-8, as run.json stores them as text.
//!
//! A label is the class folder the user put the file in. So a symlinked file
//! whose target lies outside its class folder (a link to another class's
//! image, which Keras would train under this class) is skipped; a file
//! reached twice (a symlinked file next to its target) is listed once, at its
//! first place in that order; and a folder holding a run.json (a run
//! directory: its plots are PNGs) is never read as images. Each is reported
//! in [`ImageFolder::skipped_links`] with the reason, for the caller to warn.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// One split (train/, valid/ or test/) of a class-per-folder tree.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
    skipped_links: Vec<(PathBuf, String)>,
}

fn folder_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.into() }
}

/// Whether `path`'s extension names a format the `image` crate decodes here,
/// or `path` is a DICOM file (by extension, else by its first 132 bytes).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(image::ImageFormat::from_extension)
        // AVIF reports reading enabled with the encoder feature, but decoding needs `avif-native`.
        .is_some_and(|f| f.reading_enabled() && f != image::ImageFormat::Avif)
        || super::dicom::is_dicom_file(path)
}

impl ImageFolder {
    pub fn open(dir: &Path) -> Result<ImageFolder> {
        let meta = fs::metadata(dir).map_err(|e| folder_err(dir, format!("cannot open image folder: {e}")))?;
        if !meta.is_dir() {
            return Err(folder_err(dir, "is not a folder (expected one subfolder per class)"));
        }
        let mut class_names: Vec<OsString> = Vec::new();
        for entry in read_dir_sorted(dir)? {
            // fs::metadata follows symlinks, as Keras's os.path.isdir does.
            if fs::metadata(dir.join(&entry)).is_ok_and(|m| m.is_dir()) {
                class_names.push(entry);
            }
        }
        if class_names.is_empty() {
            return Err(folder_err(dir, "has no class folders (expected one subfolder of images per class)"));
        }
        let mut classes = Vec::with_capacity(class_names.len());
        let mut samples = Vec::new();
        let mut empty = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut skipped_links = Vec::new();
        for (label, name) in class_names.iter().enumerate() {
            let class_dir = dir.join(name);
            // Where the class's images really are (the class folder may itself be a link).
            let class_root = fs::canonicalize(&class_dir).map_err(|e| folder_err(&class_dir, format!("cannot open class folder: {e}")))?;
            let mut files = list_images(&class_dir, &mut skipped_links)?;
            files.retain(|f| {
                let Ok(target) = fs::canonicalize(f) else { return true };
                let why = if !target.starts_with(&class_root) {
                    format!(
                        "a link to {}, outside its class folder {}: its label would come from the link, not from where the image is",
                        target.display(),
                        class_dir.display()
                    )
                } else if !seen.insert(target.clone()) {
                    format!("the same file as one listed before it ({}, through a link)", target.display())
                } else {
                    return true;
                };
                skipped_links.push((f.clone(), why));
                false
            });
            let name = name
                .to_str()
                .ok_or_else(|| folder_err(&dir.join(name), "class folder name is not UTF-8; rename it (run.json stores class names as text)"))?
                .to_owned();
            if files.is_empty() {
                empty.push(name.clone());
            }
            samples.extend(files.into_iter().map(|f| (f, label)));
            classes.push(name);
        }
        if samples.is_empty() {
            return Err(folder_err(
                dir,
                format!(
                    "has no images in any of its class folders {classes:?} (looked for png, jpg, bmp, gif, tiff, webp, …, and DICOM)"
                ),
            ));
        }
        if let Some(name) = empty.first() {
            let class_dir = dir.join(name);
            let mut skipped = skipped_links.iter().filter(|(p, _)| p.starts_with(&class_dir));
            let link = match fs::read_link(&class_dir) {
                Ok(target) => format!(" (it is a link to {})", target.display()),
                Err(_) => String::new(),
            };
            let note = match (skipped.next(), skipped.count()) {
                (None, _) => String::new(),
                (Some((p, why)), more) => format!("; {} file(s) skipped, e.g. {}: {why}", more + 1, p.display()),
            };
            return Err(folder_err(&class_dir, format!("class folder {name}{link} has no images{note}")));
        }
        Ok(ImageFolder { root: dir.to_path_buf(), classes, samples, skipped_links })
    }

    /// Files and folders not listed, with the reason: a link to a file
    /// outside its class folder, a second name of a file listed already, a
    /// folder holding a run.
    pub fn skipped_links(&self) -> &[(PathBuf, String)] {
        &self.skipped_links
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names; a sample's label is its class's index here.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Always false for an opened folder (opening rejects empty splits).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// (file, label) in Keras's order: by class, then by walk order.
    pub fn samples(&self) -> &[(PathBuf, usize)] {
        &self.samples
    }

    /// Images per class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &(_, label) in &self.samples {
            counts[label] += 1;
        }
        counts
    }

    /// The samples at `indices` (positions in [`samples`](Self::samples)),
    /// in listing order, with the same root and classes: one side of a
    /// split of this folder. Errors on an index out of range.
    pub fn subset(&self, indices: &[usize]) -> Result<ImageFolder> {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let samples = sorted
            .iter()
            .map(|&i| self.samples.get(i).cloned().ok_or_else(|| folder_err(&self.root, format!("sample {i} of {} does not exist", self.samples.len()))))
            .collect::<Result<_>>()?;
        Ok(ImageFolder { root: self.root.clone(), classes: self.classes.clone(), samples, skipped_links: Vec::new() })
    }

    /// Errors, naming both folders and both class lists, unless `other` has
    /// exactly the same classes in the same order (so labels agree).
    pub fn check_same_classes(&self, other: &ImageFolder) -> Result<()> {
        if self.classes == other.classes {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "{} and {} have different classes: {:?} vs {:?}",
            self.root.display(),
            other.root.display(),
            self.classes,
            other.classes
        )))
    }
}

/// Why a folder holding a run is skipped.
pub const RUN_FOLDER: &str = "holds a run (run.json): a run directory is never read as images (its plots are PNGs)";

fn read_dir_sorted(dir: &Path) -> Result<Vec<OsString>> {
    let entries = fs::read_dir(dir).map_err(|e| folder_err(dir, format!("cannot list folder: {e}")))?;
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry.map_err(|e| folder_err(dir, format!("cannot list folder: {e}")))?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Keras's `_iter_valid_files`: `sorted(os.walk(dir), key=root)`, files sorted
/// within each folder. Symlinked folders are neither listed nor entered
/// (`followlinks=False`); symlinked files are listed. Folders holding a run
/// are skipped and added to `skipped`.
fn list_images(class_dir: &Path, skipped: &mut Vec<(PathBuf, String)>) -> Result<Vec<PathBuf>> {
    let mut folders: Vec<(PathBuf, Vec<OsString>)> = Vec::new();
    walk(class_dir, &mut folders, skipped)?;
    folders.sort_by(|a, b| a.0.as_os_str().as_encoded_bytes().cmp(b.0.as_os_str().as_encoded_bytes()));
    let mut out = Vec::new();
    for (root, files) in folders {
        out.extend(files.into_iter().map(|f| root.join(f)).filter(|p| is_image_file(p)));
    }
    Ok(out)
}

fn walk(dir: &Path, folders: &mut Vec<(PathBuf, Vec<OsString>)>, skipped: &mut Vec<(PathBuf, String)>) -> Result<()> {
    if crate::train::run_dir::holds_run(dir) {
        skipped.push((dir.to_path_buf(), RUN_FOLDER.into()));
        return Ok(());
    }
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for name in read_dir_sorted(dir)? {
        let path = dir.join(&name);
        let own = fs::symlink_metadata(&path).map_err(|e| folder_err(&path, format!("cannot inspect: {e}")))?;
        if own.is_dir() {
            subdirs.push(path);
        } else if !(own.file_type().is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_dir())) {
            files.push(name);
        }
    }
    folders.push((dir.to_path_buf(), files));
    for sub in subdirs {
        walk(&sub, folders, skipped)?;
    }
    Ok(())
}
