//! The per-epoch training history: `history.csv` (one row per epoch) and
//! `history.json` (Keras' `history.history` layout: one list per metric, plus
//! `epoch`, `lr`, `seconds` and `images_per_second`), both written atomically.
//! `History::load` reads `history.json` back so `--resume` can continue it.
//!
//! `val_auc` (macro one-vs-rest ROC-AUC of the validation split) is the last
//! CSV column, empty where it was not computed; history files written before
//! it existed load with no AUC.
//!
//! JSON has no NaN or infinity: a non-finite value (a diverged loss) is
//! written as `null` and read back as NaN.

use crate::error::{Error, Result};
use crate::io::write_atomic;
use serde::Deserialize;
use std::fmt::Write;
use std::path::Path;

pub const HISTORY_CSV: &str = "history.csv";
pub const HISTORY_JSON: &str = "history.json";
pub const CSV_HEADER: &str = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_second,val_auc";

/// One epoch's results.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall-clock time of the epoch (training and validation).
    pub seconds: f64,
    /// Training throughput.
    pub images_per_second: f64,
    /// Macro one-vs-rest ROC-AUC on the validation split; `None` when no
    /// class had both positives and negatives.
    pub val_auc: Option<f64>,
}

/// All epochs so far, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
}

/// The JSON layout read back: parallel columns, as Keras' `history.history`.
#[derive(Deserialize)]
struct Columns {
    epoch: Vec<usize>,
    loss: Vec<Option<f64>>,
    accuracy: Vec<Option<f64>>,
    val_loss: Vec<Option<f64>>,
    val_accuracy: Vec<Option<f64>>,
    lr: Vec<Option<f64>>,
    seconds: Vec<Option<f64>>,
    images_per_second: Vec<Option<f64>>,
    #[serde(default)]
    val_auc: Option<Vec<Option<f64>>>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an epoch: the first may be any epoch from 1 (a resumed run without
    /// its history starts late), later ones must follow the last one.
    pub fn append(&mut self, record: EpochRecord) -> Result<()> {
        match self.epochs.last() {
            Some(last) if record.epoch != last.epoch + 1 => {
                return Err(Error::Invalid(format!(
                    "history: epoch {} cannot follow epoch {}; expected epoch {}",
                    record.epoch,
                    last.epoch,
                    last.epoch + 1
                )));
            }
            None if record.epoch == 0 => return Err(Error::Invalid("history: epochs are 1-based, got epoch 0".into())),
            _ => {}
        }
        self.epochs.push(record);
        Ok(())
    }

    /// The CSV text: `CSV_HEADER`, then one row per epoch. Values use Rust's
    /// shortest exact representation, so parsing them gives the same f64.
    pub fn to_csv(&self) -> String {
        let mut out = format!("{CSV_HEADER}\n");
        for r in &self.epochs {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                r.epoch,
                r.loss,
                r.accuracy,
                r.val_loss,
                r.val_accuracy,
                r.lr,
                r.seconds,
                r.images_per_second,
                r.val_auc.map_or(String::new(), |v| v.to_string())
            );
        }
        out
    }

    /// The Keras-like JSON text, one metric per line.
    pub fn to_json(&self) -> String {
        let column = |f: fn(&EpochRecord) -> f64| -> String {
            let values: Vec<Option<f64>> = self.epochs.iter().map(|r| Some(f(r)).filter(|v| v.is_finite())).collect();
            serde_json::to_string(&values).expect("numbers always serialise")
        };
        let epochs: Vec<usize> = self.epochs.iter().map(|r| r.epoch).collect();
        let lines = [
            ("epoch", serde_json::to_string(&epochs).expect("numbers always serialise")),
            ("loss", column(|r| r.loss)),
            ("accuracy", column(|r| r.accuracy)),
            ("val_loss", column(|r| r.val_loss)),
            ("val_accuracy", column(|r| r.val_accuracy)),
            ("lr", column(|r| r.lr)),
            ("seconds", column(|r| r.seconds)),
            ("images_per_second", column(|r| r.images_per_second)),
            ("val_auc", serde_json::to_string(&self.epochs.iter().map(|r| r.val_auc.filter(|v| v.is_finite())).collect::<Vec<_>>()).expect("numbers always serialise")),
        ]
        .map(|(name, values)| format!("  \"{name}\": {values}"));
        format!("{{\n{}\n}}\n", lines.join(",\n"))
    }

    /// Parses the Keras-like JSON text; every column must have one value per epoch.
    pub fn from_json(text: &str) -> Result<Self> {
        let c: Columns = serde_json::from_str(text).map_err(|e| Error::Invalid(format!("not a history: {e}")))?;
        let n = c.epoch.len();
        for (name, len) in [
            ("loss", c.loss.len()),
            ("accuracy", c.accuracy.len()),
            ("val_loss", c.val_loss.len()),
            ("val_accuracy", c.val_accuracy.len()),
            ("lr", c.lr.len()),
            ("seconds", c.seconds.len()),
            ("images_per_second", c.images_per_second.len()),
            ("val_auc", c.val_auc.as_ref().map_or(n, Vec::len)),
        ] {
            if len != n {
                return Err(Error::Invalid(format!("'{name}' has {len} values but 'epoch' has {n}")));
            }
        }
        let value = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let mut history = History::new();
        for i in 0..n {
            history.append(EpochRecord {
                epoch: c.epoch[i],
                loss: value(c.loss[i]),
                accuracy: value(c.accuracy[i]),
                val_loss: value(c.val_loss[i]),
                val_accuracy: value(c.val_accuracy[i]),
                lr: value(c.lr[i]),
                seconds: value(c.seconds[i]),
                images_per_second: value(c.images_per_second[i]),
                val_auc: c.val_auc.as_ref().and_then(|v| v[i]),
            })?;
        }
        Ok(history)
    }

    /// Writes `dir/history.csv` and `dir/history.json`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(HISTORY_CSV), self.to_csv().as_bytes())?;
        write_atomic(&dir.join(HISTORY_JSON), self.to_json().as_bytes())
    }

    /// Reads `dir/history.json`; errors name the file.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(HISTORY_JSON);
        let fail = |reason: String| Error::Io { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        Self::from_json(&text).map_err(|e| fail(e.to_string()))
    }
}
