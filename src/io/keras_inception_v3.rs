//! The weights of Keras InceptionV3 without its top (`include_top=False`),
//! as Keras 3 names them.
//!
//! `keras/src/applications/inception_v3.py` builds the network from 94 calls
//! of `conv2d_bn` (Conv2D without bias → BatchNormalization(scale=False) →
//! ReLU). Keras names layers by a per-class counter at creation, so the k-th
//! call creates `conv2d_k` and `batch_normalization_k` (Keras 3 drops the
//! `_0`: `conv2d`, `conv2d_1`, … `conv2d_93`; Keras 2 counts from 1:
//! `conv2d_1` … `conv2d_94`). `CONVS` lists the calls in that creation order.
//!
//! Weight files do NOT store layers in creation order: Keras sorts
//! `model.layers` by graph depth (mixed0's four branches interleave), and
//! TF.js manifests are sorted by name. Importers therefore rank a file's
//! convolutions by their creation counter and check each one against this
//! table: kernel shape, stride, padding, and where its input comes from.

use super::TensorMap;
use crate::error::{Error, Result};
use crate::ops::Padding;

/// One `conv2d_bn` call: a `kh`×`kw` convolution from `cin` to `cout`
/// channels (HWIO kernel `[kh, kw, cin, cout]`), followed by BatchNormalization
/// with `cout` channels (beta, moving_mean, moving_variance; no gamma).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub kh: usize,
    pub kw: usize,
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
    pub padding: Padding,
    /// Where the input comes from: `input` (the image), `convJ` (the ReLU
    /// after conv J), `mixedN` (a block output), `max(…)` / `avg(…)` (the
    /// block's 3×3 max pooling, stride 2, or average pooling, stride 1 'same').
    pub input: &'static str,
}

const fn same(kh: usize, kw: usize, cin: usize, cout: usize, input: &'static str) -> ConvSpec {
    ConvSpec { kh, kw, cin, cout, stride: 1, padding: Padding::Same, input }
}

const fn valid(kh: usize, kw: usize, cin: usize, cout: usize, stride: usize, input: &'static str) -> ConvSpec {
    ConvSpec { kh, kw, cin, cout, stride, padding: Padding::Valid, input }
}

/// Number of convolutions (and of BatchNormalizations) up to `mixed10`.
pub const NUM_CONVS: usize = 94;

/// Keras's parameter count for InceptionV3 with `include_top=False`
/// (trainable and non-trainable, i.e. including the moving statistics).
pub const TOTAL_PARAMETERS: usize = 21_802_784;

