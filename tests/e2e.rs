//! End to end through the `incept` binary: train a few steps on a tiny
//! generated image tree, resume, predict, evaluate, and the bad-input paths.
use crate::binary;

use binary::{CLASSES, incept, make_tree, ok, text, weights};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn train_resume_predict_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 4), ("valid", 2), ("test", 2)]);
    // A corrupt file is skipped with a warning and counted.
    std::fs::write(data.join("train/bee/zz_corrupt.png"), b"not a png").unwrap();
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    let common = ["--image-size", "75", "--batch", "5", "--head", "16", "--seed", "7"];
    let mut args = vec!["train", "--data", data.to_str().unwrap(), "--weights", w.to_str().unwrap(), "--out", run.to_str().unwrap(), "--epochs", "2"];
    args.extend(common);
    let out = ok(incept(&args));
    assert!(out.contains("zz_corrupt.png"), "no warning for the corrupt file:\n{out}");
    assert!(out.contains("skipped unreadable files: 1"), "{out}");
    assert!(out.contains("test accuracy"), "{out}");

    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 3, "header + 2 epochs:\n{history}");
    assert!(history.starts_with("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_second"));
    for png in ["loss.png", "accuracy.png"] {
        let img = image::open(run.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 100 && img.height() > 100);
    }
    for f in ["best.safetensors", "last.safetensors", "run.json", "history.json"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&run).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Resume to 3 epochs: the history keeps its first two rows.
    let before: Vec<String> = history.lines().map(str::to_owned).collect();
    ok(incept(&["train", "--resume", run.to_str().unwrap(), "--epochs", "3"]));
    let after = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let after: Vec<&str> = after.lines().collect();
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(&after[..3], &before.iter().map(String::as_str).collect::<Vec<_>>()[..], "resume rewrote earlier epochs");
    assert!(after[3].starts_with("3,"));

    // Predict a folder into CSV; an unreadable image is skipped with a warning.
    std::fs::write(data.join("test/ant/zz_truncated.png"), &std::fs::read(data.join("test/ant/000.png")).unwrap()[..40]).unwrap();
    let csv = tmp.path().join("pred.csv");
    let out = ok(incept(&["predict", "--model", run.to_str().unwrap(), "--out", csv.to_str().unwrap(), data.join("test").to_str().unwrap()]));
    assert!(out.contains("warning: skipping") && out.contains("zz_truncated.png"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(".png\t")).count(), 6, "{out}");
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "path,predicted,probability_ant,probability_bee,probability_cat");
    assert_eq!(csv.lines().count(), 7);
    for row in csv.lines().skip(1) {
        let p: f64 = row.split(',').skip(2).map(|v| v.parse::<f64>().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-4, "probabilities do not sum to 1: {row}");
    }

    // Evaluate: report text and confusion-matrix image.
    let out = ok(incept(&["evaluate", "--model", run.to_str().unwrap(), "--data", data.join("test").to_str().unwrap()]));
    assert!(out.contains("accuracy") && CLASSES.iter().all(|c| out.contains(c)), "{out}");
    assert!(image::open(run.join("confusion_matrix.png")).is_ok());
}

