//! Keras `ReduceLROnPlateau` (mode 'min' on val_loss).

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReduceLrOnPlateau {
    pub factor: f64,
    pub patience: usize,
    pub min_delta: f64,
    pub cooldown: usize,
    pub min_lr: f64,
    best: f64,
    wait: usize,
    cooldown_counter: usize,
}

impl Default for ReduceLrOnPlateau {
    /// Keras defaults: factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0.
    fn default() -> Self {
        ReduceLrOnPlateau { factor: 0.1, patience: 10, min_delta: 1e-4, cooldown: 0, min_lr: 0.0, best: f64::INFINITY, wait: 0, cooldown_counter: 0 }
    }
}

impl ReduceLrOnPlateau {
    /// Called at the end of each epoch with the monitored value; returns the new learning rate.
    pub fn on_epoch_end(&mut self, monitored: f64, lr: f64) -> f64 {
        let mut lr = lr;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if monitored < self.best - self.min_delta {
            self.best = monitored;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience && lr > self.min_lr {
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

    #[test]
    fn reduces_after_patience_epochs_without_improvement() {
        let mut s = ReduceLrOnPlateau { patience: 2, ..Default::default() };
        let mut lr = 1e-3;
        for v in [1.0, 0.9, 0.95] {
            lr = s.on_epoch_end(v, lr);
        }
        assert_eq!(lr, 1e-3);
        lr = s.on_epoch_end(0.89995, lr); // within min_delta: not an improvement
        assert!((lr - 1e-4).abs() < 1e-12);
        lr = s.on_epoch_end(0.5, lr);
        assert!((lr - 1e-4).abs() < 1e-12);
    }
}
