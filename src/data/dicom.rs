//! DICOM files → RGB images for the normal resize/preprocessing path.
//!
//! A file is read as DICOM when its extension is `.dcm` or `.dicom` (any
//! case), or when it holds the 128-byte preamble followed by `DICM` (so a
//! DICOM file without an extension is found too). Pixel data is decoded with
//! the dicom-rs crates (uncompressed implicit/explicit little endian, explicit
//! big endian, deflated, RLE lossless, 8-bit JPEG baseline and lossless, JPEG
//! 2000 through the pure-Rust OpenJPEG port; 8 or 16 bits allocated).
//!
//! Monochrome images (MONOCHROME1/2):
//! 1. Modality LUT: `value = stored · RescaleSlope + RescaleIntercept`
//!    (Hounsfield units for CT; slope 1, intercept 0 when absent);
//! 2. a window (width W, center L): `--dicom-window`, else the file's first
//!    WindowWidth/WindowCenter, else the frame's own range (min → 0, max → 255;
//!    a constant frame is all 0); see [`Window::grey`] for the formula;
//! 3. MONOCHROME1 (minimum displayed as white) is inverted: `255 − grey`;
//! 4. grey replicated to R, G and B.
//!
//! Colour images (RGB, YBR_FULL, YBR_FULL_422; compressed ones decode to RGB)
//! are converted to 8-bit RGB; no window applies to them.
//!
//! A file of several frames is refused unless `--dicom-frame K` (counted from
//! 0) picks one. Every failure is an [`Error::Io`] naming the file, so the
//! loader skips the file with one warning, as it does broken images.

use super::image_file::MAX_DECODED_BYTES;
use crate::error::{Error, Result};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, Tag};
use dicom_pixeldata::{ConvertOptions, DecodedPixelData, PhotometricInterpretation, PixelDecoder};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// A window on the modality values (HU for CT): `width` W > 0, `center` L.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub width: f64,
    pub center: f64,
}

/// fastai's `dicom_windows` (fastai.medical.imaging, from Radiopaedia's
/// "Windowing (CT)"), in its order, as (name, W, L).
pub const PRESETS: [(&str, f64, f64); 11] = [
    ("brain", 80.0, 40.0),
    ("subdural", 254.0, 100.0),
    ("stroke", 8.0, 32.0),
    ("brain_bone", 2800.0, 600.0),
    ("brain_soft", 375.0, 40.0),
    ("lungs", 1500.0, -600.0),
    ("mediastinum", 350.0, 50.0),
    ("abdomen_soft", 400.0, 50.0),
    ("liver", 150.0, 30.0),
    ("spine_soft", 250.0, 50.0),
    ("spine_bone", 1800.0, 400.0),
];

/// Names accepted for a preset besides fastai's own.
const ALIASES: [(&str, &str); 1] = [("lung", "lungs")];

