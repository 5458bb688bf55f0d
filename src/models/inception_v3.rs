//! Keras InceptionV3 (include_top=False): its layer graph
//! (src/models/inception_v3_graph.rs) with Keras-named weights, run by the
//! general executor (src/models/executor.rs).
//!
//! "Unfreeze the last N layers" marks `model.layers[-N:]` (Keras order)
//! trainable. Weight files may use Keras 3 or Keras 2 numbering.

use super::executor::{Boundary, LayerSummary, Network};
use super::graph::Graph;
use super::inception_v3_graph::inception_v3_graph;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::keras_inception_v3::check_weights;
use crate::io::{HostTensor, TensorMap};
use crate::tensor::Tensor;

/// Keras requires InceptionV3 inputs of at least 75×75.
pub const MIN_IMAGE_SIZE: usize = 75;

/// InceptionV3 without its top; every [`Network`] method applies.
pub struct InceptionV3 {
    net: Network,
}

impl std::ops::Deref for InceptionV3 {
    type Target = Network;
    fn deref(&self) -> &Network {
        &self.net
    }
}

impl std::ops::DerefMut for InceptionV3 {
    fn deref_mut(&mut self) -> &mut Network {
        &mut self.net
    }
}

impl InceptionV3 {
    /// Builds the model from Keras-named weights (Keras 3 or Keras 2 numbering),
    /// with the last `unfreeze_last` Keras layers trainable.
    pub fn from_tensor_map(gpu: &Gpu, weights: &TensorMap, unfreeze_last: usize) -> Result<InceptionV3> {
        let weights = keras3_names(weights)?;
        check_weights(&weights)?;
        let graph = inception_v3_graph();
        let layers = graph.layers.len();
        if unfreeze_last > layers {
            return Err(Error::Invalid(format!("--unfreeze-last {unfreeze_last}: InceptionV3 without top has {layers} layers")));
        }
        Ok(InceptionV3 { net: Network::new(gpu, graph, 3, &weights, unfreeze_last)? })
    }

    /// Reads a safetensors file of Keras-named weights.
    pub fn from_safetensors(gpu: &Gpu, path: &std::path::Path, unfreeze_last: usize) -> Result<InceptionV3> {
        let weights = crate::io::read_safetensors(path)?;
        InceptionV3::from_tensor_map(gpu, &weights, unfreeze_last).map_err(|e| Error::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Keras's default initialisation (Glorot-uniform kernels, beta 0, moving
    /// mean 0, moving variance 1), for training from scratch.
    pub fn random(gpu: &Gpu, seed: u64, unfreeze_last: usize) -> Result<InceptionV3> {
        InceptionV3::from_tensor_map(gpu, &random_weights(seed), unfreeze_last)
    }

    /// Output shapes (NHWC, batch n) of every layer for an `h`×`w` input, by creation index.
    pub fn output_shapes(&self, n: usize, h: usize, w: usize) -> Result<Vec<[usize; 4]>> {
        inception_v3_shapes(self.net.graph(), n, h, w)
    }

    /// Keras-style summary rows in `model.layers` order for an `s`×`s` input.
    pub fn summary(&self, image_size: usize) -> Result<Vec<LayerSummary>> {
        check_size(image_size, image_size)?;
        self.net.summary(image_size, image_size)
    }

    /// The mixed10 output (NHWC, 2048 channels). With `training`, trainable
    /// BatchNorm layers use and update batch statistics, as Keras does.
    pub fn forward(&self, x: &Tensor, training: bool) -> Result<Var> {
        check_input(x)?;
        self.net.forward(x, training)
    }

    /// The outputs of the named layers in inference mode, without recording.
    pub fn infer_layers(&self, x: &Tensor, names: &[&str]) -> Result<Vec<Tensor>> {
        check_input(x)?;
        if let Some(n) = names.iter().find(|n| self.net.graph().find(n).is_none()) {
            return Err(unknown_layer(self.net.graph(), n));
        }
        self.net.infer_layers(x, names)
    }

    /// See [`Network::frozen_boundary`].
    pub fn frozen_boundary(&self, x: &Tensor) -> Result<Boundary> {
        check_input(x)?;
        self.net.frozen_boundary(x)
    }

    /// See [`Network::boundary_at`].
    pub fn boundary_at(&self, x: &Tensor, layer: usize) -> Result<Boundary> {
        check_input(x)?;
        self.net.boundary_at(x, layer)
    }
}

/// The creation index of the InceptionV3 layer with this Keras name; the
/// error lists the families of names there are.
pub fn layer_index(name: &str) -> Result<usize> {
    let graph = inception_v3_graph();
    graph.find(name).ok_or_else(|| unknown_layer(&graph, name))
}

/// "No layer named …", with the first and last name of each family of
/// Keras names (`conv2d` … `conv2d_93`, `mixed0` … `mixed10`, …).
fn unknown_layer(graph: &Graph, name: &str) -> Error {
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
        "InceptionV3 has no layer named '{name}'; its layers are named {} (`incept summary` lists every one)",
        listed.join(", ")
    ))
}

