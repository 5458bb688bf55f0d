//! Lab family `conv`: the forward convolution (+ReLU) at every distinct
//! InceptionV3 conv shape; variants are `ConvAlgo::ALL` (the `Direct` oracle
//! first) and, on adapters with cooperative matrices, `ConvAlgo::Coop`
//! (mixed precision, held to `MIXED_TOLERANCE`) over f32 activations
//! (`coop`) and over f16 ones (`coop-f16`, the form the frozen prefix runs
//! under `--precision mixed`); the pick is `ConvAlgo::for_conv` (`incept
//! tune`'s measured choice, else the rule). The bytes column counts f32
//! activations for every variant.

use super::{Family, Variant, distinct_inputs_of};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::models::Backbone;
use crate::models::graph::LayerKind;
use crate::ops::Act;
use crate::ops::conv::{self, ConvAlgo, ConvSpec};
use crate::ops::conv_tuning::ConvKey;
use crate::ops::window::{Padding, Window2d};
use crate::reference::random;
use crate::tensor::{DType, Tensor};
use std::sync::Mutex;

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
    /// Output height and width (the shape came from a valid graph or test).
    pub fn output_size(&self) -> (usize, usize) {
        self.win.output_size(self.h, self.w).expect("conv shapes come from a valid layer graph")
    }

    /// Multiply-adds × 2 for a batch of `n`.
    pub fn flops(&self, n: usize) -> f64 {
        let (oh, ow) = self.output_size();
        2.0 * (n * oh * ow * self.cout * self.win.kh * self.win.kw * self.cin) as f64
    }

    /// Elements of the input, filter and output at batch `n`.
    pub fn elements(&self, n: usize) -> [usize; 3] {
        let (oh, ow) = self.output_size();
        [n * self.h * self.w * self.cin, self.win.kh * self.win.kw * self.cin * self.cout, n * oh * ow * self.cout]
    }

    /// The tuning cache's key.
    pub fn key(&self) -> ConvKey {
        ConvKey::new(self.h, self.w, self.cin, self.cout, &self.win)
    }

    pub fn label(&self) -> String {
        let pad = self.win.padding.label();
        let input = format!("{}x{}x{}", self.h, self.w, self.cin);
        format!("{input:<12} {}x{} s{} {pad:<5} -> {}", self.win.kh, self.win.kw, self.win.stride_h, self.cout)
    }
}

/// The distinct conv shapes of Keras InceptionV3 (include_top=False) for a
/// square input of `image` pixels (at least 75), in creation order, read off the layer graph.
pub fn inception_v3_conv_shapes(image: usize) -> Result<Vec<ConvShape>> {
    conv_shapes(Backbone::InceptionV3, image)
}

/// The distinct Conv2D shapes of `backbone` for a square input of `image`
/// pixels, in creation order, read off its layer graph.
pub fn conv_shapes(backbone: Backbone, image: usize) -> Result<Vec<ConvShape>> {
    let convs = distinct_inputs_of(backbone, 1, image, |kind| match *kind {
        LayerKind::Conv2d { filters, win } => Some((filters, win)),
        _ => None,
    })?;
    Ok(convs.into_iter().map(|((cout, win), [_, h, w, cin])| ConvShape { h, w, cin, cout, win }).collect())
}

/// A conv shape at a batch size: the shape type of the conv families.
#[derive(Clone, Copy, Debug)]
pub struct BatchedConv {
    pub n: usize,
    pub conv: ConvShape,
}

impl BatchedConv {
    /// The conv shapes of InceptionV3 at batch `n`.
    pub fn inception_v3(n: usize, image: usize) -> Result<Vec<BatchedConv>> {
        BatchedConv::of(Backbone::InceptionV3, n, image)
    }

    /// The conv shapes of `backbone` at batch `n`.
    pub fn of(backbone: Backbone, n: usize, image: usize) -> Result<Vec<BatchedConv>> {
        Ok(conv_shapes(backbone, image)?.into_iter().map(|conv| BatchedConv { n, conv }).collect())
    }

    /// Small odd shapes for the lab's test: a padded strided 3×3 and a 1×7 with odd channels.
    pub fn small() -> Vec<BatchedConv> {
        vec![
            BatchedConv { n: 2, conv: ConvShape { h: 9, w: 7, cin: 5, cout: 6, win: Window2d::new(3, 3, 2, Padding::Valid) } },
            BatchedConv { n: 3, conv: ConvShape { h: 6, w: 7, cin: 8, cout: 12, win: Window2d::new(1, 7, 1, Padding::Same) } },
        ]
    }

