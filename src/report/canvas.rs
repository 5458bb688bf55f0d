//! Drawing into PNG files: plotters draws into an in-memory RGB buffer, the
//! `image` crate encodes it, and the file is written atomically. Text uses
//! DejaVu Sans, embedded in the binary by the `dejavu` crate and registered
//! with plotters' ab_glyph renderer as "sans-serif", so no system font is needed.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use image::{ImageFormat, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

/// The font family name every drawing here uses.
pub(crate) const FONT: &str = "sans-serif";

/// Line colours, in order: matplotlib's "tab10" cycle.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Registers the embedded font once per process; later calls return the first outcome.
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_string())
        })
        .clone()
        .map_err(Error::Invalid)
}

/// Width and height of `text` in pixels at `size` points, as it will be drawn.
pub(crate) fn text_size(text: &str, size: f64) -> Result<(u32, u32)> {
    ensure_font()?;
    FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal)
        .box_size(text)
        .map_err(|e| Error::Invalid(format!("measuring text '{text}': {e}")))
}

/// Draws on a white `width`×`height` canvas and writes it to `path` as a PNG, atomically.
pub(crate) fn save_drawing(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Canvas<'_>) -> DrawResult,
) -> Result<()> {
    save_drawing_on(path, RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255])), draw)
}

/// Draws over `background` (pictures composed pixel by pixel) and writes it
/// to `path` as a PNG, atomically.
pub(crate) fn save_drawing_on(path: &Path, background: RgbImage, draw: impl FnOnce(&Canvas<'_>) -> DrawResult) -> Result<()> {
    let png = render_png(background, draw).map_err(|reason| Error::Io { path: path.display().to_string(), reason })?;
    write_atomic(path, &png)
}

/// Draws on a white `width`×`height` canvas and returns the PNG's bytes (for
/// pictures that go inside another file, such as a TensorBoard event).
pub(crate) fn drawing_png((width, height): (u32, u32), draw: impl FnOnce(&Canvas<'_>) -> DrawResult) -> Result<Vec<u8>> {
    render_png(RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255])), draw).map_err(Error::Invalid)
}

/// Draws over `background` and encodes the result as PNG; the error is the reason alone.
fn render_png(background: RgbImage, draw: impl FnOnce(&Canvas<'_>) -> DrawResult) -> std::result::Result<Vec<u8>, String> {
    ensure_font().map_err(|e| e.to_string())?;
    let (width, height) = background.dimensions();
    let mut rgb = background.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(&root).map_err(|e| format!("drawing: {e}"))?;
        root.present().map_err(|e| format!("drawing: {e}"))?;
    }
    let image = RgbImage::from_raw(width, height, rgb).ok_or("image buffer of the wrong size")?;
    let mut png = Cursor::new(Vec::new());
    image.write_to(&mut png, ImageFormat::Png).map_err(|e| format!("encoding PNG: {e}"))?;
    Ok(png.into_inner())
}
