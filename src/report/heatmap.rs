//! The confusion-matrix heat map: one square per (true, predicted) pair,
//! shaded from white to dark blue by its count relative to the largest count,
//! the count written in it, class names along both axes (long names cut to
//! `MAX_NAME_CHARS`). The image grows with the longest class name; cells shrink
//! as classes are added, and counts, then names, that no longer fit are left out.

use super::canvas::{Canvas, DrawResult, FONT, drawing_png, save_drawing, text_size};
use super::metrics::ConfusionMatrix;
use crate::error::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const MAX_NAME_CHARS: usize = 24;
const NAME_FONT: f64 = 15.0;
const LABEL_FONT: f64 = 17.0;
const TITLE_FONT: f64 = 22.0;
const MARGIN: u32 = 20;
const GAP: u32 = 8;
const TITLE_HEIGHT: u32 = 50;
/// Largest grid side in pixels (1000 classes still make a picture of sensible size).
const MAX_GRID: u32 = 2400;
const MIN_CELL_FOR_NAMES: u32 = 16;

/// Pixel layout of the picture.
struct Layout {
    cell: u32,
    /// Top-left corner of the grid.
    left: u32,
    top: u32,
    size: (u32, u32),
    title_width: u32,
}

pub(crate) fn save_confusion_png(matrix: &ConfusionMatrix, path: &Path) -> Result<()> {
    let (layout, names, counts) = plan(matrix)?;
    save_drawing(path, layout.size, |root| draw(root, matrix, &names, &layout, counts))
}

/// The same picture as PNG bytes.
pub(crate) fn confusion_png(matrix: &ConfusionMatrix) -> Result<Vec<u8>> {
    let (layout, names, counts) = plan(matrix)?;
    drawing_png(layout.size, |root| draw(root, matrix, &names, &layout, counts))
}

/// The picture's layout, the class names drawn and the size of the counts' font.
fn plan(matrix: &ConfusionMatrix) -> Result<(Layout, Vec<String>, Option<f64>)> {
    let n = matrix.classes().len().max(1) as u32;
    let cell = (640 / n).clamp(20, 90).min((MAX_GRID / n).max(1));
    // Names need a row of their own height; with smaller cells they would overlap.
    let names: Vec<String> =
        if cell >= MIN_CELL_FOR_NAMES { matrix.classes().iter().map(|c| short_name(c)).collect() } else { Vec::new() };
    let mut name_width = 0;
    for name in &names {
        name_width = name_width.max(text_size(name, NAME_FONT)?.0);
    }
    let label_height = text_size("Predicted label", LABEL_FONT)?.1;
    let title_width = text_size("Confusion matrix", TITLE_FONT)?.0;
    let left = MARGIN + label_height + GAP + name_width + GAP;
    let top = TITLE_HEIGHT;
    let width = (left + n * cell + MARGIN).max(title_width + 2 * MARGIN);
    let height = top + n * cell + GAP + name_width + GAP + label_height + MARGIN;
    let layout = Layout { cell, left, top, size: (width, height), title_width };
    let counts = count_font(matrix, cell)?;
    Ok((layout, names, counts))
}

fn short_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name.to_string()
    } else {
        name.chars().take(MAX_NAME_CHARS - 1).chain(['…']).collect()
    }
}

fn largest_count(matrix: &ConfusionMatrix) -> u64 {
    let n = matrix.classes().len();
    (0..n).flat_map(|t| (0..n).map(move |p| matrix.count(t, p))).max().unwrap_or(0)
}

/// The font size for counts, or None when the largest count does not fit a cell.
fn count_font(matrix: &ConfusionMatrix, cell: u32) -> Result<Option<f64>> {
    let size = (cell as f64 * 0.35).clamp(9.0, 18.0);
    let (w, h) = text_size(&largest_count(matrix).to_string(), size)?;
    Ok((w + 4 <= cell && h + 4 <= cell).then_some(size))
}

/// White (247, 251, 255) to dark blue (8, 48, 107), matplotlib's "Blues" ends.
fn shade(t: f64) -> RGBColor {
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

fn draw(root: &Canvas<'_>, matrix: &ConfusionMatrix, names: &[String], at: &Layout, counts: Option<f64>) -> DrawResult {
    let classes = matrix.classes().len();
    let n = classes as i32;
    let (cell, left, top) = (at.cell as i32, at.left as i32, at.top as i32);
    let grid_end = (left + n * cell, top + n * cell);
    let centred = Pos::new(HPos::Center, VPos::Center);
    let title = (FONT, TITLE_FONT).into_font().color(&BLACK).pos(centred);
    // Centred over the grid, as far as the picture's width allows.
    let half_title = at.title_width as i32 / 2 + MARGIN as i32;
    let title_x = (left + n * cell / 2).min(at.size.0 as i32 - half_title).max(half_title);
    root.draw(&Text::new("Confusion matrix", (title_x, TITLE_HEIGHT as i32 / 2), title))?;

    let largest = largest_count(matrix).max(1) as f64;
    for t in 0..classes {
        for p in 0..classes {
            let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
            let share = matrix.count(t, p) as f64 / largest;
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], shade(share).filled()))?;
            if let Some(size) = counts {
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = (FONT, size).into_font().color(&ink).pos(centred);
                root.draw(&Text::new(matrix.count(t, p).to_string(), (x + cell / 2, y + cell / 2), style))?;
            }
        }
    }
    root.draw(&Rectangle::new([(left, top), grid_end], BLACK.stroke_width(1)))?;

    // Row names end just left of the grid; column names run upwards from just below it.
    let row_style = (FONT, NAME_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
    let column_style = (FONT, NAME_FONT)
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let middle = i as i32 * cell + cell / 2;
        root.draw(&Text::new(name.as_str(), (left - GAP as i32, top + middle), row_style.clone()))?;
        root.draw(&Text::new(name.as_str(), (left + middle, grid_end.1 + GAP as i32), column_style.clone()))?;
    }
    let label = (FONT, LABEL_FONT).into_font().color(&BLACK).pos(centred);
    let below_names = at.size.1 as i32 - MARGIN as i32 - LABEL_FONT as i32 / 2;
    root.draw(&Text::new("Predicted label", (left + n * cell / 2, below_names), label.clone()))?;
    let side = label.transform(FontTransform::Rotate270);
    root.draw(&Text::new("True label", (MARGIN as i32 + LABEL_FONT as i32 / 2, top + n * cell / 2), side))?;
    Ok(())
}
