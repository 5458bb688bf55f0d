//! Lab families `depthwise` and `depthwise-backward`: the depthwise
//! convolution at MobileNetV2's depthwise layers (all 3×3; stride 1 'same',
//! stride 2 after ZeroPadding2D((0, 1), (0, 1)), i.e. explicit padding) and
//! EfficientNet-Lite0's (3×3 and 5×5, TF 'same').
//! Forward variants are `DepthwiseAlgo::ALL` (the `Direct` oracle first),
//! with a ReLU6 epilogue as the network fuses it; backward variants are
//! `DepthwiseGradKernel::ALL` (per-element oracle first), each computing both
//! gradients. Depthwise convolutions move more bytes than they multiply:
//! read the GB/s column (bytes = input + filter + output, f32).

use super::{Family, Variant, layer_shapes};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::Backbone;
use crate::models::graph::LayerKind;
use crate::ops::Act;
use crate::ops::depthwise::{self as dw, DepthwiseAlgo, DepthwiseGradKernel, DepthwiseSpec};
use crate::ops::window::{Padding, Window2d};
use crate::reference::{depthwise as reference, random};
use crate::tensor::Tensor;

/// One depthwise convolution at a batch size: input [n, h, w, c], window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseShape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub win: Window2d,
}

impl DepthwiseShape {
    fn x_shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.c]
    }

    fn w_shape(&self) -> [usize; 4] {
        [self.win.kh, self.win.kw, self.c, 1]
    }

    fn y_shape(&self) -> [usize; 4] {
        let (oh, ow) = self.win.output_size(self.h, self.w).expect("depthwise shapes have windows that fit");
        [self.n, oh, ow, self.c]
    }

    fn label(&self) -> String {
        let [n, h, w, c] = self.x_shape();
        format!("n{n} {h}x{w}x{c} {}x{} s{} {}", self.win.kh, self.win.kw, self.win.stride_h, self.win.padding.label())
    }

    /// Multiply-adds × 2 of the forward (and of each gradient).
    fn flops(&self) -> f64 {
        2.0 * (numel(self.y_shape()) * self.win.kh * self.win.kw) as f64
    }

    /// A random tensor of `shape` in [-scale, scale), seeded by the shape and `salt`.
    fn random(&self, gpu: &Gpu, shape: [usize; 4], salt: u64, scale: f32) -> Result<Tensor> {
        let seed = (self.h * 31 + self.c * 7 + self.win.stride_h) as u64 * 16 + salt;
        Tensor::from_slice(gpu, &shape, &random(numel(shape), seed, -scale, scale))
    }
}

fn numel(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

/// The distinct depthwise convolutions of the built-in backbones that have
/// them (MobileNetV2, then EfficientNet-Lite0's new ones: its 5×5 windows) at
/// batch `n` and `s`² images, in network order, read off their graphs. A
/// ZeroPadding2D in front of a 'valid' depthwise layer is folded into it as
/// explicit padding, as the executor runs it.
pub fn backbone_depthwise_shapes(n: usize, s: usize) -> Result<Vec<DepthwiseShape>> {
    let mut shapes: Vec<DepthwiseShape> = Vec::new();
    for backbone in [Backbone::MobileNetV2, Backbone::EfficientNetLite0] {
        let (graph, outputs) = layer_shapes(backbone, n, s)?;
        for layer in &graph.layers {
            let LayerKind::DepthwiseConv2d { win } = layer.kind else { continue };
            let source = layer.inputs[0];
            let shape = match graph.layers[source].kind {
                LayerKind::ZeroPad([top, bottom, left, right]) if win.padding == Padding::Valid => {
                    let [n, h, w, c] = outputs[graph.layers[source].inputs[0]];
                    DepthwiseShape { n, h, w, c, win: Window2d::new(win.kh, win.kw, win.stride_h, Padding::Explicit { top, bottom, left, right }) }
                }
                _ => {
                    let [n, h, w, c] = outputs[source];
                    DepthwiseShape { n, h, w, c, win }
                }
            };
            if !shapes.contains(&shape) {
                shapes.push(shape);
            }
        }
    }
    Ok(shapes)
}

/// Small odd shapes for the lab's test: MobileNetV2's strided explicit
/// padding, 'same' with c % 4 == 0, and c = 5 (where only the scalar kernels apply).
fn small_shapes() -> Vec<DepthwiseShape> {
    let explicit = Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 };
    vec![
        DepthwiseShape { n: 2, h: 9, w: 7, c: 8, win: Window2d::new(3, 3, 2, explicit) },
        DepthwiseShape { n: 3, h: 6, w: 5, c: 12, win: Window2d::new(3, 3, 1, Padding::Same) },
        DepthwiseShape { n: 1, h: 7, w: 7, c: 5, win: Window2d::new(5, 5, 2, Padding::Same) },
    ]
}