impl Window {
    /// `--dicom-window`: a preset name of [`PRESETS`] (or `lung`), or `W,L`.
    pub fn parse(text: &str) -> std::result::Result<Window, String> {
        let name = text.trim().to_ascii_lowercase();
        let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name.as_str(), |(_, n)| n);
        if let Some(&(_, width, center)) = PRESETS.iter().find(|(n, ..)| *n == name) {
            return Ok(Window { width, center });
        }
        let presets = PRESETS.iter().map(|(n, w, l)| format!("{n} ({w},{l})")).collect::<Vec<_>>().join(", ");
        let expected = format!("expected W,L (window width > 0 and center, e.g. 1500,-600) or one of fastai's presets: {presets}; `lung` is accepted for `lungs`");
        if name == "bone" {
            return Err(format!("fastai has no `bone` preset (it has brain_bone and spine_bone); {expected}"));
        }
        let Some((w, l)) = text.split_once(',') else {
            return Err(format!("unknown window {text:?}: {expected}"));
        };
        let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        match (number(w), number(l)) {
            (Some(width), Some(center)) if width > 0.0 => Ok(Window { width, center }),
            (Some(_), Some(_)) => Err(format!("window width {} must be > 0; {expected}", w.trim())),
            _ => Err(format!("{text:?} is not two finite numbers W,L; {expected}")),
        }
    }

    /// Errors (naming `--dicom-window`) unless W > 0 and both are finite.
    pub fn validate(&self) -> Result<()> {
        if self.width.is_finite() && self.width > 0.0 && self.center.is_finite() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "--dicom-window {},{}: expected a finite window width > 0 and a finite center",
            self.width, self.center
        )))
    }

    /// The preset's name when it is one, and the numbers: `lungs (W 1500, L -600)`.
    pub fn describe(&self) -> String {
        let numbers = format!("W {}, L {}", self.width, self.center);
        match PRESETS.iter().find(|&&(_, w, l)| w == self.width && l == self.center) {
            Some((name, ..)) => format!("{name} ({numbers})"),
            None => numbers,
        }
    }

    /// The grey level of modality value `v`: with lo = L − W/2,
    /// `⌊255 · (clamp(v, lo, lo + W) − lo) / W⌋` — fastai's
    /// `windowed(w, l)` scaled by 255 and truncated to a byte as its
    /// `save_jpg` does (`(x*255).byte()`). fastai halves the width with
    /// Python's `w//2`, the same for every preset but brain_soft (W 375:
    /// fastai's range is [−147, 227], this one [−147.5, 227.5]).
    pub fn grey(&self, v: f64) -> u8 {
        let lo = self.center - self.width / 2.0;
        let t = ((v.clamp(lo, lo + self.width) - lo) / self.width).clamp(0.0, 1.0);
        // `as` saturates and maps NaN to 0.
        (t * 255.0) as u8
    }

    /// The window spanning `values` (min → 0, max → 255); `None` when they
    /// are all equal (or there are none).
    fn spanning(values: &[f64]) -> Option<Window> {
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        (hi > lo).then(|| Window { width: hi - lo, center: lo + (hi - lo) / 2.0 })
    }
}

/// How DICOM files are read; part of a run's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DicomOptions {
    /// `--dicom-window`; `None`: the file's own window, else the frame's range.
    #[serde(default)]
    pub window: Option<Window>,
    /// `--dicom-frame`: which frame (from 0) of a multi-frame file; `None`
    /// refuses multi-frame files.
    #[serde(default)]
    pub frame: Option<usize>,
}

impl DicomOptions {
    pub fn validate(&self) -> Result<()> {
        self.window.as_ref().map_or(Ok(()), Window::validate)
    }

    /// For summaries: `window lungs (W 1500, L -600), frame 0`.
    pub fn describe(&self) -> String {
        let window = self.window.map_or_else(|| "the file's own (else the frame's range)".to_string(), |w| w.describe());
        let frame = self.frame.map_or_else(|| "single-frame files only".to_string(), |k| format!("frame {k}"));
        format!("window {window}, {frame}")
    }
}

/// Whether `path` is read as DICOM: a `.dcm`/`.dicom` extension, or the
/// 128-byte preamble followed by `DICM`.
pub fn is_dicom_file(path: &Path) -> bool {
    let by_name = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("dcm") || e.eq_ignore_ascii_case("dicom"));
    by_name || has_dicom_magic(path)
}

fn has_dicom_magic(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head[128..] == b"DICM"
}

fn dicom_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// An error and its sources, `: `-joined (dicom-rs's messages are short and
/// the cause is often in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// One frame of a DICOM file at its own size, before the window.
#[derive(Clone, Debug, PartialEq)]
pub struct DicomFrame {
    width: u32,
    height: u32,
    pixels: FramePixels,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FramePixels {
    /// MONOCHROME1/2: modality values (after RescaleSlope/Intercept; HU for
    /// CT), row-major, with the file's first valid window.
    Monochrome { values: Vec<f64>, own_window: Option<Window>, monochrome1: bool },
    /// Colour, converted to 8-bit RGB, row-major RGB triples.
    Rgb(Vec<u8>),
}

impl DicomFrame {
    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn pixels(&self) -> &FramePixels {
        &self.pixels
    }

