//! Keras `ReduceLROnPlateau` on the run's `--monitor` (mode min for
//! val_loss, max for val_accuracy and val_auc).

use super::callbacks::{CallbackConfig, Mode};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReduceLrOnPlateau {
    pub factor: f64,
    pub patience: usize,
    pub min_delta: f64,
    pub cooldown: usize,
    pub min_lr: f64,
    /// Checkpoints written before `--monitor` existed watched val_loss.
    #[serde(default)]
    pub mode: Mode,
    /// Best monitored value; `None` (Keras's ±∞) until the first epoch. An
    /// Option because JSON has no infinity: serde_json wrote Keras's initial
    /// ∞ as null, which did not read back as a number.
    best: Option<f64>,
    wait: usize,
    cooldown_counter: usize,
}

impl Default for ReduceLrOnPlateau {
    /// Keras defaults: mode min, factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0.
    fn default() -> Self {
        ReduceLrOnPlateau { factor: 0.1, patience: 10, min_delta: 1e-4, cooldown: 0, min_lr: 0.0, mode: Mode::Min, best: None, wait: 0, cooldown_counter: 0 }
    }
}

impl ReduceLrOnPlateau {
    /// The schedule `--plateau-patience`, `--plateau-factor`, `--min-lr` and
    /// `--monitor` configure (min_delta and cooldown stay Keras's 1e-4 and 0).
    pub fn new(cfg: &CallbackConfig) -> Self {
        ReduceLrOnPlateau { factor: cfg.plateau_factor, patience: cfg.plateau_patience, min_lr: cfg.min_lr, mode: cfg.monitor.mode(), ..Default::default() }
    }

    /// Called at the end of each epoch with the monitored value (`None`:
    /// not computed, skipped as Keras skips a missing metric); returns the
    /// new learning rate.
    pub fn on_epoch_end(&mut self, monitored: Option<f64>, lr: f64) -> f64 {
        let Some(current) = monitored else { return lr };
        let mut lr = lr;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.mode.improves(current, self.best, self.min_delta) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            // Keras compares the optimizer's float32 rate with np.float32(min_lr).
            if self.wait >= self.patience && (lr as f32) > (self.min_lr as f32) {
                lr = (lr * self.factor).max(self.min_lr);
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
            }
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::ReduceLrOnPlateau;
    use crate::train::callbacks::{CallbackConfig, Mode, Monitor};

    fn lrs(s: &mut ReduceLrOnPlateau, values: &[f64], lr: f64) -> Vec<f64> {
        let mut lr = lr;
        values.iter().map(|&v| { lr = s.on_epoch_end(Some(v), lr); lr }).collect()
    }

    #[test]
    fn reduces_after_patience_epochs_without_improvement() {
        let mut s = ReduceLrOnPlateau { patience: 2, ..Default::default() };
        let mut lr = 1e-3;
        for v in [1.0, 0.9, 0.95] {
            lr = s.on_epoch_end(Some(v), lr);
        }
        assert_eq!(lr, 1e-3);
        lr = s.on_epoch_end(Some(0.89995), lr); // within min_delta: not an improvement
        assert!((lr - 1e-4).abs() < 1e-12);
        lr = s.on_epoch_end(Some(0.5), lr);
        assert!((lr - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn keras_sequences_in_max_mode_with_a_floor_and_patience_0() {
        // val_accuracy, patience 1, factor 0.5, min_lr 0.3: e1 best; e2 equal (not > best + 1e-4): wait 1 → 0.5;
        // e3 improves; e4 worse → 0.25 floored to 0.3; e5 worse but lr is at min_lr: stays.
        let cfg = CallbackConfig { monitor: Monitor::ValAccuracy, plateau_patience: 1, plateau_factor: 0.5, min_lr: 0.3, ..Default::default() };
        let mut s = ReduceLrOnPlateau::new(&cfg);
        assert_eq!(s.mode, Mode::Max);
        assert_eq!(lrs(&mut s, &[0.5, 0.5, 0.6, 0.55, 0.5], 1.0), [1.0, 0.5, 0.5, 0.3, 0.3]);
        // Patience 0: every epoch without improvement reduces (Keras increments wait, then checks ≥ 0).
        let mut s = ReduceLrOnPlateau::new(&CallbackConfig { plateau_patience: 0, ..Default::default() });
        let got = lrs(&mut s, &[1.0, 1.0, 0.5, 0.6], 1.0);
        let want = [1.0, 0.1, 0.1, 0.01];
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-15), "{got:?}");
        // A missing value changes nothing.
        let before = s.clone();
        assert_eq!(s.on_epoch_end(None, 0.01), 0.01);
        assert_eq!(s, before);
    }

    #[test]
    fn state_before_the_first_epoch_round_trips_through_json() {
        // serde_json writes an infinite best as null; the state must read back.
        let s = ReduceLrOnPlateau::default();
        let json = serde_json::to_string(&s).unwrap();
        let back: ReduceLrOnPlateau = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        // A checkpoint of the previous layout (no mode, a finite best) still loads, in mode min.
        let old = r#"{"factor":0.1,"patience":10,"min_delta":0.0001,"cooldown":0,"min_lr":0.0,"best":0.5,"wait":3,"cooldown_counter":0}"#;
        let old: ReduceLrOnPlateau = serde_json::from_str(old).unwrap();
        assert_eq!((old.mode, old.best, old.wait), (Mode::Min, Some(0.5), 3));
    }
}
