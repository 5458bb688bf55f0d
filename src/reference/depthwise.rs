//! CPU reference depthwise convolution (f64): x NHWC [n, h, w, c], filter
//! [kh, kw, c] (Keras's [kh, kw, c, 1]), depth multiplier 1; the forward and
//! its adjoints with respect to the input and the filter.

use crate::ops::window::Window2d;

/// Calls `f(b, oy, ox, iy, ix, ky, kx)` for every tap of the forward that
/// reads a real (not padded) input pixel; returns the output [n, oh, ow, c].
fn for_each_tap(xs: [usize; 4], win: &Window2d, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize)) -> [usize; 4] {
    let [n, h, w, c] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let (pt, pl) = win.pad_before(h, w).expect("valid geometry");
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..win.kh {
                    let Some(iy) = (oy * win.stride_h + ky).checked_sub(pt).filter(|&iy| iy < h) else { continue };
                    for kx in 0..win.kw {
                        let Some(ix) = (ox * win.stride_w + kx).checked_sub(pl).filter(|&ix| ix < w) else { continue };
                        f(b, oy, ox, iy, ix, ky, kx);
                    }
                }
            }
        }
    }
    [n, oh, ow, c]
}

/// `x` [n, h, w, c] = `xs`, `f` [kh, kw, c] → ([n, oh, ow, c] values, shape).
pub fn depthwise_conv2d(x: &[f64], xs: [usize; 4], f: &[f64], win: &Window2d) -> (Vec<f64>, [usize; 4]) {
    let [_, h, w, c] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let mut y = vec![0.0; xs[0] * oh * ow * c];
    let shape = for_each_tap(xs, win, |b, oy, ox, iy, ix, ky, kx| {
        let out = &mut y[((b * oh + oy) * ow + ox) * c..][..c];
        let xin = &x[((b * h + iy) * w + ix) * c..][..c];
        let fk = &f[(ky * win.kw + kx) * c..][..c];
        for ((o, xv), fv) in out.iter_mut().zip(xin).zip(fk) {
            *o += xv * fv;
        }
    });
    (y, shape)
}

/// dL/dx for `dy` [n, oh, ow, c] and filter `f` [kh, kw, c]; returns [n, h, w, c] = `xs`.
pub fn depthwise_conv2d_backward_input(dy: &[f64], f: &[f64], xs: [usize; 4], win: &Window2d) -> Vec<f64> {
    let [n, h, w, c] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let mut dx = vec![0.0; n * h * w * c];
    for_each_tap(xs, win, |b, oy, ox, iy, ix, ky, kx| {
        let g = &dy[((b * oh + oy) * ow + ox) * c..][..c];
        let fk = &f[(ky * win.kw + kx) * c..][..c];
        let d = &mut dx[((b * h + iy) * w + ix) * c..][..c];
        for ((d, gv), fv) in d.iter_mut().zip(g).zip(fk) {
            *d += gv * fv;
        }
    });
    dx
}

/// dL/df for input `x` (shape `xs`) and `dy` [n, oh, ow, c]; returns [kh, kw, c].
pub fn depthwise_conv2d_backward_filter(x: &[f64], xs: [usize; 4], dy: &[f64], win: &Window2d) -> Vec<f64> {
    let [_, h, w, c] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let mut df = vec![0.0; win.kh * win.kw * c];
    for_each_tap(xs, win, |b, oy, ox, iy, ix, ky, kx| {
        let g = &dy[((b * oh + oy) * ow + ox) * c..][..c];
        let xin = &x[((b * h + iy) * w + ix) * c..][..c];
        let d = &mut df[(ky * win.kw + kx) * c..][..c];
        for ((d, gv), xv) in d.iter_mut().zip(g).zip(xin) {
            *d += gv * xv;
        }
    });
    df
}