/// Depthwise convolution forward with a ReLU6 epilogue.
pub struct DepthwiseForward;

impl Family for DepthwiseForward {
    type Shape = DepthwiseShape;
    const NAME: &'static str = "depthwise";
    const WHAT: &'static str = "depthwise conv2d forward + ReLU6 (MobileNetV2's and EfficientNet-Lite0's layers), NHWC; FLOPs = 2·n·oh·ow·c·kh·kw; bytes = input + filter + output";

    fn shapes(n: usize, image: usize) -> Result<Vec<DepthwiseShape>> {
        backbone_depthwise_shapes(n, image)
    }
    fn small_shapes() -> Vec<DepthwiseShape> {
        small_shapes()
    }
    fn label(s: &DepthwiseShape) -> String {
        s.label()
    }
    fn flops(s: &DepthwiseShape) -> f64 {
        s.flops()
    }
    fn bytes(s: &DepthwiseShape) -> f64 {
        4.0 * (numel(s.x_shape()) + numel(s.w_shape()) + numel(s.y_shape())) as f64
    }
    /// x and the filter, scaled so that outputs cross ReLU6's cap.
    fn inputs(gpu: &Gpu, s: &DepthwiseShape) -> Result<Vec<Tensor>> {
        Ok(vec![s.random(gpu, s.x_shape(), 0, 4.0)?, s.random(gpu, s.w_shape(), 1, 1.0)?])
    }
    fn variants() -> Vec<Variant<DepthwiseShape>> {
        DepthwiseAlgo::ALL
            .into_iter()
            .map(|algo| {
                Variant::new(algo.name(), move |s: &DepthwiseShape, t: &[Tensor]| {
                    let out = Tensor::empty(t[0].gpu(), &s.y_shape(), crate::tensor::DType::F32)?;
                    let spec = DepthwiseSpec { algo: Some(algo), act: Act::Relu6, ..DepthwiseSpec::new(s.win) };
                    dw::depthwise_conv2d_into(&t[0], &t[1], &spec, &out)?;
                    Ok(vec![out])
                })
                .only_if(move |s| algo.applies_to(s.c, &s.win))
            })
            .collect()
    }
    fn picked(gpu: &Gpu, s: &DepthwiseShape) -> &'static str {
        Some(DepthwiseAlgo::rule(gpu)).filter(|a| a.applies_to(s.c, &s.win)).unwrap_or(DepthwiseAlgo::Direct).name()
    }
    fn reference(s: &DepthwiseShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let (y, _) = reference::depthwise_conv2d(&t[0], s.x_shape(), &t[1], &s.win);
        vec![y.into_iter().map(|v| Act::Relu6.apply(v)).collect()]
    }
}

/// Depthwise convolution backward: dx and dw in one run.
pub struct DepthwiseBackward;

impl Family for DepthwiseBackward {
    type Shape = DepthwiseShape;
    const NAME: &'static str = "depthwise-backward";
    const WHAT: &'static str =
        "depthwise conv2d input and filter gradients (dw reduced in slices, as the op chooses); FLOPs = 2 × 2·n·oh·ow·c·kh·kw; bytes = dy + w + dx + x + dy + dw";

