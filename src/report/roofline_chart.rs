//! The roofline picture of a kernel-lab run (`incept bench kernels
//! --roofline FILE.png`): log-log axes of arithmetic intensity (FLOP/byte)
//! and achieved GFLOP/s, the adapter's two ceilings as one bent line (memory
//! slope, then the compute roof), and each (variant, shape) as a dot in its
//! variant's colour, ringed where the adapter's rule picks that variant.

use super::canvas::{DrawResult, FONT, PALETTE, save_drawing};
use crate::error::{Error, Result};
use crate::lab::roofline::Roofline;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 700);

/// Writes the picture to `path` as a PNG, atomically.
pub fn save_roofline_png(roofline: &Roofline, path: &Path) -> Result<()> {
    if roofline.points.is_empty() {
        return Err(Error::Invalid(format!("family {}: no row counts FLOPs, so there is no roofline to draw", roofline.family)));
    }
    let c = roofline.ceilings;
    let ridge = c.gflops / c.gb_per_s;
    let (mut x_lo, mut x_hi) = (ridge / 4.0, ridge * 4.0);
    let (mut y_lo, y_hi) = (c.gflops / 1e3, c.gflops * 2.0);
    for p in &roofline.points {
        x_lo = x_lo.min(p.intensity / 2.0);
        x_hi = x_hi.max(p.intensity * 2.0);
        y_lo = y_lo.min(p.gflops_per_s / 2.0);
    }
    let mut variants: Vec<&str> = Vec::new();
    for p in &roofline.points {
        if !variants.contains(&p.variant.as_str()) {
            variants.push(&p.variant);
        }
    }
    save_drawing(path, SIZE, |root| -> DrawResult {
        let title = format!("Roofline: {} on {}", roofline.family, roofline.adapter);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(12)
            .y_labels(12)
            .x_desc("Arithmetic intensity (FLOP / byte, minimum bytes)")
            .y_desc("GFLOP/s")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()?;
        // The roof: bandwidth × intensity up to the ridge, then peak compute.
        let roof = [(x_lo, c.gb_per_s * x_lo), (ridge, c.gflops), (x_hi, c.gflops)];
        chart
            .draw_series(LineSeries::new(roof, BLACK.stroke_width(2)))?
            .label(format!("ceilings: {:.1} GB/s copy, {:.1} GFLOP/s FMA", c.gb_per_s, c.gflops))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));
        for (i, variant) in variants.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let mine: Vec<_> = roofline.points.iter().filter(|p| p.variant == *variant).collect();
            chart
                .draw_series(mine.iter().map(|p| Circle::new((p.intensity, p.gflops_per_s), 4, colour.filled())))?
                .label(variant.to_string())
                .legend(move |(x, y)| Circle::new((x + 12, y), 4, colour.filled()));
            chart.draw_series(mine.iter().filter(|p| p.picked).map(|p| Circle::new((p.intensity, p.gflops_per_s), 7, colour.stroke_width(1))))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}
