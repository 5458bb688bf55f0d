//! Batches of one [`ImageFolder`], decoded on worker threads, in Keras's
//! per-image order: decode → RGB → nearest resize → random shear/zoom/flip →
//! preprocess.
//!
//! Determinism: an epoch's order is a permutation seeded by (seed, epoch), and
//! each image's augmentation RNG is seeded by (seed, epoch, sample index), so
//! the batches depend on neither the number of workers nor timing.
//!
//! Threads: `workers` threads take the epoch's positions in order from a shared
//! cursor, but never more than `(prefetch + 1) × batch` positions beyond the
//! first image the consumer still waits for; results come back over a channel
//! and are put back in order by the consumer, which packs them into batches.
//!
//! A file that cannot be read or decoded is skipped: reported once (to the
//! `on_skip` callback, standard error by default), counted, and skipped without
//! decoding in later epochs. Batches are packed from the images that loaded,
//! so only the last batch of an epoch is short.
//!
//! [`Loader::epoch_without_pixels`] leaves chosen images undecoded (the caller
//! already holds what it needs of them, e.g. cached features): their batch
//! positions carry the label, path and sample index but no pixels.

use super::augment::{Augment, Transform};
use super::folder::ImageFolder;
use super::dicom::DicomOptions;
use super::image_file::{Preprocess, load_rgb_with};
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoaderConfig {
    /// Images are resized to `image_size`×`image_size` (Keras target_size).
    pub image_size: usize,
    pub batch: usize,
    /// Shuffle each epoch (a new seeded permutation per epoch).
    pub shuffle: bool,
    /// Random shear/zoom/flip (training only).
    pub augment: Option<Augment>,
    pub preprocess: Preprocess,
    /// How DICOM files are windowed and which frame is read.
    pub dicom: DicomOptions,
    pub seed: u64,
    /// Decoding threads (at least 1).
    pub workers: usize,
    /// Batches decoded ahead of the one being assembled.
    pub prefetch: usize,
}

impl LoaderConfig {
    /// No shuffle, no augmentation, rescale 1/255, default DICOM handling,
    /// seed 0, one worker per CPU core, 2 batches of prefetch.
    pub fn new(image_size: usize, batch: usize) -> LoaderConfig {
        LoaderConfig {
            image_size,
            batch,
            shuffle: false,
            augment: None,
            preprocess: Preprocess::Rescale,
            dicom: DicomOptions::default(),
            seed: 0,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 2,
        }
    }
}

/// A file the loader skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Up to `batch` images in NHWC order with their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// [m, image_size, image_size, 3]: the pixels of the positions marked in
    /// `decoded`, in batch order (all n positions unless the epoch was told
    /// to leave some undecoded).
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// [n, classes]: 1 at the label, 0 elsewhere.
    pub one_hot: Vec<f32>,
    pub paths: Vec<PathBuf>,
    /// Each position's index into the split's samples.
    pub samples: Vec<usize>,
    /// Whether each position's pixels are in `images`.
    pub decoded: Vec<bool>,
    pub image_size: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of positions whose pixels are in `images`.
    pub fn decoded_len(&self) -> usize {
        self.decoded.iter().filter(|&&d| d).count()
    }

    /// Shape of `images`: [decoded_len, image_size, image_size, 3].
    pub fn shape(&self) -> [usize; 4] {
        [self.decoded_len(), self.image_size, self.image_size, 3]
    }
}

type SkipCallback = Arc<dyn Fn(&Skipped) + Send + Sync>;

struct Shared {
    folder: ImageFolder,
    config: LoaderConfig,
    /// Sample index → why it was skipped; each is reported once.
    skipped: Mutex<BTreeMap<usize, Skipped>>,
    on_skip: Mutex<SkipCallback>,
}

impl Shared {
    fn skipped(&self) -> MutexGuard<'_, BTreeMap<usize, Skipped>> {
        // The map stays consistent even if a holder panicked (inserts are atomic).
        self.skipped.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_skipped(&self, sample: usize) -> bool {
        self.skipped().contains_key(&sample)
    }

