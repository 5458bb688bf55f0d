//! Everything `incept evaluate` reports about a labelled split, from the
//! per-image class probabilities: the classification report and confusion
//! matrix (`metrics`), balanced accuracy, one-vs-rest sensitivity,
//! specificity, ROC-AUC and average precision per class with their macro
//! means, as text and as `metrics.json`; the ROC and precision-recall plots
//! (`curves`), the grid of top losses (`top_losses`) and the per-image CSV
//! with the true class. Undefined values (a class with no sample, or with
//! every sample) are `n/a` in the text and `null` in the JSON.

use super::curves::{PRECISION_RECALL_PNG, ROC_PNG, save_precision_recall_png, save_roc_png};
use super::metrics::{ClassMetrics, ConfusionMatrix};
use super::pr::{average_precision, macro_average_precision, precision_recall_curve};
use super::predictions::{Prediction, labelled_predictions_csv};
use super::roc::{macro_auc, one_vs_rest, roc_auc, roc_curve};
use super::top_losses::{TOP_LOSSES_PNG, save_top_losses_png, top_losses};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub const METRICS_JSON: &str = "metrics.json";
pub const EVALUATION_CSV: &str = "evaluation_predictions.csv";

/// Where the probabilities came from, recorded in metrics.json.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvaluationSource {
    /// The split evaluated.
    pub data: String,
    /// `best` or `last`.
    pub checkpoint: String,
    /// Copies averaged per image (1: no test-time augmentation).
    pub tta: usize,
}

/// Precision, recall and F1 of a class or an average.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

impl From<ClassMetrics> for Scores {
    fn from(m: ClassMetrics) -> Scores {
        Scores { precision: m.precision, recall: m.recall, f1: m.f1, support: m.support }
    }
}

/// One class's row of metrics.json.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassReport {
    pub class: String,
    #[serde(flatten)]
    pub scores: Scores,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
}

/// The contents of metrics.json.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetricsReport {
    #[serde(flatten)]
    pub source: EvaluationSource,
    pub images: u64,
    pub classes: Vec<String>,
    pub accuracy: f64,
    pub balanced_accuracy: Option<f64>,
    pub macro_roc_auc: Option<f64>,
    pub macro_average_precision: Option<f64>,
    pub macro_avg: Scores,
    pub weighted_avg: Scores,
    pub per_class: Vec<ClassReport>,
    /// `confusion_matrix[true][predicted]`.
    pub confusion_matrix: Vec<Vec<u64>>,
}

/// A split's predictions with their true classes.
pub struct Evaluation {
    classes: Vec<String>,
    predictions: Vec<Prediction>,
    labels: Vec<usize>,
    confusion: ConfusionMatrix,
    /// Row-major `[images × classes]`.
    probabilities: Vec<f32>,
}

/// The files [`Evaluation::save`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluationFiles {
    pub metrics: PathBuf,
    pub predictions: PathBuf,
    pub roc: PathBuf,
    pub precision_recall: PathBuf,
    /// `None` when no top-loss grid was asked for.
    pub top_losses: Option<PathBuf>,
}

impl Evaluation {
    /// Fails when a prediction does not have one probability per class or a
    /// label is not a class.
    pub fn new(classes: Vec<String>, predictions: Vec<Prediction>, labels: Vec<usize>) -> Result<Evaluation> {
        if labels.len() != predictions.len() {
            return Err(Error::Invalid(format!("{} predictions but {} labels", predictions.len(), labels.len())));
        }
        let mut confusion = ConfusionMatrix::new(classes.clone());
        let mut probabilities = Vec::with_capacity(predictions.len() * classes.len());
        for (p, &label) in predictions.iter().zip(&labels) {
            if p.probabilities.len() != classes.len() {
                return Err(Error::Invalid(format!(
                    "prediction for {} has {} probabilities but there are {} classes",
                    p.path.display(),
                    p.probabilities.len(),
                    classes.len()
                )));
            }
            confusion.add(label, p.predicted())?;
            probabilities.extend_from_slice(&p.probabilities);
        }
        Ok(Evaluation { classes, predictions, labels, confusion, probabilities })
    }

    pub fn confusion(&self) -> &ConfusionMatrix {
        &self.confusion
    }

