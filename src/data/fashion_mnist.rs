//! "fmnist4": the default dataset, a small 4-class subset of Fashion-MNIST
//! (Debian's `dataset-fashion-mnist`, MIT) written as a class-per-folder PNG
//! tree that mirrors the tutorial's 4-class, ~1,000-image set:
//!
//! ```text
//! OUT/{train,valid,test}/{0_tshirt_top,2_pullover,4_coat,6_shirt}/{train,test}_NNNNN.png
//! ```
//!
//! Per class (labels 0, 2, 4, 6; folder names sort in label order): the first
//! 150 images of that label in the training file go to train/, the next 50 to
//! valid/, the first 100 of the test file to test/. A file is named after its
//! source file and index in it. Files are written atomically (temporary file,
//! then rename) and only when their bytes differ, and stale files of this
//! naming pattern are removed, so a re-run leaves the tree identical.

use super::idx::{Idx, read_idx};
use crate::error::{Error, Result};
use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where Debian's `dataset-fashion-mnist` installs the IDX files.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Installs `dataset-fashion-mnist` when it is missing.
pub const INSTALL_SCRIPT: &str = "tools/install-fashion-mnist.sh";

/// (Fashion-MNIST label, class folder name).
pub const FMNIST4_CLASSES: [(u8, &str); 4] = [(0, "0_tshirt_top"), (2, "2_pullover"), (4, "4_coat"), (6, "6_shirt")];

/// Images per class in each split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmnist4Spec {
    pub train_per_class: usize,
    pub valid_per_class: usize,
    pub test_per_class: usize,
}

impl Default for Fmnist4Spec {
    fn default() -> Self {
        Fmnist4Spec { train_per_class: 150, valid_per_class: 50, test_per_class: 100 }
    }
}

/// What a run of [`write_fmnist4`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub root: PathBuf,
    pub classes: Vec<String>,
    /// Images per split, all classes together.
    pub train: usize,
    pub valid: usize,
    pub test: usize,
    /// Files (re)written, already identical, and stale ones removed.
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// Writes the default fmnist4 tree under `out` from the IDX files in `source`
/// (default [`DEBIAN_DIR`]).
pub fn write_fmnist4(out: &Path, source: Option<&Path>) -> Result<Summary> {
    write_fmnist4_with(out, source, &Fmnist4Spec::default())
}

/// [`write_fmnist4`] with other per-class counts.
pub fn write_fmnist4_with(out: &Path, source: Option<&Path>, spec: &Fmnist4Spec) -> Result<Summary> {
    let source = source.unwrap_or(Path::new(DEBIAN_DIR));
    let (train_images, train_labels) = read_pair(source, "train")?;
    let (test_images, test_labels) = read_pair(source, "t10k")?;
    let mut summary = Summary {
        root: out.to_path_buf(),
        classes: FMNIST4_CLASSES.iter().map(|(_, name)| name.to_string()).collect(),
        train: 0,
        valid: 0,
        test: 0,
        written: 0,
        unchanged: 0,
        removed: 0,
    };
    for (label, class) in FMNIST4_CLASSES {
        let train_take = spec.train_per_class + spec.valid_per_class;
        let from_train = first_with_label(&train_labels, label, train_take, source, "train")?;
        let (train, valid) = from_train.split_at(spec.train_per_class);
        let test = first_with_label(&test_labels, label, spec.test_per_class, source, "t10k")?;
        write_class(&out.join("train").join(class), &train_images, "train", train, &mut summary)?;
        write_class(&out.join("valid").join(class), &train_images, "train", valid, &mut summary)?;
        write_class(&out.join("test").join(class), &test_images, "test", &test, &mut summary)?;
        summary.train += train.len();
        summary.valid += valid.len();
        summary.test += test.len();
    }
    Ok(summary)
}