/// The 94 `conv2d_bn` calls of InceptionV3 in creation order (index = Keras 3 number).
#[rustfmt::skip]
pub const CONVS: [ConvSpec; NUM_CONVS] = [
    // stem: 299 → 149 → 147 → 147, max pool → 73, 1×1, 3×3 → 71, max pool → 35
    valid(3, 3, 3, 32, 2, "input"),               // 0
    valid(3, 3, 32, 32, 1, "conv0"),              // 1
    same(3, 3, 32, 64, "conv1"),                  // 2
    valid(1, 1, 64, 80, 1, "max(conv2)"),         // 3
    valid(3, 3, 80, 192, 1, "conv3"),             // 4
    // mixed0: 35×35×192 → 256 (1x1 | 1x1,5x5 | 1x1,3x3,3x3 | avg,1x1)
    same(1, 1, 192, 64, "max(conv4)"),            // 5
    same(1, 1, 192, 48, "max(conv4)"),            // 6
    same(5, 5, 48, 64, "conv6"),                  // 7
    same(1, 1, 192, 64, "max(conv4)"),            // 8
    same(3, 3, 64, 96, "conv8"),                  // 9
    same(3, 3, 96, 96, "conv9"),                  // 10
    same(1, 1, 192, 32, "avg(max(conv4))"),       // 11
    // mixed1: 256 → 288
    same(1, 1, 256, 64, "mixed0"),                // 12
    same(1, 1, 256, 48, "mixed0"),                // 13
    same(5, 5, 48, 64, "conv13"),                 // 14
    same(1, 1, 256, 64, "mixed0"),                // 15
    same(3, 3, 64, 96, "conv15"),                 // 16
    same(3, 3, 96, 96, "conv16"),                 // 17
    same(1, 1, 256, 64, "avg(mixed0)"),           // 18
    // mixed2: 288 → 288
    same(1, 1, 288, 64, "mixed1"),                // 19
    same(1, 1, 288, 48, "mixed1"),                // 20
    same(5, 5, 48, 64, "conv20"),                 // 21
    same(1, 1, 288, 64, "mixed1"),                // 22
    same(3, 3, 64, 96, "conv22"),                 // 23
    same(3, 3, 96, 96, "conv23"),                 // 24
    same(1, 1, 288, 64, "avg(mixed1)"),           // 25
    // mixed3: 35×35×288 → 17×17×768 (3x3 s2 | 1x1,3x3,3x3 s2 | max pool)
    valid(3, 3, 288, 384, 2, "mixed2"),           // 26
    same(1, 1, 288, 64, "mixed2"),                // 27
    same(3, 3, 64, 96, "conv27"),                 // 28
    valid(3, 3, 96, 96, 2, "conv28"),             // 29
    // mixed4: 768 → 768 (1x1 | 1x1,1x7,7x1 | 1x1,7x1,1x7,7x1,1x7 | avg,1x1)
    same(1, 1, 768, 192, "mixed3"),               // 30
    same(1, 1, 768, 128, "mixed3"),               // 31
    same(1, 7, 128, 128, "conv31"),               // 32
    same(7, 1, 128, 192, "conv32"),               // 33
    same(1, 1, 768, 128, "mixed3"),               // 34
    same(7, 1, 128, 128, "conv34"),               // 35
    same(1, 7, 128, 128, "conv35"),               // 36
    same(7, 1, 128, 128, "conv36"),               // 37
    same(1, 7, 128, 192, "conv37"),               // 38
    same(1, 1, 768, 192, "avg(mixed3)"),          // 39
    // mixed5: 768 → 768, 160 inner channels
    same(1, 1, 768, 192, "mixed4"),               // 40
    same(1, 1, 768, 160, "mixed4"),               // 41
    same(1, 7, 160, 160, "conv41"),               // 42
    same(7, 1, 160, 192, "conv42"),               // 43
    same(1, 1, 768, 160, "mixed4"),               // 44
    same(7, 1, 160, 160, "conv44"),               // 45
    same(1, 7, 160, 160, "conv45"),               // 46
    same(7, 1, 160, 160, "conv46"),               // 47
    same(1, 7, 160, 192, "conv47"),               // 48
    same(1, 1, 768, 192, "avg(mixed4)"),          // 49
    // mixed6: as mixed5
    same(1, 1, 768, 192, "mixed5"),               // 50
    same(1, 1, 768, 160, "mixed5"),               // 51
    same(1, 7, 160, 160, "conv51"),               // 52
    same(7, 1, 160, 192, "conv52"),               // 53
    same(1, 1, 768, 160, "mixed5"),               // 54
    same(7, 1, 160, 160, "conv54"),               // 55
    same(1, 7, 160, 160, "conv55"),               // 56
    same(7, 1, 160, 160, "conv56"),               // 57
    same(1, 7, 160, 192, "conv57"),               // 58
    same(1, 1, 768, 192, "avg(mixed5)"),          // 59
    // mixed7: 768 → 768, 192 inner channels
    same(1, 1, 768, 192, "mixed6"),               // 60
    same(1, 1, 768, 192, "mixed6"),               // 61
    same(1, 7, 192, 192, "conv61"),               // 62
    same(7, 1, 192, 192, "conv62"),               // 63
    same(1, 1, 768, 192, "mixed6"),               // 64
    same(7, 1, 192, 192, "conv64"),               // 65
    same(1, 7, 192, 192, "conv65"),               // 66
    same(7, 1, 192, 192, "conv66"),               // 67
    same(1, 7, 192, 192, "conv67"),               // 68
    same(1, 1, 768, 192, "avg(mixed6)"),          // 69
    // mixed8: 17×17×768 → 8×8×1280 (1x1,3x3 s2 | 1x1,1x7,7x1,3x3 s2 | max pool)
    same(1, 1, 768, 192, "mixed7"),               // 70
    valid(3, 3, 192, 320, 2, "conv70"),           // 71
    same(1, 1, 768, 192, "mixed7"),               // 72
    same(1, 7, 192, 192, "conv72"),               // 73
    same(7, 1, 192, 192, "conv73"),               // 74
    valid(3, 3, 192, 192, 2, "conv74"),           // 75
    // mixed9: 1280 → 2048 (1x1 | 1x1,[1x3|3x1] | 1x1,3x3,[1x3|3x1] | avg,1x1)
    same(1, 1, 1280, 320, "mixed8"),              // 76
    same(1, 1, 1280, 384, "mixed8"),              // 77
    same(1, 3, 384, 384, "conv77"),               // 78
    same(3, 1, 384, 384, "conv77"),               // 79
    same(1, 1, 1280, 448, "mixed8"),              // 80
    same(3, 3, 448, 384, "conv80"),               // 81
    same(1, 3, 384, 384, "conv81"),               // 82
    same(3, 1, 384, 384, "conv81"),               // 83
    same(1, 1, 1280, 192, "avg(mixed8)"),         // 84
    // mixed10: 2048 → 2048
    same(1, 1, 2048, 320, "mixed9"),              // 85
    same(1, 1, 2048, 384, "mixed9"),              // 86
    same(1, 3, 384, 384, "conv86"),               // 87
    same(3, 1, 384, 384, "conv86"),               // 88
    same(1, 1, 2048, 448, "mixed9"),              // 89
    same(3, 3, 448, 384, "conv89"),               // 90
    same(1, 3, 384, 384, "conv90"),               // 91
    same(3, 1, 384, 384, "conv90"),               // 92
    same(1, 1, 2048, 192, "avg(mixed9)"),         // 93
];

