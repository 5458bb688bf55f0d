//! The validation split taken from one folder (`data::split`), its record in
//! the run directory (`train::split_record`) and the leak check between
//! splits (`data::duplicates`, through `train::splits`). No GPU: files only
//! need an image extension to be listed, so their bytes are short texts.

use incept::data::ImageFolder;
use incept::data::split::stratified_split;
use incept::train::TrainConfig;
use incept::train::split_record::{SPLIT_JSON, SplitRecord};
use incept::train::splits::Splits;
use std::fs;
use std::path::{Path, PathBuf};

/// `root/<class>/<i>.png` for each (class, count); every file's bytes differ.
fn make_tree(root: &Path, classes: &[(&str, usize)]) {
    for (class, n) in classes {
        fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..*n {
            fs::write(root.join(class).join(format!("{i:03}.png")), format!("{} {class} {i}", root.display())).unwrap();
        }
    }
}

fn config(data: &Path, classes: &[&str], validation_split: Option<f64>, seed: u64) -> TrainConfig {
    TrainConfig {
        data: data.to_path_buf(),
        backbone: incept::models::Backbone::InceptionV3,
        weights: None,
        image_size: 75,
        batch: 2,
        epochs: 1,
        unfreeze_last: 15,
        head: vec![4],
        dropout: 0.3,
        lr: 1e-3,
        augment: false,
        shear_degrees: 0.2,
        zoom: 0.2,
        horizontal_flip: true,
        preprocess: incept::data::Preprocess::Rescale,
        seed,
        feature_cache: true,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        validation_split,
        callbacks: Default::default(),
        class_weight: None,
        bn_inference: false,
        init: None,
        head_epochs: 0,
        fine_tune_lr: None,
        precision: Default::default(),
        dicom: Default::default(),
    }
}

fn names(folder: &ImageFolder) -> Vec<PathBuf> {
    folder.samples().iter().map(|(p, _)| p.strip_prefix(folder.root()).unwrap().to_path_buf()).collect()
}

fn err<T>(r: incept::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_split_is_stratified_like_sklearn_and_seeded() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("a", 10), ("b", 20), ("c", 30)]);
    let folder = ImageFolder::open(dir.path()).unwrap();
    let s = stratified_split(&folder, 0.25, 7).unwrap();
    // sklearn: n_valid = ceil(0.25 · 60) = 15; n_train = 45 shared 7.5 / 15 / 22.5 → one of the
    // tied classes a and c gets the 45th image.
    assert_eq!((s.train.len(), s.valid.len()), (45, 15));
    let mut all: Vec<usize> = s.train.iter().chain(&s.valid).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..60).collect::<Vec<_>>(), "each image on exactly one side");
    let per_class = |idx: &[usize]| {
        let mut n = [0; 3];
        idx.iter().for_each(|&i| n[folder.samples()[i].1] += 1);
        n
    };
    let v = per_class(&s.valid);
    assert!(v == [2, 5, 8] || v == [3, 5, 7], "{v:?}");
    // Same seed, same split; other seeds pick other files.
    assert_eq!(stratified_split(&folder, 0.25, 7).unwrap(), s);
    let others = (8..12).filter(|&seed| stratified_split(&folder, 0.25, seed).unwrap() != s).count();
    assert_eq!(others, 4);
    // Sides are in listing order, so the loader sees them as a folder's samples.
    assert!(s.valid.windows(2).all(|w| w[0] < w[1]) && s.train.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_split_that_leaves_a_class_without_images_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("big", 20), ("tiny", 1)]);
    let folder = ImageFolder::open(dir.path()).unwrap();
    let e = err(stratified_split(&folder, 0.2, 0));
    assert!(e.contains("--validation-split 0.2") && e.contains("\"tiny\""), "{e}");
    // Two tiny images at 0.3: ceil(0.3 · 22) = 7 validate, n_train 15 shared 13.64 / 1.36: floors 13 + 1,
    // the 15th to big (larger remainder): tiny trains 1 and validates 1.
    make_tree(dir.path(), &[("tiny", 2)]);
    let folder = ImageFolder::open(dir.path()).unwrap();
    let s = stratified_split(&folder, 0.3, 0).unwrap();
    assert_eq!((s.train.len(), s.valid.len()), (15, 7));
    assert_eq!(s.valid.iter().filter(|&&i| folder.samples()[i].1 == 1).count(), 1);
    // At 0.1 the tiny class would keep both images for training (1.73 rounds up): refused.
    assert!(err(stratified_split(&folder, 0.1, 0)).contains("\"tiny\""));
    // Nearly everything held out leaves no class a training image.
    let e = err(stratified_split(&folder, 0.99, 0));
    assert!(e.contains("at least one image on each side"), "{e}");
    for bad in [0.0, 1.0, 1.5, -0.2, f64::NAN] {
        assert!(err(stratified_split(&folder, bad, 0)).contains("--validation-split"), "{bad}");
    }
}

