//! Issue 9's workflow end to end through the `incept` binary, on an
//! imbalanced class-per-folder set without valid/: `train
//! --validation-split --class-weight balanced --early-stopping 2`, then
//! `evaluate --tta 4` (clinical metrics, JSON and plots) and `explain`
//! (Grad-CAM pictures and maps).
use crate::binary;

use binary::{CLASSES, incept, make_tree, ok, weights, s};
use std::collections::BTreeMap;
use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn imbalanced_set_split_weighted_stopped_evaluated_with_tta_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 10), ("test", 3)]);
    // The rare class: 4 training images of 10.
    let rare = data.join("train").join(CLASSES[2]);
    for i in 4..10 {
        std::fs::remove_file(rare.join(format!("{i:03}.png"))).unwrap();
    }
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    // --min-delta 1e9: no epoch after the first counts as an improvement, so
    // patience 2 must stop the run after epoch 3 of the 4 asked for.
    let out = ok(incept(&[
        "train", "--data", s(&data), "--weights", s(&w), "--out", s(&run), "--epochs", "4", "--image-size", "75", "--batch", "6",
        "--head", "8", "--seed", "3", "--validation-split", "0.25", "--class-weight", "balanced", "--early-stopping", "2",
        "--min-delta", "1e9",
    ]));
    assert!(out.contains("class weights (training loss only)"), "{out}");
    assert!(out.contains("has not improved on epoch 1 for 2 epoch(s); stopped after epoch 3"), "{out}");
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let epochs: Vec<&str> = history.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["1", "2", "3"], "epoch 4 never ran:\n{history}");

    // Balanced weights count the training side of the recorded split: n / (classes · count).
    let split = json(&run.join("split.json"));
    let mut counts = BTreeMap::new();
    for f in split["train"].as_array().unwrap() {
        let class = f["path"].as_str().unwrap().split('/').next().unwrap().to_string();
        *counts.entry(class).or_insert(0usize) += 1;
    }
    let n: usize = counts.values().sum();
    let cfg = json(&run.join("run.json"));
    let saved: Vec<f64> = cfg["class_weight"]["weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (k, class) in CLASSES.iter().enumerate() {
        let want = n as f64 / (CLASSES.len() * counts[*class]) as f64;
        assert!((saved[k] - want).abs() < 1e-12, "class {class}: weight {} but {n} / (3 · {})", saved[k], counts[*class]);
    }
    assert!(saved[2] > saved[0], "the rare class weighs more: {saved:?}");
    assert_eq!(cfg["early_stopping"], 2);

    let out = ok(incept(&["evaluate", "--model", s(&run), "--data", s(&data.join("test")), "--tta", "4"]));
    assert!(out.to_lowercase().contains("balanced accuracy"), "{out}");
    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics["tta"], 4);
    assert_eq!(metrics["images"], 9);
    let per_class = metrics["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 3);
    // Each class's ROC-AUC against the Mann–Whitney count over the per-image
    // probabilities evaluate wrote (positive ranked above negative: 1, tie: ½),
    // and the confusion matrix against the same file's rows.
    let (actual, scores) = evaluation_rows(&run.join("evaluation_predictions.csv"));
    assert_eq!(actual.len(), 9);
    for (k, c) in per_class.iter().enumerate() {
        let auc = c["roc_auc"].as_f64().unwrap();
        let want = mann_whitney_auc(&actual, &scores, k);
        assert!((auc - want).abs() < 1e-9, "class {k}: roc_auc {auc} but the pairs give {want}");
    }
    let mut confusion = vec![vec![0u64; 3]; 3];
    for (a, p) in actual.iter().zip(&scores) {
        let predicted = (0..3).fold(0, |best, c| if p[c] > p[best] { c } else { best });
        confusion[*a][predicted] += 1;
    }
    let written: Vec<Vec<u64>> = metrics["confusion_matrix"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()).collect();
    assert_eq!(written, confusion);
    for png in ["roc.png", "precision_recall.png", "top_losses.png", "confusion_matrix.png"] {
        let (w, h) = image::image_dimensions(run.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(w > 100 && h > 100, "{png}: {w}×{h}");
    }

    let maps = tmp.path().join("gradcam");
    let test_rare = data.join("test").join(CLASSES[2]);
    ok(incept(&["explain", "--model", s(&run), "--out", s(&maps), "--layer", "mixed7", s(&test_rare.join("000.png")), s(&test_rare.join("001.png"))]));
    for stem in ["000", "001"] {
        assert!(maps.join(format!("{stem}.gradcam.png")).is_file(), "{stem}.gradcam.png");
        let map = incept::io::read_safetensors(&maps.join(format!("{stem}.gradcam.safetensors"))).unwrap();
        // mixed7 at 75²: 3×3; a Grad-CAM map is a ReLU, never negative.
        assert_eq!(map["gradcam"].shape, vec![3, 3]);
        assert!(map["gradcam"].data.iter().all(|&v| v >= 0.0));
    }
}

/// (true class index, probabilities) per row of evaluate's per-image CSV
/// (`path,actual,predicted,probability_<class>…`, classes in `CLASSES` order).
fn evaluation_rows(path: &Path) -> (Vec<usize>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let want: Vec<String> = CLASSES.iter().map(|c| format!("probability_{c}")).collect();
    assert_eq!(header.split(',').skip(3).collect::<Vec<_>>(), want, "{header}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let actual = CLASSES.iter().position(|c| *c == f[1]).unwrap_or_else(|| panic!("{l}"));
            (actual, f[3..].iter().map(|v| v.parse::<f64>().unwrap()).collect())
        })
        .unzip()
}

/// One-vs-rest ROC-AUC of `class` by counting pairs: P(score of a positive > score of a negative), ties ½.
fn mann_whitney_auc(actual: &[usize], scores: &[Vec<f64>], class: usize) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (a, p) in actual.iter().zip(scores) {
        for (b, q) in actual.iter().zip(scores) {
            if *a == class && *b != class {
                pairs += 1.0;
                wins += if p[class] > q[class] { 1.0 } else if p[class] == q[class] { 0.5 } else { 0.0 };
            }
        }
    }
    wins / pairs
}