    /// The window a monochrome frame is shown with: `chosen`, else the
    /// file's own, else the frame's range (`None` for a constant frame).
    pub fn window(&self, chosen: Option<Window>) -> Option<Window> {
        match &self.pixels {
            FramePixels::Monochrome { values, own_window, .. } => chosen.or(*own_window).or_else(|| Window::spanning(values)),
            FramePixels::Rgb(_) => None,
        }
    }

    /// 8-bit RGB: monochrome frames windowed (see the module comment), grey
    /// replicated; colour frames as they are.
    pub fn to_rgb(&self, chosen: Option<Window>) -> Result<image::RgbImage> {
        let rgb = match &self.pixels {
            FramePixels::Monochrome { values, monochrome1, .. } => {
                let window = self.window(chosen);
                let mut rgb = Vec::with_capacity(values.len() * 3);
                for &v in values {
                    let g = window.map_or(0, |w| w.grey(v));
                    let g = if *monochrome1 { 255 - g } else { g };
                    rgb.extend_from_slice(&[g, g, g]);
                }
                rgb
            }
            FramePixels::Rgb(rgb) => rgb.clone(),
        };
        let len = rgb.len();
        image::RgbImage::from_raw(self.width, self.height, rgb)
            .ok_or_else(|| Error::Invalid(format!("DICOM frame of {len} RGB bytes does not fill {}x{}", self.width, self.height)))
    }
}

/// Decodes the DICOM file `path` into 8-bit RGB at its own size (see the module comment).
pub fn load_dicom_rgb(path: &Path, options: &DicomOptions) -> Result<image::RgbImage> {
    read_frame(path, options.frame)?.to_rgb(options.window)
}

/// Reads frame `frame` of `path` (`None`: the only frame; a multi-frame file is an error).
pub fn read_frame(path: &Path, frame: Option<usize>) -> Result<DicomFrame> {
    let obj = dicom_object::open_file(path).map_err(|e| dicom_err(path, format!("cannot read DICOM file: {}", chain(&e))))?;
    // dicom-rs may panic on malformed pixel data; that is this file's error, not the caller's.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(path, &obj, frame))) {
        Ok(result) => result,
        Err(_) => Err(dicom_err(path, "DICOM pixel data decoder panicked (malformed pixel data)")),
    }
}

fn attribute(path: &Path, obj: &DefaultDicomObject, tag: Tag, name: &str, default: Option<u64>) -> Result<u64> {
    match obj.get(tag) {
        Some(e) => e.to_int::<u64>().map_err(|e| dicom_err(path, format!("DICOM attribute {name} is not a number: {}", chain(&e)))),
        None => default.ok_or_else(|| dicom_err(path, format!("DICOM file has no {name} attribute"))),
    }
}