    fn record_skip(&self, sample: usize, reason: String) {
        let skip = Skipped { path: self.folder.samples()[sample].0.clone(), reason };
        let new = self.skipped().insert(sample, skip.clone()).is_none();
        if new {
            let report = self.on_skip.lock().unwrap_or_else(|e| e.into_inner()).clone();
            report(&skip);
        }
    }

    /// decode → RGB → resize → augment → preprocess.
    fn prepare(&self, sample: usize, epoch: usize) -> Result<Vec<f32>> {
        let s = self.config.image_size;
        let rgb = load_rgb_with(&self.folder.samples()[sample].0, s, &self.config.dicom)?;
        let transform = match &self.config.augment {
            Some(augment) => {
                augment.draw(&mut StdRng::seed_from_u64(stream_seed(self.config.seed, Stream::Augment, epoch, sample)))
            }
            None => Transform::IDENTITY,
        };
        transform.input(&rgb, s, self.config.preprocess)
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Shuffle = 1,
    Augment = 2,
}

/// SplitMix64's finaliser, chained over the inputs: independent-looking seeds
/// for every (seed, stream, epoch, sample).
fn stream_seed(seed: u64, stream: Stream, epoch: usize, sample: usize) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    [stream as u64, epoch as u64, sample as u64]
        .into_iter()
        .fold(mix(seed), |h, v| mix(h.wrapping_add(0x9e37_79b9_7f4a_7c15) ^ v))
}

/// Batches over one split; see the module comment.
pub struct Loader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("root", &self.shared.folder.root())
            .field("images", &self.len())
            .field("config", &self.shared.config)
            .field("skipped", &self.skipped())
            .finish()
    }
}

impl Loader {
    pub fn new(folder: ImageFolder, config: LoaderConfig) -> Result<Loader> {
        let bad = |what: &str| Err(Error::Invalid(format!("loader for {}: {what}", folder.root().display())));
        if config.image_size == 0 {
            return bad("image size must be at least 1");
        }
        if config.batch == 0 {
            return bad("batch must be at least 1");
        }
        if config.workers == 0 {
            return bad("workers must be at least 1");
        }
        if let Some(augment) = &config.augment {
            augment.validate()?;
        }
        config.dicom.validate()?;
        let on_skip: SkipCallback =
            Arc::new(|s: &Skipped| eprintln!("warning: skipping {}: {}", s.path.display(), s.reason));
        let shared = Shared { folder, config, skipped: Mutex::new(BTreeMap::new()), on_skip: Mutex::new(on_skip) };
        Ok(Loader { shared: Arc::new(shared) })
    }

    /// Replaces the skip report (a warning on standard error by default). It
    /// is called once per skipped file, from the thread that iterates the
    /// epoch, in epoch order.
    pub fn on_skip(self, report: impl Fn(&Skipped) + Send + Sync + 'static) -> Loader {
        *self.shared.on_skip.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(report);
        self
    }

    pub fn folder(&self) -> &ImageFolder {
        &self.shared.folder
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.shared.config
    }

    pub fn classes(&self) -> &[String] {
        self.shared.folder.classes()
    }

    /// Number of images in the split (skipped ones included).
    pub fn len(&self) -> usize {
        self.shared.folder.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.folder.is_empty()
    }

    /// Batches in an epoch, counting the files skipped so far as absent.
    pub fn batches_per_epoch(&self) -> usize {
        (self.len() - self.skipped()).div_ceil(self.shared.config.batch)
    }

    /// Number of distinct files skipped so far.
    pub fn skipped(&self) -> usize {
        self.shared.skipped().len()
    }

    /// The files skipped so far, in sample order.
    pub fn skipped_files(&self) -> Vec<Skipped> {
        self.shared.skipped().values().cloned().collect()
    }

