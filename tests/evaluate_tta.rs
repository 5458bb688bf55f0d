//! `incept predict --tta` and `incept evaluate`'s outputs through the binary,
//! on a tiny run (75×75, one epoch): N = 1 is plain prediction, N = 2 is the
//! mean of the image's and its mirror's probabilities, N = 0 is refused
//! naming the flag; evaluate writes metrics.json, whose numbers are
//! recomputed here from its per-image CSV, and the three PNGs.
use crate::binary;

use binary::{CLASSES, incept, make_tree, ok, text, weights};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// 75×75 images (the run's input size, so decoding resizes nothing and the
/// mirror of a decoded file is the decoded mirrored file), left-right
/// asymmetric; with `mirrored`, each one flipped.
fn asymmetric_images(dir: &Path, mirrored: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..4u32 {
        let img = image::RgbImage::from_fn(75, 75, |x, y| {
            let x = if mirrored { 74 - x } else { x };
            image::Rgb([(x * 3 + i * 40) as u8, (y * 2 + x) as u8, ((x * y + i * 17) % 256) as u8])
        });
        img.save(dir.join(format!("{i}.png"))).unwrap();
    }
}

/// predict's CSV as file name → probabilities.
fn probabilities(csv: &Path) -> BTreeMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(csv).unwrap();
    text.lines()
        .skip(1)
        .map(|row| {
            let fields: Vec<&str> = row.split(',').collect();
            let name = Path::new(fields[0]).file_name().unwrap().to_string_lossy().into_owned();
            (name, fields[2..].iter().map(|v| v.parse().unwrap()).collect())
        })
        .collect()
}

/// The probability that a positive outscores a negative, ties counting one half.
fn pairwise_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &p) in positive.iter().enumerate() {
        for (j, &q) in positive.iter().enumerate() {
            if p && !q {
                pairs += 1.0;
                wins += if scores[i] > scores[j] { 1.0 } else if scores[i] == scores[j] { 0.5 } else { 0.0 };
            }
        }
    }
    (pairs > 0.0).then(|| wins / pairs)
}

/// Average precision as the mean, over positives, of the precision among
/// the samples scoring at least as high (equal to sklearn's step sum).
fn mean_precision_at_positives(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let at = |s: f64| {
        let above: Vec<usize> = (0..scores.len()).filter(|&j| scores[j] >= s).collect();
        above.iter().filter(|&&j| positive[j]).count() as f64 / above.len() as f64
    };
    let precisions: Vec<f64> = (0..scores.len()).filter(|&i| positive[i]).map(|i| at(scores[i])).collect();
    (!precisions.is_empty()).then(|| precisions.iter().sum::<f64>() / precisions.len() as f64)
}

