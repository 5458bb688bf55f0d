//! The Grad-CAM map of one image from its layer output and gradient (on
//! the host, f64 sums), and the bilinear upsampling that lays it over the image.

/// One image's Grad-CAM at a layer.
#[derive(Clone, Debug)]
pub struct GradCam {
    pub height: usize,
    pub width: usize,
    /// α_k: the gradient's mean over space, per channel.
    pub channel_weights: Vec<f32>,
    /// ReLU(Σ_k α_k A_k), row-major `height`×`width`, before any upsampling.
    pub map: Vec<f32>,
}

/// Grad-CAM from one image's layer output `activations` and the class
/// logit's gradient `gradients`, both row-major [h, w, c] (NHWC without the batch).
pub fn grad_cam(activations: &[f32], gradients: &[f32], [h, w, c]: [usize; 3]) -> GradCam {
    assert_eq!(activations.len(), h * w * c, "activations are not {h}x{w}x{c}");
    assert_eq!(gradients.len(), h * w * c, "gradients are not {h}x{w}x{c}");
    let mut sums = vec![0.0f64; c];
    for pixel in gradients.chunks_exact(c) {
        for (s, &g) in sums.iter_mut().zip(pixel) {
            *s += g as f64;
        }
    }
    let weights: Vec<f64> = sums.iter().map(|s| s / (h * w) as f64).collect();
    let map = activations
        .chunks_exact(c)
        .map(|pixel| pixel.iter().zip(&weights).map(|(&a, &alpha)| a as f64 * alpha).sum::<f64>().max(0.0) as f32)
        .collect();
    GradCam { height: h, width: w, channel_weights: weights.iter().map(|&a| a as f32).collect(), map }
}

/// Bilinear resize of a row-major `h`×`w` map to `out_h`×`out_w` with
/// half-pixel centres: output pixel (y, x) samples the source at
/// ((y + ½)·h/out_h − ½, (x + ½)·w/out_w − ½), clamped to the border, as
/// TensorFlow's `resize(method="bilinear")` does.
pub fn resize_bilinear(map: &[f32], (h, w): (usize, usize), (out_h, out_w): (usize, usize)) -> Vec<f32> {
    assert_eq!(map.len(), h * w, "the map is not {h}x{w}");
    // Per output coordinate: the two source indices and the weight of the second.
    let taps = |out: usize, len: usize| -> Vec<(usize, usize, f64)> {
        (0..out)
            .map(|i| {
                let s = ((i as f64 + 0.5) * len as f64 / out as f64 - 0.5).clamp(0.0, (len - 1) as f64);
                let lo = s.floor() as usize;
                (lo, (lo + 1).min(len - 1), s - lo as f64)
            })
            .collect()
    };
    let (rows, cols) = (taps(out_h, h), taps(out_w, w));
    let at = |y: usize, x: usize| map[y * w + x] as f64;
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, fy) in &rows {
        for &(x0, x1, fx) in &cols {
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            out.push((top * (1.0 - fy) + bottom * fy) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_the_relu_of_the_gradient_weighted_channel_sum() {
        // 1×2 pixels, 2 channels: α = mean gradient per channel = (1, -0.5).
        let a = [2.0, 1.0, 1.0, 4.0];
        let g = [1.5, -1.0, 0.5, 0.0];
        let cam = grad_cam(&a, &g, [1, 2, 2]);
        assert_eq!(cam.channel_weights, vec![1.0, -0.5]);
        // Pixel 0: 2·1 − 1·0.5 = 1.5; pixel 1: 1·1 − 4·0.5 = −1 → 0.
        assert_eq!(cam.map, vec![1.5, 0.0]);
    }

    #[test]
    fn bilinear_uses_half_pixel_centres_and_clamps_at_the_border() {
        // 1×2 → 1×4: samples at −0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1.
        let up = resize_bilinear(&[0.0, 4.0], (1, 2), (1, 4));
        assert_eq!(up, vec![0.0, 1.0, 3.0, 4.0]);
        // 2×2 → 3×3: the centre is the mean of the four corners.
        let up = resize_bilinear(&[1.0, 2.0, 3.0, 6.0], (2, 2), (3, 3));
        assert!((up[4] - 3.0).abs() < 1e-6, "{up:?}");
        assert_eq!((up[0], up[2], up[6], up[8]), (1.0, 2.0, 3.0, 6.0));
        // A 1×1 map stays constant.
        assert!(resize_bilinear(&[0.7], (1, 1), (5, 3)).iter().all(|&v| v == 0.7));
    }
}
