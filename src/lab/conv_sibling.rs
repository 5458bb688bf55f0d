//! Lab family `conv-siblings`: InceptionV3's sibling convolutions (the
//! convs reading one input with one window, `Graph::sibling_convs`), each
//! branch with a folded-BatchNorm epilogue and ReLU, computed three ways:
//! `direct` (each conv with the `Direct` oracle), `separate` (each conv with
//! the variant `ConvAlgo::for_conv` picks, as the executor runs them unmerged)
//! and `merged` (one `ops::conv_sibling` dispatch over the concatenated
//! filters, concatenated once, outside the timed runs, as the executor does).

use super::{Family, Variant};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::Backbone;
use crate::models::graph::LayerKind;
use crate::ops::Act;
use crate::ops::conv::{self, ConvAlgo, ConvSpec};
use crate::ops::conv_sibling::{self, Destination, MAX_BRANCHES, SiblingWeights};
use crate::ops::window::{Padding, Window2d};
use crate::reference::{conv as rc, random};
use crate::tensor::{DType, Tensor};

/// A group of sibling convolutions at a batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SiblingShape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub win: Window2d,
    /// Output channels per branch; the first `branches` entries are used.
    pub widths: [usize; MAX_BRANCHES],
    pub branches: usize,
}

impl SiblingShape {
    fn widths(&self) -> &[usize] {
        &self.widths[..self.branches]
    }

    fn output_size(&self) -> (usize, usize) {
        self.win.output_size(self.h, self.w).expect("sibling shapes come from a valid layer graph")
    }

    fn y_shape(&self, width: usize) -> [usize; 4] {
        let (oh, ow) = self.output_size();
        [self.n, oh, ow, width]
    }

    fn x_shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.cin]
    }

    fn random(&self, gpu: &Gpu, shape: &[usize], salt: u64, lo: f32, hi: f32) -> Result<Tensor> {
        let seed = (self.h * 31 + self.cin * 7 + self.widths().iter().sum::<usize>()) as u64 * 64 + salt;
        Tensor::from_slice(gpu, shape, &random(shape.iter().product(), seed, lo, hi))
    }
}

/// The inputs of one shape, split: x, then per branch its filter, scale and
/// bias, then the concatenated filters, scales and biases (the merged variant's).
struct Operands<'a> {
    x: &'a Tensor,
    filters: &'a [Tensor],
    scales: &'a [Tensor],
    biases: &'a [Tensor],
    merged: SiblingWeights,
}

fn operands(t: &[Tensor], branches: usize) -> Result<Operands<'_>> {
    if t.len() != 1 + 3 * branches + 3 {
        return Err(Error::Invalid(format!("conv-siblings: {} inputs for {branches} branches", t.len())));
    }
    let (x, rest) = (&t[0], &t[1..]);
    let (filters, rest) = rest.split_at(branches);
    let (scales, rest) = rest.split_at(branches);
    let (biases, merged) = rest.split_at(branches);
    let widths = filters.iter().map(|f| f.shape()[3]).collect();
    let merged = SiblingWeights { kernel: merged[0].clone(), scale: merged[1].clone(), bias: merged[2].clone(), widths };
    Ok(Operands { x, filters, scales, biases, merged })
}

/// Each branch on its own with `algo` (None: the conv's own pick).
fn separate(s: &SiblingShape, t: &[Tensor], algo: Option<ConvAlgo>) -> Result<Vec<Tensor>> {
    let o = operands(t, s.branches)?;
    (0..s.branches)
        .map(|b| conv::conv2d_fused(o.x, &o.filters[b], &ConvSpec { scale: Some(&o.scales[b]), bias: Some(&o.biases[b]), act: Act::Relu, algo, ..ConvSpec::new(s.win) }))
        .collect()
}

pub struct ConvSiblings;

impl Family for ConvSiblings {
    type Shape = SiblingShape;
    const NAME: &'static str = "conv-siblings";
    const WHAT: &'static str = "sibling conv2d (one input, one window) + folded BN + ReLU per branch; FLOPs = 2·n·oh·ow·(sum of widths)·kh·kw·cin";

