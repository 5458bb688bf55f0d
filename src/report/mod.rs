//! Run outputs of `incept train` and `incept evaluate`, as in the Keras
//! transfer-learning tutorial: the per-epoch history (CSV and Keras-like
//! JSON), the loss and accuracy plots, the confusion matrix with a
//! classification report and heat map, ROC curves and their AUC, per-image predictions, profiles
//! of the GPU work (tables, JSON and a bar chart), and the Grad-CAM pictures of `incept explain`.
//!
//! Everything here runs on the CPU, and every file is written atomically
//! (`io::atomic`), so an interrupted run never leaves a half-written output.

mod canvas;
pub mod grad_cam;
mod heatmap;
pub mod history;
pub mod metrics;
pub mod plots;
pub mod predictions;
pub mod profile;
mod profile_chart;
pub mod roc;

pub use history::{EpochRecord, History};
pub use metrics::{ClassMetrics, ConfusionMatrix};
pub use plots::save_plots;
pub use predictions::{Prediction, predictions_csv, save_predictions_csv};
pub use profile::ProfileReport;
