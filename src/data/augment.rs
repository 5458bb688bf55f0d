//! Random shear, zoom and horizontal flip, exactly as Keras's legacy
//! `ImageDataGenerator(shear_range, zoom_range, horizontal_flip)` does them
//! (keras/src/legacy/preprocessing/image.py):
//!
//! - `get_random_transform`: shear ~ U[−shear_range, shear_range) in DEGREES,
//!   zx, zy ~ U[1 − zoom_range, 1 + zoom_range) drawn independently, flip when
//!   U[0, 1) < 0.5 (and horizontal_flip is on).
//! - `apply_affine_transform`: M = S·Z with S = [[1, −sin s, 0], [0, cos s, 0], [0, 0, 1]]
//!   (s in radians) and Z = diag(zx, zy, 1), moved to the image centre
//!   (T = Off·M·Off⁻¹, Off a translation by (h/2 − 0.5, w/2 − 0.5)), then rows
//!   and columns 0 and 1 swapped to index (row, col). `scipy.ndimage.affine_transform`
//!   with order=1 and mode='nearest' pulls output pixel (r, c) from input
//!   position T·(r, c, 1): each coordinate clamped to [0, len − 1], then
//!   bilinear. Zoom > 1 therefore shrinks the picture (zooms out).
//! - The flip reverses the columns after the affine transform.
//!
//! Keras quirk kept on purpose: the centre offset for the column axis uses the
//! height and vice versa (`transform_matrix_offset_center(m, h, w)` names them
//! x, y); the loader's images are square, where this makes no difference.

use super::image_file::Preprocess;
use crate::error::{Error, Result};
use rand::Rng;

/// The random augmentations of the tutorial's training generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Shear angle range in DEGREES: 0.2 draws the angle from [−0.2°, 0.2°).
    pub shear_range_deg: f32,
    /// Zoom range: 0.2 draws zx and zy independently from [0.8, 1.2).
    pub zoom_range: f32,
    /// Flip left-right with probability 0.5.
    pub horizontal_flip: bool,
}

impl Augment {
    /// `ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True)`.
    pub const TUTORIAL: Augment = Augment { shear_range_deg: 0.2, zoom_range: 0.2, horizontal_flip: true };

    /// Rejects ranges that are negative or not finite, and zoom ranges ≥ 1
    /// (a zoom factor ≤ 0 collapses the image).
    pub fn validate(&self) -> Result<()> {
        if !self.shear_range_deg.is_finite() || self.shear_range_deg < 0.0 {
            return Err(Error::Invalid(format!(
                "shear range must be a finite angle ≥ 0 degrees, got {}",
                self.shear_range_deg
            )));
        }
        if !self.zoom_range.is_finite() || !(0.0..1.0).contains(&self.zoom_range) {
            return Err(Error::Invalid(format!("zoom range must be in [0, 1), got {}", self.zoom_range)));
        }
        Ok(())
    }

    /// Draws one image's transform. Always four draws, in this order:
    /// shear, zx, zy, flip (so one setting never changes another's values).
    pub fn draw(&self, rng: &mut impl Rng) -> Transform {
        let s = self.shear_range_deg as f64;
        let z = self.zoom_range as f64;
        let shear_deg = uniform(rng, -s, s);
        let zx = uniform(rng, 1.0 - z, 1.0 + z);
        let zy = uniform(rng, 1.0 - z, 1.0 + z);
        let flip = rng.random::<f64>() < 0.5;
        Transform { shear_deg, zx, zy, flip_horizontal: flip && self.horizontal_flip }
    }
}

/// numpy's `uniform(low, high)`: low + (high − low)·U[0, 1).
fn uniform(rng: &mut impl Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// One image's drawn parameters (Keras's `transform_parameters`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    pub shear_deg: f64,
    pub zx: f64,
    pub zy: f64,
    pub flip_horizontal: bool,
}

type Mat3 = [[f64; 3]; 3];

fn matmul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

impl Transform {
    pub const IDENTITY: Transform = Transform { shear_deg: 0.0, zx: 1.0, zy: 1.0, flip_horizontal: false };

