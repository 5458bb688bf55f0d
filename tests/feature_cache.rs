//! The feature cache: hits and misses, gather order, the host fallback, keys
//! and invalidation (library level), and training histories with the cache on
//! and off (through the `incept` binary).
use crate::common;
use common::*;
use incept::data::Preprocess;
use incept::io::{StorageDtype, write_safetensors};
use incept::models::{Backbone, Base};
use incept::models::Boundary;
use incept::reference::random;
use incept::train::feature_cache::{Budget, CacheKey, FeatureCache};
use incept::{Gpu, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const S: usize = 75;

/// `n` random images of the split, one per sample, seeded by the sample index.
fn pixels(samples: &[usize]) -> Vec<f32> {
    samples.iter().flat_map(|&i| random(S * S * 3, 100 + i as u64, 0.0, 1.0)).collect()
}

fn images(gpu: &Gpu, samples: &[usize]) -> Tensor {
    Tensor::from_slice(gpu, &[samples.len(), S, S, 3], &pixels(samples)).unwrap()
}

fn values(b: &Boundary) -> Vec<(usize, Vec<usize>, Vec<f32>)> {
    b.tensors.iter().map(|(l, t)| (*l, t.shape().to_vec(), t.to_vec().unwrap())).collect()
}

/// Files standing for the split's images (the cache reads only their size and time).
fn files(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("{i}.png"));
            std::fs::write(&p, vec![i as u8; 10 + i]).unwrap();
            p
        })
        .collect()
}

fn key(hash: u64) -> CacheKey {
    CacheKey { image_size: S, preprocess: Preprocess::Rescale, weights_hash: hash }
}

const ROOMY: Budget = Budget { device_bytes: 1 << 30, host_bytes: 1 << 30 };

/// Stores samples 0, 1, 2, then gathers [2, 0] around a freshly computed 3:
/// the result must equal the prefix computed on [2, 0, 3] directly.
fn check_gather(budget: Budget, on_device: bool) {
    let gpu = gpu();
    let model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(5), 15).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = FeatureCache::new(&gpu, key(1), files(tmp.path(), 5), budget);
    assert_eq!(cache.cached(), [false; 5]);

    let (first, hits) = cache.boundary(&model, &[0, 1, 2], &[true; 3], Some(&images(&gpu, &[0, 1, 2]))).unwrap();
    assert_eq!(hits, 0);
    assert_eq!(values(&first), values(&model.frozen_boundary(&images(&gpu, &[0, 1, 2])).unwrap()));
    assert_eq!(cache.cached(), [true, true, true, false, false]);

    let (mixed, hits) = cache.boundary(&model, &[2, 0, 3], &[false, false, true], Some(&images(&gpu, &[3]))).unwrap();
    assert_eq!(hits, 2);
    assert_eq!(mixed.input_shape, [3, S, S, 3]);
    assert_eq!(values(&mixed), values(&model.frozen_boundary(&images(&gpu, &[2, 0, 3])).unwrap()), "gathered boundary");

    // All hits, no pixels at all.
    let (gathered, hits) = cache.boundary(&model, &[3, 1], &[false, false], None).unwrap();
    assert_eq!(hits, 2);
    assert_eq!(values(&gathered), values(&model.frozen_boundary(&images(&gpu, &[3, 1])).unwrap()), "all-hit boundary");

    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries, stats.on_device), (4, 4, 4, Some(on_device)));

    // A sample that is neither cached nor decoded is an error naming its file.
    let err = cache.boundary(&model, &[4], &[false], None).unwrap_err().to_string();
    assert!(err.contains("4.png"), "{err}");
}

#[test]
fn gathers_hits_in_batch_order_on_the_device() {
    check_gather(ROOMY, true);
}

#[test]
fn falls_back_to_the_host_over_the_device_budget() {
    check_gather(Budget { device_bytes: 0, host_bytes: 1 << 30 }, false);
}

#[test]
fn caches_only_what_the_host_budget_holds() {
    let gpu = gpu();
    let model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(5), 15).unwrap();
    let per_image: u64 =
        model.frozen_boundary(&images(&gpu, &[0])).unwrap().tensors.iter().map(|(_, t)| t.byte_size()).sum();
    let tmp = tempfile::tempdir().unwrap();
    let mut cache = FeatureCache::new(&gpu, key(1), files(tmp.path(), 4), Budget { device_bytes: 0, host_bytes: 2 * per_image });
    let (b, _) = cache.boundary(&model, &[0, 1, 2], &[true; 3], Some(&images(&gpu, &[0, 1, 2]))).unwrap();
    assert_eq!(values(&b), values(&model.frozen_boundary(&images(&gpu, &[0, 1, 2])).unwrap()));
    assert_eq!(cache.cached(), [true, true, false, false], "room for two images");
    assert_eq!(cache.stats().entries, 2);
}

