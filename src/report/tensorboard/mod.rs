//! TensorBoard event files for a training run, laid out as Keras's
//! `TensorBoard` callback lays them out, so `tensorboard --logdir RUN/logs`
//! shows the run beside Keras runs:
//!
//! - `RUN/logs/train/`: `epoch_loss`, `epoch_accuracy` (training mode) and
//!   `epoch_learning_rate` per epoch, and the run's configuration (run.json)
//!   as a text summary at the step each trainer process started from (0, or
//!   the epochs done when `--resume` started, which may change `--epochs`);
//! - `RUN/logs/validation/`: `epoch_loss`, `epoch_accuracy`, `epoch_auc`
//!   per epoch, and `confusion_matrix` as an image at each epoch that became
//!   the best one (the latest image is the best epoch's).
//!
//! The step is the epoch number of history.csv (1-based; Keras counts from
//! 0). Scalars are `simple_value`s, which every TensorBoard reader reads.
//!
//! Event files are append-only logs that TensorBoard reads while they grow,
//! so they are appended to, not replaced. Each trainer process writes its
//! own file (`events.out.tfevents.TIME.HOST.PID.N.v2`, as TensorFlow names
//! them) and TensorBoard merges the files of a folder. On `--resume`, the
//! folder's existing files are read first and every epoch of the history
//! that no file holds yet is written, so steps are never duplicated and an
//! epoch checkpointed just before an interruption is not lost. A record cut
//! short by an interruption ends that file for every reader, harmlessly:
//! the next process writes a new file.

mod proto;
mod records;

use super::history::{EpochRecord, History};
use super::metrics::ConfusionMatrix;
use crate::error::{Error, Result};
use proto::{Event, Image, PluginData, Summary, SummaryMetadata, TensorProto, Value, ValueKind, What};
use prost::Message;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The folder under the run directory (`tensorboard --logdir RUN/logs`).
pub const LOGS_DIR: &str = "logs";
pub const TRAIN_DIR: &str = "train";
pub const VALIDATION_DIR: &str = "validation";
/// The text summary's tag.
pub const CONFIG_TAG: &str = "configuration";
pub const CONFUSION_TAG: &str = "confusion_matrix";
/// The scalar that marks an epoch as written (every epoch has it in both folders).
const EPOCH_MARK: &str = "epoch_loss";

/// The run's two event logs.
pub struct TensorBoard {
    train: EventLog,
    validation: EventLog,
}

impl TensorBoard {
    /// Reads what the run's existing event files hold; writes nothing.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let logs = run_dir.join(LOGS_DIR);
        Ok(Self { train: EventLog::open(&logs.join(TRAIN_DIR))?, validation: EventLog::open(&logs.join(VALIDATION_DIR))? })
    }

    /// Writes the run's configuration as it stands when training starts
    /// from epoch `step`, unless a file holds a configuration at that step.
    /// `run_dir` is the run directory as checked for writing (`RunDir::for_writing`).
    pub fn write_config(&mut self, run_dir: &Path, step: usize, config_json: &str) -> Result<()> {
        if self.train.config_steps.contains(&step) {
            return Ok(());
        }
        let summary = event(step, vec![text(CONFIG_TAG, &format!("```\n{config_json}\n```"))]);
        self.train.append(&run_dir.join(LOGS_DIR).join(TRAIN_DIR), &[summary])?;
        self.train.config_steps.insert(step);
        Ok(())
    }

    /// Writes every epoch of `history` that no event file holds yet.
    pub fn write_epochs(&mut self, run_dir: &Path, history: &History) -> Result<()> {
        let logs = run_dir.join(LOGS_DIR);
        let mut train = Vec::new();
        let mut validation = Vec::new();
        for r in &history.epochs {
            if !self.train.epochs.contains(&r.epoch) {
                train.push(event(r.epoch, train_scalars(r)));
            }
            if !self.validation.epochs.contains(&r.epoch) {
                validation.push(event(r.epoch, validation_scalars(r)));
            }
        }
        self.train.append(&logs.join(TRAIN_DIR), &train)?;
        self.validation.append(&logs.join(VALIDATION_DIR), &validation)?;
        for r in &history.epochs {
            self.train.epochs.insert(r.epoch);
            self.validation.epochs.insert(r.epoch);
        }
        Ok(())
    }

    /// Writes the validation confusion matrix of `epoch` (a new best epoch) as an image.
    pub fn write_confusion(&mut self, run_dir: &Path, epoch: usize, matrix: &ConfusionMatrix) -> Result<()> {
        let png = matrix.png()?;
        let (width, height) = png_size(&png)?;
        let image = Image { height, width, colorspace: 3, encoded_image_string: png };
        let value = Value { tag: CONFUSION_TAG.into(), metadata: None, value: Some(ValueKind::Image(image)) };
        self.validation.append(&run_dir.join(LOGS_DIR).join(VALIDATION_DIR), &[event(epoch, vec![value])])
    }
}

