//! Shared helpers for the GPU tests: the device, uploads and tolerances;
//! and the paths of the repository's own files (goldens, fixtures, weights).
#![allow(dead_code)]

use incept::ops::{Padding, Window2d};
use incept::ops::conv_tuning::ConvKey;
use incept::reference::{random, rel_l2, rel_l2_f64};
use incept::{DType, Gpu, Tensor};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Tolerance for f32 kernels against f64 references (DESIGN.md: ≤ 1e-4).
pub const TOL: f64 = 1e-4;
/// Tolerance for finite differences of an f64 reference against its analytic backward.
pub const FD_TOL: f64 = 1e-6;

pub fn gpu() -> Gpu {
    Gpu::shared().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)")
}

/// Random f32 data in [-1, 1) uploaded with the given shape; returns both copies.
pub fn rand_tensor(gpu: &Gpu, shape: &[usize], seed: u64) -> (Tensor, Vec<f32>) {
    let n: usize = shape.iter().product();
    let data = random(n, seed, -1.0, 1.0);
    (Tensor::from_slice(gpu, shape, &data).unwrap(), data)
}

/// `data` in a tensor of `dtype` (f32, or f16 rounded to nearest) and the values it holds.
pub fn stored_tensor(gpu: &Gpu, shape: &[usize], data: &[f32], dtype: DType) -> (Tensor, Vec<f32>) {
    let t = match dtype {
        DType::F16 => Tensor::from_slice_f16(gpu, shape, data),
        _ => Tensor::from_slice(gpu, shape, data),
    }
    .unwrap();
    let held = t.to_vec().unwrap();
    (t, held)
}

#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    let err = rel_l2(got, want);
    assert!(err <= TOL, "{what}: relative L2 error {err:.3e} > {TOL:e}");
}

#[track_caller]
pub fn assert_close_f64(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let err = rel_l2_f64(got, want);
    assert!(err <= tol, "{what}: relative L2 error {err:.3e} > {tol:e}");
}

/// The golden images, float64 rounded once to f32, as in tools/make_goldens.py:
/// pixel(n, y, x, c) = 0.5 + 0.5·sin(0.05·(x+1)·(c+1) + 0.07·(y+1) + 1.7·n), NHWC.
pub fn golden_images(batch: usize, size: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(batch * size * size * 3);
    for n in 0..batch {
        for y in 0..size {
            for x in 0..size {
                for c in 0..3 {
                    let (n, y, x, c) = (n as f64, y as f64, x as f64, c as f64);
                    out.push((0.5 + 0.5 * (0.05 * (x + 1.0) * (c + 1.0) + 0.07 * (y + 1.0) + 1.7 * n).sin()) as f32);
                }
            }
        }
    }
    out
}

/// One convolution for the conv tests: input [batch, h, w, cin], filter [kh, kw, cin, cout].
#[derive(Clone, Copy, Debug)]
pub struct ConvCase {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: Padding,
}

pub const fn conv_case(batch: usize, (h, w): (usize, usize), cin: usize, cout: usize, (kh, kw): (usize, usize), stride: usize, padding: Padding) -> ConvCase {
    ConvCase { batch, h, w, cin, cout, kh, kw, stride, padding }
}

/// A case's uploaded operands and their host copies.
pub struct ConvOperands {
    pub x: Tensor,
    pub w: Tensor,
    pub xh: Vec<f32>,
    pub wh: Vec<f32>,
}

impl ConvCase {
    pub fn win(&self) -> Window2d {
        Window2d::new(self.kh, self.kw, self.stride, self.padding)
    }

    /// The case as the variant rules and the tuning cache key it.
    pub fn key(&self) -> ConvKey {
        ConvKey::new(self.h, self.w, self.cin, self.cout, &self.win())
    }

    /// Random input (seed) and filter (seed + 1).
    pub fn operands(&self, gpu: &Gpu, seed: u64) -> ConvOperands {
        let (x, xh) = rand_tensor(gpu, &[self.batch, self.h, self.w, self.cin], seed);
        let (w, wh) = rand_tensor(gpu, &[self.kh, self.kw, self.cin, self.cout], seed + 1);
        ConvOperands { x, w, xh, wh }
    }
}

/// An NHWC tensor of `ctotal` channels read before and after a write into
/// channels [offset, offset + cout): the slice as written, and every other
/// channel after and before the write.
pub struct SliceWrite {
    pub slice: Vec<f32>,
    pub others: Vec<f32>,
    pub others_before: Vec<f32>,
}

pub fn split_channel_slice(after: &[f32], before: &[f32], ctotal: usize, offset: usize, cout: usize) -> SliceWrite {
    let mut w = SliceWrite { slice: vec![], others: vec![], others_before: vec![] };
    for (i, (&a, &b)) in after.iter().zip(before).enumerate() {
        if (offset..offset + cout).contains(&(i % ctotal)) {
            w.slice.push(a);
        } else {
            w.others.push(a);
            w.others_before.push(b);
        }
    }
    w
}

/// A scalar loss on `out` for checking gradients end to end: the mean softmax
/// cross-entropy of `out` viewed as [rows, last axis] against fixed one-hot
/// labels. Returns the loss and its gradient with respect to `out`, computed
/// on the CPU in f64 from `out`'s value, to feed the ops' reference backwards.
pub fn softmax_ce_loss(gpu: &Gpu, out: &incept::autograd::Var) -> (incept::autograd::Var, Vec<f64>) {
    use incept::autograd as ag;
    let c = *out.shape().last().unwrap();
    let rows = out.value().numel() / c;
    let labels: Vec<usize> = (0..rows).map(|i| (i * 5 + 1) % c).collect();
    let mut one_hot = vec![0.0f32; rows * c];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * c + l] = 1.0;
    }
    let targets = Tensor::from_slice(gpu, &[rows, c], &one_hot).unwrap();
    let (loss, _) = ag::softmax_cross_entropy(&ag::reshape(out, &[rows, c]).unwrap(), &targets).unwrap();
    let y = incept::reference::to_f64(&out.value().to_vec().unwrap());
    let mut grad = Vec::with_capacity(y.len());
    for (row, &label) in y.chunks(c).zip(&labels) {
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        grad.extend(e.iter().enumerate().map(|(k, v)| (v / sum - if k == label { 1.0 } else { 0.0 }) / rows as f64));
    }
    (loss, grad)
}

/// A file of the repository, by its path from the root.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A file written by Keras for the tests (tests/data/keras).
pub fn keras_fixture(name: &str) -> PathBuf {
    repo_path("tests/data/keras").join(name)
}

/// The bytes of a gzip file, decompressed.
pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut bytes).unwrap();
    bytes
}
