//! The Grad-CAM picture of one image (`incept explain`): title lines above
//! two panels, the image as the network saw it and the same image with the
//! map laid over it in matplotlib's "jet" colour map (the keras.io Grad-CAM
//! example's), then a colour bar from 0 to the map's largest value with its
//! values written beside it. Panels are the network's input scaled up by
//! the smallest whole factor that makes them at least [`MIN_PANEL`] pixels
//! wide (nearest neighbour, so its pixels stay visible); the map is
//! upsampled to the panel bilinearly.

use super::canvas::{Canvas, DrawResult, FONT, save_drawing_on, text_size};
use crate::error::{Error, Result};
use crate::explain::resize_bilinear;
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The smallest panel side in pixels.
pub const MIN_PANEL: usize = 256;
/// How much of the overlay's colour is the map's (the rest is the image's).
const OVERLAY_ALPHA: f64 = 0.4;
const TITLE_FONT: f64 = 17.0;
const CAPTION_FONT: f64 = 14.0;
const TICK_FONT: f64 = 13.0;
const MARGIN: u32 = 16;
const GAP: u32 = 12;
const LINE_GAP: u32 = 6;
const BAR_WIDTH: u32 = 18;
const TICK_LENGTH: u32 = 5;

/// What one picture shows.
pub struct GradCamPicture<'a> {
    /// Lines above the panels (the file, the prediction, the class shown).
    pub title: &'a [String],
    /// Captions above the two panels.
    pub captions: [&'a str; 2],
    /// The network's input, row-major RGB bytes, `image_size`² pixels.
    pub image: &'a [u8],
    pub image_size: usize,
    /// The Grad-CAM map before upsampling, row-major, and its (height, width).
    pub map: &'a [f32],
    pub map_size: (usize, usize),
}

/// The side of each panel for an `image_size`² network input.
pub fn panel_side(image_size: usize) -> usize {
    image_size * MIN_PANEL.div_ceil(image_size.max(1))
}

/// Writes the picture to `path` as a PNG, atomically.
pub fn save_grad_cam_png(path: &Path, picture: &GradCamPicture<'_>) -> Result<()> {
    let s = picture.image_size;
    if picture.image.len() != s * s * 3 || picture.map.len() != picture.map_size.0 * picture.map_size.1 || picture.map.is_empty() {
        return Err(Error::Shape(format!(
            "{}: a {s}x{s} RGB image and a {}x{} map were expected, got {} bytes and {} values",
            path.display(),
            picture.map_size.0,
            picture.map_size.1,
            picture.image.len(),
            picture.map.len()
        )));
    }
    let panel = panel_side(s) as u32;
    let largest = picture.map.iter().copied().fold(0.0f32, f32::max);
    let ticks = ticks(largest);
    let mut line_height = 0;
    let mut title_width = 0;
    for line in picture.title {
        let (w, h) = text_size(line, TITLE_FONT)?;
        title_width = title_width.max(w);
        line_height = line_height.max(h);
    }
    let caption_height = text_size("Hg", CAPTION_FONT)?.1;
    let mut tick_width = 0;
    for (_, label) in &ticks {
        tick_width = tick_width.max(text_size(label, TICK_FONT)?.0);
    }
    let title_height = picture.title.len() as u32 * (line_height + LINE_GAP);
    let top = MARGIN + title_height + GAP + caption_height + LINE_GAP;
    let bar_left = MARGIN + 2 * panel + 2 * GAP;
    let width = (bar_left + BAR_WIDTH + TICK_LENGTH + 4 + tick_width + MARGIN).max(title_width + 2 * MARGIN);
    let height = top + panel + MARGIN;
    let layout = Layout { panel, top, bar_left, line_height, caption_top: top - LINE_GAP - caption_height };

    let mut background = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    compose(&mut background, picture, &layout, largest);
    save_drawing_on(path, background, |root| draw(root, picture, &layout, &ticks, largest))
}

struct Layout {
    panel: u32,
    /// Top of the panels and the bar.
    top: u32,
    bar_left: u32,
    line_height: u32,
    caption_top: u32,
}

/// The pixels: the input panel, the overlay panel and the colour bar.
fn compose(canvas: &mut RgbImage, picture: &GradCamPicture<'_>, at: &Layout, largest: f32) {
    let (s, panel) = (picture.image_size, at.panel as usize);
    let scale = panel / s;
    let heat = resize_bilinear(picture.map, picture.map_size, (panel, panel));
    let share = |v: f32| if largest > 0.0 { (v / largest).clamp(0.0, 1.0) as f64 } else { 0.0 };
    let overlay_left = MARGIN + at.panel + GAP;
    for y in 0..panel {
        for x in 0..panel {
            let source = &picture.image[((y / scale) * s + x / scale) * 3..][..3];
            let colour = jet(share(heat[y * panel + x]));
            let mix = |k: usize| (source[k] as f64 * (1.0 - OVERLAY_ALPHA) + colour[k] as f64 * OVERLAY_ALPHA).round() as u8;
            let (px, py) = (x as u32, at.top + y as u32);
            canvas.put_pixel(MARGIN + px, py, Rgb([source[0], source[1], source[2]]));
            canvas.put_pixel(overlay_left + px, py, Rgb([mix(0), mix(1), mix(2)]));
        }
    }
    // The bar: the largest value at the top, 0 at the bottom.
    for y in 0..at.panel {
        let colour = Rgb(jet(1.0 - y as f64 / (at.panel - 1).max(1) as f64));
        for x in 0..BAR_WIDTH {
            canvas.put_pixel(at.bar_left + x, at.top + y, colour);
        }
    }
}

