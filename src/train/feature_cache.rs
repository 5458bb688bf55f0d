//! Feature cache: the frozen prefix's boundary tensors, kept per image, so
//! that images which are not augmented (validation always, training with
//! `--no-augment`) run only the trainable tail after their first pass.
//!
//! Keys. The cache as a whole belongs to one [`CacheKey`] (image size,
//! preprocessing, hash of the frozen weights); [`FeatureCache::rekey`] with
//! another key empties it, so a different model or input never reuses
//! entries. Each entry belongs to one image: its index in the split plus the
//! file's size and modification time when it was stored; an image whose file
//! changed since is a miss again ([`FeatureCache::cached`] checks).
//!
//! Storage. The per-image slice of every boundary layer is stored at the
//! image's slot. When the whole split fits the device budget, each boundary
//! layer has one device tensor [capacity, h, w, c] that is filled and gathered
//! with buffer copies (no kernel, no readback); otherwise the slices live in
//! host memory (misses are read back once, hits uploaded with the batch), for
//! as many images as fit the host budget — the rest are recomputed each time.
//!
//! Exactness. A gathered boundary holds the very values the prefix computed
//! for those images, so the results equal an uncached run bit for bit where
//! the prefix computes every image independently of the rest of its batch
//! (lavapipe's kernels do; the model's batch chunking relies on the same).

use super::classifier::Classifier;
use crate::autograd::Var;
use crate::data::{Batch, Epoch, Loader, Preprocess};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::Base;
use crate::models::Boundary;
use crate::tensor::{DType, Tensor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// What every entry of a cache was computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub image_size: usize,
    pub preprocess: Preprocess,
    /// Hash of the weights the frozen prefix reads (see `Classifier::frozen_weights_hash`).
    pub weights_hash: u64,
}

/// Memory a cache may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Device bytes for the whole split; over it, the cache lives on the host.
    pub device_bytes: u64,
    /// Host bytes; images beyond it are not cached.
    pub host_bytes: u64,
}

/// Device budget when the adapter allows it: 1 GiB per cache (a split of 2,000
/// images at 299², where the boundary of the last-15 split is about 0.5 MB per
/// image), at most half the adapter's largest buffer.
const DEVICE_BYTES: u64 = 1 << 30;
/// Host budget: 4 GiB per cache.
const HOST_BYTES: u64 = 4 << 30;

impl Budget {
    /// The default budget on `gpu`: see [`DEVICE_BYTES`] and [`HOST_BYTES`].
    pub fn for_gpu(gpu: &Gpu) -> Budget {
        Budget { device_bytes: DEVICE_BYTES.min(gpu.limits().max_buffer_size / 2), host_bytes: HOST_BYTES }
    }
}

/// Counts since the cache was made (or rekeyed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Images whose boundary was gathered from the cache.
    pub hits: u64,
    /// Images whose boundary was computed.
    pub misses: u64,
    /// Images with an entry now.
    pub entries: usize,
    /// Whether the entries live on the device (`None` before the first store).
    pub on_device: Option<bool>,
}

/// Size and modification time of an image file when its entry was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    bytes: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp { bytes: meta.len(), modified: meta.modified().ok() })
}

/// Where the per-image slices live: per boundary layer, `capacity` slots.
enum Store {
    /// One [capacity, h, w, c] tensor per layer.
    Device(Vec<Tensor>),
    /// capacity × (h·w·c) values per layer.
    Host(Vec<Vec<f32>>),
}

/// The boundary's layers and per-image shapes, learnt from the first boundary stored.
struct Layout {
    /// (creation index, [h, w, c]) per boundary layer.
    layers: Vec<(usize, [usize; 3])>,
    store: Store,
    capacity: usize,
}

impl Layout {
    fn per_image(&self, k: usize) -> usize {
        self.layers[k].1.iter().product()
    }
}

/// Boundary tensors of one split's images; see the module comment.
pub struct FeatureCache {
    gpu: Gpu,
    key: CacheKey,
    /// The split's files, by sample index.
    files: Vec<PathBuf>,
    budget: Budget,
    layout: Option<Layout>,
    /// Per sample: (slot, file stamp when stored).
    entries: Vec<Option<(usize, FileStamp)>>,
    /// Slots freed by dropped entries.
    free: Vec<usize>,
    /// Slots below this have been handed out.
    next_slot: usize,
    hits: u64,
    misses: u64,
}

impl FeatureCache {
    /// An empty cache for the split whose sample `i` is `files[i]`.
    pub fn new(gpu: &Gpu, key: CacheKey, files: Vec<PathBuf>, budget: Budget) -> FeatureCache {
        let n = files.len();
        FeatureCache { gpu: gpu.clone(), key, files, budget, layout: None, entries: vec![None; n], free: Vec::new(), next_slot: 0, hits: 0, misses: 0 }
    }

    pub fn key(&self) -> CacheKey {
        self.key
    }

