//! The image files named on a command line (`predict`): files as given,
//! folders searched recursively in sorted order, following symbolic links.
//! Every folder is entered at most once, by its canonical path, so a link
//! back into a folder being walked (a cycle) or to a folder walked already
//! is skipped; every file is listed at most once, by its canonical path.
//! A folder holding a run (run.json) is not entered: its plots are PNGs,
//! not images to classify. Each skipped link, folder or path that cannot be
//! resolved (a dangling link, a path too long for the system) is reported,
//! so the caller can warn about it.

use super::folder::is_image_file;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// What a walk found.
#[derive(Debug, Default)]
pub struct Found {
    /// Image files in walk order, each once.
    pub files: Vec<PathBuf>,
    /// Links (or repeated inputs) not followed, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

#[derive(Default)]
struct Walker {
    dirs: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
    found: Found,
}

impl Walker {
    fn file(&mut self, path: &Path, canonical: PathBuf) {
        if self.files.insert(canonical.clone()) {
            self.found.files.push(path.to_path_buf());
        } else {
            self.found.skipped.push((path.to_path_buf(), format!("the same file as one listed already ({})", canonical.display())));
        }
    }

    fn dir(&mut self, dir: &Path, canonical: PathBuf) -> Result<()> {
        if !self.dirs.insert(canonical.clone()) {
            self.found.skipped.push((dir.to_path_buf(), format!("a link to a folder walked already ({}): a cycle or a repeat", canonical.display())));
            return Ok(());
        }
        if crate::train::run_dir::holds_run(&canonical) {
            self.found.skipped.push((dir.to_path_buf(), super::folder::RUN_FOLDER.into()));
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| io_err(dir, format!("cannot list: {e}")))?
            .map(|e| e.map(|e| e.path()).map_err(|e| io_err(dir, format!("cannot list: {e}"))))
            .collect::<Result<_>>()?;
        entries.sort();
        for p in entries {
            // A dangling link, or a path that cannot be resolved, is skipped (and said).
            let canonical = match fs::canonicalize(&p) {
                Ok(c) => c,
                Err(e) => {
                    let link = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
                    let why = if link && e.kind() == std::io::ErrorKind::NotFound { "a link that leads nowhere".to_string() } else { format!("cannot be resolved: {e}") };
                    self.found.skipped.push((p, why));
                    continue;
                }
            };
            if canonical.is_dir() {
                self.dir(&p, canonical)?;
            } else if is_image_file(&p) {
                self.file(&p, canonical);
            }
        }
        Ok(())
    }
}

/// Image files in `inputs` (files, or folders searched recursively).
/// Errors name an input that does not exist; finding no image is an error.
pub fn find_images(inputs: &[PathBuf]) -> Result<Found> {
    let mut w = Walker::default();
    for input in inputs {
        let canonical = fs::canonicalize(input).map_err(|e| io_err(input, format!("no such file or folder: {e}")))?;
        if canonical.is_dir() {
            w.dir(input, canonical)?;
        } else {
            w.file(input, canonical);
        }
    }
    if w.found.files.is_empty() {
        return Err(Error::Invalid(format!("no images found in {inputs:?}")));
    }
    Ok(w.found)
}