    fn shapes(n: usize, image: usize) -> Result<Vec<DepthwiseShape>> {
        backbone_depthwise_shapes(n, image)
    }
    fn small_shapes() -> Vec<DepthwiseShape> {
        small_shapes()
    }
    fn label(s: &DepthwiseShape) -> String {
        s.label()
    }
    fn flops(s: &DepthwiseShape) -> f64 {
        2.0 * s.flops()
    }
    fn bytes(s: &DepthwiseShape) -> f64 {
        4.0 * (2 * numel(s.y_shape()) + 2 * numel(s.w_shape()) + 2 * numel(s.x_shape())) as f64
    }
    /// x, dy and the filter.
    fn inputs(gpu: &Gpu, s: &DepthwiseShape) -> Result<Vec<Tensor>> {
        Ok(vec![s.random(gpu, s.x_shape(), 0, 1.0)?, s.random(gpu, s.y_shape(), 2, 1.0)?, s.random(gpu, s.w_shape(), 1, 1.0)?])
    }
    fn variants() -> Vec<Variant<DepthwiseShape>> {
        DepthwiseGradKernel::ALL
            .into_iter()
            .map(|k| {
                Variant::new(k.name(), move |s: &DepthwiseShape, t: &[Tensor]| {
                    let dx = dw::depthwise_conv2d_backward_input_using(k, &t[1], &t[2], &s.win, s.x_shape())?;
                    let dwt = dw::depthwise_conv2d_backward_filter_using(k, None, &t[0], &t[1], &s.win, s.w_shape())?;
                    Ok(vec![dx, dwt])
                })
                .only_if(move |s| k.applies_to(s.c))
            })
            .collect()
    }
    fn picked(_: &Gpu, s: &DepthwiseShape) -> &'static str {
        DepthwiseGradKernel::for_channels(s.c).name()
    }
    fn reference(s: &DepthwiseShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![
            reference::depthwise_conv2d_backward_input(&t[1], &t[2], s.x_shape(), &s.win),
            reference::depthwise_conv2d_backward_filter(&t[0], s.x_shape(), &t[1], &s.win),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::backbone_depthwise_shapes;
    use crate::ops::window::Padding;

    #[test]
    fn backbone_depthwise_layers_at_224() {
        let shapes = backbone_depthwise_shapes(8, 224).unwrap();
        let got: Vec<(usize, usize, usize, usize)> = shapes.iter().map(|s| (s.c, s.win.kh, s.win.stride_h, s.h)).collect();
        let mobilenet = [(32, 3, 1, 112), (96, 3, 2, 112), (144, 3, 1, 56), (144, 3, 2, 56), (192, 3, 1, 28), (192, 3, 2, 28), (384, 3, 1, 14), (576, 3, 1, 14), (576, 3, 2, 14), (960, 3, 1, 7)];
        assert_eq!(got[..mobilenet.len()], mobilenet);
        // EfficientNet-Lite0 adds its 5×5 windows and the 3×3 ones MobileNetV2 lacks (240 and 480 channels).
        assert!(got.contains(&(144, 5, 2, 56)) && got.contains(&(672, 5, 1, 14)) && got.contains(&(1152, 5, 1, 7)), "{got:?}");
        assert!(got.contains(&(240, 3, 2, 28)) && got.contains(&(480, 3, 1, 14)), "{got:?}");
        assert!(shapes.iter().all(|s| s.n == 8 && s.h == s.w));
        assert!(shapes.iter().take(mobilenet.len()).all(|s| (s.win.stride_h == 2) == matches!(s.win.padding, Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 })));
        // 75² images: Conv1 gives 38, then each stride 2 (pad 1 after, 'valid') floor((side + 1 − 3) / 2) + 1: 19, 9, 4, 2.
        let sides: Vec<usize> = backbone_depthwise_shapes(1, 75).unwrap().iter().take(10).map(|s| s.h).collect();
        assert_eq!(sides, [38, 38, 19, 19, 9, 9, 4, 4, 4, 2]);
    }
}
