//! Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
//! Networks via Gradient-based Localization", 2017), computed as keras.io's
//! Grad-CAM example does: the class score is the class's logit (the
//! pre-softmax value), its gradient is taken with respect to one layer's
//! output A, each channel k is weighted by the mean of that gradient over
//! space, and the map is ReLU(Σ_k α_k A_k) at the layer's spatial size.
//!
//! The gradient goes through incept's own autograd: the base runs without
//! recording up to the values that the layers after the chosen one read
//! ([`Network::boundary_at`](crate::models::Network::boundary_at)), the
//! layer's output becomes a leaf that requires a gradient, and the rest of
//! the base and the head run on the tape in inference mode (BatchNorm moving
//! statistics, no dropout).

mod map;
mod names;

pub use map::{GradCam, grad_cam, resize_bilinear};
pub use names::output_stems;

use crate::autograd::{self as ag, Var};
use crate::error::{Error, Result};
use crate::ops::loss;
use crate::report::predictions::most_probable;
use crate::tensor::Tensor;
use crate::train::Classifier;

/// A layer's output and the gradient of the explained class's logit with
/// respect to it, for a batch of images.
pub struct ClassGradients {
    /// The layer's output [n, h, w, c].
    pub activations: Tensor,
    /// ∂ logit[i, classes[i]] / ∂ activations[i], image by image [n, h, w, c].
    pub gradients: Tensor,
    /// Logits [n, classes], row-major.
    pub logits: Vec<f32>,
    /// Softmax of the logits [n, classes], row-major.
    pub probabilities: Vec<f32>,
    /// The class explained, per image.
    pub classes: Vec<usize>,
    /// The predicted class (the largest logit, the first of equal ones), per image.
    pub predicted: Vec<usize>,
}

/// The gradient of each image's class logit with respect to the output of
/// the base's layer `layer` (creation index), for `class`, or each image's
/// predicted class (the largest logit) when `None`.
///
/// One backward pass serves the whole batch: it starts from the sum of the
/// images' class logits, and in inference mode image i's logits depend on
/// image i's activations only, so slice i of the gradient is image i's own.
pub fn class_gradients(model: &Classifier, x: &Tensor, layer: usize, class: Option<usize>) -> Result<ClassGradients> {
    let boundary = model.base.boundary_at(x, layer)?;
    let (leaf, logits) = model.logits_from_layer(&boundary, layer)?;
    let [n, c] = logits.value().dims2()?;
    let host = logits.value().to_vec()?;
    let predicted: Vec<usize> = host.chunks(c).map(most_probable).collect();
    let classes = match class {
        Some(k) if k >= c => return Err(Error::Invalid(format!("class index {k}: the model has {c} classes"))),
        Some(k) => vec![k; n],
        None => predicted.clone(),
    };
    let grads = class_score(&logits, &classes)?.backward()?;
    let gradients = grads.get(&leaf).ok_or_else(|| Error::Invalid("the class score does not depend on the chosen layer".into()))?.clone();
    let probabilities = loss::softmax(logits.value())?.to_vec()?;
    Ok(ClassGradients { activations: leaf.value().clone(), gradients, logits: host, probabilities, classes, predicted })
}

/// Σ_i logits[i, classes[i]] as one recorded scalar: the logits flattened to
/// [1, n·c] times a constant one-hot column.
fn class_score(logits: &Var, classes: &[usize]) -> Result<Var> {
    let [n, c] = logits.value().dims2()?;
    let mut pick = vec![0.0f32; n * c];
    for (i, &k) in classes.iter().enumerate() {
        pick[i * c + k] = 1.0;
    }
    let gpu = logits.value().gpu();
    let column = Var::constant(Tensor::from_slice(gpu, &[n * c, 1], &pick)?);
    let bias = Var::constant(Tensor::zeros(gpu, &[1])?);
    ag::dense(&ag::reshape(logits, &[1, n * c])?, &column, &bias, false)
}
