//! Keras's `EarlyStopping` and the choice of the monitored quantity that it,
//! ReduceLROnPlateau (`schedule`) and the best checkpoint follow.
//!
//! `--monitor` is val_loss (mode min), val_accuracy or val_auc (mode max), as
//! Keras's modes for them. [`BestTracker`] is Keras 3's
//! `EarlyStopping.on_epoch_end` with `restore_best_weights=True`, and also
//! decides which epoch best.safetensors holds, so "best" means one thing:
//! an epoch improves when its value beats the best so far by more than
//! `--min-delta` (default 0, as Keras); the first epoch is the best until
//! one improves (Keras keeps its weights as the fallback). Without
//! `--early-stopping` it never stops training.

use crate::error::{Error, Result};
use crate::report::history::EpochRecord;
use serde::{Deserialize, Serialize};

/// Which validation score the callbacks and the best checkpoint follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    #[default]
    #[value(name = "val_loss")]
    ValLoss,
    #[value(name = "val_accuracy")]
    ValAccuracy,
    /// Macro one-vs-rest ROC-AUC of the validation split.
    #[value(name = "val_auc")]
    ValAuc,
}

/// Whether lower or higher is better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Min,
    Max,
}

impl Monitor {
    pub fn mode(self) -> Mode {
        match self {
            Monitor::ValLoss => Mode::Min,
            Monitor::ValAccuracy | Monitor::ValAuc => Mode::Max,
        }
    }

    /// The name Keras's logs use.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
            Monitor::ValAuc => "val_auc",
        }
    }

    /// The epoch's monitored value; `None` when it was not computed (an AUC
    /// with no class defined), which Keras's callbacks skip.
    pub fn value(self, r: &EpochRecord) -> Option<f64> {
        match self {
            Monitor::ValLoss => Some(r.val_loss),
            Monitor::ValAccuracy => Some(r.val_accuracy),
            Monitor::ValAuc => r.val_auc,
        }
    }
}

impl Mode {
    /// Keras's comparison: `current` beats `best` (±∞ when `None`) by more
    /// than `min_delta`. NaN never improves.
    pub fn improves(self, current: f64, best: Option<f64>, min_delta: f64) -> bool {
        match self {
            Mode::Min => current < best.unwrap_or(f64::INFINITY) - min_delta,
            Mode::Max => current > best.unwrap_or(f64::NEG_INFINITY) + min_delta,
        }
    }
}

/// The callback flags of a run (flattened into run.json; files written
/// before they existed load with Keras's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallbackConfig {
    pub monitor: Monitor,
    /// EarlyStopping's patience; `None`: no early stopping.
    pub early_stopping: Option<usize>,
    /// EarlyStopping's min_delta (also what the best checkpoint needs to move).
    pub min_delta: f64,
    pub plateau_patience: usize,
    pub plateau_factor: f64,
    pub min_lr: f64,
}

impl Default for CallbackConfig {
    /// Keras's defaults: monitor val_loss, min_delta 0; ReduceLROnPlateau patience 10, factor 0.1, min_lr 0.
    fn default() -> Self {
        CallbackConfig { monitor: Monitor::ValLoss, early_stopping: None, min_delta: 0.0, plateau_patience: 10, plateau_factor: 0.1, min_lr: 0.0 }
    }
}

impl CallbackConfig {
    /// Errors, naming the flag, on a value Keras refuses or that means
    /// nothing. Patience 0 is valid (as in Keras: act on the first epoch
    /// without improvement).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return bad(format!("--min-delta {}: expected a change ≥ 0 that counts as an improvement", self.min_delta));
        }
        if !(self.plateau_factor.is_finite() && self.plateau_factor > 0.0 && self.plateau_factor < 1.0) {
            return bad(format!("--plateau-factor {}: expected a factor in (0, 1) (Keras refuses a factor ≥ 1)", self.plateau_factor));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            return bad(format!("--min-lr {}: expected a learning rate ≥ 0", self.min_lr));
        }
        Ok(())
    }
}

/// What the end of an epoch decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// This epoch is the best so far: save it as best.safetensors.
    pub best: bool,
    /// Early stopping: train no further.
    pub stop: bool,
}

/// EarlyStopping's state (Keras 3 `on_epoch_end`), kept in the checkpoint.
/// Epochs are 1-based here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BestTracker {
    /// Best monitored value; `None` (Keras's ±∞) until an epoch improves.
    pub best: Option<f64>,
    /// The epoch best.safetensors holds.
    pub best_epoch: Option<usize>,
    /// Epochs since the last improvement.
    pub wait: usize,
    /// The epoch after which early stopping ended the run.
    pub stopped_epoch: Option<usize>,
}