fn check_size(h: usize, w: usize) -> Result<()> {
    if h < MIN_IMAGE_SIZE || w < MIN_IMAGE_SIZE {
        return Err(Error::Shape(format!("InceptionV3 needs an input of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}, got {h}x{w}")));
    }
    Ok(())
}

fn check_input(x: &Tensor) -> Result<()> {
    let [_, h, w, c] = x.dims4()?;
    if c != 3 {
        return Err(Error::Shape(format!("InceptionV3 expects NHWC RGB input, got shape {:?}", x.shape())));
    }
    check_size(h, w)
}

/// Layer output shapes of InceptionV3 for an `h`×`w` RGB input (at least 75×75, as Keras requires).
pub fn inception_v3_shapes(graph: &Graph, n: usize, h: usize, w: usize) -> Result<Vec<[usize; 4]>> {
    check_size(h, w)?;
    graph.output_shapes(n, h, w, 3)
}

/// Accepts Keras 2 numbering (`conv2d_1` … `conv2d_94`) by shifting every
/// index down by one, as Keras's legacy loader maps layers by position.
pub fn keras3_names(weights: &TensorMap) -> Result<TensorMap> {
    if weights.contains_key("conv2d/kernel") || !weights.contains_key("conv2d_94/kernel") {
        return Ok(weights.clone());
    }
    let mut out = TensorMap::new();
    for (name, t) in weights {
        let (layer, var) = name.split_once('/').ok_or_else(|| Error::Invalid(format!("weight name '{name}' is not LAYER/VARIABLE")))?;
        let renamed = match layer.rsplit_once('_') {
            Some((prefix @ ("conv2d" | "batch_normalization"), k)) => {
                let k: usize = k.parse().map_err(|_| Error::Invalid(format!("weight name '{name}': bad layer number")))?;
                match k {
                    0 => return Err(Error::Invalid(format!("weight '{name}': Keras 2 numbering starts at 1"))),
                    1 => format!("{prefix}/{var}"),
                    k => format!("{prefix}_{}/{var}", k - 1),
                }
            }
            _ => name.clone(),
        };
        out.insert(renamed, t.clone());
    }
    Ok(out)
}

/// Keras default initialisers for every InceptionV3 weight.
pub fn random_weights(seed: u64) -> TensorMap {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut map = TensorMap::new();
    for (name, shape) in crate::io::keras_inception_v3::expected_weights() {
        let n: usize = shape.iter().product();
        let data = if name.ends_with("/kernel") {
            // Glorot uniform: limit sqrt(6 / (fan_in + fan_out)), receptive field counted in both.
            let receptive = shape[0] * shape[1];
            let limit = (6.0 / ((shape[2] + shape[3]) * receptive) as f64).sqrt() as f32;
            (0..n).map(|_| rng.random_range(-limit..limit)).collect()
        } else if name.ends_with("/moving_variance") {
            vec![1.0; n]
        } else {
            vec![0.0; n]
        };
        map.insert(name, HostTensor { shape, data });
    }
    map
}