    /// Sample indices in epoch `epoch`'s order.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if self.shared.config.shuffle {
            let mut rng = StdRng::seed_from_u64(stream_seed(self.shared.config.seed, Stream::Shuffle, epoch, 0));
            order.shuffle(&mut rng);
        }
        order
    }

    /// The batches of epoch `epoch`. Worker threads start now and stop when
    /// the iterator is exhausted or dropped.
    pub fn epoch(&self, epoch: usize) -> Epoch {
        Epoch::start(self.shared.clone(), Arc::new(self.order(epoch)), epoch, None)
    }

    /// Like [`epoch`](Self::epoch), but the samples marked in `without`
    /// (indexed by sample) are not decoded: their positions come with
    /// `decoded` false and no pixels. Order and batching are unchanged.
    pub fn epoch_without_pixels(&self, epoch: usize, without: Arc<Vec<bool>>) -> Epoch {
        Epoch::start(self.shared.clone(), Arc::new(self.order(epoch)), epoch, Some(without))
    }
}

enum Decoded {
    Image(Vec<f32>),
    /// Left undecoded at the caller's request.
    NotNeeded,
    Failed(String),
    /// Skipped in an earlier epoch; not decoded again.
    AlreadySkipped,
}

struct Cursor {
    /// Next epoch position a worker may take.
    next: usize,
    /// Workers may take positions below this.
    limit: usize,
    stop: bool,
}

struct Work {
    cursor: Mutex<Cursor>,
    wake: Condvar,
}