    fn per_class<T>(&self, binary: impl Fn(&[f32], &[bool]) -> Option<T>) -> Vec<Option<T>> {
        one_vs_rest(&self.probabilities, &self.labels, self.classes.len(), binary)
    }

    /// Every number of the evaluation, as metrics.json holds them.
    pub fn report(&self, source: EvaluationSource) -> MetricsReport {
        let cm = &self.confusion;
        let auc = self.per_class(roc_auc);
        let ap = self.per_class(average_precision);
        let n = self.classes.len();
        let per_class = (0..n)
            .map(|c| ClassReport {
                class: self.classes[c].clone(),
                scores: cm.class_metrics(c).into(),
                sensitivity: cm.sensitivity(c),
                specificity: cm.specificity(c),
                roc_auc: auc[c],
                average_precision: ap[c],
            })
            .collect();
        MetricsReport {
            source,
            images: cm.total(),
            classes: self.classes.clone(),
            accuracy: cm.accuracy(),
            balanced_accuracy: cm.balanced_accuracy(),
            macro_roc_auc: macro_auc(&auc),
            macro_average_precision: macro_average_precision(&ap),
            macro_avg: cm.macro_average().into(),
            weighted_avg: cm.weighted_average().into(),
            per_class,
            confusion_matrix: (0..n).map(|t| (0..n).map(|p| cm.count(t, p)).collect()).collect(),
        }
    }

    /// The classification report and confusion matrix, then the one-vs-rest
    /// table (sensitivity, specificity, ROC-AUC, average precision) and the
    /// balanced accuracy and macro means.
    pub fn to_text(&self, report: &MetricsReport) -> String {
        let mut out = self.confusion.to_text();
        let width = self.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).max("class".len());
        let f = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"));
        let _ = writeln!(
            out,
            "\nOne-vs-rest (each class against all others)\n{:>width$} {:>11} {:>11} {:>9} {:>9}",
            "class", "sensitivity", "specificity", "roc_auc", "avg_prec"
        );
        for r in &report.per_class {
            let _ = writeln!(
                out,
                "{:>width$} {:>11} {:>11} {:>9} {:>9}",
                r.class,
                f(r.sensitivity),
                f(r.specificity),
                f(r.roc_auc),
                f(r.average_precision)
            );
        }
        let _ = writeln!(out, "\nbalanced accuracy:       {}", f(report.balanced_accuracy));
        let _ = writeln!(out, "macro ROC-AUC:           {}", f(report.macro_roc_auc));
        let _ = write!(out, "macro average precision: {}", f(report.macro_average_precision));
        out
    }

    /// Writes metrics.json, the per-image CSV, roc.png, precision_recall.png
    /// and (unless `top_losses_k` is 0) top_losses.png with that many images,
    /// into `dir`, each atomically.
    pub fn save(&self, dir: &Path, report: &MetricsReport, top_losses_k: usize) -> Result<EvaluationFiles> {
        let files = EvaluationFiles {
            metrics: dir.join(METRICS_JSON),
            predictions: dir.join(EVALUATION_CSV),
            roc: dir.join(ROC_PNG),
            precision_recall: dir.join(PRECISION_RECALL_PNG),
            top_losses: (top_losses_k > 0).then(|| dir.join(TOP_LOSSES_PNG)),
        };
        let json = serde_json::to_vec_pretty(report)
            .map_err(|e| Error::Io { path: files.metrics.display().to_string(), reason: format!("encoding JSON: {e}") })?;
        write_atomic(&files.metrics, &json)?;
        write_atomic(&files.predictions, &labelled_predictions_csv(&self.classes, &self.predictions, &self.labels)?)?;
        save_roc_png(&files.roc, &self.classes, &self.per_class(roc_curve), &self.per_class(roc_auc))?;
        let ap = self.per_class(average_precision);
        save_precision_recall_png(&files.precision_recall, &self.classes, &self.per_class(precision_recall_curve), &ap)?;
        if let Some(path) = &files.top_losses {
            save_top_losses_png(path, &self.classes, &top_losses(&self.predictions, &self.labels, top_losses_k))?;
        }
        Ok(files)
    }
}
