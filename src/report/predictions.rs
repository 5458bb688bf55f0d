//! Per-image predictions as CSV: header `path,predicted,probability_<class>...`,
//! one row per image, the predicted class being the most probable one (the
//! first on ties; NaN never wins). Fields with commas, quotes or line breaks
//! are quoted as RFC 4180 says. Paths are written as their exact bytes (a
//! file name that is not UTF-8 is not mangled). Written atomically. The
//! labelled form adds each image's true class (`actual`) after its path.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One image's class probabilities, in class order.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub path: PathBuf,
    pub probabilities: Vec<f32>,
}

/// Index of the largest value: the first of equal ones, NaN never chosen
/// over a number, and 0 when every value is NaN.
pub fn most_probable(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &p) in values.iter().enumerate() {
        if p > values[best] || values[best].is_nan() && !p.is_nan() {
            best = i;
        }
    }
    best
}

impl Prediction {
    /// Index of the most probable class (see [`most_probable`]).
    pub fn predicted(&self) -> usize {
        most_probable(&self.probabilities)
    }

    /// Indices of the `k` most probable classes, most probable first (ties:
    /// lower index first; NaN last).
    pub fn top_k(&self, k: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.probabilities.len()).collect();
        let key = |i: usize| if self.probabilities[i].is_nan() { f32::NEG_INFINITY } else { self.probabilities[i] };
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
        order.truncate(k);
        order
    }
}

/// The CSV bytes; fails, naming the image, when a prediction does not have
/// one probability per class.
pub fn predictions_csv(classes: &[String], predictions: &[Prediction]) -> Result<Vec<u8>> {
    csv(classes, predictions, None)
}

/// Like [`predictions_csv`] with each image's true class after its path:
/// header `path,actual,predicted,probability_<class>...` (`incept evaluate`'s
/// per-image file). `labels[i]` is the true class index of `predictions[i]`.
pub fn labelled_predictions_csv(classes: &[String], predictions: &[Prediction], labels: &[usize]) -> Result<Vec<u8>> {
    if labels.len() != predictions.len() || labels.iter().any(|&l| l >= classes.len()) {
        return Err(Error::Invalid(format!(
            "{} labels (each below {}) needed for {} predictions",
            labels.len(),
            classes.len(),
            predictions.len()
        )));
    }
    csv(classes, predictions, Some(labels))
}

fn csv(classes: &[String], predictions: &[Prediction], labels: Option<&[usize]>) -> Result<Vec<u8>> {
    if classes.is_empty() {
        return Err(Error::Invalid("predictions need at least one class".into()));
    }
    let mut out = b"path".to_vec();
    if labels.is_some() {
        out.extend(b",actual");
    }
    out.extend(b",predicted");
    for class in classes {
        out.push(b',');
        out.extend(field(format!("probability_{class}").as_bytes()));
    }
    out.push(b'\n');
    for (i, p) in predictions.iter().enumerate() {
        if p.probabilities.len() != classes.len() {
            return Err(Error::Invalid(format!(
                "prediction for {} has {} probabilities but there are {} classes",
                p.path.display(),
                p.probabilities.len(),
                classes.len()
            )));
        }
        out.extend(field(p.path.as_os_str().as_encoded_bytes()));
        if let Some(labels) = labels {
            out.push(b',');
            out.extend(field(classes[labels[i]].as_bytes()));
        }
        out.push(b',');
        out.extend(field(classes[p.predicted()].as_bytes()));
        for v in &p.probabilities {
            let _ = write!(out, ",{v}");
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes `predictions_csv` to `path`, atomically.
pub fn save_predictions_csv(path: &Path, classes: &[String], predictions: &[Prediction]) -> Result<()> {
    let text = predictions_csv(classes, predictions)
        .map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    write_atomic(path, &text)
}

/// The `k` most probable classes of each prediction as CSV rows
/// `path,rank,index,name,probability` (rank 1 first; ties keep class
/// order), for a pretrained head's classes (`incept classify`).
pub fn top_k_csv(classes: &[String], predictions: &[Prediction], k: usize) -> Result<Vec<u8>> {
    let mut out = b"path,rank,index,name,probability\n".to_vec();
    for p in predictions {
        if p.probabilities.len() != classes.len() {
            return Err(Error::Invalid(format!("prediction for {} has {} probabilities but there are {} classes", p.path.display(), p.probabilities.len(), classes.len())));
        }
        for (rank, i) in p.top_k(k).into_iter().enumerate() {
            out.extend(field(p.path.as_os_str().as_encoded_bytes()));
            let _ = write!(out, ",{},{i},", rank + 1);
            out.extend(field(classes[i].as_bytes()));
            let _ = writeln!(out, ",{}", p.probabilities[i]);
        }
    }
    Ok(out)
}

/// `text` as one CSV field: quoted, with quotes doubled, when it needs to be.
fn field(text: &[u8]) -> Vec<u8> {
    if !text.iter().any(|b| b",\"\n\r".contains(b)) {
        return text.to_vec();
    }
    let mut out = vec![b'"'];
    for &b in text {
        out.push(b);
        if b == b'"' {
            out.push(b'"');
        }
    }
    out.push(b'"');
    out
}
