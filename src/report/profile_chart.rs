//! `profile.png`: a profile report as horizontal bars of milliseconds per
//! step, in two panels: the largest kernel variants together with the parts
//! of the time outside kernels and the unaccounted time, then the largest layers.

use super::canvas::{Canvas, DrawResult, FONT, save_drawing, text_size};
use super::profile::{ProfileReport, UNACCOUNTED, shorten};
use crate::error::Result;
use plotters::prelude::*;
use std::path::Path;

const KERNEL: RGBColor = RGBColor(31, 119, 180); // matplotlib's first two colours, as in the history plots
const OUTSIDE: RGBColor = RGBColor(255, 127, 14);
const WIDTH: u32 = 1200;
const BAR_HEIGHT: u32 = 22;
/// Caption, x axis and margins of one panel.
const PANEL_CHROME: u32 = 110;
const LABEL_CHARS: usize = 72;
const LABEL_SIZE: f64 = 13.0;

struct Bar {
    label: String,
    ms: f64,
    colour: RGBColor,
}

impl ProfileReport {
    /// Writes the bar chart of the `top` largest kernel variants and layers to `path`, atomically.
    pub fn save_chart(&self, path: &Path, top: usize) -> Result<()> {
        let per_step = |ms: f64| ms / self.steps as f64;
        let mut kernels: Vec<Bar> =
            self.variants.iter().take(top).map(|r| Bar { label: shorten(&r.name, LABEL_CHARS), ms: per_step(r.ms), colour: KERNEL }).collect();
        let outside = self.outside.iter().filter(|p| p.ms > 0.0);
        kernels.extend(outside.map(|p| Bar { label: format!("outside kernels: {}", p.name), ms: per_step(p.ms), colour: OUTSIDE }));
        if self.accounting.unaccounted_ms > 0.0 {
            kernels.push(Bar { label: UNACCOUNTED.into(), ms: per_step(self.accounting.unaccounted_ms), colour: OUTSIDE });
        }
        let layers: Vec<Bar> =
            self.layers.iter().take(top).map(|r| Bar { label: shorten(&r.name, LABEL_CHARS), ms: per_step(r.ms), colour: KERNEL }).collect();

        let mut label_width = 100;
        for b in kernels.iter().chain(&layers) {
            label_width = label_width.max(text_size(&b.label, LABEL_SIZE)?.0 + 16);
        }
        let heights = [kernels.len(), layers.len()].map(|n| n as u32 * BAR_HEIGHT + PANEL_CHROME);
        let title = format!("{}: {:.1} ms per step on {} ({:.0}% in kernels)", self.label, self.step_ms, self.adapter, 100.0 * self.kernel_share());
        save_drawing(path, (WIDTH, heights[0] + heights[1] + 40), |root| {
            let root = root.titled(&title, (FONT, 22))?;
            let (upper, lower) = root.split_vertically(heights[0]);
            draw_panel(&upper, "Kernel variants and time outside kernels (ms per step)", &kernels, label_width)?;
            draw_panel(&lower, "Layers (ms of kernels per step)", &layers, label_width)
        })
    }
}

fn draw_panel(area: &Canvas<'_>, caption: &str, bars: &[Bar], label_width: u32) -> DrawResult {
    if bars.is_empty() {
        return Ok(());
    }
    let n = bars.len();
    let top = bars.iter().map(|b| b.ms).fold(0.0, f64::max);
    let x_max = if top > 0.0 { top * 1.08 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..x_max, (0..n).into_segmented())?;
    // The largest bar on top: bar i sits in segment n - 1 - i.
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(s) if *s < n => bars[n - 1 - s].label.clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label)
        .x_desc("ms")
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let s = n - 1 - i;
        let mut r = Rectangle::new([(0.0, SegmentValue::Exact(s)), (b.ms, SegmentValue::Exact(s + 1))], b.colour.filled());
        r.set_margin(3, 3, 0, 0);
        r
    }))?;
    Ok(())
}