fn train_scalars(r: &EpochRecord) -> Vec<Value> {
    vec![scalar("epoch_loss", r.loss), scalar("epoch_accuracy", r.accuracy), scalar("epoch_learning_rate", r.lr)]
}

fn validation_scalars(r: &EpochRecord) -> Vec<Value> {
    let mut values = vec![scalar("epoch_loss", r.val_loss), scalar("epoch_accuracy", r.val_accuracy)];
    values.extend(r.val_auc.map(|auc| scalar("epoch_auc", auc)));
    values
}

fn scalar(tag: &str, value: f64) -> Value {
    Value { tag: tag.into(), metadata: None, value: Some(ValueKind::SimpleValue(value as f32)) }
}

/// A text summary: a string tensor tagged for TensorBoard's text plugin (which renders markdown).
fn text(tag: &str, markdown: &str) -> Value {
    let tensor = TensorProto { dtype: proto::DT_STRING, tensor_shape: Some(Default::default()), string_val: vec![markdown.as_bytes().to_vec()] };
    let plugin = PluginData { plugin_name: "text".into(), content: Vec::new() };
    Value { tag: tag.into(), metadata: Some(SummaryMetadata { plugin_data: Some(plugin) }), value: Some(ValueKind::Tensor(tensor)) }
}

fn event(step: usize, values: Vec<Value>) -> Event {
    Event { wall_time: now(), step: step as i64, what: Some(What::Summary(Summary { value: values })) }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Result<(i32, i32)> {
    let field = |at: usize| png.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    match (png.starts_with(b"\x89PNG\r\n\x1a\n"), field(16), field(20)) {
        (true, Some(w), Some(h)) => Ok((w, h)),
        _ => Err(Error::Invalid("the confusion matrix picture is not a PNG".into())),
    }
}

/// One folder of event files: what its files already hold, and this
/// process's own file, created at its first write.
struct EventLog {
    /// Epochs whose scalars some file in the folder holds.
    epochs: BTreeSet<usize>,
    /// Steps at which some file holds the configuration.
    config_steps: BTreeSet<usize>,
    /// This process's file, once created.
    own: Option<PathBuf>,
}

impl EventLog {
    fn open(dir: &Path) -> Result<Self> {
        let mut log = Self { epochs: BTreeSet::new(), config_steps: BTreeSet::new(), own: None };
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(log),
            Err(e) => return Err(io_error(dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| io_error(dir, e))?.path();
            if is_event_file(&path) {
                log.scan(&path)?;
            }
        }
        Ok(log)
    }

    /// Notes the epochs and configuration `path` holds.
    fn scan(&mut self, path: &Path) -> Result<()> {
        let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
        let read = records::read(&bytes);
        for record in read.records {
            let Ok(Event { step, what: Some(What::Summary(summary)), .. }) = Event::decode(record) else { continue };
            let Ok(step) = usize::try_from(step) else { continue };
            for value in summary.value {
                match value.tag.as_str() {
                    EPOCH_MARK => {
                        self.epochs.insert(step);
                    }
                    CONFIG_TAG => {
                        self.config_steps.insert(step);
                    }
                    _ => {}
                }
            }
        }
        if !read.complete {
            eprintln!("warning: {}: the last record is cut short or damaged (an interrupted write); TensorBoard reads the file up to it", path.display());
        }
        Ok(())
    }

    /// Appends `events` to this process's file in `dir`, creating both at the first write.
    fn append(&mut self, dir: &Path, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        let (path, mut file) = match &self.own {
            Some(path) => (path.clone(), OpenOptions::new().append(true).open(path).map_err(|e| io_error(path, e))?),
            None => {
                let (path, file) = create_event_file(dir)?;
                let version = Event { wall_time: now(), step: 0, what: Some(What::FileVersion("brain.Event:2".into())) };
                bytes.extend(records::frame(&version.encode_to_vec()));
                (path, file)
            }
        };
        for e in events {
            bytes.extend(records::frame(&e.encode_to_vec()));
        }
        file.write_all(&bytes).and_then(|()| file.sync_data()).map_err(|e| io_error(&path, e))?;
        self.own = Some(path);
        Ok(())
    }
}

fn is_event_file(path: &Path) -> bool {
    path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("events.out.tfevents."))
}