impl Work {
    fn cursor(&self) -> MutexGuard<'_, Cursor> {
        self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next position to decode, waiting while the window is full; `None` when done.
    fn take(&self, total: usize) -> Option<usize> {
        let mut c = self.cursor();
        loop {
            if c.stop || c.next >= total {
                return None;
            }
            if c.next < c.limit {
                c.next += 1;
                return Some(c.next - 1);
            }
            c = self.wake.wait(c).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// One epoch's batches, in order. Yields `Err` only when no image of the
/// split could be loaded or the workers could not run.
pub struct Epoch {
    shared: Arc<Shared>,
    order: Arc<Vec<usize>>,
    work: Arc<Work>,
    results: Receiver<(usize, Decoded)>,
    workers: Vec<JoinHandle<()>>,
    window: usize,
    /// Next epoch position to hand to a batch.
    next: usize,
    arrived: HashMap<usize, Decoded>,
    /// (sample, pixels unless left undecoded) of the batch being assembled.
    pending: Vec<(usize, Option<Vec<f32>>)>,
    delivered: usize,
    start_error: Option<Error>,
    finished: bool,
}

impl Epoch {
    fn start(shared: Arc<Shared>, order: Arc<Vec<usize>>, epoch: usize, without: Option<Arc<Vec<bool>>>) -> Epoch {
        let config = shared.config;
        let window = (config.prefetch + 1) * config.batch;
        let work =
            Arc::new(Work { cursor: Mutex::new(Cursor { next: 0, limit: window, stop: false }), wake: Condvar::new() });
        let (tx, results) = channel();
        let mut workers = Vec::new();
        let mut start_error = None;
        for i in 0..config.workers.min(order.len()) {
            let (shared, order, work, tx, without) = (shared.clone(), order.clone(), work.clone(), tx.clone(), without.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("incept-loader-{i}"))
                .spawn(move || decode_loop(&shared, &order, &work, &tx, epoch, without.as_deref().map(Vec::as_slice)));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    start_error = Some(Error::Invalid(format!("cannot start loader thread: {e}")));
                    break;
                }
            }
        }
        Epoch {
            shared,
            order,
            work,
            results,
            workers,
            window,
            next: 0,
            arrived: HashMap::new(),
            pending: Vec::new(),
            delivered: 0,
            start_error,
            finished: false,
        }
    }

    fn take_batch(&mut self) -> Batch {
        let s = self.shared.config.image_size;
        let classes = self.shared.folder.classes().len();
        let n = self.pending.len();
        let mut batch = Batch {
            images: Vec::with_capacity(n * s * s * 3),
            labels: Vec::with_capacity(n),
            one_hot: vec![0.0; n * classes],
            paths: Vec::with_capacity(n),
            samples: Vec::with_capacity(n),
            decoded: Vec::with_capacity(n),
            image_size: s,
        };
        for (i, (sample, image)) in self.pending.drain(..).enumerate() {
            let (path, label) = &self.shared.folder.samples()[sample];
            if let Some(image) = &image {
                batch.images.extend_from_slice(image);
            }
            batch.decoded.push(image.is_some());
            batch.labels.push(*label);
            batch.one_hot[i * classes + label] = 1.0;
            batch.paths.push(path.clone());
            batch.samples.push(sample);
        }
        self.delivered += n;
        batch
    }

    fn finish(&mut self) {
        self.finished = true;
        self.work.cursor().stop = true;
        self.work.wake.notify_all();
        for handle in self.workers.drain(..) {
            // decode_loop catches decoder panics, so a join error is not expected; nothing to recover.
            let _ = handle.join();
        }
    }

    /// The decoded result for epoch position `self.next`, waiting for it.
    fn next_in_order(&mut self) -> Result<Decoded> {
        loop {
            if let Some(d) = self.arrived.remove(&self.next) {
                return Ok(d);
            }
            match self.results.recv() {
                Ok((pos, d)) => {
                    self.arrived.insert(pos, d);
                }
                Err(_) => return Err(Error::Invalid("loader worker threads stopped before the epoch ended".into())),
            }
        }
    }
}

fn decode_loop(shared: &Shared, order: &[usize], work: &Work, tx: &Sender<(usize, Decoded)>, epoch: usize, without: Option<&[bool]>) {
    while let Some(pos) = work.take(order.len()) {
        let sample = order[pos];
        let decoded = if shared.is_skipped(sample) {
            Decoded::AlreadySkipped
        } else if without.is_some_and(|w| w.get(sample).copied().unwrap_or(false)) {
            Decoded::NotNeeded
        } else {
            match catch_unwind(AssertUnwindSafe(|| shared.prepare(sample, epoch))) {
                Ok(Ok(image)) => Decoded::Image(image),
                Ok(Err(e)) => Decoded::Failed(match e {
                    Error::Io { reason, .. } => reason,
                    other => other.to_string(),
                }),
                Err(panic) => Decoded::Failed(format!("decoder panicked: {}", panic_message(&panic))),
            }
        };
        if tx.send((pos, decoded)).is_err() {
            return;
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.finished {
            return None;
        }
        if let Some(e) = self.start_error.take() {
            self.finish();
            return Some(Err(e));
        }
        let batch = self.shared.config.batch;
        while self.pending.len() < batch && self.next < self.order.len() {
            let decoded = match self.next_in_order() {
                Ok(d) => d,
                Err(e) => {
                    self.finish();
                    return Some(Err(e));
                }
            };
            let sample = self.order[self.next];
            self.next += 1;
            self.work.cursor().limit = self.next + self.window;
            self.work.wake.notify_all();
            match decoded {
                Decoded::Image(image) => self.pending.push((sample, Some(image))),
                Decoded::NotNeeded => self.pending.push((sample, None)),
                Decoded::Failed(reason) => self.shared.record_skip(sample, reason),
                Decoded::AlreadySkipped => {}
            }
        }
        if self.next == self.order.len() {
            self.finish();
        }
        if !self.pending.is_empty() {
            return Some(Ok(self.take_batch()));
        }
        if self.delivered == 0 {
            return Some(Err(Error::Io {
                path: self.shared.folder.root().display().to_string(),
                reason: format!(
                    "none of its {} images could be loaded (each was reported as skipped)",
                    self.order.len()
                ),
            }));
        }
        None
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.finish();
    }
}
