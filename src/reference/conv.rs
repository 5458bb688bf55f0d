//! CPU reference convolution: NHWC input, HWIO filter, f64 accumulation.

use crate::ops::activation::Act;
use crate::ops::window::Window2d;

/// `x`: [n, h, w, cin], `f`: [kh, kw, cin, cout] → [n, oh, ow, cout].
pub fn conv2d(x: &[f64], xs: [usize; 4], f: &[f64], cout: usize, win: &Window2d) -> (Vec<f64>, [usize; 4]) {
    let [n, h, w, cin] = xs;
    let (oh, ow) = win.output_size(h, w).expect("valid geometry");
    let (pt, pl) = win.pad_before(h, w).expect("valid geometry");
    let mut y = vec![0.0; n * oh * ow * cout];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let out = &mut y[((b * oh + oy) * ow + ox) * cout..][..cout];
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
                        let xin = &x[((b * h + iy as usize) * w + ix as usize) * cin..][..cin];
                        for (ci, &xv) in xin.iter().enumerate() {
                            let frow = &f[((ky * win.kw + kx) * cin + ci) * cout..][..cout];
                            for (o, &fv) in out.iter_mut().zip(frow) {
                                *o += xv * fv;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, [n, oh, ow, cout])
}

/// The fused epilogue of `ops::conv::conv2d_fused` on an NHWC output with
/// `cout` channels: `act(y * scale + bias)`, each part optional.
pub fn epilogue(y: &[f64], cout: usize, scale: Option<&[f64]>, bias: Option<&[f64]>, act: Act) -> Vec<f64> {
    y.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i % cout;
            let v = v * scale.map_or(1.0, |s| s[c]) + bias.map_or(0.0, |b| b[c]);
            act.apply(v)
        })
        .collect()
}