/// The block each run of convolutions belongs to: (name, index of its first conv).
pub const BLOCKS: [(&str, usize); 12] = [
    ("stem", 0),
    ("mixed0", 5),
    ("mixed1", 12),
    ("mixed2", 19),
    ("mixed3", 26),
    ("mixed4", 30),
    ("mixed5", 40),
    ("mixed6", 50),
    ("mixed7", 60),
    ("mixed8", 70),
    ("mixed9", 76),
    ("mixed10", 85),
];

/// The block that conv `k` belongs to.
pub fn block_of(k: usize) -> &'static str {
    BLOCKS.iter().rev().find(|(_, first)| *first <= k).map_or("stem", |(name, _)| name)
}

/// Keras 3 name of the k-th Conv2D layer: `conv2d`, `conv2d_1`, …
pub fn conv_name(k: usize) -> String {
    if k == 0 { "conv2d".to_string() } else { format!("conv2d_{k}") }
}

/// Keras 3 name of the k-th BatchNormalization layer.
pub fn bn_name(k: usize) -> String {
    if k == 0 { "batch_normalization".to_string() } else { format!("batch_normalization_{k}") }
}

/// The BatchNormalization variables of InceptionV3 (scale=False: no gamma).
pub const BN_VARIABLES: [&str; 3] = ["beta", "moving_mean", "moving_variance"];

impl ConvSpec {
    /// HWIO kernel shape.
    pub fn kernel_shape(&self) -> Vec<usize> {
        vec![self.kh, self.kw, self.cin, self.cout]
    }

    /// Kernel elements plus the three BatchNormalization vectors.
    pub fn parameters(&self) -> usize {
        self.kh * self.kw * self.cin * self.cout + BN_VARIABLES.len() * self.cout
    }
}

/// Every weight of the model in creation order: `conv2d_k/kernel` then
/// `batch_normalization_k/{beta,moving_mean,moving_variance}` for each k.
pub fn expected_weights() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::with_capacity(NUM_CONVS * 4);
    for (k, spec) in CONVS.iter().enumerate() {
        out.push((format!("{}/kernel", conv_name(k)), spec.kernel_shape()));
        for var in BN_VARIABLES {
            out.push((format!("{}/{var}", bn_name(k)), vec![spec.cout]));
        }
    }
    out
}

/// Total parameters the table describes (Keras counts moving statistics too).
pub fn parameter_count() -> usize {
    CONVS.iter().map(ConvSpec::parameters).sum()
}

/// Checks that `weights` holds exactly the Keras 3 InceptionV3 weights with
/// the right shapes; the error names the first weight that is missing, has
/// the wrong shape or data length, or is not part of the model.
pub fn check_weights(weights: &TensorMap) -> Result<()> {
    let expected = expected_weights();
    for (name, shape) in &expected {
        let Some(t) = weights.get(name) else {
            return Err(Error::Invalid(format!("InceptionV3 weight '{name}' {shape:?} is missing")));
        };
        if &t.shape != shape {
            return Err(Error::Shape(format!(
                "InceptionV3 weight '{name}' has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        if t.data.len() != t.numel() {
            return Err(Error::Shape(format!(
                "InceptionV3 weight '{name}' has {} values for shape {:?}",
                t.data.len(),
                t.shape
            )));
        }
    }
    if weights.len() != expected.len() {
        let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        let extra = weights.keys().find(|n| !known.contains(n.as_str())).map_or("?", |n| n.as_str());
        return Err(Error::Invalid(format!(
            "'{extra}' is not a weight of InceptionV3 without top ({} weights given, {} expected)",
            weights.len(),
            expected.len()
        )));
    }
    Ok(())
}
