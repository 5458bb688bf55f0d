//! Lab families `conv-backward-input` and `conv-backward-filter`: the two
//! gradients of every distinct InceptionV3 conv shape. Variants are
//! `InputGradKernel::ALL` / `FilterGradKernel::ALL` (the per-element oracles
//! first); the pick is the kernel the op uses (`DEFAULT`).

use super::conv::BatchedConv;
use super::{Family, Variant};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::conv_backward::{self as cb, FilterGradKernel, InputGradKernel};
use crate::tensor::Tensor;

/// dL/dx from dy and the filter.
pub struct BackwardInput;

impl Family for BackwardInput {
    type Shape = BatchedConv;
    const NAME: &'static str = "conv-backward-input";
    const WHAT: &'static str = "conv2d input gradient dx = dy ⋆ wᵀ; FLOPs = 2·n·oh·ow·cout·kh·kw·cin";

    fn shapes(n: usize, image: usize) -> Result<Vec<BatchedConv>> {
        BatchedConv::inception_v3(n, image)
    }
    fn small_shapes() -> Vec<BatchedConv> {
        BatchedConv::small()
    }
    fn label(s: &BatchedConv) -> String {
        s.label()
    }
    fn flops(s: &BatchedConv) -> f64 {
        s.conv.flops(s.n)
    }
    fn bytes(s: &BatchedConv) -> f64 {
        4.0 * s.conv.elements(s.n).iter().sum::<usize>() as f64
    }
    fn inputs(gpu: &Gpu, s: &BatchedConv) -> Result<Vec<Tensor>> {
        Ok(vec![s.random(gpu, s.y_shape(), 2, 1.0)?, s.random(gpu, s.w_shape(), 1, 0.1)?])
    }
    fn variants() -> Vec<Variant<BatchedConv>> {
        InputGradKernel::ALL
            .into_iter()
            .map(|k| {
                Variant::new(k.name(), move |s: &BatchedConv, t: &[Tensor]| {
                    Ok(vec![cb::conv2d_backward_input_using(k, &t[0], &t[1], &s.conv.win, s.x_shape())?])
                })
            })
            .collect()
    }
    fn picked(_: &Gpu, _: &BatchedConv) -> &'static str {
        InputGradKernel::DEFAULT.name()
    }
    fn reference(s: &BatchedConv, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![crate::reference::conv_backward::conv2d_backward_input(&t[0], &t[1], s.x_shape(), s.conv.cout, &s.conv.win)]
    }
}

/// dL/dw from the input and dy.
pub struct BackwardFilter;

impl Family for BackwardFilter {
    type Shape = BatchedConv;
    const NAME: &'static str = "conv-backward-filter";
    const WHAT: &'static str = "conv2d filter gradient dw = xᵀ ⋆ dy (split reduction as the op chooses); FLOPs = 2·n·oh·ow·cout·kh·kw·cin";

    fn shapes(n: usize, image: usize) -> Result<Vec<BatchedConv>> {
        BatchedConv::inception_v3(n, image)
    }
    fn small_shapes() -> Vec<BatchedConv> {
        BatchedConv::small()
    }
    fn label(s: &BatchedConv) -> String {
        s.label()
    }
    fn flops(s: &BatchedConv) -> f64 {
        s.conv.flops(s.n)
    }
    fn bytes(s: &BatchedConv) -> f64 {
        4.0 * s.conv.elements(s.n).iter().sum::<usize>() as f64
    }
    fn inputs(gpu: &Gpu, s: &BatchedConv) -> Result<Vec<Tensor>> {
        Ok(vec![s.random(gpu, s.x_shape(), 0, 1.0)?, s.random(gpu, s.y_shape(), 2, 1.0)?])
    }
    fn variants() -> Vec<Variant<BatchedConv>> {
        FilterGradKernel::ALL
            .into_iter()
            .map(|k| {
                Variant::new(k.name(), move |s: &BatchedConv, t: &[Tensor]| {
                    Ok(vec![cb::conv2d_backward_filter_using(k, None, &t[0], &t[1], &s.conv.win, s.w_shape())?])
                })
            })
            .collect()
    }
    fn picked(_: &Gpu, _: &BatchedConv) -> &'static str {
        FilterGradKernel::DEFAULT.name()
    }
    fn reference(s: &BatchedConv, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![crate::reference::conv_backward::conv2d_backward_filter(&t[0], s.x_shape(), &t[1], s.conv.cout, &s.conv.win)]
    }
}
