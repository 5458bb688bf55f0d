//! What `incept evaluate` reports, on hand-computable cases: sensitivity,
//! specificity and balanced accuracy from a confusion matrix, ROC-AUC and
//! average precision on scikit-learn's documented example, metrics.json and
//! the per-image CSV, the ROC / precision-recall plots and the top-loss grid.
//! CPU only.

use incept::report::evaluation::{EVALUATION_CSV, METRICS_JSON};
use incept::report::top_losses::{TILE, top_losses};
use incept::report::{ConfusionMatrix, Evaluation, EvaluationSource, Prediction};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

/// cat: 2 right, 1 as dog; dog: 2 right, 1 as cat; bird (never predicted): 1 as cat, 1 as dog.
fn pets() -> ConfusionMatrix {
    let mut m = ConfusionMatrix::new(names(&["cat", "dog", "bird"]));
    for (t, p) in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 0), (2, 0), (2, 1)] {
        m.add(t, p).unwrap();
    }
    m
}

#[test]
fn sensitivity_specificity_and_balanced_accuracy_from_the_matrix() {
    let m = pets();
    // cat: 2 of 3 found; of the 5 others, dog→cat and bird→cat are false positives.
    close(m.sensitivity(0).unwrap(), 2.0 / 3.0);
    close(m.specificity(0).unwrap(), 3.0 / 5.0);
    close(m.sensitivity(1).unwrap(), 2.0 / 3.0);
    close(m.specificity(1).unwrap(), 3.0 / 5.0);
    // bird: never found, never predicted.
    close(m.sensitivity(2).unwrap(), 0.0);
    close(m.specificity(2).unwrap(), 1.0);
    // Mean recall: (2/3 + 2/3 + 0) / 3.
    close(m.balanced_accuracy().unwrap(), 4.0 / 9.0);

    // sklearn's balanced_accuracy_score(["a", "a", "b"], ["a", "c", "b"]) == 0.75: class c has no
    // sample, so it is left out of the mean (its sensitivity is undefined).
    let mut m = ConfusionMatrix::new(names(&["a", "b", "c"]));
    for (t, p) in [(0, 0), (0, 2), (1, 1)] {
        m.add(t, p).unwrap();
    }
    close(m.balanced_accuracy().unwrap(), 0.75);
    assert_eq!(m.sensitivity(2), None);
    close(m.specificity(2).unwrap(), 2.0 / 3.0);
    // Only one class present: no negatives, so no specificity.
    let mut m = ConfusionMatrix::new(names(&["a", "b"]));
    m.add(0, 1).unwrap();
    assert_eq!(m.specificity(0), None);
    assert_eq!(ConfusionMatrix::new(names(&["a", "b"])).balanced_accuracy(), None);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incept-evaluation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Four solid-colour 20×20 images.
const COLOURS: [[u8; 3]; 4] = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 200, 20]];

fn images(dir: &Path) -> Vec<PathBuf> {
    COLOURS
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let path = dir.join(format!("img{i}.png"));
            image::RgbImage::from_pixel(20, 20, image::Rgb(c)).save(&path).unwrap();
            path
        })
        .collect()
}

/// sklearn's documented example as two classes: y_true [0, 0, 1, 1], the
/// probability of class "pos" [0.1, 0.4, 0.35, 0.8] ("neg" gets the rest).
/// roc_auc_score = 0.75 and average_precision_score = 0.8333… for "pos"; the
/// same for "neg" (scores 0.9, 0.6, 0.65, 0.2 against labels 1, 1, 0, 0).
/// Predicted: neg, neg, neg, pos, so one "pos" image is missed.
fn sklearn_example(paths: &[PathBuf]) -> Evaluation {
    let pos = [0.1f32, 0.4, 0.35, 0.8];
    let predictions =
        paths.iter().zip(pos).map(|(p, v)| Prediction { path: p.clone(), probabilities: vec![1.0 - v, v] }).collect();
    Evaluation::new(names(&["neg", "pos"]), predictions, vec![0, 0, 1, 1]).unwrap()
}