fn decode(path: &Path, obj: &DefaultDicomObject, frame: Option<usize>) -> Result<DicomFrame> {
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(dicom_err(path, "DICOM file has no pixel data (not an image)"));
    }
    let rows = attribute(path, obj, tags::ROWS, "Rows", None)?;
    let cols = attribute(path, obj, tags::COLUMNS, "Columns", None)?;
    let samples = attribute(path, obj, tags::SAMPLES_PER_PIXEL, "SamplesPerPixel", Some(1))?;
    let bits = attribute(path, obj, tags::BITS_ALLOCATED, "BitsAllocated", None)?;
    let frames = attribute(path, obj, tags::NUMBER_OF_FRAMES, "NumberOfFrames", Some(1))?.max(1);
    if rows == 0 || cols == 0 {
        return Err(dicom_err(path, format!("DICOM image of {cols}x{rows} pixels has no pixels")));
    }
    // All frames decoded, plus one frame of f64 modality values.
    let bytes = rows.saturating_mul(cols).saturating_mul(samples.saturating_mul(bits.div_ceil(8)).saturating_mul(frames).saturating_add(8));
    if bytes > MAX_DECODED_BYTES {
        return Err(dicom_err(
            path,
            format!("DICOM image of {frames} frame(s) of {cols}x{rows} pixels needs more than {MAX_DECODED_BYTES} bytes to decode, the limit for one image"),
        ));
    }
    let frame = match frame {
        Some(k) if k as u64 >= frames => {
            return Err(dicom_err(path, format!("--dicom-frame {k} is out of range: the file has {frames} frame(s), numbered from 0")));
        }
        Some(k) => k as u32,
        None if frames > 1 => {
            return Err(dicom_err(path, format!("DICOM file has {frames} frames; choose one with --dicom-frame K (0 to {})", frames - 1)));
        }
        None => 0,
    };
    let decoded = obj.decode_pixel_data().map_err(|e| dicom_err(path, format!("cannot decode DICOM pixel data: {}", chain(&e))))?;
    let (width, height) = (decoded.columns(), decoded.rows());
    let pixels = match decoded.samples_per_pixel() {
        1 => monochrome(path, &decoded, frame)?,
        3 => colour(path, &decoded, frame)?,
        n => return Err(dicom_err(path, format!("DICOM images with {n} samples per pixel are not supported (expected 1 or 3)"))),
    };
    let len = match &pixels {
        FramePixels::Monochrome { values, .. } => values.len(),
        FramePixels::Rgb(rgb) => rgb.len() / 3,
    };
    if len != width as usize * height as usize {
        return Err(dicom_err(path, format!("DICOM frame has {len} pixels, expected {width}x{height}")));
    }
    Ok(DicomFrame { width, height, pixels })
}

fn monochrome(path: &Path, decoded: &DecodedPixelData, frame: u32) -> Result<FramePixels> {
    let monochrome1 = match decoded.photometric_interpretation() {
        PhotometricInterpretation::Monochrome1 => true,
        PhotometricInterpretation::Monochrome2 => false,
        pi => return Err(dicom_err(path, format!("DICOM photometric interpretation {pi} is not supported for 1 sample per pixel (expected MONOCHROME1 or MONOCHROME2)"))),
    };
    // The modality LUT (rescale slope and intercept) is applied here.
    let values: Vec<f64> = decoded.to_vec_frame(frame).map_err(|e| dicom_err(path, format!("cannot read DICOM pixel values: {}", chain(&e))))?;
    let own_window = decoded
        .window()
        .ok()
        .flatten()
        .and_then(|windows| windows.first())
        .map(|w| Window { width: w.width, center: w.center })
        .filter(|w| w.validate().is_ok());
    Ok(FramePixels::Monochrome { values, own_window, monochrome1 })
}

fn colour(path: &Path, decoded: &DecodedPixelData, frame: u32) -> Result<FramePixels> {
    // Compressed colour decodes to RGB; only uncompressed YBR_FULL_422 keeps its subsampled layout.
    if *decoded.photometric_interpretation() == PhotometricInterpretation::YbrFull422 {
        return ybr_full_422(path, decoded, frame);
    }
    let image = decoded
        .to_dynamic_image_with_options(frame, &ConvertOptions::new().force_8bit())
        .map_err(|e| dicom_err(path, format!("cannot convert DICOM colour image to RGB: {}", chain(&e))))?;
    Ok(FramePixels::Rgb(image.to_rgb8().into_raw()))
}

