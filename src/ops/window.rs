//! Sliding-window geometry shared by convolution and pooling: kernel size,
//! stride and Keras padding ('valid'; TF 'same' with the smaller half of the
//! padding before; or explicit rows and columns of zeros on each side, a
//! Keras ZeroPadding2D followed by a 'valid' convolution folded into one window).

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    Valid,
    Same,
    /// Zero rows above and below, zero columns left and right of the input
    /// (Keras `ZeroPadding2D(((top, bottom), (left, right)))`), then 'valid'.
    /// Convolutions only: a max pool would see the zeros, so pools refuse it.
    Explicit { top: usize, bottom: usize, left: usize, right: usize },
}

impl Padding {
    /// The name in labels and messages: `valid`, `same` or `pad(t,b,l,r)`.
    pub fn label(self) -> String {
        match self {
            Padding::Valid => "valid".into(),
            Padding::Same => "same".into(),
            Padding::Explicit { top, bottom, left, right } => format!("pad({top},{bottom},{left},{right})"),
        }
    }

    /// The Keras `padding` string of a layer with this window ('valid' or
    /// 'same'); explicit padding has none (it is a ZeroPadding2D layer in
    /// Keras), so `what` (the layer or window) is named in the error.
    pub fn keras_name(self, what: &str) -> Result<&'static str> {
        match self {
            Padding::Valid => Ok("valid"),
            Padding::Same => Ok("same"),
            Padding::Explicit { .. } => Err(Error::Invalid(format!(
                "{what}: explicit padding {} has no Keras 'padding' string (it would be a ZeroPadding2D layer before a 'valid' one)",
                self.label()
            ))),
        }
    }
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
        let valid = |h: usize, w: usize, what: &str| {
            if h < self.kh || w < self.kw {
                return Err(Error::Shape(format!("input {what} is smaller than the {}x{} window with '{}' padding", self.kh, self.kw, self.padding.label())));
            }
            Ok(((h - self.kh) / self.stride_h + 1, (w - self.kw) / self.stride_w + 1))
        };
        match self.padding {
            Padding::Same => Ok((h.div_ceil(self.stride_h), w.div_ceil(self.stride_w))),
            Padding::Valid => valid(h, w, &format!("{h}x{w}")),
            Padding::Explicit { top, bottom, left, right } => {
                let (ph, pw) = (h + top + bottom, w + left + right);
                valid(ph, pw, &format!("{h}x{w} (padded to {ph}x{pw})"))
            }
        }
    }

    /// Padding before the first row and column (TF 'same': total / 2,
    /// rounded down; explicit: top and left).
    pub fn pad_before(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        if let Padding::Explicit { top, left, .. } = self.padding {
            self.output_size(h, w)?;
            return Ok((top, left));
        }
        let (th, tw) = self.pad_total(h, w)?;
        Ok((th / 2, tw / 2))
    }

    /// Total padding of rows and columns (before + after; 0 for 'valid').
    /// For 'same' only as much as the windows reach: TF's rule.
    pub fn pad_total(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let (oh, ow) = self.output_size(h, w)?;
        Ok(match self.padding {
            Padding::Valid => (0, 0),
            Padding::Same => {
                let total = |o: usize, s: usize, k: usize, i: usize| ((o - 1) * s + k).saturating_sub(i);
                (total(oh, self.stride_h, self.kh, h), total(ow, self.stride_w, self.kw, w))
            }
            Padding::Explicit { top, bottom, left, right } => (top + bottom, left + right),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Padding, Window2d};

    /// TF 'same' worked by hand, not through `pad_before`'s formula: the
    /// output is ceil(i / s); the windows of the last output end at
    /// (o − 1)·s + k, which exceeds i by the total padding; the smaller half
    /// goes before. E.g. k3 s2 on 8: 4 outputs reading rows 0..=8, one row
    /// past the end: (0 before, 1 after).
    #[test]
    fn same_padding_by_hand() {
        // (kernel, stride, input, output, (before, after))
        let table = [
            (3, 2, 8, 4, (0, 1)),
            (5, 2, 8, 4, (1, 2)),
            (3, 2, 7, 4, (1, 1)),
            (1, 2, 8, 4, (0, 0)),
            (3, 1, 5, 5, (1, 1)),
            (2, 1, 4, 4, (0, 1)),
            (7, 1, 9, 9, (3, 3)),
            (3, 2, 2, 1, (0, 1)),
            (2, 2, 7, 4, (0, 1)),
            (4, 1, 5, 5, (1, 2)),
            (5, 2, 10, 5, (1, 2)),
            (6, 3, 10, 4, (2, 3)),
            (4, 2, 9, 5, (1, 2)),
        ];
        for (k, s, i, o, (before, after)) in table {
            let win = Window2d::new(k, k, s, Padding::Same);
            assert_eq!(win.output_size(i, i).unwrap(), (o, o), "k{k} s{s} on {i}");
            assert_eq!(win.pad_before(i, i).unwrap(), (before, before), "k{k} s{s} on {i}");
            assert_eq!(win.pad_total(i, i).unwrap(), (before + after, before + after), "k{k} s{s} on {i}");
        }
        // Rows and columns apart: a 4×3 kernel, stride 2, on 9×8: rows as (4, 2, 9) above,
        // columns 4 outputs ending at 3·2 + 3 = 9, one past 8: (0 before, 1 after).
        let win = Window2d { kh: 4, kw: 3, stride_h: 2, stride_w: 2, padding: Padding::Same };
        assert_eq!(win.output_size(9, 8).unwrap(), (5, 4));
        assert_eq!(win.pad_before(9, 8).unwrap(), (1, 0));
        assert_eq!(win.pad_total(9, 8).unwrap(), (3, 1));
        // Strides apart: 3×3, strides (1, 2) on 6×6: rows (1, 1); columns 3 outputs ending at 2·2 + 3 = 7: (0, 1).
        let win = Window2d { kh: 3, kw: 3, stride_h: 1, stride_w: 2, padding: Padding::Same };
        assert_eq!(win.output_size(6, 6).unwrap(), (6, 3));
        assert_eq!(win.pad_before(6, 6).unwrap(), (1, 0));
        assert_eq!(win.pad_total(6, 6).unwrap(), (2, 1));
    }

    #[test]
    fn explicit_padding_folds_into_the_window() {
        // MobileNetV2's stride-2 blocks: ZeroPadding2D(((0, 1), (0, 1))) then 3×3 s2 'valid' on 112: 56.
        let mobilenet = Window2d::new(3, 3, 2, Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 });
        assert_eq!(mobilenet.output_size(112, 112).unwrap(), (56, 56));
        assert_eq!(mobilenet.pad_before(112, 112).unwrap(), (0, 0));
        assert_eq!(mobilenet.pad_total(112, 112).unwrap(), (1, 1));
        // Odd side: (7 + 1 − 3) / 2 + 1 = 3, the same as 'same' would give at 7 (but padded differently).
        assert_eq!(mobilenet.output_size(7, 7).unwrap(), (3, 3));
        // Asymmetric in both directions, non-square kernel: (5 + 2 + 1 − 3) / 1 + 1 = 6 rows, (6 + 1 + 0 − 2) / 2 + 1 = 3 columns.
        let odd = Window2d { kh: 3, kw: 2, stride_h: 1, stride_w: 2, padding: Padding::Explicit { top: 2, bottom: 1, left: 1, right: 0 } };
        assert_eq!(odd.output_size(5, 6).unwrap(), (6, 3));
        assert_eq!(odd.pad_before(5, 6).unwrap(), (2, 1));
        assert_eq!(odd.pad_total(5, 6).unwrap(), (3, 1));
        // A padded input smaller than the window is an error naming both sizes.
        let big = Window2d::new(5, 5, 1, Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 });
        let msg = big.output_size(3, 3).unwrap_err().to_string();
        assert!(msg.contains("3x3 (padded to 4x4)") && msg.contains("pad(0,1,0,1)"), "{msg}");
        assert!(big.pad_before(3, 3).is_err());
        assert_eq!(Padding::Explicit { top: 1, bottom: 2, left: 3, right: 4 }.label(), "pad(1,2,3,4)");
        assert!(Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 }.keras_name("conv").unwrap_err().to_string().contains("conv"));
    }
}
