//! CPU references for `ops::pool` (NHWC, f64). Backward passes are written
//! as scatters from each output, the mirror image of the GPU's gathers.

use crate::ops::window::Window2d;

/// Pooling windows of one geometry: the output shape, and each output's
/// in-bounds input taps (iy, ix) in row-major window order.
struct Windows {
    y_shape: [usize; 4],
    pad: (usize, usize),
    h: usize,
    w: usize,
    win: Window2d,
}

impl Windows {
    fn new(xs: [usize; 4], win: &Window2d) -> Windows {
        let [n, h, w, c] = xs;
        let (oh, ow) = win.output_size(h, w).expect("valid geometry");
        let pad = win.pad_before(h, w).expect("valid geometry");
        Windows { y_shape: [n, oh, ow, c], pad, h, w, win: *win }
    }

    fn taps(&self, oy: usize, ox: usize) -> Vec<(usize, usize)> {
        let mut taps = Vec::new();
        for ky in 0..self.win.kh {
            for kx in 0..self.win.kw {
                let iy = (oy * self.win.stride_h + ky) as isize - self.pad.0 as isize;
                let ix = (ox * self.win.stride_w + kx) as isize - self.pad.1 as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < self.h && (ix as usize) < self.w {
                    taps.push((iy as usize, ix as usize));
                }
            }
        }
        taps
    }

    /// Calls `f(batch, output pixel index, taps)` for every output pixel.
    fn for_each_output(&self, mut f: impl FnMut(usize, usize, &[(usize, usize)])) {
        let [n, oh, ow, _] = self.y_shape;
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    f(b, (b * oh + oy) * ow + ox, &self.taps(oy, ox));
                }
            }
        }
    }

    fn x_pixel(&self, b: usize, (iy, ix): (usize, usize)) -> usize {
        (b * self.h + iy) * self.w + ix
    }
}

/// `x` [n, h, w, c] → (y [n, oh, ow, c], its shape).
pub fn max_pool2d(x: &[f64], xs: [usize; 4], win: &Window2d) -> (Vec<f64>, [usize; 4]) {
    let wins = Windows::new(xs, win);
    let c = xs[3];
    let mut y = vec![f64::NEG_INFINITY; wins.y_shape.iter().product()];
    wins.for_each_output(|b, o, taps| {
        for &t in taps {
            let xp = wins.x_pixel(b, t);
            for ch in 0..c {
                y[o * c + ch] = y[o * c + ch].max(x[xp * c + ch]);
            }
        }
    });
    (y, wins.y_shape)
}

/// Each output's gradient goes to the first maximal tap of its window.
pub fn max_pool2d_backward(x: &[f64], xs: [usize; 4], dy: &[f64], win: &Window2d) -> Vec<f64> {
    let wins = Windows::new(xs, win);
    let c = xs[3];
    let mut dx = vec![0.0; x.len()];
    wins.for_each_output(|b, o, taps| {
        for ch in 0..c {
            let mut best = taps[0];
            for &t in &taps[1..] {
                if x[wins.x_pixel(b, t) * c + ch] > x[wins.x_pixel(b, best) * c + ch] {
                    best = t;
                }
            }
            dx[wins.x_pixel(b, best) * c + ch] += dy[o * c + ch];
        }
    });
    dx
}

/// Mean over each window's in-bounds taps (Keras 'same' excludes padding from the count).
pub fn avg_pool2d(x: &[f64], xs: [usize; 4], win: &Window2d) -> (Vec<f64>, [usize; 4]) {
    let wins = Windows::new(xs, win);
    let c = xs[3];
    let mut y = vec![0.0; wins.y_shape.iter().product()];
    wins.for_each_output(|b, o, taps| {
        for &t in taps {
            let xp = wins.x_pixel(b, t);
            for ch in 0..c {
                y[o * c + ch] += x[xp * c + ch] / taps.len() as f64;
            }
        }
    });
    (y, wins.y_shape)
}

pub fn avg_pool2d_backward(dy: &[f64], win: &Window2d, xs: [usize; 4]) -> Vec<f64> {
    let wins = Windows::new(xs, win);
    let c = xs[3];
    let mut dx = vec![0.0; xs.iter().product()];
    wins.for_each_output(|b, o, taps| {
        for &t in taps {
            let xp = wins.x_pixel(b, t);
            for ch in 0..c {
                dx[xp * c + ch] += dy[o * c + ch] / taps.len() as f64;
            }
        }
    });
    dx
}

/// [n, h, w, c] → [n, c].
pub fn global_avg_pool(x: &[f64], xs: [usize; 4]) -> Vec<f64> {
    let [n, h, w, c] = xs;
    let mut y = vec![0.0; n * c];
    for b in 0..n {
        for pix in 0..h * w {
            for ch in 0..c {
                y[b * c + ch] += x[(b * h * w + pix) * c + ch] / (h * w) as f64;
            }
        }
    }
    y
}

pub fn global_avg_pool_backward(dy: &[f64], xs: [usize; 4]) -> Vec<f64> {
    let [n, h, w, c] = xs;
    let mut dx = vec![0.0; n * h * w * c];
    for b in 0..n {
        for pix in 0..h * w {
            for ch in 0..c {
                dx[(b * h * w + pix) * c + ch] = dy[b * c + ch] / (h * w) as f64;
            }
        }
    }
    dx
}