    /// The matrix scipy receives: input (row, col) = m · (r, c, 1) for output
    /// pixel (r, c); `None` when Keras skips the affine step (no shear, no zoom).
    pub fn sampling_matrix(&self, height: usize, width: usize) -> Option<[[f64; 3]; 2]> {
        let mut m: Option<Mat3> = None;
        if self.shear_deg != 0.0 {
            let s = self.shear_deg.to_radians();
            m = Some([[1.0, -s.sin(), 0.0], [0.0, s.cos(), 0.0], [0.0, 0.0, 1.0]]);
        }
        if self.zx != 1.0 || self.zy != 1.0 {
            let zoom = [[self.zx, 0.0, 0.0], [0.0, self.zy, 0.0], [0.0, 0.0, 1.0]];
            m = Some(match m {
                Some(shear) => matmul(&shear, &zoom),
                None => zoom,
            });
        }
        let m = m?;
        // transform_matrix_offset_center(m, h, w): o_x from the height, o_y from the width.
        let (ox, oy) = (height as f64 / 2.0 - 0.5, width as f64 / 2.0 - 0.5);
        let offset = [[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]];
        let reset = [[1.0, 0.0, -ox], [0.0, 1.0, -oy], [0.0, 0.0, 1.0]];
        let t = matmul(&matmul(&offset, &m), &reset);
        // Swap axes 0 and 1 (rows and columns of the matrix): (x, y) → (row, col).
        Some([[t[1][1], t[1][0], t[1][2]], [t[0][1], t[0][0], t[0][2]]])
    }

    /// The network input made from a resized RGB image (`size`×`size`×3
    /// bytes, HWC), as the training loader makes it: this transform on the
    /// values in [0, 255], then the preprocessing. The identity gives exactly
    /// the unaugmented input.
    pub fn input(&self, rgb: &[u8], size: usize, pre: Preprocess) -> Result<Vec<f32>> {
        let x: Vec<f32> = rgb.iter().map(|&v| f32::from(v)).collect();
        let mut x = self.apply(&x, size, size, 3)?;
        x.iter_mut().for_each(|v| *v = pre.scale(*v));
        Ok(x)
    }

    /// Transforms an HWC image of values in [0, 255]; returns a new image of
    /// the same shape.
    pub fn apply(&self, image: &[f32], height: usize, width: usize, channels: usize) -> Result<Vec<f32>> {
        if height == 0 || width == 0 || channels == 0 || image.len() != height * width * channels {
            return Err(Error::Shape(format!(
                "augment: image has {} values, expected height {height} × width {width} × channels {channels} (all > 0)",
                image.len()
            )));
        }
        let mut out = match self.sampling_matrix(height, width) {
            Some(m) => affine_bilinear_nearest(image, height, width, channels, &m),
            None => image.to_vec(),
        };
        if self.flip_horizontal {
            for row in out.chunks_exact_mut(width * channels) {
                flip_row(row, channels);
            }
        }
        Ok(out)
    }
}

fn flip_row(row: &mut [f32], channels: usize) {
    let width = row.len() / channels;
    for x in 0..width / 2 {
        for ch in 0..channels {
            row.swap(x * channels + ch, (width - 1 - x) * channels + ch);
        }
    }
}

/// One axis of scipy's order-1 spline sampling with mode 'nearest': the two
/// taps and their weights (weights[1] = 1 − weights[0], as scipy computes it).
fn taps(coordinate: f64, len: usize) -> ([usize; 2], [f64; 2]) {
    let c = coordinate.clamp(0.0, (len - 1) as f64);
    let start = c.floor();
    let w0 = 1.0 - (c - start);
    let i0 = start as usize;
    // At c = len − 1 the second tap has weight exactly 0; any in-range index will do.
    ([i0, (i0 + 1).min(len - 1)], [w0, 1.0 - w0])
}

/// `scipy.ndimage.affine_transform(channel, m[:, :2], m[:, 2], order=1, mode='nearest')`
/// on every channel: f64 arithmetic, summed in scipy's tap order, stored as f32.
fn affine_bilinear_nearest(image: &[f32], h: usize, w: usize, channels: usize, m: &[[f64; 3]; 2]) -> Vec<f32> {
    let mut out = vec![0.0f32; image.len()];
    for r in 0..h {
        for c in 0..w {
            let (rf, cf) = (r as f64, c as f64);
            let src_r = rf * m[0][0] + cf * m[0][1] + m[0][2];
            let src_c = rf * m[1][0] + cf * m[1][1] + m[1][2];
            let (rows, wr) = taps(src_r, h);
            let (cols, wc) = taps(src_c, w);
            for ch in 0..channels {
                let mut t = 0.0f64;
                for a in 0..2 {
                    for b in 0..2 {
                        t += image[(rows[a] * w + cols[b]) * channels + ch] as f64 * wr[a] * wc[b];
                    }
                }
                out[(r * w + c) * channels + ch] = t as f32;
            }
        }
    }
    out
}
