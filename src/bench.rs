//! Kernel benchmarks (`incept bench kernels`): GFLOP/s of the forward
//! convolution for every distinct InceptionV3 conv shape. Measurements, not
//! tests: wall-clock over whole submits, after a warm-up run.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::conv::{self, ConvAlgo, ConvSpec};
use crate::ops::window::{Padding, Window2d};
use crate::tensor::Tensor;
use std::time::{Duration, Instant};

/// One convolution of the network: input spatial size, channels, window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub win: Window2d,
}

impl ConvShape {
    /// Multiply-adds × 2 for a batch of `n`.
    pub fn flops(&self, n: usize) -> f64 {
        let (oh, ow) = self.win.output_size(self.h, self.w).expect("valid shape");
        2.0 * (n * oh * ow * self.cout * self.win.kh * self.win.kw * self.cin) as f64
    }

    pub fn label(&self) -> String {
        let pad = match self.win.padding {
            Padding::Valid => "valid",
            Padding::Same => "same",
        };
        let input = format!("{}x{}x{}", self.h, self.w, self.cin);
        format!("{input:<12} {}x{} s{} {pad:<5} -> {}", self.win.kh, self.win.kw, self.win.stride_h, self.cout)
    }
}

/// The distinct conv shapes of Keras InceptionV3 (include_top=False) for a
/// square input of `image` pixels, in network order.
pub fn inception_v3_conv_shapes(image: usize) -> Vec<ConvShape> {
    use Padding::{Same, Valid};
    let valid = |s: usize, k: usize, st: usize| (s - k) / st + 1;
    let s1 = valid(image, 3, 2);
    let s2 = valid(s1, 3, 1);
    let s4 = valid(s2, 3, 2);
    let s6 = valid(s4, 3, 1);
    let s35 = valid(s6, 3, 2);
    let s17 = valid(s35, 3, 2);
    let s8 = valid(s17, 3, 2);
    let c = |s: usize, cin: usize, kh: usize, kw: usize, stride: usize, padding: Padding, cout: usize| ConvShape {
        h: s,
        w: s,
        cin,
        cout,
        win: Window2d { kh, kw, stride_h: stride, stride_w: stride, padding },
    };
    let mut v = vec![
        c(image, 3, 3, 3, 2, Valid, 32),
        c(s1, 32, 3, 3, 1, Valid, 32),
        c(s2, 32, 3, 3, 1, Same, 64),
        c(s4, 64, 1, 1, 1, Valid, 80),
        c(s4, 80, 3, 3, 1, Valid, 192),
    ];
    // mixed0..2 (35×35 at 299²)
    for (cin, pool_out) in [(192, 32), (256, 64), (288, 64)] {
        v.extend([
            c(s35, cin, 1, 1, 1, Same, 64),
            c(s35, cin, 1, 1, 1, Same, 48),
            c(s35, 48, 5, 5, 1, Same, 64),
            c(s35, 64, 3, 3, 1, Same, 96),
            c(s35, 96, 3, 3, 1, Same, 96),
            c(s35, cin, 1, 1, 1, Same, pool_out),
        ]);
    }
    // mixed3
    v.extend([c(s35, 288, 3, 3, 2, Valid, 384), c(s35, 96, 3, 3, 2, Valid, 96)]);
    // mixed4..7 (17×17)
    for mid in [128, 160, 160, 192] {
        v.extend([
            c(s17, 768, 1, 1, 1, Same, 192),
            c(s17, 768, 1, 1, 1, Same, mid),
            c(s17, mid, 1, 7, 1, Same, mid),
            c(s17, mid, 7, 1, 1, Same, 192),
            c(s17, mid, 7, 1, 1, Same, mid),
            c(s17, mid, 1, 7, 1, Same, 192),
        ]);
    }
    // mixed8
    v.extend([c(s17, 192, 3, 3, 2, Valid, 320), c(s17, 192, 3, 3, 2, Valid, 192)]);
    // mixed9, mixed10 (8×8)
    for cin in [1280, 2048] {
        v.extend([
            c(s8, cin, 1, 1, 1, Same, 320),
            c(s8, cin, 1, 1, 1, Same, 384),
            c(s8, 384, 1, 3, 1, Same, 384),
            c(s8, 384, 3, 1, 1, Same, 384),
            c(s8, cin, 1, 1, 1, Same, 448),
            c(s8, 448, 3, 3, 1, Same, 384),
            c(s8, cin, 1, 1, 1, Same, 192),
        ]);
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(*s));
    v
}

/// One benchmark row.
pub struct ConvTiming {
    pub shape: ConvShape,
    pub seconds: f64,
    pub gflops: f64,
    /// Relative L2 error against the `Direct` oracle, when checked.
    pub error: Option<f64>,
}

/// Times the forward convolution of each shape at batch `n`: one warm-up
/// run, then repetitions until `min_time` has passed (at least one). With
/// `check`, the warm-up output is first compared with the `Direct` oracle.
/// `algo: None` lets the dispatcher choose per shape ([`ConvAlgo::for_conv`]).
pub fn bench_conv(gpu: &Gpu, shapes: &[ConvShape], n: usize, algo: Option<ConvAlgo>, min_time: Duration, check: bool, mut report: impl FnMut(&ConvTiming)) -> Result<Vec<ConvTiming>> {
    let mut rows = Vec::new();
    for (i, s) in shapes.iter().enumerate() {
        let x = Tensor::from_slice(gpu, &[n, s.h, s.w, s.cin], &crate::reference::random(n * s.h * s.w * s.cin, i as u64, -1.0, 1.0))?;
        let w = Tensor::from_slice(gpu, &[s.win.kh, s.win.kw, s.cin, s.cout], &crate::reference::random(s.win.kh * s.win.kw * s.cin * s.cout, 1000 + i as u64, -0.1, 0.1))?;
        let spec = ConvSpec { algo, relu: true, ..ConvSpec::new(s.win) };
        let first = conv::conv2d_fused(&x, &w, &spec)?;
        let error = if check {
            let oracle = conv::conv2d_fused(&x, &w, &ConvSpec { algo: Some(ConvAlgo::Direct), ..spec })?;
            Some(crate::reference::rel_l2(&first.to_vec()?, &crate::reference::to_f64(&oracle.to_vec()?)))
        } else {
            None
        };
        drop(first);
        gpu.synchronize()?;
        let start = Instant::now();
        let mut reps = 0;
        while reps == 0 || start.elapsed() < min_time {
            drop(conv::conv2d_fused(&x, &w, &spec)?);
            gpu.synchronize()?;
            reps += 1;
        }
        let seconds = start.elapsed().as_secs_f64() / reps as f64;
        let row = ConvTiming { shape: *s, seconds, gflops: s.flops(n) / seconds / 1e9, error };
        report(&row);
        rows.push(row);
    }
    Ok(rows)
}
