//! The tutorial's two plots of a history: `loss.png` (training and validation
//! loss per epoch) and `accuracy.png` (training and validation accuracy), each
//! with a title, axis labels and a legend. Every epoch is also marked with a
//! dot, so a one-epoch history still shows its values. Non-finite values are
//! left out of the curves. `auc_png` draws the validation AUC the same way
//! (for `incept report`).

use super::canvas::{Canvas, DrawResult, FONT, PALETTE, drawing_png};
use super::history::{EpochRecord, History};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

pub const LOSS_PNG: &str = "loss.png";
pub const ACCURACY_PNG: &str = "accuracy.png";
/// Width and height of both plots in pixels.
pub const PLOT_SIZE: (u32, u32) = (800, 500);

const TRAINING: RGBColor = PALETTE[0];
const VALIDATION: RGBColor = PALETTE[1];

/// Writes `dir/loss.png` and `dir/accuracy.png`, each atomically.
pub fn save_plots(history: &History, dir: &Path) -> Result<()> {
    write_atomic(&dir.join(LOSS_PNG), &loss_png(history)?)?;
    write_atomic(&dir.join(ACCURACY_PNG), &accuracy_png(history)?)
}

/// `loss.png`'s picture, as PNG bytes.
pub fn loss_png(history: &History) -> Result<Vec<u8>> {
    let losses = history.epochs.iter().flat_map(|r| [r.loss, r.val_loss]);
    let top = losses.filter(|v| v.is_finite()).fold(0.0, f64::max);
    let loss = Panel {
        title: "Training and validation loss",
        y_label: "Loss",
        y_range: 0.0..if top > 0.0 { top * 1.1 } else { 1.0 },
        legend: SeriesLabelPosition::UpperRight,
    };
    loss.png(history, &[("Training", TRAINING, |r| Some(r.loss)), ("Validation", VALIDATION, |r| Some(r.val_loss))])
}

/// `accuracy.png`'s picture, as PNG bytes.
pub fn accuracy_png(history: &History) -> Result<Vec<u8>> {
    let accuracy = Panel {
        title: "Training and validation accuracy",
        y_label: "Accuracy",
        y_range: 0.0..1.0,
        legend: SeriesLabelPosition::LowerRight,
    };
    accuracy.png(history, &[("Training", TRAINING, |r| Some(r.accuracy)), ("Validation", VALIDATION, |r| Some(r.val_accuracy))])
}

/// The validation ROC-AUC per epoch (the run's report), as PNG bytes; `None`
/// when no epoch has one.
pub fn auc_png(history: &History) -> Result<Option<Vec<u8>>> {
    if history.epochs.iter().all(|r| r.val_auc.is_none()) {
        return Ok(None);
    }
    let auc = Panel { title: "Validation ROC-AUC (macro, one-vs-rest)", y_label: "AUC", y_range: 0.0..1.0, legend: SeriesLabelPosition::LowerRight };
    auc.png(history, &[("Validation", VALIDATION, |r| r.val_auc)]).map(Some)
}

/// One line of a plot.
struct Curve {
    label: &'static str,
    colour: RGBColor,
    points: Vec<(usize, f64)>,
}

/// A line to draw: its legend, its colour and the value it takes from each epoch.
type Metric = (&'static str, RGBColor, fn(&EpochRecord) -> Option<f64>);

struct Panel {
    title: &'static str,
    y_label: &'static str,
    y_range: Range<f64>,
    legend: SeriesLabelPosition,
}

impl Panel {
    /// Plots one line per metric over the epochs.
    fn png(&self, history: &History, metrics: &[Metric]) -> Result<Vec<u8>> {
        let Some(first) = history.epochs.first().map(|r| r.epoch) else {
            return Err(Error::Invalid("no epochs to plot: the history is empty".into()));
        };
        let curves = metrics
            .iter()
            .map(|&(label, colour, pick)| {
                let points = history.epochs.iter().filter_map(|r| pick(r).filter(|v| v.is_finite()).map(|v| (r.epoch, v)));
                Curve { label, colour, points: points.collect() }
            })
            .collect();
        // One epoch of space either side keeps the first and last dots off the axes.
        let epochs = first - 1..first + history.epochs.len();
        drawing_png(PLOT_SIZE, |root| self.draw(root, epochs, curves))
    }

    fn draw(&self, root: &Canvas<'_>, epochs: Range<usize>, curves: Vec<Curve>) -> DrawResult {
        let padding = [epochs.start, epochs.end];
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FONT, 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(epochs, self.y_range.clone())?;
        chart
            .configure_mesh()
            .x_desc("Epoch")
            // The padding epochs either side get no label.
            .x_label_formatter(&|e| if padding.contains(e) { String::new() } else { e.to_string() })
            .y_desc(self.y_label)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for curve in curves {
            let line = curve.colour.stroke_width(2);
            chart
                .draw_series(LineSeries::new(curve.points, line).point_size(4))?
                .label(curve.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}