impl BestTracker {
    /// Keras's `EarlyStopping.on_epoch_end(epoch − 1, logs)` with
    /// `restore_best_weights=True`, `baseline=None`, `start_from_epoch=0`.
    pub fn on_epoch_end(&mut self, epoch: usize, current: Option<f64>, mode: Mode, min_delta: f64, patience: Option<usize>) -> Verdict {
        // Keras: "if best weights were never set, the current weights are the best".
        let mut best = self.best_epoch.is_none();
        if best {
            self.best_epoch = Some(epoch);
        }
        let Some(current) = current else { return Verdict { best, stop: false } };
        self.wait += 1;
        if mode.improves(current, self.best, min_delta) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            self.wait = 0;
            best = true;
            return Verdict { best, stop: false };
        }
        let stop = patience.is_some_and(|p| self.wait >= p && epoch > 1);
        if stop {
            self.stopped_epoch = Some(epoch);
        }
        Verdict { best, stop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (stop epoch, best epoch) of a sequence, run as Keras runs it.
    fn run(values: &[f64], mode: Mode, min_delta: f64, patience: usize) -> (Option<usize>, Option<usize>, Vec<bool>) {
        let mut t = BestTracker::default();
        let mut bests = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            let verdict = t.on_epoch_end(i + 1, Some(v), mode, min_delta, Some(patience));
            bests.push(verdict.best);
            if verdict.stop {
                break;
            }
        }
        (t.stopped_epoch, t.best_epoch, bests)
    }

    #[test]
    fn early_stopping_follows_keras_hand_computed_sequences() {
        // Keras docs example shape: loss falls then rises; patience 2.
        // wait: e1 best, e2 best, e3 wait 1, e4 wait 2 → stop after epoch 4 (Keras stopped_epoch = 3, 0-based).
        assert_eq!(run(&[1.0, 0.8, 0.9, 0.85, 0.1], Mode::Min, 0.0, 2), (Some(4), Some(2), vec![true, true, false, false]));
        // An improvement resets the wait: e3 improves, e4 and e5 do not.
        assert_eq!(run(&[1.0, 1.1, 0.9, 0.95, 0.91, 0.5], Mode::Min, 0.0, 2).0, Some(5));
        // min_delta 0.05: 0.97 is not enough (needs < 0.95); 0.94 is.
        assert_eq!(run(&[1.0, 0.97, 0.94, 0.93, 0.92], Mode::Min, 0.05, 2), (Some(5), Some(3), vec![true, false, true, false, false]));
        // Mode max (accuracy): equal is not better.
        assert_eq!(run(&[0.5, 0.7, 0.7, 0.6], Mode::Max, 0.0, 2), (Some(4), Some(2), vec![true, true, false, false]));
        // Patience 0 and 1 both stop at the first epoch without improvement (Keras increments wait first).
        assert_eq!(run(&[1.0, 0.9, 0.95, 0.1], Mode::Min, 0.0, 0).0, Some(3));
        assert_eq!(run(&[1.0, 0.9, 0.95, 0.1], Mode::Min, 0.0, 1).0, Some(3));
        // Never before the second epoch (Keras: `epoch > 0`), even with patience 0 and a NaN first value.
        assert_eq!(run(&[f64::NAN, 0.5, 0.6], Mode::Min, 0.0, 0), (Some(3), Some(2), vec![true, true, false]));
        // A NaN never improves: the first epoch stays the fallback best.
        assert_eq!(run(&[f64::NAN, f64::NAN, f64::NAN], Mode::Min, 0.0, 1), (Some(2), Some(1), vec![true, false]));
    }

    #[test]
    fn without_patience_it_never_stops_but_tracks_the_best() {
        let mut t = BestTracker::default();
        for (i, v) in [0.3, 0.2, 0.4, 0.5, 0.6].into_iter().enumerate() {
            assert!(!t.on_epoch_end(i + 1, Some(v), Mode::Max, 0.0, None).stop);
        }
        assert_eq!((t.best, t.best_epoch, t.wait), (Some(0.6), Some(5), 0));
    }

    #[test]
    fn a_missing_value_is_skipped_as_keras_skips_it() {
        let mut t = BestTracker::default();
        assert_eq!(t.on_epoch_end(1, None, Mode::Max, 0.0, Some(0)), Verdict { best: true, stop: false });
        assert_eq!(t.on_epoch_end(2, None, Mode::Max, 0.0, Some(0)), Verdict { best: false, stop: false });
        assert_eq!((t.wait, t.best), (0, None));
    }

    #[test]
    fn state_with_no_best_yet_round_trips_through_json() {
        let t = BestTracker::default();
        let back: BestTracker = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn bad_flags_are_refused_naming_the_flag() {
        let ok = CallbackConfig::default();
        ok.validate().unwrap();
        for (cfg, flag) in [
            (CallbackConfig { plateau_factor: 1.0, ..ok.clone() }, "--plateau-factor"),
            (CallbackConfig { plateau_factor: 0.0, ..ok.clone() }, "--plateau-factor"),
            (CallbackConfig { plateau_factor: f64::NAN, ..ok.clone() }, "--plateau-factor"),
            (CallbackConfig { min_lr: -1e-6, ..ok.clone() }, "--min-lr"),
            (CallbackConfig { min_lr: f64::INFINITY, ..ok.clone() }, "--min-lr"),
            (CallbackConfig { min_delta: f64::NAN, ..ok.clone() }, "--min-delta"),
            (CallbackConfig { min_delta: -0.1, ..ok.clone() }, "--min-delta"),
        ] {
            assert!(cfg.validate().unwrap_err().to_string().contains(flag), "{cfg:?}");
        }
        CallbackConfig { early_stopping: Some(0), plateau_patience: 0, ..ok }.validate().unwrap();
    }
}