    pub fn x_shape(&self) -> [usize; 4] {
        [self.n, self.conv.h, self.conv.w, self.conv.cin]
    }

    pub fn w_shape(&self) -> [usize; 4] {
        [self.conv.win.kh, self.conv.win.kw, self.conv.cin, self.conv.cout]
    }

    pub fn y_shape(&self) -> [usize; 4] {
        let (oh, ow) = self.conv.output_size();
        [self.n, oh, ow, self.conv.cout]
    }

    pub fn label(&self) -> String {
        format!("n{} {}", self.n, self.conv.label())
    }

    /// A random tensor of `shape`, seeded by the shape and `salt`.
    pub fn random(&self, gpu: &Gpu, shape: [usize; 4], salt: u64, scale: f32) -> Result<Tensor> {
        let n = shape.iter().product();
        let seed = (self.conv.h * 31 + self.conv.cin * 7 + self.conv.cout) as u64 * 16 + salt;
        Tensor::from_slice(gpu, &shape, &random(n, seed, -scale, scale))
    }
}

/// `ConvAlgo::Coop` reading and writing f16 storage, as the frozen prefix
/// runs under `--precision mixed`. The f16 copy of a shape's input is made
/// on the variant's first run on it (the oracle check), so the timed runs
/// convolve only.
fn coop_f16() -> Variant<BatchedConv> {
    // (the f32 input, its f16 copy); holding the input keeps its buffer from being reused for another.
    let copy: Mutex<Option<(Tensor, Tensor)>> = Mutex::new(None);
    Variant::new("coop-f16", move |s: &BatchedConv, t: &[Tensor]| {
        let x16 = {
            let mut copy = copy.lock().unwrap();
            match &*copy {
                Some((x, x16)) if x.same_buffer(&t[0]) => x16.clone(),
                _ => {
                    let x16 = Tensor::from_slice_f16(t[0].gpu(), t[0].shape(), &t[0].to_vec()?)?;
                    *copy = Some((t[0].clone(), x16.clone()));
                    x16
                }
            }
        };
        let spec = ConvSpec { algo: Some(ConvAlgo::Coop), act: Act::Relu, ..ConvSpec::new(s.conv.win) };
        let out = Tensor::empty(t[0].gpu(), &s.y_shape(), DType::F16)?;
        conv::conv2d_into(&x16, &t[1], &spec, &out, 0)?;
        Ok(vec![out])
    })
    .only_if(|s| ConvAlgo::Coop.applies_to(&s.conv.key()))
}

/// Forward convolution with a ReLU epilogue (as InceptionV3's fused inference runs it).
pub struct ConvForward;

impl Family for ConvForward {
    type Shape = BatchedConv;
    const NAME: &'static str = "conv";
    const WHAT: &'static str = "conv2d forward + ReLU, NHWC x HWIO; FLOPs = 2·n·oh·ow·cout·kh·kw·cin";

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
        Ok(vec![s.random(gpu, s.x_shape(), 0, 1.0)?, s.random(gpu, s.w_shape(), 1, 0.1)?])
    }
    /// The f32 variants (`ConvAlgo::ALL`), then the mixed-precision one
    /// where the adapter has cooperative matrices (`ConvAlgo::Coop`).
    fn variants() -> Vec<Variant<BatchedConv>> {
        let variant = |algo: ConvAlgo| {
            Variant::new(algo.name(), move |s: &BatchedConv, t: &[Tensor]| {
                let spec = ConvSpec { algo: Some(algo), act: Act::Relu, ..ConvSpec::new(s.conv.win) };
                Ok(vec![conv::conv2d_fused(&t[0], &t[1], &spec)?])
            })
            .only_if(move |s| algo.applies_to(&s.conv.key()))
        };
        let mut all: Vec<_> = ConvAlgo::ALL.into_iter().map(variant).collect();
        let coop_available = |gpu: &Gpu| gpu.coop_support().is_ok();
        all.push(variant(ConvAlgo::Coop).only_on(coop_available).with_tolerance(super::MIXED_TOLERANCE));
        all.push(coop_f16().only_on(coop_available).with_tolerance(super::MIXED_TOLERANCE));
        all
    }
    fn picked(gpu: &Gpu, s: &BatchedConv) -> &'static str {
        ConvAlgo::for_conv(gpu, &s.conv.key()).name()
    }
    fn reference(s: &BatchedConv, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let (y, _) = crate::reference::conv::conv2d(&t[0], s.x_shape(), &t[1], s.conv.cout, &s.conv.win);
        vec![crate::reference::conv::epilogue(&y, s.conv.cout, None, None, Act::Relu)]
    }
}
