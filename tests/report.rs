//! Run outputs: atomic writes, the history files, the loss/accuracy plots,
//! the confusion matrix (metrics, text, heat map) and the predictions CSV.
//! CPU only.

use incept::io::write_atomic;
use incept::report::plots::{ACCURACY_PNG, LOSS_PNG, PLOT_SIZE};
use incept::report::{
    ConfusionMatrix, EpochRecord, History, Prediction, predictions_csv, save_plots, save_predictions_csv,
};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incept-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

fn err_text<T>(r: incept::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------- atomic writes

#[test]
fn atomic_write_replaces_the_file_and_leaves_no_temp_file() {
    let dir = temp_dir("atomic");
    let path = dir.join("out.txt");
    write_atomic(&path, b"first version, longer than the second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first version, longer than the second");
    write_atomic(&path, b"second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert_eq!(listing(&dir), vec!["out.txt"]);

    // Failing at rename time (the target is a non-empty directory) names the path and cleans up.
    let blocked = dir.join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"x").unwrap();
    assert!(err_text(write_atomic(&blocked, b"data")).contains("blocked"));
    assert_eq!(listing(&dir), vec!["blocked", "out.txt"]);
    // Failing at create time (no such directory) names the path.
    let missing = dir.join("no-such-dir").join("f.txt");
    assert!(err_text(write_atomic(&missing, b"data")).contains("no-such-dir/f.txt"));
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- history

fn record(epoch: usize) -> EpochRecord {
    let e = epoch as f64;
    EpochRecord {
        epoch,
        loss: 1.0 / e + 0.1 + 0.2, // values whose decimal form is long
        accuracy: 1.0 - 1.0 / (e + 2.0),
        val_loss: 1.3 / e,
        val_accuracy: 0.7 + e / 300.0,
        lr: 1e-4 * 0.9f64.powi(epoch as i32),
        seconds: 12.345 * e,
        images_per_second: 98.7654321 / e,
        // Computed on even epochs only, to test both forms.
        val_auc: epoch.is_multiple_of(2).then(|| 0.5 + e / 100.0),
    }
}

fn history(epochs: usize) -> History {
    let mut h = History::new();
    for e in 1..=epochs {
        h.append(record(e)).unwrap();
    }
    h
}

#[test]
fn history_csv_has_the_exact_header_and_exact_values() {
    let dir = temp_dir("history-csv");
    let h = history(3);
    h.save(&dir).unwrap();
    assert_eq!(listing(&dir), vec!["history.csv", "history.json"]);
    let text = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_second,val_auc");
    let rows: Vec<Vec<Option<f64>>> = lines.map(|l| l.split(',').map(|v| v.parse().ok()).collect()).collect();
    assert_eq!(rows.len(), 3);
    for (row, r) in rows.iter().zip(&h.epochs) {
        let want =
            [r.epoch as f64, r.loss, r.accuracy, r.val_loss, r.val_accuracy, r.lr, r.seconds, r.images_per_second].map(Some);
        assert_eq!(&row[..8], want.as_slice());
        assert_eq!(row[8], r.val_auc, "val_auc is empty where it was not computed");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn history_json_is_keras_like_and_round_trips() {
    let dir = temp_dir("history-json");
    let mut h = history(4);
    h.epochs[2].val_loss = f64::NAN; // a diverged value: null in JSON, NaN again when loaded
    h.save(&dir).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).unwrap()).unwrap();
    for key in ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch", "seconds", "images_per_second", "val_auc"] {
        assert_eq!(json[key].as_array().map(Vec::len), Some(4), "{key}");
    }
    assert!(json["val_auc"][0].is_null() && json["val_auc"][1].as_f64() == h.epochs[1].val_auc);
    assert_eq!(json["loss"][1].as_f64(), Some(h.epochs[1].loss));
    assert!(json["val_loss"][2].is_null());
    assert_eq!(json["epoch"][0], 1);

    let back = History::load(&dir).unwrap();
    assert!(back.epochs[2].val_loss.is_nan());
    h.epochs[2].val_loss = 0.5;
    let mut back = back;
    back.epochs[2].val_loss = 0.5;
    assert_eq!(back, h);
    // Resuming: the loaded history keeps growing from the next epoch.
    back.append(record(5)).unwrap();
    assert_eq!(back.epochs.len(), 5);
    // A history written before val_auc existed loads, without AUCs.
    let text = h.to_json();
    let start = text.find(",\n  \"val_auc\"").unwrap();
    let old = format!("{}\n}}\n", &text[..start]);
    let old = History::from_json(&old).unwrap();
    assert!(old.epochs.iter().all(|r| r.val_auc.is_none()));
    assert_eq!(old.epochs.len(), 4);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn history_rejects_bad_epochs_and_bad_files() {
    let mut h = History::new();
    assert!(err_text(h.append(record(0))).contains("1-based"));
    h.append(record(3)).unwrap(); // a resumed run without its history
    assert!(err_text(h.append(record(5))).contains("expected epoch 4"));
    assert!(err_text(h.append(record(3))).contains("expected epoch 4"));

    let dir = temp_dir("history-bad");
    assert!(err_text(History::load(&dir)).contains("history.json"));
    std::fs::write(dir.join("history.json"), "not json").unwrap();
    assert!(err_text(History::load(&dir)).contains("history.json"));
    let short = history(2).to_json().replacen("\"loss\": [", "\"loss\": [0.5, ", 1);
    std::fs::write(dir.join("history.json"), short).unwrap();
    let msg = err_text(History::load(&dir));
    assert!(msg.contains("history.json") && msg.contains("'loss' has 3 values"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- plots

/// Decodes a PNG and counts the pixels close to `colour`.
fn png_pixels_like(path: &Path, colour: [u8; 3]) -> (u32, u32, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8();
    let near = |p: &image::Rgb<u8>| p.0.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 8);
    (img.width(), img.height(), img.pixels().filter(|p| near(p)).count())
}

#[test]
fn plots_are_pngs_of_the_expected_size_for_1_and_10_epochs() {
    for epochs in [1, 10] {
        let dir = temp_dir(&format!("plots-{epochs}"));
        save_plots(&history(epochs), &dir).unwrap();
        assert_eq!(listing(&dir), vec![ACCURACY_PNG, LOSS_PNG]);
        for name in [LOSS_PNG, ACCURACY_PNG] {
            let path = dir.join(name);
            let (w, h, training) = png_pixels_like(&path, [31, 119, 180]);
            let (_, _, validation) = png_pixels_like(&path, [255, 127, 14]);
            let (_, _, ink) = png_pixels_like(&path, [0, 0, 0]);
            assert_eq!((w, h), PLOT_SIZE, "{name}");
            // Both curves (at least their dots and legend lines) and the text are drawn.
            assert!(training > 50 && validation > 50, "{name} ({epochs} epochs): {training} / {validation} pixels");
            assert!(ink > 500, "{name}: only {ink} black pixels");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
    assert!(err_text(save_plots(&History::new(), &std::env::temp_dir())).contains("empty"));
}

// ---------------------------------------------------------------- confusion matrix

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
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
fn confusion_matrix_metrics_match_hand_computed_values() {
    let m = pets();
    let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-12, "{got} != {want}");
    assert_eq!(m.total(), 8);
    assert_eq!((m.count(0, 0), m.count(0, 1), m.count(2, 2)), (2, 1, 0));
    close(m.accuracy(), 0.5);
    for c in [0, 1] {
        // Predicted 4 times, 2 right; 3 samples, 2 found.
        let s = m.class_metrics(c);
        close(s.precision, 0.5);
        close(s.recall, 2.0 / 3.0);
        close(s.f1, 4.0 / 7.0);
        assert_eq!(s.support, 3);
    }
    // Never predicted: precision undefined, reported as 0 (zero_division=0).
    let bird = m.class_metrics(2);
    assert_eq!((bird.precision, bird.recall, bird.f1, bird.support), (0.0, 0.0, 0.0, 2));
    assert_eq!(m.per_class()[2], bird);
    let avg = m.macro_average();
    close(avg.precision, 1.0 / 3.0);
    close(avg.recall, 4.0 / 9.0);
    close(avg.f1, 8.0 / 21.0);
    assert_eq!(avg.support, 8);
    let weighted = m.weighted_average();
    close(weighted.precision, 3.0 / 8.0);
    close(weighted.recall, 0.5);
    close(weighted.f1, 3.0 / 7.0);

    let mut m = ConfusionMatrix::new(names(&["a", "b"]));
    assert_eq!(m.accuracy(), 0.0);
    assert_eq!(m.macro_average().f1, 0.0);
    assert!(err_text(m.add(2, 0)).contains("out of range"));
    assert!(err_text(m.add(0, 5)).contains("out of range"));
    assert!(ConfusionMatrix::new(Vec::new()).to_text().contains("accuracy"));
}

#[test]
fn confusion_matrix_text_reads_like_sklearn() {
    let text = pets().to_text();
    for want in ["precision", "recall", "f1-score", "support", "accuracy", "macro avg", "weighted avg", "cat", "dog"] {
        assert!(text.contains(want), "missing '{want}' in\n{text}");
    }
    let line = |start: &str| text.lines().find(|l| l.trim_start().starts_with(start)).unwrap().to_string();
    let words = |l: String| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(line("cat")), ["cat", "0.5000", "0.6667", "0.5714", "3"]);
    assert_eq!(words(line("bird")), ["bird", "0.0000", "0.0000", "0.0000", "2"]);
    assert_eq!(words(line("accuracy")), ["accuracy", "0.5000", "8"]);
    // The matrix, with class names on both axes.
    let rows: Vec<Vec<String>> =
        text.lines().skip_while(|l| !l.starts_with("Confusion matrix")).skip(1).map(|l| words(l.into())).collect();
    assert_eq!(rows[0], ["cat", "dog", "bird"]);
    assert_eq!(rows[1], ["cat", "2", "1", "0"]);
    assert_eq!(rows[3], ["bird", "1", "1", "0"]);
}

#[test]
fn confusion_matrix_heat_map_is_a_png() {
    let dir = temp_dir("heatmap");
    let path = dir.join("confusion_matrix.png");
    pets().save_png(&path).unwrap();
    let (w, h, darkest) = png_pixels_like(&path, [8, 48, 107]);
    assert!(w >= 200 && h >= 200, "{w}x{h}");
    assert!(darkest > 1000, "the largest counts' cells are dark blue ({darkest} pixels)");
    // Many classes with long names still give a picture of bounded size.
    let many: Vec<String> = (0..40).map(|i| format!("class number {i} with a very long name")).collect();
    let mut m = ConfusionMatrix::new(many);
    for i in 0..40 {
        m.add(i, (i * 7) % 40).unwrap();
    }
    m.save_png(&path).unwrap();
    let (w, h, _) = png_pixels_like(&path, [8, 48, 107]);
    assert!((800..2000).contains(&w) && (800..2000).contains(&h), "{w}x{h}");
    // So do very many classes (their cells are too small for counts and names) and none.
    let mut m = ConfusionMatrix::new((0..300).map(|i| format!("c{i}")).collect());
    m.add(4, 7).unwrap();
    m.save_png(&path).unwrap();
    let (w, h, darkest) = png_pixels_like(&path, [8, 48, 107]);
    assert!(w <= 2500 && h <= 2500 && darkest > 0, "{w}x{h}, {darkest} dark pixels");
    ConfusionMatrix::new(Vec::new()).save_png(&path).unwrap();
    assert_eq!(listing(&dir), vec!["confusion_matrix.png"]);
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- predictions

#[test]
fn predictions_csv_has_one_row_per_image() {
    let classes = names(&["cat", "dog", "bird"]);
    let predictions = vec![
        Prediction { path: "images/cat.1.jpg".into(), probabilities: vec![0.7, 0.2, 0.1] },
        Prediction { path: "images/odd, \"name\".jpg".into(), probabilities: vec![0.25, 0.25, 0.5] },
        Prediction { path: "images/tie.jpg".into(), probabilities: vec![f32::NAN, 0.4, 0.4] },
    ];
    let text = String::from_utf8(predictions_csv(&classes, &predictions).unwrap()).unwrap();
    assert_eq!(
        text,
        "path,predicted,probability_cat,probability_dog,probability_bird\n\
         images/cat.1.jpg,cat,0.7,0.2,0.1\n\
         \"images/odd, \"\"name\"\".jpg\",bird,0.25,0.25,0.5\n\
         images/tie.jpg,dog,NaN,0.4,0.4\n"
    );

    let dir = temp_dir("predictions");
    let path = dir.join("predictions.csv");
    save_predictions_csv(&path, &classes, &predictions).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let bad = vec![Prediction { path: "images/short.jpg".into(), probabilities: vec![1.0] }];
    let msg = err_text(save_predictions_csv(&path, &classes, &bad));
    assert!(msg.contains("images/short.jpg") && msg.contains("predictions.csv"), "{msg}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(listing(&dir), vec!["predictions.csv"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn predictions_csv_keeps_file_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"images/caf\xe9.png");
    let predictions = vec![Prediction { path: PathBuf::from(name), probabilities: vec![0.25, 0.75] }];
    let bytes = predictions_csv(&names(&["a", "b"]), &predictions).unwrap();
    let row = bytes.split(|&b| b == b'\n').nth(1).unwrap();
    assert_eq!(row, b"images/caf\xe9.png,b,0.25,0.75");
}
