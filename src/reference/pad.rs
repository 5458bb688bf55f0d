//! CPU references for `ops::pad` (NHWC, pads = [top, bottom, left, right]).

/// Keras ZeroPadding2D: `x` [n, h, w, c] inside a zero border.
pub fn zero_pad2d(x: &[f64], [n, h, w, c]: [usize; 4], [top, bottom, left, right]: [usize; 4]) -> (Vec<f64>, [usize; 4]) {
    let (ph, pw) = (h + top + bottom, w + left + right);
    let mut out = vec![0.0; n * ph * pw * c];
    for b in 0..n {
        for y in 0..h {
            for xx in 0..w {
                let src = ((b * h + y) * w + xx) * c;
                let dst = ((b * ph + y + top) * pw + xx + left) * c;
                out[dst..dst + c].copy_from_slice(&x[src..src + c]);
            }
        }
    }
    (out, [n, ph, pw, c])
}

/// Keras Cropping2D, and the gradient of zero_pad2d: the interior of `dy` [n, h, w, c].
pub fn crop2d(dy: &[f64], [n, h, w, c]: [usize; 4], [top, bottom, left, right]: [usize; 4]) -> (Vec<f64>, [usize; 4]) {
    let (oh, ow) = (h - top - bottom, w - left - right);
    let mut out = Vec::with_capacity(n * oh * ow * c);
    for b in 0..n {
        for y in 0..oh {
            let row = ((b * h + y + top) * w + left) * c;
            out.extend_from_slice(&dy[row..row + ow * c]);
        }
    }
    (out, [n, oh, ow, c])
}
