//! Kernel benchmarks (`incept bench kernels`): GFLOP/s of the forward
//! convolution for every distinct InceptionV3 conv shape. Measurements, not
//! tests: wall-clock over whole submits, after a warm-up run.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::graph::LayerKind;
use crate::models::inception_v3::inception_v3_shapes;
use crate::models::inception_v3_graph::inception_v3_graph;
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
/// square input of `image` pixels (at least 75), in creation order, read off the layer graph.
pub fn inception_v3_conv_shapes(image: usize) -> Result<Vec<ConvShape>> {
    let graph = inception_v3_graph();
    let shapes = inception_v3_shapes(&graph, 1, image, image)?;
    let mut seen = std::collections::HashSet::new();
    Ok(graph
        .layers
        .iter()
        .filter_map(|layer| match layer.kind {
            LayerKind::Conv2d { filters, win } => {
                let [_, h, w, cin] = shapes[layer.inputs[0]];
                Some(ConvShape { h, w, cin, cout: filters, win })
            }
            _ => None,
        })
        .filter(|s| seen.insert(*s))
        .collect())
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
pub fn bench_conv(gpu: &Gpu, shapes: &[ConvShape], n: usize, algo: ConvAlgo, min_time: Duration, check: bool, mut report: impl FnMut(&ConvTiming)) -> Result<Vec<ConvTiming>> {
    let mut rows = Vec::new();
    for (i, s) in shapes.iter().enumerate() {
        let x = Tensor::from_slice(gpu, &[n, s.h, s.w, s.cin], &crate::reference::random(n * s.h * s.w * s.cin, i as u64, -1.0, 1.0))?;
        let w = Tensor::from_slice(gpu, &[s.win.kh, s.win.kw, s.cin, s.cout], &crate::reference::random(s.win.kh * s.win.kw * s.cin * s.cout, 1000 + i as u64, -0.1, 0.1))?;
        let spec = ConvSpec { algo: Some(algo), relu: true, ..ConvSpec::new(s.win) };
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
