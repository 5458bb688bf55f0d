//! A pretrained base network of any built-in backbone
//! (src/models/backbone.rs) with Keras-named weights, run by the general
//! executor (src/models/executor.rs).
//!
//! "Unfreeze the last N layers" marks `model.layers[-N:]` (Keras order)
//! trainable. Inputs are checked against the backbone's minimum size.

use super::backbone::Backbone;
use super::executor::{Boundary, LayerSummary, Network};
use super::graph::Graph;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::TensorMap;
use crate::tensor::Tensor;

/// A backbone without its top; every [`Network`] method applies.
pub struct Base {
    backbone: Backbone,
    net: Network,
}

impl std::ops::Deref for Base {
    type Target = Network;
    fn deref(&self) -> &Network {
        &self.net
    }
}

impl std::ops::DerefMut for Base {
    fn deref_mut(&mut self) -> &mut Network {
        &mut self.net
    }
}

impl Base {
    /// Builds `backbone` from its Keras-named weights (InceptionV3: Keras 3
    /// or Keras 2 numbering), with the last `unfreeze_last` Keras layers trainable.
    pub fn from_tensor_map(gpu: &Gpu, backbone: Backbone, weights: &TensorMap, unfreeze_last: usize) -> Result<Base> {
        let weights = backbone.canonical_names(weights)?;
        backbone.check_weights(&weights)?;
        let graph = backbone.graph();
        let layers = graph.layers.len();
        if unfreeze_last > layers {
            return Err(Error::Invalid(format!("--unfreeze-last {unfreeze_last}: {} without top has {layers} layers", backbone.title())));
        }
        Ok(Base { backbone, net: Network::new(gpu, graph, 3, &weights, unfreeze_last)? })
    }

    /// Keras's default initialisation, for training from scratch.
    pub fn random(gpu: &Gpu, backbone: Backbone, seed: u64, unfreeze_last: usize) -> Result<Base> {
        Base::from_tensor_map(gpu, backbone, &backbone.random_weights(seed), unfreeze_last)
    }

    pub fn backbone(&self) -> Backbone {
        self.backbone
    }

    /// Keras-style summary rows in `model.layers` order for an `s`×`s` input.
    pub fn summary(&self, image_size: usize) -> Result<Vec<LayerSummary>> {
        self.backbone.check_size(image_size, image_size)?;
        self.net.summary(image_size, image_size)
    }

    /// Output shapes (NHWC, batch n) of every layer for an `h`×`w` input, by creation index.
    pub fn output_shapes(&self, n: usize, h: usize, w: usize) -> Result<Vec<[usize; 4]>> {
        self.backbone.check_size(h, w)?;
        self.net.output_shapes(n, h, w)
    }

    /// The base's output (NHWC). With `training`, trainable BatchNorm layers
    /// use and update batch statistics, as Keras does.
    pub fn forward(&self, x: &Tensor, training: bool) -> Result<Var> {
        self.check_input(x)?;
        self.net.forward(x, training)
    }

    /// The outputs of the named layers in inference mode, without recording.
    pub fn infer_layers(&self, x: &Tensor, names: &[&str]) -> Result<Vec<Tensor>> {
        self.check_input(x)?;
        for name in names {
            self.layer_index(name)?;
        }
        self.net.infer_layers(x, names)
    }

    /// See [`Network::frozen_boundary`].
    pub fn frozen_boundary(&self, x: &Tensor) -> Result<Boundary> {
        self.check_input(x)?;
        self.net.frozen_boundary(x)
    }

    /// See [`Network::boundary_at`].
    pub fn boundary_at(&self, x: &Tensor, layer: usize) -> Result<Boundary> {
        self.check_input(x)?;
        self.net.boundary_at(x, layer)
    }

    /// The creation index of the layer with this Keras name; the error lists
    /// the families of names there are.
    pub fn layer_index(&self, name: &str) -> Result<usize> {
        layer_index(self.backbone, self.net.graph(), name)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let [_, h, w, c] = x.dims4()?;
        if c != 3 {
            return Err(Error::Shape(format!("{} expects NHWC RGB input, got shape {:?}", self.backbone.title(), x.shape())));
        }
        self.backbone.check_size(h, w)
    }
}

/// The creation index of `backbone`'s layer named `name` in `graph`; the
/// error lists the first and last name of each family of Keras names
/// (`conv2d` … `conv2d_93`, `mixed0` … `mixed10`, …).
pub fn layer_index(backbone: Backbone, graph: &Graph, name: &str) -> Result<usize> {
    graph.find(name).ok_or_else(|| unknown_layer(backbone, graph, name))
}

fn unknown_layer(backbone: Backbone, graph: &Graph, name: &str) -> Error {
    let mut families: Vec<(&str, &str, &str)> = Vec::new();
    for layer in &graph.layers {
        let family = layer.name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_');
        match families.iter_mut().find(|(f, _, _)| *f == family) {
            Some((_, _, last)) => *last = &layer.name,
            None => families.push((family, &layer.name, &layer.name)),
        }
    }
    let listed: Vec<String> =
        families.iter().map(|(_, first, last)| if first == last { first.to_string() } else { format!("{first} … {last}") }).collect();
    Error::Invalid(format!(
        "{} has no layer named '{name}'; its layers are named {} (`incept summary --backbone {}` lists every one)",
        backbone.title(),
        listed.join(", "),
        backbone.name()
    ))
}
