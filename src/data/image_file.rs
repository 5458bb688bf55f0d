//! One image file → an NHWC f32 row of pixels, as Keras's
//! `load_img(target_size, interpolation='nearest')` + preprocessing does:
//! decode, convert to RGB (grayscale replicated, alpha dropped), resize with
//! PIL's nearest-neighbour rule, then scale. The training loader augments
//! between the resize ([`load_rgb_with`]) and the scaling ([`Preprocess::scale`]).
//! DICOM files are decoded and windowed to 8-bit RGB first (`data::dicom`),
//! then take the same path.

use super::dicom::{DicomOptions, is_dicom_file, load_dicom_rgb};
use crate::error::{Error, Result};
use std::path::Path;

/// How pixel values in [0, 255] are mapped before the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// × 1/255 → [0, 1] (ImageDataGenerator(rescale=1/255), the tutorial's choice).
    Rescale,
    /// x / 127.5 − 1 → [−1, 1] (keras.applications.inception_v3.preprocess_input).
    Inception,
    /// (x − 127) / 128 → [−0.99, 1] (EfficientNet-Lite's MEAN_RGB 127, STDDEV_RGB 128).
    Lite,
}

impl Preprocess {
    /// The name `--preprocess` takes and run.json records.
    pub fn name(self) -> &'static str {
        match self {
            Preprocess::Rescale => "rescale",
            Preprocess::Inception => "inception",
            Preprocess::Lite => "lite",
        }
    }

    /// What the network's input is, for exported models' metadata and summaries.
    pub fn formula(self) -> &'static str {
        match self {
            Preprocess::Rescale => "x = pixel * (1/255), RGB in [0, 1]",
            Preprocess::Inception => "x = pixel / 127.5 - 1, RGB in [-1, 1]",
            Preprocess::Lite => "x = (pixel - 127) / 128, RGB in [-0.99, 1]",
        }
    }

    pub fn apply(self, v: u8) -> f32 {
        self.scale(v as f32)
    }

    /// Maps a pixel value in [0, 255] with Keras's float32 arithmetic:
    /// `x *= float32(1/255)` (ImageDataGenerator.standardize) or
    /// `x /= 127.5; x -= 1` (preprocess_input, mode 'tf') or
    /// `(x - 127) / 128` (EfficientNet-Lite's reference input pipeline).
    pub fn scale(self, v: f32) -> f32 {
        match self {
            Preprocess::Rescale => v * (1.0f64 / 255.0) as f32,
            Preprocess::Inception => v / 127.5 - 1.0,
            Preprocess::Lite => (v - 127.0) / 128.0,
        }
    }
}

/// The most memory one image may take while it is decoded (512 MiB, the
/// `image` crate's default, stated here so that a huge picture is refused
/// before it is allocated, whatever the crate's default becomes).
pub const MAX_DECODED_BYTES: u64 = 512 << 20;

/// Decodes `path` and returns `size`×`size`×3 values (row-major HWC), DICOM
/// files read with the default [`DicomOptions`].
pub fn load_image(path: &Path, size: usize, pre: Preprocess) -> Result<Vec<f32>> {
    load_image_with(path, size, pre, &DicomOptions::default())
}

/// [`load_image`] with DICOM files read as `dicom` says.
pub fn load_image_with(path: &Path, size: usize, pre: Preprocess, dicom: &DicomOptions) -> Result<Vec<f32>> {
    Ok(load_rgb_with(path, size, dicom)?.into_iter().map(|v| pre.apply(v)).collect())
}

/// [`load_rgb_with`] with the default [`DicomOptions`].
pub fn load_rgb(path: &Path, size: usize) -> Result<Vec<u8>> {
    load_rgb_with(path, size, &DicomOptions::default())
}

/// Decodes `path` (DICOM as `dicom` says), converts it to RGB and resizes it
/// to `size`×`size` with PIL's nearest rule: `size`×`size`×3 bytes (row-major HWC).
pub fn load_rgb_with(path: &Path, size: usize, dicom: &DicomOptions) -> Result<Vec<u8>> {
    let img = if is_dicom_file(path) { load_dicom_rgb(path, dicom)? } else { decode_rgb(path)? };
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::Io { path: path.display().to_string(), reason: "image has no pixels".into() });
    }
    let raw = img.as_raw();
    let mut out = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        let sy = nearest(y, size, h);
        for x in 0..size {
            let sx = nearest(x, size, w);
            let p = &raw[(sy * w + sx) * 3..][..3];
            out.extend_from_slice(p);
        }
    }
    Ok(out)
}

/// Decodes an image file the `image` crate reads, as 8-bit RGB.
fn decode_rgb(path: &Path) -> Result<image::RgbImage> {
    let open = || {
        image::ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("cannot open: {e}") })
    };
    let mut reader = open()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => Ok(img.to_rgb8()),
        Err(image::ImageError::Limits(_)) => {
            let dims = open()?.into_dimensions().map_or_else(|_| "its size".to_string(), |(w, h)| format!("{w}x{h}"));
            Err(Error::Io {
                path: path.display().to_string(),
                reason: format!("image of {dims} pixels needs more than {MAX_DECODED_BYTES} bytes to decode, the limit for one image"),
            })
        }
        Err(e) => Err(Error::Io { path: path.display().to_string(), reason: format!("cannot decode image: {e}") }),
    }
}

/// PIL's NEAREST: sample the source pixel under the output pixel's centre.
fn nearest(i: usize, out_len: usize, in_len: usize) -> usize {
    (((i as f64 + 0.5) * in_len as f64 / out_len as f64) as usize).min(in_len - 1)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn nearest_matches_pil_centre_sampling() {
        // Downscale 5 → 2 picks source pixels 1 and 3; upscale 2 → 4 repeats each twice.
        assert_eq!((0..2).map(|i| nearest(i, 2, 5)).collect::<Vec<_>>(), [1, 3]);
        assert_eq!((0..4).map(|i| nearest(i, 4, 2)).collect::<Vec<_>>(), [0, 0, 1, 1]);
        assert_eq!((0..3).map(|i| nearest(i, 3, 3)).collect::<Vec<_>>(), [0, 1, 2]);
    }
}