/// A new file named as TensorFlow names them; never one that exists.
fn create_event_file(dir: &Path) -> Result<(PathBuf, File)> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let host = host_name();
    for n in 0.. {
        let path = dir.join(format!("events.out.tfevents.{seconds}.{host}.{}.{n}.v2", std::process::id()));
        match OpenOptions::new().append(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(&path, e)),
        }
    }
    unreachable!("the loop returns or tries the next number")
}

/// The machine's name for the file name, as TensorFlow puts it there; only
/// characters safe in a file name.
fn host_name() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let safe: String = name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
    if safe.is_empty() { "localhost".into() } else { safe }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, auc: Option<f64>) -> EpochRecord {
        let e = epoch as f64;
        EpochRecord {
            epoch,
            loss: 1.0 / e,
            accuracy: 0.5 + e / 100.0,
            val_loss: 1.5 / e,
            val_accuracy: 0.4 + e / 50.0,
            lr: 1e-3 / e,
            seconds: 3.0,
            images_per_second: 10.0,
            val_auc: auc,
        }
    }

    /// (tag, step, value) of every scalar in a folder, sorted.
    fn scalars(dir: &Path) -> Vec<(String, i64, f32)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            let read = records::read(&bytes);
            assert!(read.complete);
            for r in read.records {
                let event = Event::decode(r).unwrap();
                if let Some(What::Summary(s)) = event.what {
                    for v in s.value {
                        if let Some(ValueKind::SimpleValue(x)) = v.value {
                            out.push((v.tag, event.step, x));
                        }
                    }
                }
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    #[test]
    fn a_resumed_run_adds_only_the_epochs_no_file_holds() {
        let run = tempfile::tempdir().unwrap();
        let mut history = History::new();
        history.append(record(1, Some(0.75))).unwrap();
        history.append(record(2, None)).unwrap();
        let mut first = TensorBoard::open(run.path()).unwrap();
        first.write_config(run.path(), 0, "{}").unwrap();
        first.write_epochs(run.path(), &history).unwrap();
        // Nothing new: nothing written twice.
        first.write_epochs(run.path(), &history).unwrap();

        // A second process (a resume) with one more epoch.
        history.append(record(3, Some(0.875))).unwrap();
        let mut second = TensorBoard::open(run.path()).unwrap();
        assert_eq!(second.train.config_steps.iter().copied().collect::<Vec<_>>(), [0]);
        second.write_config(run.path(), 0, "{}").unwrap();
        second.write_config(run.path(), 2, "{}").unwrap();
        second.write_epochs(run.path(), &history).unwrap();
        assert_eq!(TensorBoard::open(run.path()).unwrap().train.config_steps.iter().copied().collect::<Vec<_>>(), [0, 2]);

        let train = scalars(&run.path().join("logs/train"));
        let steps = |tag: &str, all: &[(String, i64, f32)]| all.iter().filter(|s| s.0 == tag).map(|s| s.1).collect::<Vec<_>>();
        assert_eq!(steps("epoch_loss", &train), [1, 2, 3]);
        assert_eq!(steps("epoch_learning_rate", &train), [1, 2, 3]);
        assert!(train.contains(&("epoch_accuracy".into(), 2, 0.52f32)));
        let validation = scalars(&run.path().join("logs/validation"));
        assert_eq!(steps("epoch_loss", &validation), [1, 2, 3]);
        // AUC only where it was computed.
        assert_eq!(steps("epoch_auc", &validation), [1, 3]);
        assert!(validation.contains(&("epoch_auc".into(), 3, 0.875f32)));
        assert_eq!(fs::read_dir(run.path().join("logs/train")).unwrap().count(), 2);
    }

    #[test]
    fn a_file_cut_short_is_read_up_to_the_cut() {
        let run = tempfile::tempdir().unwrap();
        let mut history = History::new();
        history.append(record(1, None)).unwrap();
        history.append(record(2, None)).unwrap();
        TensorBoard::open(run.path()).unwrap().write_epochs(run.path(), &history).unwrap();
        let dir = run.path().join("logs/validation");
        let file = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let bytes = fs::read(&file).unwrap();
        fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
        let log = EventLog::open(&dir).unwrap();
        assert_eq!(log.epochs.iter().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn png_size_reads_the_header() {
        let mut png = Vec::new();
        image::RgbImage::new(7, 3).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        assert_eq!(png_size(&png).unwrap(), (7, 3));
        assert!(png_size(b"GIF89a").is_err());
    }
}