/// The text, the frames and the bar's ticks.
fn draw(root: &Canvas<'_>, picture: &GradCamPicture<'_>, at: &Layout, ticks: &[(f32, String)], largest: f32) -> DrawResult {
    let left_top = Pos::new(HPos::Left, VPos::Top);
    let title = (FONT, TITLE_FONT).into_font().color(&BLACK).pos(left_top);
    for (k, line) in picture.title.iter().enumerate() {
        let y = MARGIN + k as u32 * (at.line_height + LINE_GAP);
        root.draw(&Text::new(line.as_str(), (MARGIN as i32, y as i32), title.clone()))?;
    }
    let caption = (FONT, CAPTION_FONT).into_font().color(&BLACK).pos(left_top);
    let panel = at.panel as i32;
    for (k, text) in picture.captions.iter().enumerate() {
        let left = (MARGIN + k as u32 * (at.panel + GAP)) as i32;
        root.draw(&Text::new(*text, (left, at.caption_top as i32), caption.clone()))?;
    }
    let (top, bar_left) = (at.top as i32, at.bar_left as i32);
    for left in [MARGIN as i32, (MARGIN + at.panel + GAP) as i32] {
        root.draw(&Rectangle::new([(left - 1, top - 1), (left + panel, top + panel)], BLACK.stroke_width(1)))?;
    }
    let bar_right = bar_left + BAR_WIDTH as i32;
    root.draw(&Rectangle::new([(bar_left - 1, top - 1), (bar_right, top + panel)], BLACK.stroke_width(1)))?;
    let label = (FONT, TICK_FONT).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (value, text) in ticks {
        let share = if largest > 0.0 { (*value / largest) as f64 } else { 0.0 };
        let y = top + ((1.0 - share) * (panel - 1) as f64).round() as i32;
        root.draw(&PathElement::new(vec![(bar_right, y), (bar_right + TICK_LENGTH as i32, y)], BLACK))?;
        root.draw(&Text::new(text.as_str(), (bar_right + TICK_LENGTH as i32 + 4, y), label.clone()))?;
    }
    Ok(())
}

/// The bar's ticks: 0, a quarter, half, three quarters and all of the
/// largest value, written alike: with three significant digits of the
/// largest value in fixed notation, or in scientific notation for very small
/// or very large maps.
fn ticks(largest: f32) -> Vec<(f32, String)> {
    if largest <= 0.0 {
        return vec![(0.0, "0".into())];
    }
    let magnitude = largest.log10().floor() as i32;
    let label = |v: f32| match magnitude {
        -4..=4 => format!("{v:.*}", (2 - magnitude).max(0) as usize),
        _ => format!("{v:.2e}"),
    };
    (0..=4).map(|k| k as f32 * largest / 4.0).map(|v| (v, label(v))).collect()
}

/// matplotlib's "jet" at `t` in [0, 1] (its segment data: piecewise linear per channel).
fn jet(t: f64) -> [u8; 3] {
    const RED: &[(f64, f64)] = &[(0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)];
    const GREEN: &[(f64, f64)] = &[(0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)];
    const BLUE: &[(f64, f64)] = &[(0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)];
    let t = t.clamp(0.0, 1.0);
    let ramp = |points: &[(f64, f64)]| -> u8 {
        let k = points.windows(2).position(|p| t <= p[1].0).unwrap_or(points.len() - 2);
        let ((x0, y0), (x1, y1)) = (points[k], points[k + 1]);
        let v = y0 + (y1 - y0) * (t - x0) / (x1 - x0);
        (v * 255.0).round() as u8
    };
    [ramp(RED), ramp(GREEN), ramp(BLUE)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_from_dark_blue_through_green_to_dark_red() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        let middle = jet(0.5);
        assert!(middle[1] == 255 && middle[0] < 130 && middle[2] < 130, "{middle:?}");
        assert_eq!(jet(-1.0), jet(0.0));
    }

    #[test]
    fn panels_are_whole_multiples_of_the_input_and_ticks_share_one_format() {
        assert_eq!(panel_side(75), 300);
        assert_eq!(panel_side(299), 299);
        assert_eq!(panel_side(128), 256);
        let labels = |largest: f32| ticks(largest).into_iter().map(|(_, l)| l).collect::<Vec<_>>();
        assert_eq!(labels(0.024), ["0.0000", "0.0060", "0.0120", "0.0180", "0.0240"]);
        assert_eq!(labels(2.0), ["0.00", "0.50", "1.00", "1.50", "2.00"]);
        assert_eq!(labels(4e5)[4], "4.00e5");
        assert_eq!(labels(0.0), ["0"]);
    }
}