#[test]
fn bad_inputs_fail_clearly_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    let w = weights(tmp.path());
    let train = |data: &Path, out: &Path| {
        incept(&["train", "--data", data.to_str().unwrap(), "--weights", w.to_str().unwrap(), "--out", out.to_str().unwrap(), "--image-size", "75", "--epochs", "1"])
    };

    // An empty class folder is an error naming it.
    std::fs::create_dir_all(data.join("valid/dog")).unwrap();
    let o = train(&data, &tmp.path().join("r1"));
    assert!(!o.status.success() && text(&o).contains("dog"), "{}", text(&o));
    std::fs::remove_dir(data.join("valid/dog")).unwrap();

    // An output directory that cannot be created fails before training.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let o = train(&data, &blocker.join("run"));
    assert!(!o.status.success() && text(&o).contains("run directory"), "{}", text(&o));
    assert!(!text(&o).contains("epoch 1/1"), "training started:\n{}", text(&o));

    // Missing weights name the file.
    let o = incept(&["train", "--data", data.to_str().unwrap(), "--weights", "/nonexistent.safetensors", "--out", tmp.path().join("r2").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("/nonexistent.safetensors"), "{}", text(&o));

    // Evaluating on a split with other classes is an error.
    let run = tmp.path().join("r3");
    assert!(train(&data, &run).status.success());
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("zebra")).unwrap();
    image::RgbImage::new(8, 8).save(other.join("zebra/a.png")).unwrap();
    let o = incept(&["evaluate", "--model", run.to_str().unwrap(), "--data", other.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("zebra"), "{}", text(&o));
}

#[test]
fn features_of_images_match_the_model_and_name_the_files() {
    use incept::models::{Backbone, Base};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("x", 1)]);
    let w = weights(tmp.path());
    let imgs: Vec<PathBuf> = CLASSES.iter().map(|c| data.join("x").join(c).join("000.png")).collect();
    let out = tmp.path().join("f.safetensors");
    let mut args = vec!["features", "--weights", w.to_str().unwrap(), "--image-size", "75", "--batch", "2", "--out", out.to_str().unwrap()];
    args.extend(imgs.iter().map(|p| p.to_str().unwrap()));
    ok(incept(&args));
    let f = incept::io::read_safetensors(&out).unwrap();
    let features = &f["features"];
    assert_eq!(features.shape, [3, 2048]);
    let meta = incept::io::safetensors_io::read_metadata(&out).unwrap();
    assert!(meta["images"].contains("cat/000.png") && meta["preprocess"] == "rescale", "{meta:?}");

    // The same numbers as the library's own forward pass on the same pixels.
    let gpu = incept::Gpu::shared().unwrap();
    let model = Base::from_tensor_map(&gpu, Backbone::InceptionV3, &incept::io::read_safetensors(&w).unwrap(), 0).unwrap();
    let mut pixels = Vec::new();
    for p in &imgs {
        pixels.extend(incept::data::load_image(p, 75, incept::data::Preprocess::Rescale).unwrap());
    }
    let x = incept::Tensor::from_slice(&gpu, &[3, 75, 75, 3], &pixels).unwrap();
    let y = incept::ops::pool::global_avg_pool(&model.infer_layers(&x, &["mixed10"]).unwrap()[0]).unwrap();
    let err = incept::reference::rel_l2(&features.data, &incept::reference::to_f64(&y.to_vec().unwrap()));
    assert!(err < 1e-6, "features differ from the model's forward: {err:e}");
}

#[test]
fn ctrl_c_stops_between_batches_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 6), ("valid", 1)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_incept"))
        .args(["train", "--data", data.to_str().unwrap(), "--weights", w.to_str().unwrap(), "--out", run.to_str().unwrap()])
        .args(["--image-size", "75", "--batch", "2", "--epochs", "50", "--head", "8"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first complete epoch, then interrupt during a later one.
    let last = run.join("last.safetensors");
    let started = std::time::Instant::now();
    while !last.exists() {
        assert!(started.elapsed().as_secs() < 300, "no checkpoint after 300 s");
        assert!(child.try_wait().unwrap().is_none(), "training ended early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let text = text(&out);
    assert!(!out.status.success(), "an interrupted run must not report success:\n{text}");
    assert!(text.contains("interrupted"), "{text}");
    // The checkpoint on disk is complete and loads; no temporary file is left.
    let state = incept::train::checkpoint::load(&last).unwrap().state;
    assert!(state.epoch >= 1 && state.epoch < 50, "{state:?}");
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), state.epoch + 1, "history and checkpoint disagree:\n{history}");
    assert!(std::fs::read_dir(&run).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp")));
}
