//! Non-finite numbers stop training. A learning rate or a class weight that
//! is too large makes the loss, the gradients and then the weights NaN or
//! infinite; a run that went on would save NaN weights as its best model and
//! end with status 0. So every training step's loss is checked, and so are
//! the weights after each update (one reduction per trainable tensor on the
//! device, read back with the loss: a NaN or infinite gradient makes Adam's
//! update, and so the weights, non-finite); validation losses are checked
//! after each epoch; and a checkpoint is never written, nor read, with a
//! non-finite number in it (`checkpoint::save_tensors`, `checkpoint::load`).

use super::config::TrainConfig;
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::io::TensorMap;
use crate::ops::{elementwise, reduce};
use crate::tensor::Tensor;

/// The sum of every trainable weight, as a `[1]` device tensor: finite
/// unless a weight is NaN or infinite (or the weights have grown past
/// f32's range, which is divergence too).
pub fn weights_probe(params: &[(String, Var)]) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for (_, p) in params {
        let s = reduce::sum_all(p.value())?;
        total = Some(match total {
            Some(t) => elementwise::add(&t, &s)?,
            None => s,
        });
    }
    Ok(total)
}

/// Where in the run a non-finite number appeared.
#[derive(Clone, Copy, Debug)]
pub struct At {
    /// 1-based epoch and step within it.
    pub epoch: usize,
    pub step: usize,
    pub steps: usize,
}

/// The error that stops a diverged run: where, what, and what to change.
pub fn diverged(cfg: &TrainConfig, at: At, what: &str, lr: f64) -> Error {
    let class_weights = match &cfg.class_weight {
        Some(cw) => format!(" or the class weights (--class-weight {})", cw.rule),
        None => String::new(),
    };
    Error::Invalid(format!(
        "training diverged at epoch {}, step {} of {}: {what}. Stopped without saving this epoch (the run directory keeps the checkpoints of the epochs before it, if any). \
         Lower the learning rate (--lr {}{}){class_weights} and train again",
        at.epoch,
        at.step,
        at.steps,
        cfg.lr,
        if lr != cfg.lr { format!(", {lr:e} at this epoch") } else { String::new() },
    ))
}

/// The first non-finite value of `tensors` as (tensor name, index, value).
pub fn first_non_finite(tensors: &TensorMap) -> Option<(&str, usize, f32)> {
    tensors.iter().find_map(|(name, t)| t.data.iter().position(|v| !v.is_finite()).map(|i| (name.as_str(), i, t.data[i])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::HostTensor;

    #[test]
    fn the_first_non_finite_value_is_named() {
        let mut m = TensorMap::new();
        m.insert("a".into(), HostTensor { shape: vec![2], data: vec![1.0, 2.0] });
        assert!(first_non_finite(&m).is_none());
        m.insert("b/kernel".into(), HostTensor { shape: vec![3], data: vec![0.0, f32::INFINITY, f32::NAN] });
        assert_eq!(first_non_finite(&m).map(|(n, i, _)| (n, i)), Some(("b/kernel", 1)));
    }
}
