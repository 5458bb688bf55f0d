//! Sliding-window geometry shared by convolution and pooling: kernel size,
//! stride and Keras padding ('valid', or TF 'same' with the smaller half of
//! the padding before).

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    Valid,
    Same,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub padding: Padding,
}

impl Window2d {
    pub fn new(kh: usize, kw: usize, stride: usize, padding: Padding) -> Self {
        Window2d { kh, kw, stride_h: stride, stride_w: stride, padding }
    }

    /// Output height and width for an input of `h`×`w`.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        if self.kh == 0 || self.kw == 0 || self.stride_h == 0 || self.stride_w == 0 {
            return Err(Error::Shape(format!("window {self:?} has a zero size or stride")));
        }
        match self.padding {
            Padding::Same => Ok((h.div_ceil(self.stride_h), w.div_ceil(self.stride_w))),
            Padding::Valid => {
                if h < self.kh || w < self.kw {
                    return Err(Error::Shape(format!(
                        "input {h}x{w} is smaller than the {}x{} window with 'valid' padding",
                        self.kh, self.kw
                    )));
                }
                Ok(((h - self.kh) / self.stride_h + 1, (w - self.kw) / self.stride_w + 1))
            }
        }
    }

    /// Padding before the first row and column (TF 'same': total / 2, rounded down).
    pub fn pad_before(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let (th, tw) = self.pad_total(h, w)?;
        Ok((th / 2, tw / 2))
    }

    /// Total padding of rows and columns (before + after; 0 for 'valid').
    pub fn pad_total(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let (oh, ow) = self.output_size(h, w)?;
        Ok(match self.padding {
            Padding::Valid => (0, 0),
            Padding::Same => {
                let total = |o: usize, s: usize, k: usize, i: usize| ((o - 1) * s + k).saturating_sub(i);
                (total(oh, self.stride_h, self.kh, h), total(ow, self.stride_w, self.kw, w))
            }
        })
    }
}
