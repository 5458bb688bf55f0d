//! Run outputs of `incept train` and `incept evaluate`, as in the Keras
//! transfer-learning tutorial: the per-epoch history (CSV and Keras-like
//! JSON), the loss and accuracy plots, the confusion matrix with a
//! classification report and heat map, ROC and precision-recall curves with
//! their AUC and average precision, the clinical one-vs-rest metrics and
//! metrics.json (`evaluation`), the grid of top losses, per-image
//! predictions, profiles of the GPU work (tables, JSON and a bar chart), and
//! the Grad-CAM pictures of `incept explain`, TensorBoard event files
//! (`tensorboard`) and the one-page HTML report of a run (`run_report`).
//!
//! Everything here runs on the CPU, and every file is written atomically
//! (`io::atomic`), so an interrupted run never leaves a half-written output;
//! TensorBoard event files, which TensorBoard reads while they grow, are
//! appended to instead (see `tensorboard`).

mod canvas;
pub mod curves;
pub mod evaluation;
pub mod grad_cam;
mod heatmap;
pub mod history;
pub mod html;
pub mod metrics;
pub mod plots;
pub mod pr;
pub mod predictions;
pub mod profile;
mod profile_chart;
pub mod roc;
pub mod roofline_chart;
pub mod run_report;
pub mod tensorboard;
pub mod top_losses;

pub use history::{EpochRecord, History};
pub use evaluation::{Evaluation, EvaluationSource, MetricsReport};
pub use metrics::{ClassMetrics, ConfusionMatrix};
pub use plots::save_plots;
pub use predictions::{Prediction, labelled_predictions_csv, predictions_csv, save_predictions_csv};
pub use profile::ProfileReport;