#[test]
fn metrics_json_holds_the_hand_computed_numbers() {
    let dir = temp_dir("json");
    let evaluation = sklearn_example(&images(&dir));
    let source = EvaluationSource { data: "DATA/test".into(), checkpoint: "best".into(), tta: 1 };
    let report = evaluation.report(source);
    let files = evaluation.save(&dir, &report, 3).unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join(METRICS_JSON)).unwrap()).unwrap();
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert_eq!((json["data"].as_str(), json["checkpoint"].as_str(), json["tta"].as_u64()), (Some("DATA/test"), Some("best"), Some(1)));
    assert_eq!(json["images"], 4);
    close(num(&json["accuracy"]), 0.75);
    close(num(&json["balanced_accuracy"]), (1.0 + 0.5) / 2.0);
    close(num(&json["macro_roc_auc"]), 0.75);
    close(num(&json["macro_average_precision"]), 5.0 / 6.0);
    assert_eq!(json["confusion_matrix"], serde_json::json!([[2, 0], [1, 1]]));
    let [neg, pos] = [&json["per_class"][0], &json["per_class"][1]];
    assert_eq!((neg["class"].as_str(), pos["class"].as_str()), (Some("neg"), Some("pos")));
    for (row, sensitivity, specificity, precision) in [(neg, 1.0, 0.5, 2.0 / 3.0), (pos, 0.5, 1.0, 1.0)] {
        close(num(&row["sensitivity"]), sensitivity);
        close(num(&row["recall"]), sensitivity);
        close(num(&row["specificity"]), specificity);
        close(num(&row["precision"]), precision);
        close(num(&row["roc_auc"]), 0.75);
        close(num(&row["average_precision"]), 5.0 / 6.0);
        assert_eq!(row["support"], 2);
    }
    // The same numbers in the text report.
    let text = evaluation.to_text(&report);
    let line = |start: &str| text.lines().find(|l| l.trim_start().starts_with(start)).unwrap().split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(line("pos")[..5], ["pos", "1.0000", "0.5000", "0.6667", "2"], "{text}");
    assert_eq!(text.lines().filter(|l| l.trim_start().starts_with("pos")).nth(2).map(|l| l.split_whitespace().collect::<Vec<_>>()), Some(vec!["pos", "0.5000", "1.0000", "0.7500", "0.8333"]), "{text}");
    assert_eq!(line("balanced accuracy:"), ["balanced", "accuracy:", "0.7500"]);
    assert_eq!(line("macro average precision:").last().map(String::as_str), Some("0.8333"));

    // The per-image CSV names the true class; the probabilities read back exactly.
    let csv = std::fs::read_to_string(dir.join(EVALUATION_CSV)).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["path", "actual", "predicted", "probability_neg", "probability_pos"]);
    assert_eq!(rows.len(), 5);
    assert_eq!((rows[3][1], rows[3][2], rows[3][4].parse::<f32>().unwrap()), ("pos", "neg", 0.35));

    for png in [&files.roc, &files.precision_recall] {
        let img = image::open(png).unwrap().to_rgb8();
        let coloured = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
        // Both classes are in the legend, in the palette's first two colours; with two classes
        // their curves coincide, and the second is drawn over the first.
        assert!(coloured([31, 119, 180]) >= 40 && coloured([255, 127, 14]) > 400, "{}", png.display());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn top_losses_are_the_most_confidently_wrong_images() {
    let dir = temp_dir("top");
    let paths = images(&dir);
    let evaluation = sklearn_example(&paths);
    // Losses −ln p(actual): 0.105, 0.511, 1.050, 0.223.
    let predictions: Vec<Prediction> =
        paths.iter().zip([0.1f32, 0.4, 0.35, 0.8]).map(|(p, v)| Prediction { path: p.clone(), probabilities: vec![1.0 - v, v] }).collect();
    let top = top_losses(&predictions, &[0, 0, 1, 1], 3);
    assert_eq!(top.iter().map(|t| t.path.clone()).collect::<Vec<_>>(), [paths[2].clone(), paths[1].clone(), paths[3].clone()]);
    close(top[0].loss, -(0.35f32 as f64).ln());
    assert_eq!((top[0].predicted, top[0].actual), (0, 1));
    close(top[0].probability_of_actual, 0.35f32 as f64);
    assert_eq!(top_losses(&predictions, &[0, 0, 1, 1], 10).len(), 4);
    // A probability of 0 gives a finite loss (clipped at 1e-7, as Keras does).
    let certain = Prediction { path: paths[0].clone(), probabilities: vec![1.0, 0.0] };
    close(top_losses(&[certain], &[1], 1)[0].loss, -(1e-7f64).ln());

    // The grid: 3 images in 2 columns × 2 rows, each tile showing its image.
    let report = evaluation.report(EvaluationSource { data: "d".into(), checkpoint: "last".into(), tta: 2 });
    let files = evaluation.save(&dir, &report, 3).unwrap();
    let grid = image::open(files.top_losses.unwrap()).unwrap().to_rgb8();
    let (cell_w, cell_h) = (TILE + 20, TILE + 2 * 17 + 20);
    assert!(grid.width() >= 2 * cell_w && grid.height() == 44 + 2 * cell_h, "{:?}", grid.dimensions());
    let centre = |i: u32| grid.get_pixel((i % 2) * cell_w + 10 + TILE / 2, 44 + (i / 2) * cell_h + 10 + 34 + TILE / 2).0;
    assert_eq!([centre(0), centre(1), centre(2)], [COLOURS[2], COLOURS[1], COLOURS[3]]);
    // --top-losses 0 writes no grid.
    std::fs::remove_file(dir.join("top_losses.png")).unwrap();
    assert_eq!(evaluation.save(&dir, &report, 0).unwrap().top_losses, None);
    assert!(!dir.join("top_losses.png").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mismatched_inputs_are_refused() {
    let p = Prediction { path: "a.png".into(), probabilities: vec![0.5, 0.5] };
    assert!(Evaluation::new(names(&["a", "b"]), vec![p.clone()], vec![]).is_err());
    assert!(Evaluation::new(names(&["a", "b"]), vec![p.clone()], vec![2]).is_err());
    assert!(Evaluation::new(names(&["a", "b", "c"]), vec![p], vec![0]).is_err());
}
