//! Classification metrics from a confusion matrix, as scikit-learn's
//! `classification_report` computes them: per-class precision, recall, F1 and
//! support, with 0 where a ratio is undefined (`zero_division=0`), their macro
//! (unweighted) and support-weighted averages, and the overall accuracy.
//! Every class given to `new` counts in the averages, even one with no
//! samples, as sklearn does when `labels` are passed explicitly. Also the
//! one-vs-rest sensitivity and specificity a clinician reads, and sklearn's
//! balanced accuracy.

use super::heatmap;
use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::Path;

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    classes: Vec<String>,
    /// Row-major, `counts[truth * n + predicted]`.
    counts: Vec<u64>,
}

/// One class's scores, or an average of them (`support` is then the total).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of samples whose true class this is.
    pub support: u64,
}

/// `num / den`, or 0 when `den` is 0.
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

impl ConfusionMatrix {
    /// An empty matrix over `classes` (index i is class `classes[i]`).
    pub fn new(classes: Vec<String>) -> Self {
        let n = classes.len();
        Self { classes, counts: vec![0; n * n] }
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Records one sample; fails when an index is not a class.
    pub fn add(&mut self, truth: usize, predicted: usize) -> Result<()> {
        let n = self.classes.len();
        if truth >= n || predicted >= n {
            return Err(Error::Invalid(format!(
                "confusion matrix: class indices (truth {truth}, predicted {predicted}) out of range for {n} classes"
            )));
        }
        self.counts[truth * n + predicted] += 1;
        Ok(())
    }

    /// Samples of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes.len() + predicted]
    }

    /// Number of samples recorded.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Fraction of samples predicted correctly (0 when empty).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes.len()).map(|i| self.count(i, i)).sum();
        ratio(correct as f64, self.total() as f64)
    }

    /// Precision, recall, F1 and support of class `class`.
    pub fn class_metrics(&self, class: usize) -> ClassMetrics {
        let n = self.classes.len();
        let hits = self.count(class, class) as f64;
        let support: u64 = (0..n).map(|p| self.count(class, p)).sum();
        let predicted: u64 = (0..n).map(|t| self.count(t, class)).sum();
        let precision = ratio(hits, predicted as f64);
        let recall = ratio(hits, support as f64);
        ClassMetrics { precision, recall, f1: ratio(2.0 * precision * recall, precision + recall), support }
    }

    /// One-vs-rest sensitivity (true positive rate, the recall) of class
    /// `class`: TP / (TP + FN); `None` when no sample is of that class.
    pub fn sensitivity(&self, class: usize) -> Option<f64> {
        let n = self.classes.len();
        let support: u64 = (0..n).map(|p| self.count(class, p)).sum();
        (support > 0).then(|| self.count(class, class) as f64 / support as f64)
    }

    /// One-vs-rest specificity (true negative rate) of class `class`:
    /// TN / (TN + FP) over the samples of every other class; `None` when
    /// every sample is of that class.
    pub fn specificity(&self, class: usize) -> Option<f64> {
        let n = self.classes.len();
        let negatives: u64 = (0..n).filter(|&t| t != class).flat_map(|t| (0..n).map(move |p| (t, p))).map(|(t, p)| self.count(t, p)).sum();
        let false_positives: u64 = (0..n).filter(|&t| t != class).map(|t| self.count(t, class)).sum();
        (negatives > 0).then(|| (negatives - false_positives) as f64 / negatives as f64)
    }

    /// sklearn's `balanced_accuracy_score`: the mean recall over the classes
    /// that occur among the true labels (a class with no sample is left out,
    /// as sklearn does); `None` when the matrix is empty.
    pub fn balanced_accuracy(&self) -> Option<f64> {
        let recalls: Vec<f64> = (0..self.classes.len()).filter_map(|c| self.sensitivity(c)).collect();
        (!recalls.is_empty()).then(|| recalls.iter().sum::<f64>() / recalls.len() as f64)
    }

    /// `class_metrics` of every class, in class order.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        (0..self.classes.len()).map(|c| self.class_metrics(c)).collect()
    }

    /// Unweighted mean over classes; `support` is the total.
    pub fn macro_average(&self) -> ClassMetrics {
        self.average(|_| 1.0)
    }

    /// Mean over classes weighted by support; `support` is the total.
    pub fn weighted_average(&self) -> ClassMetrics {
        self.average(|m| m.support as f64)
    }

    fn average(&self, weight: impl Fn(&ClassMetrics) -> f64) -> ClassMetrics {
        let all = self.per_class();
        let total_weight: f64 = all.iter().map(&weight).sum();
        let mean =
            |score: fn(&ClassMetrics) -> f64| ratio(all.iter().map(|m| weight(m) * score(m)).sum(), total_weight);
        ClassMetrics {
            precision: mean(|m| m.precision),
            recall: mean(|m| m.recall),
            f1: mean(|m| m.f1),
            support: self.total(),
        }
    }

    /// A classification report laid out like sklearn's, followed by the matrix
    /// with class names (rows: true class, columns: predicted class).
    pub fn to_text(&self) -> String {
        let width = self.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).max("weighted avg".len());
        let mut out =
            format!("{:>width$} {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        let row = |out: &mut String, name: &str, m: &ClassMetrics| {
            let _ =
                writeln!(out, "{name:>width$} {:>9.4} {:>9.4} {:>9.4} {:>9}", m.precision, m.recall, m.f1, m.support);
        };
        for (name, m) in self.classes.iter().zip(self.per_class()) {
            row(&mut out, name, &m);
        }
        out.push('\n');
        let _ =
            writeln!(out, "{:>width$} {:>9} {:>9} {:>9.4} {:>9}", "accuracy", "", "", self.accuracy(), self.total());
        row(&mut out, "macro avg", &self.macro_average());
        row(&mut out, "weighted avg", &self.weighted_average());

        out.push_str("\nConfusion matrix (rows: true class, columns: predicted class)\n");
        let name_width = self.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0);
        let cell = |c: usize| {
            let widest_count = (0..self.classes.len()).map(|t| self.count(t, c).to_string().len()).max().unwrap_or(1);
            self.classes[c].chars().count().max(widest_count)
        };
        let _ = write!(out, "{:name_width$}", "");
        for (c, name) in self.classes.iter().enumerate() {
            let _ = write!(out, "  {name:>w$}", w = cell(c));
        }
        out.push('\n');
        for (t, name) in self.classes.iter().enumerate() {
            let _ = write!(out, "{name:>name_width$}");
            for c in 0..self.classes.len() {
                let _ = write!(out, "  {:>w$}", self.count(t, c), w = cell(c));
            }
            out.push('\n');
        }
        out
    }

    /// Writes a heat map of the matrix with its counts and class names as a
    /// PNG, atomically (see `heatmap`).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        heatmap::save_confusion_png(self, path)
    }

    /// The same heat map as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        heatmap::confusion_png(self)
    }
}
