//! Synthetic weights from a closed formula, for Keras parity tests that
//! need no downloaded file: InceptionV3's ([`synthetic_inception_v3_weights`],
//! below) and any backbone's ([`synthetic_weights`]).
//!
//! `tools/make_goldens.py` loads the same weights into Keras (its
//! `synthetic_weights`) and checks, before writing the goldens, that the
//! file this module writes (`examples/dump_synthetic_weights.rs`) is
//! bit-identical to its own. Both compute in f64, in this order of
//! operations, and round once to f32; for conv k (creation order,
//! `convs()[k]`), its HWIO kernel flattened row-major (index i) and its
//! BatchNormalization channels c:
//!
//! ```text
//! kernel[i]          = sqrt(4 / (kh·kw·cin)) · sin(0.7·i + 1.3·k + 0.1·(i·i))
//! beta[c]            = 0.1 · cos(0.3·c + k)
//! moving_mean[c]     = 0.05 · sin(0.5·c + k)
//! moving_variance[c] = 1 + 0.2 · sin(0.9·c + k)
//! ```
//!
//! The kernel scale is He's (a sine's mean square is 1/2, so each weight has
//! mean square 2 / fan_in). The quadratic phase is what keeps the signal
//! alive: with a phase linear in i every kernel is a single sinusoid, so each
//! output channel is a mix of the same two projections of the input, which
//! cancel a ReLU output's mean; the input's influence then decays layer after
//! layer until mixed10 no longer depends on the image (measured: 7e-8
//! relative). With 0.1·i² the weights behave like random ones and the
//! activations keep the magnitudes the real weights give (mean |x| about
//! 0.7 at mixed0, 0.3 at mixed5, 0.1 at mixed10; see tests/data's metadata).

use super::keras_inception_v3::{bn_name, conv_name, convs};
use super::{HostTensor, TensorMap};

/// Every InceptionV3 weight (Keras 3 names, as `Backbone::check_weights` expects) from the formula above.
pub fn synthetic_inception_v3_weights() -> TensorMap {
    let mut out = TensorMap::new();
    for (k, spec) in convs().iter().enumerate() {
        let kf = k as f64;
        let shape = spec.kernel_shape();
        let n: usize = shape.iter().product();
        let scale = (4.0 / (spec.kh * spec.kw * spec.cin) as f64).sqrt();
        let kernel = (0..n)
            .map(|i| {
                let i = i as f64;
                (scale * (0.7 * i + 1.3 * kf + 0.1 * (i * i)).sin()) as f32
            })
            .collect();
        out.insert(format!("{}/kernel", conv_name(k)), HostTensor { shape, data: kernel });

        let channel = |f: &dyn Fn(f64) -> f64| HostTensor {
            shape: vec![spec.cout],
            data: (0..spec.cout).map(|c| f(c as f64) as f32).collect(),
        };
        let bn = bn_name(k);
        out.insert(format!("{bn}/beta"), channel(&|c| 0.1 * (0.3 * c + kf).cos()));
        out.insert(format!("{bn}/moving_mean"), channel(&|c| 0.05 * (0.5 * c + kf).sin()));
        out.insert(format!("{bn}/moving_variance"), channel(&|c| 1.0 + 0.2 * (0.9 * c + kf).sin()));
    }
    out
}

/// Every weight of `backbone` from the closed formula of
/// `tools/make_backbone_goldens.py` (the goldens of the other backbones):
/// for the k-th entry of its weight table (creation order), computed in f64
/// and rounded once to f32, over the row-major index i (kernels, in Keras's
/// layout) or the channel c (BatchNorm vectors):
///
/// ```text
/// kernel[i]           = sqrt(3 / (kh·kw·cin)) · sin(0.7·i + 1.3·k + 0.1·(i·i))
/// depthwise_kernel[i] = sqrt(3 / (kh·kw))     · sin(0.7·i + 1.3·k + 0.1·(i·i))
/// gamma[c]            = 1 + 0.2 · sin(0.4·c + k)
/// beta[c]             = 0.1 · cos(0.3·c + k)
/// moving_mean[c]      = 0.05 · sin(0.5·c + k)
/// moving_variance[c]  = 1 + 0.2 · sin(0.9·c + k)
/// ```
///
/// (The kernel scale is 3 rather than InceptionV3's 4: at 4 float32 Keras
/// drifts 1.5e-5 from float64 Keras at MobileNetV2's output, more than the
/// 1e-5 the parity tests hold incept to.)
pub fn synthetic_weights(backbone: crate::models::Backbone) -> TensorMap {
    let mut out = TensorMap::new();
    for (k, (name, shape)) in backbone.weight_table().into_iter().enumerate() {
        let kf = k as f64;
        let n: usize = shape.iter().product();
        let kernel = |fan_in: usize| -> Vec<f32> {
            let scale = (3.0 / fan_in as f64).sqrt();
            (0..n)
                .map(|i| {
                    let i = i as f64;
                    (scale * (0.7 * i + 1.3 * kf + 0.1 * (i * i)).sin()) as f32
                })
                .collect()
        };
        let channel = |f: &dyn Fn(f64) -> f64| (0..n).map(|c| f(c as f64) as f32).collect();
        let data = match name.rsplit('/').next() {
            Some("kernel") => kernel(shape[0] * shape[1] * shape[2]),
            Some("depthwise_kernel") => kernel(shape[0] * shape[1]),
            Some("gamma") => channel(&|c| 1.0 + 0.2 * (0.4 * c + kf).sin()),
            Some("beta") => channel(&|c| 0.1 * (0.3 * c + kf).cos()),
            Some("moving_mean") => channel(&|c| 0.05 * (0.5 * c + kf).sin()),
            _ => channel(&|c| 1.0 + 0.2 * (0.9 * c + kf).sin()),
        };
        out.insert(name, HostTensor { shape, data });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by numpy (float64 formula, `.astype(np.float32)`).
    #[test]
    fn formula_values_match_numpy() {
        let w = synthetic_inception_v3_weights();
        crate::models::Backbone::InceptionV3.check_weights(&w).unwrap();
        let at = |name: &str, i: usize| w[name].data[i];
        for (name, i, want) in [
            ("conv2d/kernel", 0, 0.0f32),
            ("conv2d/kernel", 863, -0.029673988),
            ("conv2d_40/kernel", 12345, 0.03129657),
            ("conv2d_81/kernel", 1548287, 0.024209544),
            ("conv2d_93/kernel", 393215, 0.034655705),
            ("batch_normalization_7/beta", 5, -0.06020119),
            ("batch_normalization_50/moving_mean", 100, -0.025318282),
            ("batch_normalization_93/moving_variance", 191, 1.1689627),
        ] {
            assert_eq!(at(name, i).to_bits(), want.to_bits(), "{name}[{i}] = {} (want {want})", at(name, i));
        }
    }
}