    /// Uses `key` from now on; a key other than the current one empties the cache.
    pub fn rekey(&mut self, key: CacheKey) {
        if key != self.key {
            self.key = key;
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.layout = None;
        self.entries.iter_mut().for_each(|e| *e = None);
        self.free.clear();
        self.next_slot = 0;
        self.hits = 0;
        self.misses = 0;
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            entries: self.entries.iter().filter(|e| e.is_some()).count(),
            on_device: self.layout.as_ref().map(|l| matches!(l.store, Store::Device(_))),
        }
    }

    /// Per sample, whether its boundary is cached and its file unchanged since
    /// (one `stat` per entry). Entries of changed files are dropped; their
    /// slots are reused.
    pub fn cached(&mut self) -> Vec<bool> {
        let mut out = vec![false; self.entries.len()];
        for (sample, entry) in self.entries.iter_mut().enumerate() {
            if let Some((slot, stored)) = *entry {
                if stamp(&self.files[sample]) == Some(stored) {
                    out[sample] = true;
                } else {
                    *entry = None;
                    self.free.push(slot);
                }
            }
        }
        out
    }

    /// The boundary of a batch whose position `i` is sample `samples[i]`.
    /// Positions with `decoded[i]` are computed from `images` (their pixels,
    /// in batch order) and stored; the others are gathered from the cache and
    /// must have an entry (see [`cached`](Self::cached)). Returns the boundary
    /// and the number of positions gathered.
    pub fn boundary(&mut self, model: &Base, samples: &[usize], decoded: &[bool], images: Option<&Tensor>) -> Result<(Boundary, usize)> {
        if samples.len() != decoded.len() || samples.is_empty() {
            return Err(Error::Invalid(format!("feature cache: {} samples with {} decoded flags", samples.len(), decoded.len())));
        }
        if let Some(&bad) = samples.iter().find(|&&s| s >= self.entries.len()) {
            return Err(Error::Invalid(format!("feature cache: sample {bad} of a split of {}", self.entries.len())));
        }
        let misses = decoded.iter().filter(|&&d| d).count();
        let computed = match (misses, images) {
            (0, _) => None,
            (_, Some(x)) if x.dims4()?[0] == misses => Some(model.frozen_boundary(x)?),
            _ => {
                return Err(Error::Shape(format!(
                    "feature cache: {misses} decoded images expected, got {:?}",
                    images.map(|x| x.shape().to_vec())
                )));
            }
        };
        if let Some(b) = &computed {
            self.ensure_layout(b)?;
        }
        let hits = samples.len() - misses;
        let out = match computed {
            // Nothing to gather: the computed boundary is the batch's own.
            Some(b) if hits == 0 => b,
            computed => self.assemble(samples, decoded, computed.as_ref())?,
        };
        // Store the misses from the assembled boundary (rows in batch order).
        self.store(samples, decoded, &out)?;
        self.hits += hits as u64;
        self.misses += misses as u64;
        Ok((out, hits))
    }

    /// Learns the layout from the first boundary (and chooses device or host
    /// storage); later boundaries must match it.
    fn ensure_layout(&mut self, b: &Boundary) -> Result<()> {
        let layers: Vec<(usize, [usize; 3])> = b
            .tensors
            .iter()
            .map(|(l, t)| t.dims4().map(|[_, h, w, c]| (*l, [h, w, c])))
            .collect::<Result<_>>()?;
        if let Some(layout) = &self.layout {
            if layout.layers != layers {
                return Err(Error::Invalid(format!(
                    "feature cache: boundary layers {layers:?} differ from the cached {:?} (a different model or image size needs a new key)",
                    layout.layers
                )));
            }
            return Ok(());
        }
        let per_image: u64 = layers.iter().map(|(_, s)| s.iter().product::<usize>() as u64 * 4).sum();
        let n = self.files.len();
        let largest = layers.iter().map(|(_, s)| s.iter().product::<usize>() as u64 * 4 * n as u64).max().unwrap_or(0);
        let fits_device = per_image * n as u64 <= self.budget.device_bytes && largest <= self.gpu.limits().max_buffer_size;
        let (store, capacity) = if fits_device {
            let tensors = layers.iter().map(|(_, [h, w, c])| Tensor::empty(&self.gpu, &[n, *h, *w, *c], DType::F32)).collect::<Result<_>>()?;
            (Store::Device(tensors), n)
        } else {
            let capacity = n.min((self.budget.host_bytes / per_image.max(1)) as usize);
            (Store::Host(layers.iter().map(|(_, s)| vec![0.0; capacity * s.iter().product::<usize>()]).collect()), capacity)
        };
        self.layout = Some(Layout { layers, store, capacity });
        Ok(())
    }