/// `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]`, checked against each other.
fn read_pair(source: &Path, prefix: &str) -> Result<(Idx, Idx)> {
    let images_path = find_file(source, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(source, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    if images.dims.len() != 3 || images.dims[1] == 0 || images.dims[2] == 0 {
        return Err(Error::Io {
            path: images_path.display().to_string(),
            reason: format!("expected IDX dimensions [images, height, width], found {:?}", images.dims),
        });
    }
    if labels.dims.len() != 1 {
        return Err(Error::Io {
            path: labels_path.display().to_string(),
            reason: format!("expected IDX dimensions [labels], found {:?}", labels.dims),
        });
    }
    if labels.len() != images.len() {
        return Err(Error::Io {
            path: labels_path.display().to_string(),
            reason: format!("has {} labels but {} has {} images", labels.len(), images_path.display(), images.len()),
        });
    }
    Ok((images, labels))
}

fn find_file(source: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [source.join(name), source.join(format!("{name}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let hint = if source == Path::new(DEBIAN_DIR) {
        format!(
            "Fashion-MNIST is not installed: install Debian's package with `apt-get install -y dataset-fashion-mnist` (or run {INSTALL_SCRIPT})"
        )
    } else {
        "expected the four Fashion-MNIST IDX files there (Debian's `dataset-fashion-mnist` installs them under /usr/share/datasets/fashion-mnist)".into()
    };
    Err(Error::Io { path: source.display().to_string(), reason: format!("{name}[.gz] not found; {hint}") })
}

/// Indices of the first `count` items labelled `label`.
fn first_with_label(labels: &Idx, label: u8, count: usize, source: &Path, prefix: &str) -> Result<Vec<usize>> {
    let found: Vec<usize> =
        labels.data.iter().enumerate().filter(|&(_, &l)| l == label).map(|(i, _)| i).take(count).collect();
    if found.len() < count {
        return Err(Error::Io {
            path: source.join(format!("{prefix}-labels-idx1-ubyte")).display().to_string(),
            reason: format!("has {} images of label {label}, fmnist4 needs {count}", found.len()),
        });
    }
    Ok(found)
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// `{prefix}_NNNNN.png`, the only names this writer creates (and removes).
fn file_name(prefix: &str, index: usize) -> String {
    format!("{prefix}_{index:05}.png")
}

fn is_ours(name: &str) -> bool {
    let stem = name.strip_prefix("train_").or_else(|| name.strip_prefix("test_")).and_then(|s| s.strip_suffix(".png"));
    stem.is_some_and(|digits| digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn write_class(dir: &Path, images: &Idx, prefix: &str, indices: &[usize], summary: &mut Summary) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, format!("cannot create folder: {e}")))?;
    let wanted: Vec<String> = indices.iter().map(|&i| file_name(prefix, i)).collect();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, format!("cannot list folder: {e}")))? {
        let entry = entry.map_err(|e| io_err(dir, format!("cannot list folder: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_temp = name.starts_with('.') && name.contains(".png.tmp-");
        if stale_temp || (is_ours(&name) && !wanted.contains(&name)) {
            fs::remove_file(entry.path())
                .map_err(|e| io_err(&entry.path(), format!("cannot remove stale file: {e}")))?;
            summary.removed += 1;
        }
    }
    let (h, w) = (images.dims[1], images.dims[2]);
    for (&i, name) in indices.iter().zip(&wanted) {
        let path = dir.join(name);
        let png = encode_gray_png(images.item(i), w, h, &path)?;
        if fs::read(&path).is_ok_and(|existing| existing == png) {
            summary.unchanged += 1;
        } else {
            write_atomic(&path, &png)?;
            summary.written += 1;
        }
    }
    Ok(())
}

fn encode_gray_png(pixels: &[u8], width: usize, height: usize, path: &Path) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(pixels, width as u32, height as u32, image::ExtendedColorType::L8)
        .map_err(|e| io_err(path, format!("cannot encode PNG: {e}")))?;
    Ok(png)
}

/// Writes `bytes` to a hidden temporary file next to `path` and renames it
/// over `path`: readers see the old file or the whole new one. No fsync per
/// file (1,200 of them took 11 s on this machine's disk); after a crash, a
/// re-run compares every file's bytes and rewrites what is damaged.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp =
        path.with_file_name(format!(".{name}.tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path, format!("cannot write: {e}"))
    })
}
