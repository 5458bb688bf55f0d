//! The small-data training controls through the `incept` binary:
//! `--class-weight` resolved into run.json and refused when malformed,
//! `--init` from another run (refused, naming the tensor, when the head does
//! not fit), and `--head-epochs` running both stages in one run and resuming
//! in the fine-tuning stage.
use crate::binary;

use binary::{incept, make_tree, ok, text, weights};
use std::path::Path;

fn run_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

/// The `lr` column of RUN/history.csv.
fn lrs(run: &Path) -> Vec<f64> {
    let csv = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let mut lines = csv.lines();
    let column = lines.next().unwrap().split(',').position(|c| c == "lr").expect("an lr column");
    lines.map(|l| l.split(',').nth(column).unwrap().parse().unwrap()).collect()
}

#[track_caller]
fn assert_lrs(run: &Path, want: &[f64]) {
    let got = lrs(run);
    assert!(got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 1e-9 * w), "lr per epoch {got:?}, want {want:?}");
}

#[track_caller]
fn fails_with(o: std::process::Output, needles: &[&str]) {
    let t = text(&o);
    assert!(!o.status.success(), "expected a failure:\n{t}");
    for n in needles {
        assert!(t.contains(n), "expected {n:?} in:\n{t}");
    }
}

#[test]
fn class_weights_init_and_two_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 3), ("valid", 1)]);
    // Imbalance: ant 1, bee 3, cat 3 training images.
    for i in [1, 2] {
        std::fs::remove_file(data.join(format!("train/ant/{i:03}.png"))).unwrap();
    }
    let w = weights(tmp.path());
    let (d, w) = (data.to_str().unwrap(), w.to_str().unwrap());
    let common = ["--image-size", "75", "--batch", "4", "--head", "8", "--seed", "3", "--no-augment", "--epochs", "1"];
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", d];
        args.extend(extra);
        args.extend(common);
        incept(&args)
    };

    // Bad --class-weight values fail before anything is written, naming the flag.
    let never = tmp.path().join("never");
    let out_never = ["--weights", w, "--out", never.to_str().unwrap()];
    for (bad, says) in [("ant=-1", "≥ 0"), ("dog=2", "no class is named \"dog\""), ("ant=2,ant=3", "twice"), ("ant", "not CLASS=WEIGHT")] {
        let mut args = out_never.to_vec();
        args.extend(["--class-weight", bad]);
        fails_with(train(&args), &["--class-weight", says]);
        assert!(!never.exists(), "--class-weight {bad} left {}", never.display());
    }

    // Stage 1: the head alone, balanced class weights resolved into run.json.
    let s1 = tmp.path().join("s1");
    let out = ok(train(&["--weights", w, "--out", s1.to_str().unwrap(), "--unfreeze-last", "0", "--class-weight", "balanced"]));
    assert!(out.contains("class weights (training loss only): balanced"), "{out}");
    // A resumed run keeps its weights: another rule is refused.
    fails_with(incept(&["train", "--resume", s1.to_str().unwrap(), "--class-weight", "none"]), &["--class-weight none", "conflicts", "balanced"]);
    let cw = &run_json(&s1)["class_weight"];
    assert_eq!(cw["rule"], "balanced");
    let got: Vec<f64> = cw["weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let want = [7.0 / 3.0, 7.0 / 9.0, 7.0 / 9.0];
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "balanced weights {got:?}, want {want:?}");

    // Stage 2 as its own run from stage 1's best weights.
    let s2 = tmp.path().join("s2");
    let out = ok(train(&["--init", s1.to_str().unwrap(), "--out", s2.to_str().unwrap(), "--unfreeze-last", "15", "--lr", "1e-5"]));
    assert!(out.contains("initial weights (base and head): the best checkpoint of"), "{out}");
    assert!(run_json(&s2)["init"].as_str().unwrap().ends_with("s1"));
    assert_lrs(&s2, &[1e-5]);
    // It started from stage 1's head: Adam at 1e-5 moves a weight by about 1e-5 a step
    // (2 steps here), where a fresh Glorot head would differ by ~0.05.
    let head = |run: &Path| incept::io::read_safetensors(&run.join("last.safetensors")).unwrap()["dense_1/kernel"].data.clone();
    let moved = head(&s1).iter().zip(head(&s2)).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(moved > 0.0 && moved < 1e-4, "stage 2's head moved {moved} from stage 1's");
    // A head of another shape is refused, naming the tensor, before anything is written.
    let s3 = tmp.path().join("s3");
    let mut args = vec!["train", "--data", d, "--init", s1.to_str().unwrap(), "--out", s3.to_str().unwrap(), "--head", "16"];
    args.extend(["--image-size", "75", "--epochs", "1"]);
    fails_with(incept(&args), &["dense/kernel", "[2048, 8]", "[2048, 16]"]);
    assert!(!s3.exists());
    fails_with(incept(&["train", "--resume", s2.to_str().unwrap(), "--init", s2.to_str().unwrap()]), &["--init", "conflicts"]);

    // Both stages in one run, then resumed in the second stage.
    let both = tmp.path().join("both");
    let out = ok(train(&["--weights", w, "--out", both.to_str().unwrap(), "--head-epochs", "1", "--lr", "2e-3"]));
    assert!(out.contains("two stages: 1 epochs of the head alone"), "{out}");
    assert!(out.contains("epoch 2: fine-tuning the last 15 layers of the base at lr 2.0e-5"), "{out}");
    assert_lrs(&both, &[2e-3, 2e-5]);
    assert!((run_json(&both)["fine_tune_lr"].as_f64().unwrap() - 2e-5).abs() < 1e-15);
    let out = ok(incept(&["train", "--resume", both.to_str().unwrap(), "--epochs", "2"]));
    assert!(!out.contains("fine-tuning the last"), "the resumed run is in the second stage already:\n{out}");
    assert_lrs(&both, &[2e-3, 2e-5, 2e-5]);
    fails_with(incept(&["train", "--resume", both.to_str().unwrap(), "--head-epochs", "2"]), &["--head-epochs", "conflicts"]);
}

/// A two-stage run stopped (SIGKILL) after its last head epoch resumes from
/// the head stage's checkpoint and enters fine-tuning then, once.
#[test]
fn a_run_stopped_between_the_stages_enters_fine_tuning_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 6), ("valid", 1)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    let args = [
        "train", "--data", data.to_str().unwrap(), "--weights", w.to_str().unwrap(), "--out", run.to_str().unwrap(),
        "--image-size", "75", "--batch", "1", "--head", "8", "--no-augment", "--head-epochs", "1", "--epochs", "1",
    ];
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_incept"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // history.csv is written after the epoch's checkpoints: one row means last.safetensors holds epoch 1.
    let rows = || std::fs::read_to_string(run.join("history.csv")).map_or(0, |t| t.lines().count().saturating_sub(1));
    while rows() < 1 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its first epoch was recorded");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(child.try_wait().unwrap().is_none(), "the run finished its second epoch before it could be stopped");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(rows(), 1, "stopped during the second epoch");

    let out = ok(incept(&["train", "--resume", run.to_str().unwrap()]));
    assert_eq!(out.matches("fine-tuning the last 15 layers").count(), 1, "{out}");
    assert!(out.contains("epoch 2: fine-tuning the last 15 layers of the base at lr 1.0e-5"), "{out}");
    assert_lrs(&run, &[1e-3, 1e-5]);
}