/// Uncompressed YBR_FULL_422 (PS3.3 C.7.6.3.1.2): each two pixels of a row
/// are stored as Y1 Y2 Cb Cr (dicom-rs reads three samples per pixel there).
fn ybr_full_422(path: &Path, decoded: &DecodedPixelData, frame: u32) -> Result<FramePixels> {
    let (w, h) = (decoded.columns() as usize, decoded.rows() as usize);
    if decoded.bits_allocated() != 8 || w % 2 == 1 {
        return Err(dicom_err(path, format!("uncompressed YBR_FULL_422 is supported with 8 bits and an even width, not {} bits and width {w}", decoded.bits_allocated())));
    }
    let frame_bytes = w * h * 2;
    let start = frame as usize * frame_bytes;
    let data = decoded
        .data()
        .get(start..start + frame_bytes)
        .ok_or_else(|| dicom_err(path, format!("YBR_FULL_422 pixel data has {} bytes, too few for frame {frame} of {w}x{h}", decoded.data().len())))?;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for q in data.chunks_exact(4) {
        rgb.extend(ybr_to_rgb(q[0], q[2], q[3]));
        rgb.extend(ybr_to_rgb(q[1], q[2], q[3]));
    }
    Ok(FramePixels::Rgb(rgb))
}

/// YBR_FULL → RGB (PS3.3 C.7.6.3.1.2, ITU-R BT.601 full range), rounded and clamped.
fn ybr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (y as f64, cb as f64 - 128.0, cr as f64 - 128.0);
    let r = y + 1.402 * cr;
    let g = y - 0.114 * 1.772 / 0.587 * cb - 0.299 * 1.402 / 0.587 * cr;
    let b = y + 1.772 * cb;
    [r, g, b].map(|v| (v + 0.5).floor().clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_aliases_parse() {
        assert_eq!(Window::parse("lungs").unwrap(), Window { width: 1500.0, center: -600.0 });
        assert_eq!(Window::parse("Lung").unwrap(), Window { width: 1500.0, center: -600.0 });
        assert_eq!(Window::parse("mediastinum").unwrap(), Window { width: 350.0, center: 50.0 });
        assert_eq!(Window::parse("brain").unwrap(), Window { width: 80.0, center: 40.0 });
        assert_eq!(Window::parse(" 400, -20.5 ").unwrap(), Window { width: 400.0, center: -20.5 });
        assert_eq!(Window::parse("lungs").unwrap().describe(), "lungs (W 1500, L -600)");
        assert_eq!(Window::parse("7,3").unwrap().describe(), "W 7, L 3");
    }

    #[test]
    fn bad_windows_are_refused_with_the_reason() {
        for (text, says) in [("bone", "no `bone` preset"), ("lungz", "unknown window"), ("0,40", "must be > 0"), ("-80,40", "must be > 0"), ("NaN,40", "finite"), ("80,inf", "finite"), ("80", "unknown window")] {
            let e = Window::parse(text).unwrap_err();
            assert!(e.contains(says) && e.contains("brain_bone (2800,600)"), "{text}: {e}");
        }
        assert!(Window { width: f64::NAN, center: 0.0 }.validate().unwrap_err().to_string().contains("--dicom-window"));
        assert!(Window { width: 0.0, center: 0.0 }.validate().is_err());
    }

    #[test]
    fn grey_follows_the_window_formula() {
        let w = Window { width: 100.0, center: 50.0 };
        // lo = 0, hi = 100: below → 0, above → 255, linear between, truncated.
        assert_eq!([-1e9, -1.0, 0.0, 10.0, 50.0, 99.9, 100.0, 1e9].map(|v| w.grey(v)), [0, 0, 0, 25, 127, 254, 255, 255]);
        assert_eq!(w.grey(f64::NAN), 0);
        let span = Window::spanning(&[-3.0, 5.0, 1.0]).unwrap();
        assert_eq!([-3.0, 1.0, 5.0].map(|v| span.grey(v)), [0, 127, 255]);
        assert_eq!(Window::spanning(&[2.0, 2.0]), None);
    }
}
