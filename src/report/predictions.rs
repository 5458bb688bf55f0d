//! Per-image predictions as CSV: header `path,predicted,probability_<class>...`,
//! one row per image, the predicted class being the most probable one (the
//! first on ties; NaN never wins). Fields with commas, quotes or line breaks
//! are quoted as RFC 4180 says. Written atomically.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One image's class probabilities, in class order.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub path: PathBuf,
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// Index of the most probable class (0 when every value is NaN).
    pub fn predicted(&self) -> usize {
        let mut best = 0;
        for (i, &p) in self.probabilities.iter().enumerate() {
            if p > self.probabilities[best] || self.probabilities[best].is_nan() && !p.is_nan() {
                best = i;
            }
        }
        best
    }
}

/// The CSV text; fails, naming the image, when a prediction does not have one
/// probability per class.
pub fn predictions_csv(classes: &[String], predictions: &[Prediction]) -> Result<String> {
    if classes.is_empty() {
        return Err(Error::Invalid("predictions need at least one class".into()));
    }
    let mut out = String::from("path,predicted");
    for class in classes {
        out.push(',');
        out.push_str(&field(&format!("probability_{class}")));
    }
    out.push('\n');
    for p in predictions {
        if p.probabilities.len() != classes.len() {
            return Err(Error::Invalid(format!(
                "prediction for {} has {} probabilities but there are {} classes",
                p.path.display(),
                p.probabilities.len(),
                classes.len()
            )));
        }
        let _ = write!(out, "{},{}", field(&p.path.display().to_string()), field(&classes[p.predicted()]));
        for v in &p.probabilities {
            let _ = write!(out, ",{v}");
        }
        out.push('\n');
    }
    Ok(out)
}

/// Writes `predictions_csv` to `path`, atomically.
pub fn save_predictions_csv(path: &Path, classes: &[String], predictions: &[Prediction]) -> Result<()> {
    let text = predictions_csv(classes, predictions)
        .map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    write_atomic(path, text.as_bytes())
}

/// `text` as one CSV field: quoted, with quotes doubled, when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}
