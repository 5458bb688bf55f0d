//! CPU references for the convolution backward (NHWC input, HWIO filter, f64):
//! the adjoints of `reference::conv::conv2d` with respect to its input and filter.

use crate::ops::window::Window2d;

/// Calls `f(b, oy, ox, iy, ix, ky, kx)` for every tap of the forward
/// convolution that reads a real (not padded) input pixel.
fn for_each_tap(xs: [usize; 4], win: &Window2d, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize)) {
    let [n, h, w, _] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let (pt, pl) = win.pad_before(h, w).expect("valid geometry");
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..win.kh {
                    let iy = (oy * win.stride_h + ky) as isize - pt as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..win.kw {
                        let ix = (ox * win.stride_w + kx) as isize - pl as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        f(b, oy, ox, iy as usize, ix as usize, ky, kx);
                    }
                }
            }
        }
    }
}

/// dL/dx for `dy` [n, oh, ow, cout] and filter `f` [kh, kw, cin, cout]; returns [n, h, w, cin] = `xs`.
pub fn conv2d_backward_input(dy: &[f64], f: &[f64], xs: [usize; 4], cout: usize, win: &Window2d) -> Vec<f64> {
    let [n, h, w, cin] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let mut dx = vec![0.0; n * h * w * cin];
    for_each_tap(xs, win, |b, oy, ox, iy, ix, ky, kx| {
        let g = &dy[((b * oh + oy) * ow + ox) * cout..][..cout];
        for ci in 0..cin {
            let frow = &f[((ky * win.kw + kx) * cin + ci) * cout..][..cout];
            dx[((b * h + iy) * w + ix) * cin + ci] += g.iter().zip(frow).map(|(a, b)| a * b).sum::<f64>();
        }
    });
    dx
}

/// dL/df for input `x` (shape `xs`) and `dy` [n, oh, ow, cout]; returns [kh, kw, cin, cout].
pub fn conv2d_backward_filter(x: &[f64], xs: [usize; 4], dy: &[f64], cout: usize, win: &Window2d) -> Vec<f64> {
    let [_, h, w, cin] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let mut df = vec![0.0; win.kh * win.kw * cin * cout];
    for_each_tap(xs, win, |b, oy, ox, iy, ix, ky, kx| {
        let g = &dy[((b * oh + oy) * ow + ox) * cout..][..cout];
        for ci in 0..cin {
            let xv = x[((b * h + iy) * w + ix) * cin + ci];
            let frow = &mut df[((ky * win.kw + kx) * cin + ci) * cout..][..cout];
            for (d, &gv) in frow.iter_mut().zip(g) {
                *d += xv * gv;
            }
        }
    });
    df
}