#[test]
fn a_recorded_split_is_reused_and_refused_when_a_file_is_gone_or_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    make_tree(&data.join("train"), &[("a", 6), ("b", 6)]);
    fs::create_dir_all(&run).unwrap();
    let cfg = config(&data, &["a", "b"], Some(0.5), 3);
    let (splits, record) = Splits::for_new_run(&cfg).unwrap();
    let record = record.expect("a split run records its split");
    assert_eq!((splits.train.len(), splits.valid.len()), (6, 6));
    record.save(&run).unwrap();
    assert_eq!(SplitRecord::load(&run).unwrap(), record);
    let json = fs::read_to_string(run.join(SPLIT_JSON)).unwrap();
    assert!(json.contains("\"a/00"), "paths are relative to train/: {json}");

    // Reopened from the record: the same files on each side.
    let again = Splits::for_run(&cfg, &run).unwrap();
    assert_eq!(names(&again.valid), names(&splits.valid));
    assert_eq!(names(&again.train), names(&splits.train));
    // A new image in train/ is not used (the split is the recorded one).
    make_tree(&data.join("train"), &[("a", 7)]);
    assert_eq!(names(&Splits::for_run(&cfg, &run).unwrap().train), names(&splits.train));
    // Another seed in run.json than the record's.
    assert!(err(Splits::for_run(&config(&data, &["a", "b"], Some(0.5), 4), &run)).contains("--seed 3"));

    let victim = splits.valid.samples()[0].0.clone();
    fs::write(&victim, b"other bytes").unwrap();
    let e = err(Splits::for_run(&cfg, &run));
    assert!(e.contains(SPLIT_JSON) && e.contains(&victim.display().to_string()) && e.contains("changed"), "{e}");
    fs::remove_file(&victim).unwrap();
    let e = err(Splits::for_run(&cfg, &run));
    assert!(e.contains(&victim.display().to_string()) && e.contains("gone"), "{e}");
    fs::remove_file(run.join(SPLIT_JSON)).unwrap();
    assert!(err(Splits::for_run(&cfg, &run)).contains(SPLIT_JSON));
}

#[test]
fn the_same_bytes_in_two_splits_are_refused_naming_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    make_tree(&data.join("train"), &[("a", 3), ("b", 3)]);
    make_tree(&data.join("valid"), &[("a", 1), ("b", 1)]);
    make_tree(&data.join("test"), &[("a", 2), ("b", 2)]);
    let cfg = config(data, &["a", "b"], None, 0);
    assert!(Splits::for_new_run(&cfg).unwrap().1.is_none());
    // A test image that is a training image under another name: the classic silent leak.
    let (train_file, test_file) = (data.join("train/b/002.png"), data.join("test/a/001.png"));
    fs::copy(&train_file, &test_file).unwrap();
    let e = err(Splits::for_new_run(&cfg));
    assert!(e.contains(&train_file.display().to_string()) && e.contains(&test_file.display().to_string()), "{e}");
    fs::write(&test_file, b"unique").unwrap();
    // Between train and valid.
    fs::copy(data.join("train/a/000.png"), data.join("valid/b/000.png")).unwrap();
    assert!(err(Splits::for_new_run(&cfg)).contains("validation"));
    fs::write(data.join("valid/b/000.png"), b"unique too").unwrap();
    // Duplicates within one split are not a leak.
    fs::copy(data.join("train/a/000.png"), data.join("train/a/009.png")).unwrap();
    Splits::for_new_run(&cfg).unwrap();
    // Both a valid/ folder and --validation-split; or neither.
    assert!(err(Splits::for_new_run(&config(data, &["a", "b"], Some(0.2), 0))).contains("valid"));
    fs::remove_dir_all(data.join("valid")).unwrap();
    assert!(err(Splits::for_new_run(&cfg)).contains("--validation-split"));
    // Within a --validation-split run: the copy lands on either side, or both (then refused).
    let split = config(data, &["a", "b"], Some(0.5), 0);
    for seed in 0..8 {
        let cfg = TrainConfig { seed, ..split.clone() };
        match Splits::for_new_run(&cfg) {
            Ok((s, _)) => {
                let side = |f: &ImageFolder| f.samples().iter().filter(|(p, _)| p.ends_with("a/000.png") || p.ends_with("a/009.png")).count();
                assert!(side(&s.train) == 2 || side(&s.valid) == 2, "a duplicate pair was split without an error");
            }
            Err(e) => assert!(e.to_string().contains("a/000.png") && e.to_string().contains("a/009.png"), "{e}"),
        }
    }
}