#[test]
fn tta_and_evaluate_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 3), ("valid", 1), ("test", 3)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    ok(incept(&[
        "train", "--data", &s(&data), "--weights", &s(&w), "--out", &s(&run), "--epochs", "1", "--image-size", "75",
        "--batch", "3", "--head", "8", "--seed", "5",
    ]));
    let (images, mirrors) = (tmp.path().join("images"), tmp.path().join("mirrors"));
    asymmetric_images(&images, false);
    asymmetric_images(&mirrors, true);
    let predict = |inputs: &Path, csv: &str, extra: &[&str]| {
        let out = tmp.path().join(csv);
        let mut args = vec!["predict".to_owned(), "--model".into(), s(&run), "--out".into(), s(&out)];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(s(inputs));
        ok(incept(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        probabilities(&out)
    };

    // N = 1 is plain prediction, bit for bit.
    let plain = predict(&images, "plain.csv", &[]);
    assert_eq!(plain.len(), 4);
    assert_eq!(predict(&images, "tta1.csv", &["--tta", "1"]), plain);
    // N = 2 is the mean of the image's and its mirror's probabilities.
    let mirrored = predict(&mirrors, "mirrored.csv", &[]);
    let tta2 = predict(&images, "tta2.csv", &["--tta", "2"]);
    let mut differs = false;
    for (name, p) in &tta2 {
        for c in 0..CLASSES.len() {
            let want = (plain[name][c] + mirrored[name][c]) / 2.0;
            assert!((p[c] - want).abs() < 1e-6, "{name} class {c}: {} != mean of {} and {}", p[c], plain[name][c], mirrored[name][c]);
            differs |= (plain[name][c] - mirrored[name][c]).abs() > 1e-6;
        }
    }
    assert!(differs, "the mirrored images gave the same probabilities: the check would prove nothing");
    // N = 0 is refused, naming the flag, before the GPU is opened.
    let o = incept(&["predict", "--model", &s(&run), "--tta", "0", &s(&images)]);
    assert!(!o.status.success() && text(&o).contains("--tta 0"), "{}", text(&o));

    // evaluate: metrics.json agrees with a recomputation from its per-image CSV.
    let out = ok(incept(&["evaluate", "--model", &s(&run), "--data", &s(&data.join("test")), "--top-losses", "4", "--tta", "3"]));
    for want in ["sensitivity", "specificity", "balanced accuracy", "macro ROC-AUC", "top_losses.png"] {
        assert!(out.contains(want), "missing '{want}' in\n{out}");
    }
    let json: Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((json["tta"].as_u64(), json["images"].as_u64()), (Some(3), Some(9)));
    let csv = std::fs::read_to_string(run.join("evaluation_predictions.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(rows.len(), 9);
    let class_index = |name: &str| CLASSES.iter().position(|c| *c == name).unwrap();
    let labels: Vec<usize> = rows.iter().map(|r| class_index(&r[1])).collect();
    for (r, &label) in rows.iter().zip(&labels) {
        assert!(r[0].contains(&format!("/{}/", CLASSES[label])), "actual class is not the folder: {r:?}");
    }
    let probs: Vec<Vec<f64>> = rows.iter().map(|r| r[3..].iter().map(|v| v.parse().unwrap()).collect()).collect();
    let predicted: Vec<usize> = probs.iter().map(|p| (0..3).fold(0, |b, c| if p[c] > p[b] { c } else { b })).collect();
    let num = |v: &Value| v.as_f64();
    let correct = labels.iter().zip(&predicted).filter(|(l, p)| l == p).count();
    assert!((num(&json["accuracy"]).unwrap() - correct as f64 / 9.0).abs() < 1e-12);
    let mut recalls = Vec::new();
    for c in 0..3 {
        let row = &json["per_class"][c];
        let positive: Vec<bool> = labels.iter().map(|&l| l == c).collect();
        let tp = (0..9).filter(|&i| positive[i] && predicted[i] == c).count() as f64;
        let tn = (0..9).filter(|&i| !positive[i] && predicted[i] != c).count() as f64;
        let sensitivity = tp / 3.0;
        recalls.push(sensitivity);
        assert!((num(&row["sensitivity"]).unwrap() - sensitivity).abs() < 1e-12, "{row}");
        assert!((num(&row["specificity"]).unwrap() - tn / 6.0).abs() < 1e-12, "{row}");
        let scores: Vec<f64> = probs.iter().map(|p| p[c]).collect();
        // The CSV holds each f32 exactly, so the recomputation sees the same ranking.
        assert!((num(&row["roc_auc"]).unwrap() - pairwise_auc(&scores, &positive).unwrap()).abs() < 1e-12, "{row}");
        let ap = mean_precision_at_positives(&scores, &positive).unwrap();
        assert!((num(&row["average_precision"]).unwrap() - ap).abs() < 1e-12, "{row}");
    }
    assert!((num(&json["balanced_accuracy"]).unwrap() - recalls.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    for png in ["confusion_matrix.png", "roc.png", "precision_recall.png", "top_losses.png"] {
        let img = image::open(run.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 300 && img.height() > 300, "{png}");
    }
}