    fn shapes(n: usize, image: usize) -> Result<Vec<SiblingShape>> {
        let (graph, shapes) = super::layer_shapes(Backbone::InceptionV3, n, image)?;
        let mut out: Vec<SiblingShape> = Vec::new();
        for (win, convs) in graph.sibling_convs() {
            for chunk in convs.chunks(MAX_BRANCHES).filter(|c| c.len() >= 2) {
                let [_, h, w, cin] = shapes[graph.layers[chunk[0]].inputs[0]];
                let mut widths = [0; MAX_BRANCHES];
                for (slot, &c) in widths.iter_mut().zip(chunk) {
                    if let LayerKind::Conv2d { filters, .. } = graph.layers[c].kind {
                        *slot = filters;
                    }
                }
                let shape = SiblingShape { n, h, w, cin, win, widths, branches: chunk.len() };
                if !out.contains(&shape) {
                    out.push(shape);
                }
            }
        }
        Ok(out)
    }
    fn small_shapes() -> Vec<SiblingShape> {
        vec![
            SiblingShape { n: 2, h: 5, w: 7, cin: 12, win: Window2d::new(1, 1, 1, Padding::Valid), widths: [4, 12, 20, 0], branches: 3 },
            SiblingShape { n: 1, h: 9, w: 9, cin: 5, win: Window2d::new(3, 3, 2, Padding::Same), widths: [7, 9, 0, 0], branches: 2 },
        ]
    }
    fn label(s: &SiblingShape) -> String {
        let widths: Vec<String> = s.widths().iter().map(|w| w.to_string()).collect();
        let pad = s.win.padding.label();
        format!("n{} {}x{}x{} {}x{} s{} {pad} -> {}", s.n, s.h, s.w, s.cin, s.win.kh, s.win.kw, s.win.stride_h, widths.join("+"))
    }
    fn flops(s: &SiblingShape) -> f64 {
        let (oh, ow) = s.output_size();
        2.0 * (s.n * oh * ow * s.widths().iter().sum::<usize>() * s.win.kh * s.win.kw * s.cin) as f64
    }
    fn bytes(s: &SiblingShape) -> f64 {
        let (oh, ow) = s.output_size();
        let cout: usize = s.widths().iter().sum();
        4.0 * (s.n * s.h * s.w * s.cin + s.win.kh * s.win.kw * s.cin * cout + s.n * oh * ow * cout + 2 * cout) as f64
    }
    fn inputs(gpu: &Gpu, s: &SiblingShape) -> Result<Vec<Tensor>> {
        let mut t = vec![s.random(gpu, &s.x_shape(), 0, -1.0, 1.0)?];
        for (k, &width) in s.widths().iter().enumerate() {
            t.push(s.random(gpu, &[s.win.kh, s.win.kw, s.cin, width], 1 + k as u64, -0.1, 0.1)?);
        }
        for (k, &width) in s.widths().iter().enumerate() {
            t.push(s.random(gpu, &[width], 11 + k as u64, 0.5, 1.5)?);
        }
        for (k, &width) in s.widths().iter().enumerate() {
            t.push(s.random(gpu, &[width], 21 + k as u64, -0.5, 0.5)?);
        }
        let b = s.branches;
        let merged = SiblingWeights::concat(&(0..b).map(|k| (&t[1 + k], Some((&t[1 + b + k], &t[1 + 2 * b + k])))).collect::<Vec<_>>())?;
        t.extend([merged.kernel, merged.scale, merged.bias]);
        Ok(t)
    }
    fn variants() -> Vec<Variant<SiblingShape>> {
        vec![
            Variant::new("direct", |s: &SiblingShape, t: &[Tensor]| separate(s, t, Some(ConvAlgo::Direct))),
            Variant::new("separate", |s: &SiblingShape, t: &[Tensor]| separate(s, t, None)),
            Variant::new("merged", |s: &SiblingShape, t: &[Tensor]| {
                let o = operands(t, s.branches)?;
                let outs = s.widths().iter().map(|&w| Tensor::empty(o.x.gpu(), &s.y_shape(w), DType::F32)).collect::<Result<Vec<_>>>()?;
                let dests: Vec<Destination> = outs.iter().map(|out| Destination { out, channel_offset: 0, act: Act::Relu }).collect();
                conv_sibling::conv2d_siblings(o.x, &o.merged, s.win, &dests)?;
                Ok(outs)
            }),
        ]
    }
    fn picked(gpu: &Gpu, s: &SiblingShape) -> &'static str {
        // The executor's choice.
        if conv_sibling::enabled_by_default() && conv_sibling::applies(gpu, s.h, s.w, s.cin, s.widths(), &s.win) { "merged" } else { "separate" }
    }
    fn reference(s: &SiblingShape, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let b = s.branches;
        (0..b)
            .map(|k| {
                let (y, _) = rc::conv2d(&t[0], s.x_shape(), &t[1 + k], s.widths[k], &s.win);
                rc::epilogue(&y, s.widths[k], Some(&t[1 + b + k]), Some(&t[1 + 2 * b + k]), Act::Relu)
            })
            .collect()
    }
}
