//! Lab family `elementwise`: the memory-bound kernels ReLU, ReLU6, Add and
//! ReLU6's backward at MobileNetV2-like activation sizes. Each does one
//! flop or so per element, so its GB/s is the adapter's streaming ceiling:
//! the mark that memory-bound kernels with more work per element (depthwise
//! convolution, BatchNorm) are judged against. Each op has a scalar kernel
//! (`relu`, …) and a vec4 twin (`relu-vec4`, …, the pick where the length
//! allows); the oracle is the f64 CPU reference.

use super::{Family, Variant, read_back};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::elementwise::{self as ew, Lanes};
use crate::reference::{elementwise as reference, random};
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EwOp {
    Relu,
    Relu6,
    Add,
    Relu6Backward,
}

impl EwOp {
    const ALL: [EwOp; 4] = [EwOp::Relu, EwOp::Relu6, EwOp::Add, EwOp::Relu6Backward];

    /// The variant name of the op's kernel with `lanes`.
    fn name(self, lanes: Lanes) -> &'static str {
        match (self, lanes) {
            (EwOp::Relu, Lanes::Scalar) => "relu",
            (EwOp::Relu, Lanes::Vec4) => "relu-vec4",
            (EwOp::Relu6, Lanes::Scalar) => "relu6",
            (EwOp::Relu6, Lanes::Vec4) => "relu6-vec4",
            (EwOp::Add, Lanes::Scalar) => "add",
            (EwOp::Add, Lanes::Vec4) => "add-vec4",
            (EwOp::Relu6Backward, Lanes::Scalar) => "relu6-backward",
            (EwOp::Relu6Backward, Lanes::Vec4) => "relu6-backward-vec4",
        }
    }

    /// Tensors read (each as large as the output, which is written once).
    fn reads(self) -> usize {
        match self {
            EwOp::Relu | EwOp::Relu6 => 1,
            EwOp::Add | EwOp::Relu6Backward => 2,
        }
    }

    fn run(self, lanes: Lanes, t: &[Tensor]) -> Result<Tensor> {
        match self {
            EwOp::Relu => ew::relu_with(lanes, &t[0]),
            EwOp::Relu6 => ew::relu6_with(lanes, &t[0]),
            EwOp::Add => ew::add_with(lanes, &t[0], &t[1]),
            EwOp::Relu6Backward => ew::relu6_backward_with(lanes, &t[0], &t[1]),
        }
    }

    fn reference(self, t: &[Vec<f64>]) -> Vec<f64> {
        match self {
            EwOp::Relu => reference::relu(&t[0]),
            EwOp::Relu6 => reference::relu6(&t[0]),
            EwOp::Add => reference::add(&t[0], &t[1]),
            EwOp::Relu6Backward => reference::relu6_backward(&t[0], &t[1]),
        }
    }
}

/// One op on NHWC tensors of shape `x`.
#[derive(Clone, Copy, Debug)]
pub struct EwShape {
    pub op: EwOp,
    pub x: [usize; 4],
}

impl EwShape {
    fn elements(&self) -> usize {
        self.x.iter().product()
    }
}

/// (downsampling, channels) of MobileNetV2 activations: the stem's output
/// and the expanded (6×) tensors of the first block at each resolution.
const MOBILENET_V2_ACTIVATIONS: [(usize, usize); 5] = [(2, 32), (4, 144), (8, 192), (16, 384), (32, 960)];

pub struct Elementwise;

impl Family for Elementwise {
    type Shape = EwShape;
    const NAME: &'static str = "elementwise";
    const WHAT: &'static str = "memory-bound elementwise kernels (relu, relu6, add, relu6 backward) at MobileNetV2 activation sizes; FLOPs = 1 per element";

    /// Every op at [n, ⌈s/d⌉, ⌈s/d⌉, c] for MobileNetV2's (d, c) (not InceptionV3's shapes).
    fn shapes(n: usize, image: usize) -> Result<Vec<EwShape>> {
        Ok(EwOp::ALL
            .into_iter()
            .flat_map(|op| MOBILENET_V2_ACTIVATIONS.map(|(d, c)| EwShape { op, x: [n, image.div_ceil(d), image.div_ceil(d), c] }))
            .collect())
    }
    fn small_shapes() -> Vec<EwShape> {
        // 1 and 3465 elements (scalar only), 3472 (both).
        EwOp::ALL.into_iter().flat_map(|op| [[1, 1, 1, 1], [3, 5, 7, 33], [2, 7, 8, 31]].map(|x| EwShape { op, x })).collect()
    }
    fn label(s: &EwShape) -> String {
        let [n, h, w, c] = s.x;
        format!("{} {n}x{h}x{w}x{c}", s.op.name(Lanes::Scalar))
    }
    fn flops(s: &EwShape) -> f64 {
        s.elements() as f64
    }
    fn bytes(s: &EwShape) -> f64 {
        4.0 * ((s.op.reads() + 1) * s.elements()) as f64
    }
    /// x in [-10, 10) (both of ReLU6's bends inside); relu6-backward reads
    /// relu6(x) as the saved output and dy in [-1, 1).
    fn inputs(gpu: &Gpu, s: &EwShape) -> Result<Vec<Tensor>> {
        let n = s.elements();
        let seed = (s.x[1] * 31 + s.x[3]) as u64 * 8;
        let x = random(n, seed, -10.0, 10.0);
        Ok(match s.op {
            EwOp::Relu | EwOp::Relu6 => vec![Tensor::from_slice(gpu, &s.x, &x)?],
            EwOp::Add => vec![Tensor::from_slice(gpu, &s.x, &x)?, Tensor::from_slice(gpu, &s.x, &random(n, seed + 1, -10.0, 10.0))?],
            EwOp::Relu6Backward => {
                let y: Vec<f32> = x.iter().map(|v| v.clamp(0.0, 6.0)).collect();
                vec![Tensor::from_slice(gpu, &s.x, &y)?, Tensor::from_slice(gpu, &s.x, &random(n, seed + 1, -1.0, 1.0))?]
            }
        })
    }
    /// Two variants per op (scalar, vec4), each running only its op's shapes
    /// (vec4: those whose length it divides).
    fn variants() -> Vec<Variant<EwShape>> {
        EwOp::ALL
            .into_iter()
            .flat_map(|op| {
                Lanes::ALL.map(|lanes| {
                    Variant::new(op.name(lanes), move |_: &EwShape, t: &[Tensor]| Ok(vec![op.run(lanes, t)?]))
                        .only_if(move |s: &EwShape| s.op == op && lanes.handles(s.elements()))
                })
            })
            .collect()
    }
    fn picked(_: &Gpu, s: &EwShape) -> &'static str {
        s.op.name(Lanes::for_len(s.elements()))
    }
    fn reference(s: &EwShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![s.op.reference(t)]
    }
    fn oracle(s: &EwShape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &read_back(inputs)?))
    }
}
