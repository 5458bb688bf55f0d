//! `incept report` and the TensorBoard logs of `incept train`, through the
//! binary: what a tiny run's page holds before and after evaluate, what the
//! report refuses, and that a resume adds log files without repeating a
//! step (the logs' values are checked against TensorBoard's own reader in
//! tools/tensorboard-check, the page in a browser in tools/report-check).

use crate::binary::{incept, make_tree, ok, text, weights, s};

#[test]
fn the_report_shows_what_the_run_has_and_says_how_to_get_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 3), ("valid", 2), ("test", 2)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    ok(incept(&["train", "--data", s(&data), "--weights", s(&w), "--out", s(&run), "--image-size", "75", "--batch", "3", "--epochs", "1", "--head", "8"]));
    for split in ["train", "validation"] {
        let files: Vec<_> = std::fs::read_dir(run.join("logs").join(split)).unwrap().collect();
        assert_eq!(files.len(), 1, "one event file in logs/{split}");
    }

    ok(incept(&["report", s(&run)]));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for section in ["summary", "dataset", "training", "evaluation", "gradcam", "profile", "configuration"] {
        assert!(html.contains(&format!("<section id=\"{section}\">")), "section {section} missing");
    }
    assert!(html.contains("Not evaluated yet: incept evaluate --model"), "the missing evaluation names its command");
    assert!(html.contains("Not profiled"));
    // loss, accuracy and AUC curves, each embedded.
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 3);
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));

    ok(incept(&["evaluate", "--model", s(&run), "--data", s(&data.join("test"))]));
    let page = tmp.path().join("page.html");
    ok(incept(&["report", s(&run), "--out", s(&page)]));
    let html = std::fs::read_to_string(&page).unwrap();
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let accuracy = format!("{:.4}", metrics["accuracy"].as_f64().unwrap());
    assert!(html.contains(&format!("<td>{accuracy}</td>")), "test accuracy {accuracy} shown");
    // + confusion matrix, ROC, precision-recall, top losses.
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 7);

    // A resume adds one file per folder and repeats no step (EPOCH_MARK counted by its tag bytes).
    ok(incept(&["train", "--resume", s(&run), "--epochs", "2"]));
    for split in ["train", "validation"] {
        let dir = run.join("logs").join(split);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 2, "a second event file in logs/{split}");
        let marks: usize = files.iter().map(|f| count(&std::fs::read(f).unwrap(), b"epoch_loss")).sum();
        assert_eq!(marks, 2, "epoch_loss written once per epoch in logs/{split}");
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn the_report_is_refused_over_its_inputs_and_for_a_folder_that_is_not_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 3), ("valid", 2)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    ok(incept(&["train", "--data", s(&data), "--weights", s(&w), "--out", s(&run), "--image-size", "75", "--batch", "3", "--epochs", "1", "--head", "8"]));
    let before = std::fs::read(run.join("run.json")).unwrap();
    let o = incept(&["report", s(&run), "--out", s(&run.join("run.json"))]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--out") && text(&o).contains("run.json"), "{}", text(&o));
    assert_eq!(std::fs::read(run.join("run.json")).unwrap(), before, "run.json untouched");

    let o = incept(&["report", s(&data)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("run.json"), "names the missing run.json: {}", text(&o));
    assert!(!data.join("report.html").exists());
}