#[test]
fn a_new_key_or_a_changed_file_invalidates() {
    let gpu = gpu();
    let model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(5), 15).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let paths = files(tmp.path(), 3);
    let mut cache = FeatureCache::new(&gpu, key(1), paths.clone(), ROOMY);
    cache.boundary(&model, &[0, 1, 2], &[true; 3], Some(&images(&gpu, &[0, 1, 2]))).unwrap();
    assert_eq!(cache.cached(), [true; 3]);

    // The same key keeps the entries.
    cache.rekey(key(1));
    assert_eq!(cache.cached(), [true; 3]);

    // A changed file (other size) is a miss again; its slot is reused.
    std::fs::write(&paths[1], b"a different image").unwrap();
    assert_eq!(cache.cached(), [true, false, true]);
    let (b, hits) = cache.boundary(&model, &[1, 2], &[true, false], Some(&images(&gpu, &[1]))).unwrap();
    assert_eq!(hits, 1);
    assert_eq!(values(&b), values(&model.frozen_boundary(&images(&gpu, &[1, 2])).unwrap()));
    assert_eq!(cache.cached(), [true; 3]);
    assert_eq!(cache.stats().entries, 3);

    // Other weights, image size or preprocessing empty the cache.
    for other in [key(2), CacheKey { preprocess: Preprocess::Inception, ..key(1) }, CacheKey { image_size: 99, ..key(1) }] {
        cache.rekey(key(1));
        cache.boundary(&model, &[0], &[true], Some(&images(&gpu, &[0]))).unwrap();
        assert!(cache.cached()[0]);
        cache.rekey(other);
        assert_eq!(cache.cached(), [false; 3], "{other:?}");
        assert_eq!(cache.stats().entries, 0);
    }
}

#[test]
fn frozen_weights_hash_tells_models_apart_but_not_training_steps() {
    use incept::train::Classifier;
    use incept::train::head::Head;
    let gpu = gpu();
    let classifier = |weights: u64, unfreeze: usize| Classifier {
        base: Base::from_tensor_map(&gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(weights), unfreeze).unwrap(),
        head: Head::new(&gpu, 2048, &[8], 2, 0.0, 1).unwrap(),
        bn_inference: false,
    };
    let a = classifier(1, 15);
    let hash = a.frozen_weights_hash().unwrap();
    assert_eq!(hash, classifier(1, 15).frozen_weights_hash().unwrap());
    assert_ne!(hash, classifier(2, 15).frozen_weights_hash().unwrap(), "other weights");
    assert_ne!(hash, classifier(1, 0).frozen_weights_hash().unwrap(), "another frozen split");
    // Changing a trainable weight (as a training step does) keeps the key.
    let (_, beta) = a.base.trainable_params().into_iter().next().unwrap();
    let bumped: Vec<f32> = beta.value().to_vec().unwrap().iter().map(|v| v + 0.5).collect();
    beta.value().write(&bumped).unwrap();
    assert_eq!(hash, a.frozen_weights_hash().unwrap());
}

// ---- Through the binary: histories with the cache on and off.

fn incept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_incept")).args(args).output().expect("running incept")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Two classes of 40×30 PNGs that differ in colour and texture.
fn make_tree(root: &Path, per_split: &[(&str, usize)]) {
    for (s, (split, n)) in per_split.iter().enumerate() {
        for (c, class) in ["ant", "bee"].iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..*n {
                let img = image::RgbImage::from_fn(40, 30, |x, y| {
                    // Each split's images differ from every other split's (no leak between them).
                    let j = ((x * (5 + c as u32) + y * 3 + i as u32 * 11 + s as u32 * 7) % 50) as u8;
                    image::Rgb([60 + 100 * c as u8 + j, 120 + j, 180 - 100 * c as u8 + j])
                });
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

/// Trains 3 epochs and returns (history rows without the timing columns, output, final weights).
fn train(data: &Path, weights: &Path, run: &Path, extra: &[&str]) -> (Vec<String>, String, incept::io::TensorMap) {
    let mut args = vec!["train", "--data", data.to_str().unwrap(), "--weights", weights.to_str().unwrap(), "--out", run.to_str().unwrap()];
    args.extend(["--epochs", "3", "--image-size", "75", "--batch", "4", "--head", "16", "--dropout", "0.3", "--seed", "11"]);
    args.extend(extra);
    let out = incept(&args);
    assert!(out.status.success(), "incept failed:\n{}", text(&out));
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    // epoch, loss, accuracy, val_loss, val_accuracy, lr (not seconds, images_per_second).
    let rows = history.lines().map(|l| l.split(',').take(6).collect::<Vec<_>>().join(",")).collect();
    let last = incept::train::checkpoint::load(&run.join("last.safetensors")).unwrap().tensors;
    (rows, text(&out), last)
}

#[test]
fn cached_and_uncached_training_give_the_same_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 10 training images (batches of 4, 4, 2), 6 validation images.
    make_tree(&data, &[("train", 5), ("valid", 3)]);
    let weights = tmp.path().join("base.safetensors");
    write_safetensors(&weights, &Backbone::InceptionV3.random_weights(3), StorageDtype::F16, &BTreeMap::new()).unwrap();

    for (augment, train_hits) in [(&[][..], 0), (&["--no-augment"][..], 10)] {
        let run = |name: &str, extra: &[&str]| train(&data, &weights, &tmp.path().join(name), &[augment, extra].concat());
        let (cached, out, cached_weights) = run(&format!("cached{train_hits}"), &[]);
        let (plain, plain_out, plain_weights) = run(&format!("plain{train_hits}"), &["--no-feature-cache"]);
        assert_eq!(cached.len(), 4, "{cached:?}");
        assert_eq!(cached, plain, "histories with and without the cache ({augment:?})");
        assert!(cached_weights == plain_weights, "final weights differ ({augment:?})");
        assert!(out.contains("epoch 1/3") && out.contains("0 train + 0 val images from the feature cache"), "{out}");
        let later = format!("{train_hits} train + 6 val images from the feature cache");
        assert_eq!(out.matches(&later).count(), 2, "epochs 2 and 3 ({augment:?}):\n{out}");
        assert!(plain_out.contains("feature cache off"), "{plain_out}");
    }
}
