//! Lab family `matmul`: row-major f32 products at InceptionV3's GEMM
//! shapes, i.e. its 1×1 stride-1 convolutions seen as [n·h·w, cin]·[cin, cout].
//! Variants are `MatmulAlgo::ALL` (the `Naive` oracle first); the pick is
//! `MatmulAlgo::for_gpu`.

use super::conv::BatchedConv;
use super::{Family, Variant};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::matmul::{self, MatmulAlgo};
use crate::reference::random;
use crate::tensor::Tensor;

/// [m, k]·[k, n].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmShape {
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

pub struct Matmul;

impl Family for Matmul {
    type Shape = GemmShape;
    const NAME: &'static str = "matmul";
    const WHAT: &'static str = "matmul [m,k]·[k,n] at the 1×1 stride-1 conv shapes (m = batch·h·w); FLOPs = 2·m·k·n";

    fn shapes(n: usize, image: usize) -> Result<Vec<GemmShape>> {
        let mut seen = std::collections::HashSet::new();
        Ok(BatchedConv::inception_v3(n, image)?
            .into_iter()
            .filter(|s| s.conv.win.kh == 1 && s.conv.win.kw == 1 && s.conv.win.stride_h == 1 && s.conv.win.stride_w == 1)
            .map(|s| GemmShape { m: s.n * s.conv.h * s.conv.w, k: s.conv.cin, n: s.conv.cout })
            .filter(|g| seen.insert(*g))
            .collect())
    }
    fn small_shapes() -> Vec<GemmShape> {
        vec![GemmShape { m: 37, k: 29, n: 70 }, GemmShape { m: 130, k: 64, n: 9 }]
    }
    fn label(s: &GemmShape) -> String {
        format!("{}x{} · {}x{}", s.m, s.k, s.k, s.n)
    }
    fn flops(s: &GemmShape) -> f64 {
        2.0 * (s.m * s.k * s.n) as f64
    }
    fn bytes(s: &GemmShape) -> f64 {
        4.0 * (s.m * s.k + s.k * s.n + s.m * s.n) as f64
    }
    fn inputs(gpu: &Gpu, s: &GemmShape) -> Result<Vec<Tensor>> {
        let seed = (s.m * 31 + s.k * 7 + s.n) as u64;
        Ok(vec![
            Tensor::from_slice(gpu, &[s.m, s.k], &random(s.m * s.k, seed, -1.0, 1.0))?,
            Tensor::from_slice(gpu, &[s.k, s.n], &random(s.k * s.n, seed + 1, -1.0, 1.0))?,
        ])
    }
    fn variants() -> Vec<Variant<GemmShape>> {
        MatmulAlgo::ALL
            .into_iter()
            .map(|algo| Variant::new(algo.name(), move |_: &GemmShape, t: &[Tensor]| Ok(vec![matmul::matmul_with(algo, &t[0], &t[1])?])))
            .collect()
    }
    fn picked(gpu: &Gpu, _: &GemmShape) -> &'static str {
        MatmulAlgo::for_gpu(gpu).name()
    }
    fn reference(s: &GemmShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![crate::reference::matmul::matmul(&t[0], &t[1], s.m, s.k, s.n)]
    }
}
