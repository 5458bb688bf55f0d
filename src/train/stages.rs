//! `--head-epochs N`: both stages of the Keras guide's fine-tuning recipe in
//! one run ("Transfer learning & fine-tuning": train the new head with the
//! base frozen, then unfreeze and train again with a much lower learning
//! rate; fastai's `fine_tune(epochs, freeze_epochs)` does the same).
//!
//! Epochs `[0, head_epochs)` train the head alone (the whole base frozen) at
//! `lr`; epochs `[head_epochs, head_epochs + epochs)` also train the base's
//! last `unfreeze_last` layers, at `fine_tune_lr` (default `lr / 100`: the
//! guide trains the head at 1e-3 and fine-tunes at 1e-5), with a fresh Adam
//! (the guide recompiles the model) and a fresh ReduceLROnPlateau. One
//! history, one best checkpoint (lowest val_loss over both stages).
//!
//! The stage follows from the epoch alone, so a resumed run continues in the
//! right one: the checkpoint written after epoch e holds the model and Adam
//! state of the stage epoch e − 1 was trained in, and the fit loop enters the
//! fine-tuning stage when it starts epoch `head_epochs`, resumed or not.

use super::checkpoint::TrainState;
use super::classifier::Classifier;
use super::config::TrainConfig;
use super::optimizer::Adam;
use super::schedule::ReduceLrOnPlateau;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::optim::AdamConfig;

/// The default fine-tuning rate for a head-stage rate `lr`.
pub fn default_fine_tune_lr(lr: f64) -> f64 {
    lr / 100.0
}

/// The configuration of the model that trains epoch `epoch` (0-based): the
/// run's, with the whole base frozen in the head stage.
pub fn model_config(cfg: &TrainConfig, epoch: usize) -> TrainConfig {
    let mut stage = cfg.clone();
    if epoch < cfg.head_epochs {
        stage.unfreeze_last = 0;
    }
    stage
}

/// The configuration of the model a checkpoint written after `epochs_done`
/// epochs holds (that of its last epoch; the first epoch's before any).
pub fn checkpoint_config(cfg: &TrainConfig, epochs_done: usize) -> TrainConfig {
    model_config(cfg, epochs_done.saturating_sub(1))
}

/// Whether epoch `epoch` (0-based) is the first of the fine-tuning stage.
pub fn fine_tuning_starts(cfg: &TrainConfig, epoch: usize) -> bool {
    cfg.head_epochs > 0 && epoch == cfg.head_epochs
}

/// The fine-tuning stage's model (the same weights, the last
/// `unfreeze_last` layers trainable) and a fresh Adam at its rate; resets
/// the learning rate and the plateau schedule in `state`.
pub fn enter_fine_tuning(gpu: &Gpu, cfg: &TrainConfig, model: &Classifier, state: &mut TrainState) -> Result<(Classifier, Adam)> {
    let model = Classifier::from_tensor_map(gpu, cfg, &model.to_tensor_map()?)?;
    let lr = cfg.fine_tune_lr.unwrap_or_else(|| default_fine_tune_lr(cfg.lr));
    state.lr = lr;
    state.plateau = ReduceLrOnPlateau::new(&cfg.callbacks);
    // Early stopping watches the fine-tuning stage (see fit): its patience starts afresh.
    state.best.wait = 0;
    let optimizer = Adam::new(model.trainable_params(), AdamConfig { lr: lr as f32, ..AdamConfig::default() })?;
    Ok((model, optimizer))
}

/// The plan for the run summary.
pub fn describe(cfg: &TrainConfig) -> Option<String> {
    let lr = cfg.fine_tune_lr?;
    Some(format!(
        "two stages: {} epochs of the head alone (base frozen) at lr {:.1e}, then {} epochs with the last {} layers of the base trainable at lr {lr:.1e}, fresh Adam",
        cfg.head_epochs, cfg.lr, cfg.epochs, cfg.unfreeze_last
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(head_epochs: usize) -> TrainConfig {
        serde_json::from_value(serde_json::json!({
            "data": "d", "weights": null, "image_size": 75, "batch": 2, "epochs": 3, "unfreeze_last": 15,
            "head": [8], "dropout": 0.0, "lr": 1e-3, "augment": false, "shear_degrees": 0.2, "zoom": 0.2,
            "horizontal_flip": true, "preprocess": "rescale", "seed": 0, "classes": ["a", "b"],
            "head_epochs": head_epochs, "fine_tune_lr": if head_epochs > 0 { Some(1e-5) } else { None },
        }))
        .unwrap()
    }

    #[test]
    fn the_stage_follows_from_the_epoch() {
        let two = cfg(2);
        assert_eq!(two.total_epochs(), 5);
        assert_eq!((0..5).map(|e| model_config(&two, e).unfreeze_last).collect::<Vec<_>>(), [0, 0, 15, 15, 15]);
        // After 2 epochs the checkpoint still holds the head stage's model; epoch 2 switches.
        assert_eq!([0, 1, 2, 3].map(|d| checkpoint_config(&two, d).unfreeze_last), [0, 0, 0, 15]);
        assert_eq!((0..5).filter(|&e| fine_tuning_starts(&two, e)).collect::<Vec<_>>(), [2]);
        let one = cfg(0);
        assert!((0..3).all(|e| model_config(&one, e).unfreeze_last == 15 && !fine_tuning_starts(&one, e)));
        assert_eq!(one.total_epochs(), 3);
        assert!(two.validate().is_ok() && one.validate().is_ok());
    }

    #[test]
    fn inconsistent_stages_are_refused() {
        let mut c = cfg(2);
        c.unfreeze_last = 0;
        assert!(c.validate().unwrap_err().to_string().contains("--unfreeze-last 0"));
        let mut c = cfg(0);
        c.fine_tune_lr = Some(1e-5);
        assert!(c.validate().unwrap_err().to_string().contains("needs --head-epochs"));
        let mut c = cfg(2);
        c.fine_tune_lr = Some(f64::NAN);
        assert!(c.validate().unwrap_err().to_string().contains("--fine-tune-lr"));
    }
}
