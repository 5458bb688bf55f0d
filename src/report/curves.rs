//! The ROC and precision-recall plots of an evaluation: one curve per class
//! (one-vs-rest) on the unit square, in the palette of the loss and accuracy
//! plots, with the class's AUC or average precision in the legend. The ROC
//! plot adds the chance diagonal; precision-recall curves are drawn as steps,
//! as sklearn's `PrecisionRecallDisplay` does (average precision is the area
//! under these steps). A class whose curve is undefined (`None`) is named in
//! the legend with "n/a" and has no line.

use super::canvas::{Canvas, DrawResult, FONT, PALETTE, save_drawing};
use super::pr::PrPoint;
use super::roc::RocPoint;
use crate::error::Result;
use plotters::prelude::*;
use std::path::Path;

pub const ROC_PNG: &str = "roc.png";
pub const PRECISION_RECALL_PNG: &str = "precision_recall.png";
/// Width and height of both plots in pixels.
pub const CURVE_PLOT_SIZE: (u32, u32) = (700, 640);

/// One class's curve (x, y in [0, 1]) and its legend text.
struct Series {
    label: String,
    points: Option<Vec<(f64, f64)>>,
}

struct Plot {
    title: &'static str,
    x_label: &'static str,
    y_label: &'static str,
    chance_diagonal: bool,
    legend: SeriesLabelPosition,
}

/// The legend's figure: "0.8750", or "n/a" when undefined.
fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
}

/// Writes the one-vs-rest ROC curves of `classes` (with their AUCs) to `path`, atomically.
pub fn save_roc_png(path: &Path, classes: &[String], curves: &[Option<Vec<RocPoint>>], auc: &[Option<f64>]) -> Result<()> {
    let series = classes
        .iter()
        .zip(curves)
        .zip(auc)
        .map(|((class, curve), auc)| Series {
            label: format!("{class} (AUC {})", score(*auc)),
            points: curve.as_ref().map(|c| c.iter().map(|p| (p.false_positive_rate, p.true_positive_rate)).collect()),
        })
        .collect();
    let plot = Plot {
        title: "ROC curves (one-vs-rest)",
        x_label: "False positive rate (1 − specificity)",
        y_label: "True positive rate (sensitivity)",
        chance_diagonal: true,
        legend: SeriesLabelPosition::LowerRight,
    };
    save_drawing(path, CURVE_PLOT_SIZE, |root| plot.draw(root, series))
}

/// Writes the one-vs-rest precision-recall curves of `classes` (with their
/// average precisions) to `path`, atomically.
pub fn save_precision_recall_png(
    path: &Path,
    classes: &[String],
    curves: &[Option<Vec<PrPoint>>],
    average_precision: &[Option<f64>],
) -> Result<()> {
    let series = classes
        .iter()
        .zip(curves)
        .zip(average_precision)
        .map(|((class, curve), ap)| Series {
            label: format!("{class} (AP {})", score(*ap)),
            points: curve.as_ref().map(|c| steps(c)),
        })
        .collect();
    let plot = Plot {
        title: "Precision-recall curves (one-vs-rest)",
        x_label: "Recall (sensitivity)",
        y_label: "Precision",
        chance_diagonal: false,
        legend: SeriesLabelPosition::LowerLeft,
    };
    save_drawing(path, CURVE_PLOT_SIZE, |root| plot.draw(root, series))
}

/// matplotlib's `drawstyle="steps-post"` through the curve's (recall, precision) points.
fn steps(curve: &[PrPoint]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * curve.len());
    for (i, p) in curve.iter().enumerate() {
        if i > 0 {
            out.push((p.recall, curve[i - 1].precision));
        }
        out.push((p.recall, p.precision));
    }
    out
}

impl Plot {
    fn draw(&self, root: &Canvas<'_>, series: Vec<Series>) -> DrawResult {
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FONT, 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.01f64..1.01, -0.01f64..1.01)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if self.chance_diagonal {
            let dashed = BLACK.mix(0.5).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new([(0.0, 0.0), (1.0, 1.0)], 6, 4, dashed))?
                .label("chance (AUC 0.5)")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], dashed));
        }
        for (i, s) in series.into_iter().enumerate() {
            let line = PALETTE[i % PALETTE.len()].stroke_width(2);
            let points = s.points.unwrap_or_default();
            chart
                .draw_series(LineSeries::new(points, line))?
                .label(s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}
