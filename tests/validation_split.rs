//! Through the `incept` binary: a dataset without valid/ trained with
//! `--validation-split` and early stopping, the resume of the finished run,
//! `evaluate` on the recorded validation split, and the flags refused
//! before anything is written.
use crate::binary;

use binary::{incept, make_tree, ok, text, weights, s};
use std::path::Path;

#[test]
fn validation_split_with_early_stopping_then_resume_and_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 8), ("test", 2)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    // No AUC can beat the best by 10: the second epoch does not improve and patience 1 stops there.
    let out = ok(incept(&[
        "train", "--data", s(&data), "--weights", s(&w), "--out", s(&run), "--epochs", "4", "--image-size", "75", "--batch", "6",
        "--head", "8", "--seed", "5", "--validation-split", "0.25", "--early-stopping", "1", "--min-delta", "10", "--monitor", "val_auc",
        "--plateau-patience", "0", "--plateau-factor", "0.5",
    ]));
    assert!(out.contains("early stopping: val_auc has not improved on epoch 1 for 1 epoch(s); stopped after epoch 2"), "{out}");
    assert!(out.contains("best: epoch 1 (val_auc"), "{out}");
    assert!(out.contains("test accuracy"), "{out}");

    // The split: 24 images, ceil(0.25 · 24) = 6 validate, 2 of each class.
    let split: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("split.json")).unwrap()).unwrap();
    let valid: Vec<&str> = split["valid"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(valid.len(), 6, "{valid:?}");
    for class in binary::CLASSES {
        assert_eq!(valid.iter().filter(|p| p.starts_with(&format!("{class}/"))).count(), 2, "{valid:?}");
    }
    assert_eq!(split["train"].as_array().unwrap().len(), 18);

    // History: two epochs, each with its AUC.
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{history}");
    for row in &rows {
        let auc: f64 = row.rsplit(',').next().unwrap().parse().unwrap_or_else(|_| panic!("no val_auc in {row}"));
        assert!((0.0..=1.0).contains(&auc), "{row}");
    }
    // The final model is the best epoch's: best.safetensors holds epoch 1.
    let best = incept::train::checkpoint::load(&run.join("best.safetensors")).unwrap();
    assert_eq!((best.state.epoch, best.state.best.best_epoch), (1, Some(1)));
    let last = incept::train::checkpoint::load(&run.join("last.safetensors")).unwrap();
    assert_eq!((last.state.epoch, last.state.best.stopped_epoch), (2, Some(2)));
    // ReduceLROnPlateau on val_auc (mode max, min_delta 1e-4), patience 0, factor 0.5: after epoch 2
    // the rate halves unless epoch 2's AUC beat epoch 1's by more than 1e-4.
    let auc: Vec<f64> = rows.iter().map(|r| r.rsplit(',').next().unwrap().parse().unwrap()).collect();
    let want = if auc[1] > auc[0] + 1e-4 { 1e-3 } else { 5e-4 };
    assert!((last.state.lr - want).abs() < 1e-12, "lr {} after AUCs {auc:?}", last.state.lr);

    // Resuming the finished run trains nothing, even with more epochs.
    let out = ok(incept(&["train", "--resume", s(&run), "--epochs", "6"]));
    assert!(out.contains("early stopping ended this run after epoch 2; it is finished"), "{out}");
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap(), history);
    // A conflicting callback flag on resume is refused.
    let o = incept(&["train", "--resume", s(&run), "--early-stopping", "3"]);
    assert!(!o.status.success() && text(&o).contains("--early-stopping"), "{}", text(&o));

    // evaluate on the run's recorded validation split: its 6 images.
    let out = ok(incept(&["evaluate", "--model", s(&run), "--split", "valid"]));
    assert!(out.contains("accuracy"), "{out}");
    ok(incept(&["evaluate", "--model", s(&run), "--data", s(&data.join("test"))]));
    // A recorded validation file that changed: refused, naming it.
    let victim = data.join("train").join(valid[0]);
    std::fs::write(&victim, b"other bytes").unwrap();
    let o = incept(&["evaluate", "--model", s(&run), "--split", "valid"]);
    assert!(!o.status.success() && text(&o).contains(valid[0]), "{}", text(&o));
}

#[test]
fn bad_split_and_callback_flags_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (with_valid, without) = (tmp.path().join("with_valid"), tmp.path().join("without"));
    make_tree(&with_valid, &[("train", 3), ("valid", 1)]);
    make_tree(&without, &[("train", 1)]);
    let w = weights(tmp.path());
    let fresh = tmp.path().join("fresh");
    let train = |data: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--data", s(data), "--weights", s(&w), "--out", s(&fresh), "--image-size", "75", "--batch", "2"];
        args.extend(extra);
        incept(&args)
    };
    let fails_with = |o: std::process::Output, want: &str| {
        assert!(!o.status.success() && text(&o).contains(want), "expected an error naming {want}:\n{}", text(&o));
        assert!(!fresh.exists(), "a refused run left {fresh:?} behind");
    };
    for bad in ["0", "1", "1.5", "-0.1", "NaN"] {
        fails_with(train(&without, &["--validation-split", bad]), "--validation-split");
    }
    fails_with(train(&with_valid, &["--validation-split", "0.2"]), "valid");
    // One image per class cannot be split.
    fails_with(train(&without, &["--validation-split", "0.5"]), "at least one image on each side");
    fails_with(train(&with_valid, &["--plateau-factor", "1"]), "--plateau-factor");
    fails_with(train(&with_valid, &["--plateau-factor", "NaN"]), "--plateau-factor");
    fails_with(train(&with_valid, &["--min-lr", "-1e-5"]), "--min-lr");
    fails_with(train(&with_valid, &["--early-stopping", "2", "--min-delta", "-1"]), "--min-delta");
    // A test image with a training image's bytes.
    std::fs::create_dir_all(with_valid.join("test/ant")).unwrap();
    std::fs::copy(with_valid.join("train/bee/001.png"), with_valid.join("test/ant/x.png")).unwrap();
    for c in binary::CLASSES.iter().skip(1) {
        std::fs::create_dir_all(with_valid.join("test").join(c)).unwrap();
        std::fs::write(with_valid.join("test").join(c).join("y.png"), format!("only here: {c}")).unwrap();
    }
    let o = train(&with_valid, &[]);
    assert!(!o.status.success() && text(&o).contains("train/bee/001.png") && text(&o).contains("test/ant/x.png"), "{}", text(&o));
    assert!(!fresh.exists());
}
