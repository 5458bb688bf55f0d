//! fastai's `plot_top_losses`: the images the model got most confidently
//! wrong — the k with the highest cross-entropy loss −ln p(actual class) —
//! as one PNG grid, highest loss first, each tile titled
//! "predicted / actual" over "loss / probability of actual". p is clipped at
//! 1e-7 (Keras's epsilon), so a probability of 0 gives a finite loss. Tiles
//! show the images resized to `TILE` pixels with the nearest rule, as the
//! model's input is made.

use super::canvas::{Canvas, DrawResult, FONT, save_drawing, text_size};
use super::predictions::Prediction;
use crate::data::load_rgb;
use crate::error::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

pub const TOP_LOSSES_PNG: &str = "top_losses.png";
/// The images `incept evaluate` shows unless told otherwise (`--top-losses`).
pub const DEFAULT_TOP_LOSSES: usize = 9;
/// Side of each image in the grid, in pixels.
pub const TILE: u32 = 180;
const PROBABILITY_FLOOR: f64 = 1e-7;
const MAX_NAME_CHARS: usize = 18;
const TITLE_FONT: f64 = 13.0;
const HEADER: u32 = 44;
const HEADER_FONT: f64 = 17.0;
const HEADER_TEXT: &str = "Top losses: predicted / actual, loss / probability of actual";
const TITLE_LINES: u32 = 2;
const LINE: u32 = 17;
const PAD: u32 = 10;

/// One image of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct TopLoss {
    pub path: PathBuf,
    pub predicted: usize,
    pub actual: usize,
    /// −ln max(p(actual), 1e-7).
    pub loss: f64,
    pub probability_of_actual: f64,
}

/// Cross-entropy of one prediction against its true class.
pub fn loss(prediction: &Prediction, actual: usize) -> f64 {
    let p = prediction.probabilities.get(actual).map_or(0.0, |&p| p as f64);
    -p.max(PROBABILITY_FLOOR).ln()
}

/// The `k` predictions with the highest loss (all of them when fewer),
/// highest first; equal losses keep their input order. `labels[i]` is the
/// true class of `predictions[i]`.
pub fn top_losses(predictions: &[Prediction], labels: &[usize], k: usize) -> Vec<TopLoss> {
    let mut all: Vec<TopLoss> = predictions
        .iter()
        .zip(labels)
        .map(|(p, &actual)| TopLoss {
            path: p.path.clone(),
            predicted: p.predicted(),
            actual,
            loss: loss(p, actual),
            probability_of_actual: p.probabilities.get(actual).map_or(0.0, |&v| v as f64),
        })
        .collect();
    all.sort_by(|a, b| b.loss.total_cmp(&a.loss));
    all.truncate(k);
    all
}

fn short_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name.to_string()
    } else {
        name.chars().take(MAX_NAME_CHARS - 1).chain(['…']).collect()
    }
}

/// Writes the grid of `top` (class names from `classes`) to `path`,
/// atomically; each image is read again from its file. Nothing is written
/// for an empty list.
pub fn save_top_losses_png(path: &Path, classes: &[String], top: &[TopLoss]) -> Result<()> {
    if top.is_empty() {
        return Ok(());
    }
    let mut tiles = Vec::with_capacity(top.len());
    for t in top {
        tiles.push(load_rgb(&t.path, TILE as usize)?);
    }
    let columns = (top.len() as f64).sqrt().ceil() as u32;
    let rows = (top.len() as u32).div_ceil(columns);
    let cell = (TILE + 2 * PAD, TILE + TITLE_LINES * LINE + 2 * PAD);
    // Tiles from the left; the picture is widened when the header is wider than they are.
    let size = ((columns * cell.0).max(text_size(HEADER_TEXT, HEADER_FONT)?.0 + 4 * PAD), HEADER + rows * cell.1);
    let name = |c: usize| classes.get(c).map_or_else(|| format!("class {c}"), |n| short_name(n));
    save_drawing(path, size, |root| {
        let header = (FONT, HEADER_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(HEADER_TEXT, (size.0 as i32 / 2, HEADER as i32 / 2), header))?;
        for (i, (t, pixels)) in top.iter().zip(&tiles).enumerate() {
            let (x, y) = ((i as u32 % columns) * cell.0, HEADER + (i as u32 / columns) * cell.1);
            let lines = [
                format!("{} / {}", name(t.predicted), name(t.actual)),
                format!("{:.2} / {:.2}", t.loss, t.probability_of_actual),
            ];
            draw_tile(root, (x + PAD, y + PAD), &lines, pixels)?;
        }
        Ok(())
    })
}

fn draw_tile(root: &Canvas<'_>, (x, y): (u32, u32), lines: &[String; 2], pixels: &[u8]) -> DrawResult {
    let style = (FONT, TITLE_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    for (k, line) in lines.iter().enumerate() {
        root.draw(&Text::new(line.as_str(), ((x + TILE / 2) as i32, (y + k as u32 * LINE) as i32), style.clone()))?;
    }
    let top = y + TITLE_LINES * LINE;
    for (j, row) in pixels.chunks_exact(TILE as usize * 3).enumerate() {
        for (i, p) in row.chunks_exact(3).enumerate() {
            root.draw_pixel(((x + i as u32) as i32, (top + j as u32) as i32), &RGBColor(p[0], p[1], p[2]))?;
        }
    }
    Ok(())
}