    /// The batch's boundary from cached slices (hits) and `computed` rows (misses, in order).
    fn assemble(&self, samples: &[usize], decoded: &[bool], computed: Option<&Boundary>) -> Result<Boundary> {
        let layout = self.layout.as_ref().ok_or_else(|| Error::Invalid("feature cache: a hit before anything was stored".into()))?;
        let n = samples.len();
        let slot_of = |sample: usize| {
            self.entries[sample].map(|(slot, _)| slot).ok_or_else(|| {
                Error::Invalid(format!("feature cache: {} is not cached but was not decoded", self.files[sample].display()))
            })
        };
        let mut tensors = Vec::with_capacity(layout.layers.len());
        for (k, &(layer, [h, w, c])) in layout.layers.iter().enumerate() {
            let per = layout.per_image(k);
            let bytes = per as u64 * 4;
            let out = match &layout.store {
                Store::Device(stored) => {
                    let out = Tensor::empty(&self.gpu, &[n, h, w, c], DType::F32)?;
                    for (i, (&sample, &fresh)) in samples.iter().zip(decoded).enumerate() {
                        if !fresh {
                            self.gpu.copy(stored[k].buffer(), slot_of(sample)? as u64 * bytes, out.buffer(), i as u64 * bytes, bytes);
                        }
                    }
                    out
                }
                Store::Host(stored) => {
                    let mut host = vec![0.0; n * per];
                    for (i, (&sample, &fresh)) in samples.iter().zip(decoded).enumerate() {
                        if !fresh {
                            let slot = slot_of(sample)?;
                            host[i * per..(i + 1) * per].copy_from_slice(&stored[k][slot * per..(slot + 1) * per]);
                        }
                    }
                    Tensor::from_slice(&self.gpu, &[n, h, w, c], &host)?
                }
            };
            if let Some(b) = computed {
                let src = &b.tensors[k].1;
                for (j, i) in (0..n).filter(|&i| decoded[i]).enumerate() {
                    self.gpu.copy(src.buffer(), j as u64 * bytes, out.buffer(), i as u64 * bytes, bytes);
                }
            }
            tensors.push((layer, out));
        }
        let s = self.key.image_size;
        Ok(Boundary { input_shape: [n, s, s, 3], tensors })
    }

    /// Stores the rows of `b` at the decoded positions, while slots remain.
    fn store(&mut self, samples: &[usize], decoded: &[bool], b: &Boundary) -> Result<()> {
        let Some(layout) = self.layout.as_mut() else { return Ok(()) };
        let mut placed = Vec::new();
        for (i, (&sample, &fresh)) in samples.iter().zip(decoded).enumerate() {
            if !fresh || self.entries[sample].is_some() {
                continue;
            }
            let Some(stamp) = stamp(&self.files[sample]) else { continue };
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None if self.next_slot < layout.capacity => {
                    self.next_slot += 1;
                    self.next_slot - 1
                }
                // The host budget is spent: this image is recomputed each time.
                None => continue,
            };
            self.entries[sample] = Some((slot, stamp));
            placed.push((i, slot));
        }
        if placed.is_empty() {
            return Ok(());
        }
        let per: Vec<usize> = (0..layout.layers.len()).map(|k| layout.per_image(k)).collect();
        match &mut layout.store {
            Store::Device(stored) => {
                for (k, (_, t)) in b.tensors.iter().enumerate() {
                    let bytes = per[k] as u64 * 4;
                    for &(i, slot) in &placed {
                        self.gpu.copy(t.buffer(), i as u64 * bytes, stored[k].buffer(), slot as u64 * bytes, bytes);
                    }
                }
            }
            Store::Host(stored) => {
                for (k, (_, t)) in b.tensors.iter().enumerate() {
                    let values = t.to_vec()?;
                    let p = per[k];
                    for &(i, slot) in &placed {
                        stored[k][slot * p..(slot + 1) * p].copy_from_slice(&values[i * p..(i + 1) * p]);
                    }
                }
            }
        }
        Ok(())
    }
}

/// An empty cache for `loader`'s split with the default [`Budget`].
pub fn for_split(gpu: &Gpu, key: CacheKey, loader: &Loader) -> FeatureCache {
    let files = loader.folder().samples().iter().map(|(path, _)| path.clone()).collect();
    FeatureCache::new(gpu, key, files, Budget::for_gpu(gpu))
}

/// Epoch `epoch` of `loader`, leaving the images `cache` holds undecoded.
pub fn epoch(loader: &Loader, epoch: usize, cache: Option<&mut FeatureCache>) -> Epoch {
    match cache {
        Some(c) => loader.epoch_without_pixels(epoch, Arc::new(c.cached())),
        None => loader.epoch(epoch),
    }
}

/// A batch's logits and how many of its images came from the cache: through
/// `cache` when given, else the whole network from the batch's pixels.
pub fn logits(model: &Classifier, cache: Option<&mut FeatureCache>, batch: &Batch, training: bool, seed: u64) -> Result<(Var, usize)> {
    let images = match batch.decoded_len() {
        0 => None,
        _ => Some(Tensor::from_slice(model.base.gpu(), &batch.shape(), &batch.images)?),
    };
    match (cache, images) {
        (Some(cache), images) => {
            let (boundary, hits) = cache.boundary(&model.base, &batch.samples, &batch.decoded, images.as_ref())?;
            Ok((model.logits_from_boundary(&boundary, training, seed)?, hits))
        }
        (None, Some(x)) => Ok((model.logits(&x, training, seed)?, 0)),
        (None, None) => Err(Error::Invalid("a batch without pixels needs the feature cache that left them out".into())),
    }
}
