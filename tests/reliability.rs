//! What a run directory guarantees, tested through the `incept` binary:
//! one trainer at a time, arguments checked before anything is written,
//! checkpoints that agree with run.json (or are refused, naming what
//! differs), resume that refuses conflicting flags and repairs leftovers,
//! SIGKILL at random points never leaving a disagreeing or unresumable run,
//! folder walks that survive link cycles, and oversized flags that fail
//! with a message under a memory cap instead of aborting.
use crate::binary;

use binary::{incept, make_tree, ok, text, weights, s};
use incept::train::checkpoint;
use incept::train::run_dir::load_config;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const SMALL: [&str; 8] = ["--image-size", "75", "--batch", "2", "--head", "8", "--seed", "3"];

/// One finished 1-epoch run shared by the tests that only read it (or copy it).
struct Fixture {
    data: PathBuf,
    weights: PathBuf,
    run: PathBuf,
}

/// Lives in cargo's per-target temporary folder (a static is never dropped,
/// so a temporary directory would outlive every run), replaced on each run.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability-fixture");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let data = root.join("data");
        make_tree(&data, &[("train", 2), ("valid", 1)]);
        let weights = weights(&root);
        let run = root.join("run");
        // --data relative to the working directory: run.json must store it absolute.
        let o = Command::new(env!("CARGO_BIN_EXE_incept"))
            .current_dir(&root)
            .args(["train", "--data", "data", "--weights", "base.safetensors", "--out", "run", "--epochs", "1"])
            .args(SMALL)
            .output()
            .unwrap();
        ok(o);
        Fixture { data, weights, run }
    })
}

/// A copy of a run directory; checkpoints are hard links (they are only
/// ever replaced by rename, never written in place), which keeps the tests'
/// disk use small. Folders (the TensorBoard logs, appended to in place) are copied.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let name = e.unwrap().file_name();
        let (src, dst) = (from.join(&name), to.join(&name));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else if src.extension().is_some_and(|x| x == "safetensors") {
            std::fs::hard_link(&src, &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[track_caller]
fn fails_with(o: Output, needles: &[&str]) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "expected a clean failure (status 1):\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    for n in needles {
        assert!(t.contains(n), "message lacks {n:?}:\n{t}");
    }
    t
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or(Vec::new(), |d| {
        d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp-")).collect()
    })
}

#[test]
fn a_run_directory_is_refused_to_a_second_run_and_arguments_are_checked_before_writing() {
    let f = fixture();
    let cfg = load_config(&f.run).unwrap();
    assert!(cfg.data.is_absolute() && cfg.data == std::fs::canonicalize(&f.data).unwrap(), "{:?}", cfg.data);
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(&f.run, &run);
    let run_json = std::fs::read(run.join("run.json")).unwrap();
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--data", s(&f.data), "--weights", s(&f.weights), "--out", s(out), "--epochs", "1"];
        args.extend(extra);
        if !extra.contains(&"--image-size") {
            args.extend(["--image-size", "75"]);
        }
        incept(&args)
    };

    // The issue's reproduction: a new run into a run directory is refused, naming both ways out.
    fails_with(train(&run, &["--head", "64", "--dropout", "1.5"]), &["--resume", "--overwrite"]);
    // With --overwrite, the bad flag is still refused before anything is removed or written.
    fails_with(train(&run, &["--head", "64", "--dropout", "1.5", "--overwrite"]), &["--dropout 1.5"]);
    assert_eq!(std::fs::read(run.join("run.json")).unwrap(), run_json, "run.json was rewritten");
    assert!(run.join("last.safetensors").is_file() && run.join("best.safetensors").is_file());
    ok(incept(&["predict", "--model", s(&run), s(&f.data.join("valid"))]));
    // --overwrite with good flags replaces the run: a new configuration and checkpoints that match it.
    ok(train(&run, &["--head", "4", "--batch", "2", "--overwrite"]));
    assert_eq!(load_config(&run).unwrap().head, [4]);
    let out = ok(incept(&["predict", "--model", s(&run), s(&f.data.join("valid"))]));
    assert_eq!(out.lines().filter(|l| l.contains(".png\t")).count(), 3, "{out}");

    // A rejected argument leaves no directory behind; none reaches a kernel.
    let fresh = tmp.path().join("fresh");
    fails_with(train(&fresh, &["--head", "0"]), &["--head 0"]);
    fails_with(train(&fresh, &["--image-size", "20"]), &["--image-size 20"]);
    fails_with(train(&fresh, &["--unfreeze-last", "400"]), &["--unfreeze-last 400"]);
    // Mixed precision where the adapter has no cooperative matrices: refused, naming the flag and what is missing.
    if let Err(why) = incept::Gpu::shared().unwrap().coop_support() {
        fails_with(train(&fresh, &["--precision", "mixed"]), &["--precision mixed", why]);
    }
    let no_valid = tmp.path().join("no_valid");
    make_tree(&no_valid, &[("train", 1)]);
    fails_with(
        incept(&["train", "--data", s(&no_valid), "--weights", s(&f.weights), "--out", s(&fresh), "--image-size", "75"]),
        &["valid"],
    );
    assert!(!fresh.exists(), "a rejected run left {fresh:?} behind");
}

#[test]
fn checkpoints_that_disagree_with_run_json_are_refused_naming_what_differs() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(&f.run, &run);
    let original = std::fs::read_to_string(run.join("run.json")).unwrap();
    let edit = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
        change(&mut v);
        std::fs::write(run.join("run.json"), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    let predict = || incept(&["predict", "--model", s(&run), s(&f.data.join("valid"))]);

    // run.json says another head than the checkpoint holds.
    edit(&|v| v["head"] = serde_json::json!([64]));
    fails_with(predict(), &["best.safetensors", "head"]);
    // Hand-edited classes: no panic, the field named.
    edit(&|v| v["classes"] = serde_json::json!([]));
    fails_with(predict(), &["run.json", "classes"]);

    // A checkpoint without the configuration in its metadata (as older
    // versions wrote them) is still checked tensor by tensor.
    edit(&|v| v["head"] = serde_json::json!([64]));
    let best = run.join("best.safetensors");
    let tensors = incept::io::read_safetensors(&best).unwrap();
    let meta = incept::io::safetensors_io::read_metadata(&best).unwrap();
    let state = std::collections::BTreeMap::from([("incept_train_state".to_string(), meta["incept_train_state"].clone())]);
    incept::io::write_safetensors(&best, &tensors, incept::io::StorageDtype::F32, &state).unwrap();
    fails_with(predict(), &["'dense/kernel'", "[2048, 8]", "[2048, 64]"]);
    std::fs::write(run.join("run.json"), &original).unwrap();
    ok(predict());

    // Any other difference (here the seed) is refused by the checkpoint's own configuration.
    edit(&|v| v["seed"] = serde_json::json!(99));
    fails_with(incept(&["predict", "--model", s(&run), "--checkpoint", "last", s(&f.data)]), &["last.safetensors", "seed"]);
}

#[test]
fn resume_refuses_conflicting_flags_and_repairs_what_a_crash_left() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(&f.run, &run);
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", s(&run)];
        args.extend(extra);
        Command::new(env!("CARGO_BIN_EXE_incept")).current_dir("/").args(&args).output().unwrap()
    };
    fails_with(resume(&["--lr", "0.5"]), &["--lr 0.5", "--out"]);
    fails_with(resume(&["--image-size", "99"]), &["--image-size 99"]);
    fails_with(resume(&["--batch", "4"]), &["--batch 4"]);
    fails_with(resume(&["--data", s(tmp.path())]), &["--data"]);
    fails_with(resume(&["--head", "16"]), &["--head 16"]);
    fails_with(resume(&["--precision", "mixed"]), &["--precision Mixed", "conflicts"]);
    fails_with(resume(&["--epochs", "0"]), &["--epochs 0"]);

    // A damaged best checkpoint is noticed at the start, not after an epoch.
    let best = run.join("best.safetensors");
    let bytes = std::fs::read(&best).unwrap();
    let damaged = run.join("damaged");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&damaged, &best).unwrap();
    let t = fails_with(resume(&["--epochs", "2"]), &["best.safetensors"]);
    assert!(!t.contains("epoch 2/2"), "trained before checking best:\n{t}");
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::rename(&damaged, &best).unwrap();

    // A temporary file of a killed writer is removed; same flags as run.json
    // are fine; more epochs are applied and said; the working directory
    // does not matter (run.json holds absolute paths).
    let stale = run.join(".last.safetensors.tmp-4194305-0");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let out = ok(resume(&["--epochs", "2", "--batch", "2", "--seed", "3"]));
    assert!(out.contains("ends after 2 epochs") && out.contains("removed 1 temporary file"), "{out}");
    assert!(temp_files(&run).is_empty(), "{:?}", temp_files(&run));
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");
    assert_eq!(load_config(&run).unwrap().epochs, 2);
}

#[cfg(unix)]
#[test]
fn predict_walks_link_cycles_once_and_warns() {
    use std::os::unix::fs::symlink;
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("pics");
    for d in ["x", "y"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    let img = f.data.join("valid/ant/000.png");
    for file in ["a.png", "x/1.png", "y/2.png"] {
        std::fs::copy(&img, p.join(file)).unwrap();
    }
    symlink(&p, p.join("self")).unwrap(); // a link to its own folder
    symlink(p.join("y"), p.join("x/to_y")).unwrap(); // two links into each other
    symlink(p.join("x"), p.join("y/to_x")).unwrap();
    symlink(p.join("a.png"), p.join("b.png")).unwrap(); // a second name for a file
    let mut child = Command::new(env!("CARGO_BIN_EXE_incept"))
        .args(["predict", "--model", s(&f.run), s(&p), s(&p.join("a.png"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("predict did not finish within 120 s on a folder with link cycles");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let rows: Vec<&str> = t.lines().filter(|l| l.contains(".png\t")).collect();
    assert_eq!(rows.len(), 3, "each image once:\n{t}");
    assert!(t.matches("warning: skipping").count() >= 4, "one warning per skipped link or repeat:\n{t}");
}

/// A PNG whose header claims `w`×`h` RGB pixels, with one tiny data chunk.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn a_huge_image_is_refused_before_it_is_decoded() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let huge = tmp.path().join("huge.png");
    std::fs::write(&huge, png_claiming(40000, 40000)).unwrap();
    let o = capped(&["predict", "--model", s(&f.run), s(&huge), s(&f.data.join("valid/ant/000.png"))]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("huge.png") && t.contains("40000x40000") && t.contains("bytes"), "{t}");
    assert_eq!(t.lines().filter(|l| l.contains(".png\t")).count(), 1, "{t}");
}

/// Runs `incept ARGS` under `ulimit -v` (6 GiB of address space), so that
/// an allocation a size check missed fails fast instead of swapping. Some
/// GPU drivers reserve more address space than that just to start; there
/// (when `incept devices` fails under the cap) the command runs uncapped.
fn capped(args: &[&str]) -> Output {
    if cap_works() { run_capped(args) } else { incept(args) }
}

fn run_capped(args: &[&str]) -> Output {
    let cmd = format!("ulimit -v {}; exec \"$0\" \"$@\"", 6 * 1024 * 1024);
    Command::new("bash").args(["-c", &cmd, env!("CARGO_BIN_EXE_incept")]).args(args).output().unwrap()
}

fn cap_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let works = run_capped(&["devices"]).status.success();
        if !works {
            eprintln!("the adapter does not start under a 6 GiB address-space cap: oversized flags are checked uncapped");
        }
        works
    })
}

/// `--batch B --image-size 2000`, within the adapter's limits but beyond
/// the host memory, is refused before anything is allocated: under the
/// 6 GiB cap where the adapter starts under it (B = 40, 1.9 GB a batch);
/// else uncapped, with B sized so that two batches in flight exceed
/// MemAvailable, where one batch still fits the adapter's max_buffer_size
/// (where it does not, that limit refuses the batch, and that is checked).
fn host_memory_refusal(train: impl Fn(&[&str]) -> Output) {
    if cap_works() {
        fails_with(train(&["--image-size", "2000", "--batch", "40"]), &["host memory", "--batch 40 × --image-size 2000", "bytes"]);
        return;
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo (the host-memory check reads it)");
    let kib: u64 = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).expect("MemAvailable");
    let per_image = 2000u64 * 2000 * 3 * 4;
    let batch = (kib * 1024 * 6 / 10).div_ceil(per_image);
    let flags = format!("--batch {batch} × --image-size 2000");
    let o = train(&["--image-size", "2000", "--batch", &batch.to_string()]);
    let max_buffer = incept::Gpu::shared().unwrap().limits().max_buffer_size;
    if batch * per_image <= max_buffer {
        fails_with(o, &["host memory", &flags, "bytes"]);
    } else {
        eprintln!("uncapped: one batch of {flags} exceeds max_buffer_size {max_buffer}, so that limit refuses it before the host check");
        fails_with(o, &["max_buffer_size", &flags]);
    }
}

#[test]
fn oversized_flags_fail_with_a_message_under_a_memory_cap() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", s(&f.data), "--weights", s(&f.weights), "--out", s(&out), "--epochs", "1"];
        args.extend(extra);
        capped(&args)
    };
    fails_with(train(&["--image-size", "20000", "--batch", "2"]), &["--image-size 20000", "bytes"]);
    fails_with(train(&["--image-size", "20000", "--batch", "1"]), &["--image-size 20000", "bytes"]);
    fails_with(train(&["--image-size", "75", "--head", "300000000"]), &["--head 300000000", "bytes"]);
    fails_with(train(&["--image-size", "75", "--head", "40000,40000"]), &["--head 40000,40000", "bytes"]);
    fails_with(train(&["--image-size", "75", "--batch", "3000000"]), &["--batch 3000000", "bytes"]);
    host_memory_refusal(train);
    assert!(!out.exists());
    fails_with(capped(&["predict", "--model", s(&f.run), "--batch", "3000000", s(&f.data)]), &["--batch 3000000", "bytes"]);
}

#[test]
fn evaluate_fails_before_its_report_when_the_image_cannot_be_written() {
    let f = fixture();
    let t = fails_with(
        incept(&["evaluate", "--model", s(&f.run), "--data", s(&f.data.join("valid")), "--out", "/nonexistent/cm.png"]),
        &["/nonexistent/cm.png"],
    );
    assert!(!t.contains("accuracy:"), "evaluated before checking the output:\n{t}");
}

/// A running `incept train` whose standard output is read line by line.
struct Trainer {
    child: Child,
    lines: Receiver<String>,
}

impl Trainer {
    fn spawn(args: &[&str]) -> Trainer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_incept")).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Trainer { child, lines }
    }

    /// Waits for the line saying the run directory is set up; false if the
    /// process ended first.
    fn wait_started(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains(" next") && l.starts_with("run ") => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("train did not start within {within:?}"),
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// The invariant after a (re)start: no temporary file; run.json, the last
/// checkpoint's own configuration and history, and history.csv/json agree.
fn agreement(run: &Path) -> Result<usize, String> {
    if let Some(t) = temp_files(run).first() {
        return Err(format!("temporary file {t} survived a restart"));
    }
    let cfg = load_config(run).map_err(|e| e.to_string())?;
    let rows = std::fs::read_to_string(run.join("history.csv")).map_or(0, |h| h.lines().count().saturating_sub(1));
    let last = run.join("last.safetensors");
    if !last.exists() {
        return if rows == 0 { Ok(0) } else { Err(format!("history has {rows} epochs but there is no checkpoint")) };
    }
    let ckpt = checkpoint::load_matching(&last, &cfg).map_err(|e| e.to_string())?;
    let files = incept::report::History::load(run).map_err(|e| e.to_string())?;
    if rows != ckpt.state.epoch || Some(&files) != ckpt.history.as_ref() {
        return Err(format!("history files have {rows} epochs, the last checkpoint {}", ckpt.state.epoch));
    }
    Ok(rows)
}

#[test]
fn one_trainer_at_a_time_and_sigkill_at_random_points_never_breaks_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    let w = weights(tmp.path());
    let run = tmp.path().join("run");
    let first = ["train", "--data", s(&data), "--weights", s(&w), "--out", s(&run), "--epochs", "1000"];
    let a = Trainer::spawn(&[&first[..], &SMALL[..]].concat());
    assert!(a.wait_started(Duration::from_secs(300)));

    // While it runs, every other trainer is refused and nothing is removed.
    fails_with(incept(&[&first[..], &SMALL[..]].concat()), &["--resume", "--overwrite"]);
    fails_with(incept(&["train", "--resume", s(&run)]), &["another `incept train`"]);
    fails_with(incept(&[&first[..], &SMALL[..], &["--overwrite"]].concat()), &["another `incept train`"]);
    assert!(run.join("run.json").is_file());
    a.kill();

    // Kill-and-resume loop. Most kills come after the restart has set the
    // run up (checked then): at a random time, or as soon as a temporary
    // file shows a write in progress; some during start-up.
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
    let (mut kills, mut resumes, mut leftovers, mut violations) = (1, 0, 0, Vec::new());
    let started = Instant::now();
    while kills < 21 {
        leftovers += temp_files(&run).len();
        let t = Trainer::spawn(&["train", "--resume", s(&run)]);
        if rng.random_bool(0.2) {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..3000)));
        } else {
            assert!(t.wait_started(Duration::from_secs(300)), "a resume ended on its own");
            resumes += 1;
            if let Err(e) = agreement(&run) {
                violations.push(format!("after kill {kills}: {e}"));
            }
            if rng.random_bool(0.4) {
                // In the middle of writing a checkpoint or a history file.
                let deadline = Instant::now() + Duration::from_secs(60);
                while temp_files(&run).is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
            } else {
                std::thread::sleep(Duration::from_millis(rng.random_range(0..4000)));
            }
        }
        t.kill();
        kills += 1;
    }
    // Finish: one more epoch than the last checkpoint holds, to completion.
    let epoch = checkpoint::load(&run.join("last.safetensors")).map_or(0, |c| c.state.epoch);
    ok(incept(&["train", "--resume", s(&run), "--epochs", &(epoch + 1).to_string()]));
    match agreement(&run) {
        Ok(rows) => assert_eq!(rows, epoch + 1),
        Err(e) => violations.push(format!("after the final run: {e}")),
    }
    eprintln!(
        "kill loop: {kills} SIGKILLs, {resumes} restarts checked, {leftovers} temporary files left by kills (removed on restart), {} violations, {:.0} s",
        violations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(leftovers > 0, "no kill landed during a file write; the loop did not test the cleanup");
}

// ---- No wrong answer with exit status 0 (issue 22) ----

/// Runs `incept ARGS` under an address-space cap of `gib` GiB: for commands
/// that open no adapter (inspect, convert), so a size read before it was
/// checked aborts instead of passing.
fn run_capped_at(gib: u64, args: &[&str]) -> Output {
    let cmd = format!("ulimit -v {}; exec \"$0\" \"$@\"", gib * 1024 * 1024);
    Command::new("bash").args(["-c", &cmd, env!("CARGO_BIN_EXE_incept")]).args(args).output().unwrap()
}

/// Writes NaN over the first value of tensor `name` of the safetensors file `path`, in place.
fn poison(path: &Path, name: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let begin = header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[8 + len + begin..][..4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn diverged_training_fails_naming_the_step_and_nothing_non_finite_is_saved_or_used() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--data", s(&f.data), "--weights", s(&f.weights), "--out", s(out), "--epochs", "2"];
        args.extend(SMALL);
        args.extend(extra);
        incept(&args)
    };
    // A learning rate far too large, and a class weight far too large: status 1 at the step, naming what to change.
    let run = tmp.path().join("lr");
    fails_with(train(&run, &["--lr", "1e10"]), &["training diverged at epoch 1, step", "--lr 10000000000"]);
    let run_cw = tmp.path().join("cw");
    fails_with(train(&run_cw, &["--class-weight", "ant=1e308"]), &["training diverged at epoch 1, step 1", "the loss is inf", "--class-weight ant=1e308"]);
    for dir in [&run, &run_cw] {
        for ckpt in ["best.safetensors", "last.safetensors"] {
            assert!(!dir.join(ckpt).exists(), "a diverged run saved {ckpt}");
        }
    }

    // A checkpoint holding a NaN: every command that uses the model refuses it, naming the tensor.
    let bad = tmp.path().join("bad");
    copy_dir(&f.run, &bad);
    for ckpt in ["best.safetensors", "last.safetensors"] {
        // Hard links in copy_dir: replace them with copies before writing in place.
        let p = bad.join(ckpt);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, bytes).unwrap();
        poison(&p, "dense_1/kernel");
    }
    let img = f.data.join("valid/ant/000.png");
    let needles = ["best.safetensors", "'dense_1/kernel'", "NaN"];
    fails_with(incept(&["predict", "--model", s(&bad), s(&img)]), &needles);
    fails_with(incept(&["evaluate", "--model", s(&bad), "--data", s(&f.data.join("valid")), "--out", s(&tmp.path().join("cm.png"))]), &needles);
    fails_with(incept(&["export", "--model", s(&bad), "--format", "onnx", "--out", s(&tmp.path().join("m.onnx"))]), &needles);
    fails_with(incept(&["explain", "--model", s(&bad), "--out", s(&tmp.path().join("maps")), s(&img)]), &needles);
    fails_with(incept(&["train", "--resume", s(&bad), "--epochs", "2"]), &["last.safetensors", "'dense_1/kernel'", "NaN"]);
    assert!(!tmp.path().join("m.onnx").exists() && !tmp.path().join("cm.png").exists());
}

#[test]
fn no_command_writes_an_output_over_one_of_its_inputs() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(&f.run, &run);
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    let before = |p: &Path| std::fs::read(p).unwrap();
    let (best, run_json, last) = (before(&run.join("best.safetensors")), before(&run.join("run.json")), before(&run.join("last.safetensors")));
    let image = data.join("valid/ant/000.png");
    let pixels = before(&image);

    fails_with(incept(&["predict", "--model", s(&run), "--out", s(&run.join("best.safetensors")), s(&image)]), &["--out", "is the run's best.safetensors"]);
    fails_with(
        incept(&["evaluate", "--model", s(&run), "--data", s(&data.join("valid")), "--out", s(&run.join("run.json"))]),
        &["--out", "is the run's run.json"],
    );
    fails_with(
        incept(&["export", "--model", s(&run), "--format", "onnx", "--out", s(&run.join("last.safetensors"))]),
        &["--out", "is the run's last.safetensors"],
    );
    fails_with(incept(&["predict", "--model", s(&run), "--out", s(&image), s(&data.join("valid/ant"))]), &["--out", s(&image)]);
    // evaluate's other outputs (metrics.json, …) go beside the image: not into the data either.
    fails_with(
        incept(&["evaluate", "--model", s(&run), "--data", s(&data.join("valid")), "--out", s(&data.join("valid/cm.png"))]),
        &["--out", "is inside --data"],
    );
    fails_with(incept(&["explain", "--model", s(&run), "--out", s(&data.join("valid/ant/maps")), s(&data.join("valid/ant"))]), &["--out", "is inside the input"]);
    assert!(!data.join("valid/ant/maps").exists());
    fails_with(incept(&["features", "--weights", s(&f.weights), "--out", s(&f.weights), s(&image)]), &["--out", "is --weights"]);
    fails_with(incept(&["convert", "storage", s(&f.weights), "--out", s(&f.weights)]), &["--out", "is the input"]);
    // A run inside the data tree would be read as images by the next run: refused before anything is created.
    let inside = data.join("train/ant/run");
    let t = fails_with(
        incept(&["train", "--data", s(&data), "--weights", s(&f.weights), "--out", s(&inside), "--epochs", "1", "--image-size", "75"]),
        &["--out", "is inside the data tree"],
    );
    assert!(t.contains(s(&std::fs::canonicalize(&data).unwrap())), "{t}");
    assert!(!inside.exists());
    // The weights of a new run cannot be a file the run writes, even with --overwrite.
    let base_in_run = run.join("best.safetensors");
    fails_with(
        incept(&["train", "--data", s(&data), "--weights", s(&base_in_run), "--out", s(&run), "--overwrite", "--epochs", "1", "--image-size", "75"]),
        &["--out", "is the base weights"],
    );

    assert!(before(&run.join("best.safetensors")) == best && before(&run.join("run.json")) == run_json && before(&run.join("last.safetensors")) == last);
    assert_eq!(before(&image), pixels);
    ok(incept(&["predict", "--model", s(&run), "--out", s(&tmp.path().join("preds.csv")), s(&image)]));
}

/// A PNG with a tEXt chunk inserted before IEND: other bytes, the same pixels.
fn with_text_chunk(png: &[u8], text: &str) -> Vec<u8> {
    let data = [b"Comment\0".as_slice(), text.as_bytes()].concat();
    let mut crc = flate2::Crc::new();
    crc.update(b"tEXt");
    crc.update(&data);
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend(b"tEXt");
    chunk.extend(&data);
    chunk.extend(crc.sum().to_be_bytes());
    let mut out = png.to_vec();
    let iend = out.len() - 12;
    out.splice(iend..iend, chunk);
    out
}

#[cfg(unix)]
#[test]
fn labels_come_from_the_class_folder_a_file_is_in() {
    use std::os::unix::fs::symlink;
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    let train = data.join("train");
    // A link in ant/ to a bee image: Keras would train the bee as an ant.
    symlink("../bee/000.png", train.join("ant/alink.png")).unwrap();
    // The same bytes under two classes: a label conflict.
    std::fs::copy(train.join("cat/001.png"), train.join("bee/conflict.png")).unwrap();
    // A run directory inside a class folder: its PNG plots are not images of the class.
    copy_dir(&f.run, &train.join("ant/oldrun"));
    let run = tmp.path().join("run");
    let t = ok(incept(&[&["train", "--data", s(&data), "--weights", s(&f.weights), "--out", s(&run), "--epochs", "1"][..], &SMALL[..]].concat()));
    assert!(t.contains(&format!("warning: skipping {}: a link to {}", train.join("ant/alink.png").display(), std::fs::canonicalize(train.join("bee/000.png")).unwrap().display())), "{t}");
    assert!(t.contains("outside its class folder"), "{t}");
    assert!(t.contains(&format!("warning: skipping {}: holds a run (run.json)", train.join("ant/oldrun").display())), "{t}");
    assert!(t.contains("label conflict") && t.contains("cat/001.png") && t.contains("bee/conflict.png"), "{t}");
    // What the run trained on, image by image, with the label it learnt for each.
    ok(incept(&["evaluate", "--model", s(&run), "--split", "train", "--out", s(&tmp.path().join("cm.png"))]));
    let csv = std::fs::read_to_string(tmp.path().join("evaluation_predictions.csv")).unwrap();
    let label = |file: &str| csv.lines().find(|l| l.starts_with(s(&train.join(file)))).map(|l| l.split(',').nth(1).unwrap().to_string());
    assert_eq!(label("bee/000.png").as_deref(), Some("bee"), "{csv}");
    assert_eq!(label("ant/alink.png"), None, "{csv}");
    assert!(!csv.contains("oldrun"), "{csv}");
    assert_eq!(csv.lines().count() - 1, 7, "6 images and the conflicting copy:\n{csv}");
}

#[test]
fn a_trainer_whose_run_directory_is_replaced_stops_and_the_directory_holds_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    let w = weights(tmp.path());
    let rz = tmp.path().join("rz");
    let args = |seed: &str, epochs: &str| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--data", s(&data), "--weights", s(&w), "--out", s(&rz), "--epochs", epochs].map(String::from).to_vec();
        a.extend(SMALL[..6].iter().map(|x| x.to_string()));
        a.extend(["--seed".into(), seed.into()]);
        a
    };
    let a_args = args("3", "1000");
    let mut a = Command::new(env!("CARGO_BIN_EXE_incept")).args(&a_args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A's output, read to its end (a closed pipe would stop A for another reason).
    let stdout = BufReader::new(a.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in stdout.lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("run ") && line.contains(" next") {
                let _ = tx.send(());
            }
        }
        seen
    });
    assert!(lines.recv_timeout(Duration::from_secs(300)).is_ok(), "A did not start");
    // A is training. Its directory is removed and made again, and B trains into it.
    std::fs::remove_dir_all(&rz).unwrap();
    std::fs::create_dir(&rz).unwrap();
    ok(incept(&args("4", "1").iter().map(String::as_str).collect::<Vec<_>>()));
    // A notices at its next write, stops with status 1, and writes nothing more.
    let deadline = Instant::now() + Duration::from_secs(600);
    while a.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            a.kill().unwrap();
            panic!("A is still running 600 s after its directory was replaced");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = a.wait_with_output().unwrap();
    let seen = reader.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{seen}{err}");
    assert!(err.contains("was removed, replaced or moved") && err.contains(s(&rz)), "{err}");
    let cfg = load_config(&rz).unwrap();
    assert_eq!(cfg.seed, 4, "run.json is not B's");
    assert_eq!(agreement(&rz), Ok(1), "the directory does not hold B's run alone");
    assert_eq!(checkpoint::load_matching(&rz.join("best.safetensors"), &cfg).unwrap().state.epoch, 1);
}

/// Mean cross-entropy and accuracy of an evaluation_predictions.csv.
fn csv_scores(path: &Path) -> (f64, f64) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (mut loss, mut correct, mut n) = (0.0, 0.0, 0.0);
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let p = cells[header.iter().position(|h| *h == format!("probability_{}", cells[1])).unwrap()].parse::<f64>().unwrap();
        loss -= p.ln();
        correct += f64::from(u8::from(cells[1] == cells[2]));
        n += 1.0;
    }
    (loss / n, correct / n)
}

#[test]
fn epoch_metrics_equal_a_re_evaluation_when_nothing_is_random_with_and_without_init() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // Nothing random (no dropout, no augmentation, BatchNorm frozen) and weights that do not move.
    let fixed = ["--dropout", "0", "--no-augment", "--bn-inference", "--lr", "1e-12", "--epochs", "1"];
    let check = |run: &Path| {
        let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
        let row: Vec<f64> = history.lines().nth(1).unwrap().split(',').map(|v| v.parse().unwrap()).collect();
        let out = tmp.path().join(format!("{}.png", run.file_name().unwrap().to_str().unwrap()));
        ok(incept(&["evaluate", "--model", s(run), "--data", s(&f.data.join("train")), "--out", s(&out)]));
        let (loss, accuracy) = csv_scores(&tmp.path().join("evaluation_predictions.csv"));
        assert!((row[1] - loss).abs() < 1e-4 * loss.max(1.0), "{}: epoch loss {} but evaluate gives {loss}", run.display(), row[1]);
        assert_eq!(row[2], accuracy, "{}: epoch accuracy {} but evaluate gives {accuracy}", run.display(), row[2]);
    };
    let first = tmp.path().join("first");
    ok(incept(&[&["train", "--data", s(&f.data), "--weights", s(&f.weights), "--out", s(&first)][..], &SMALL[..], &fixed[..]].concat()));
    check(&first);
    let second = tmp.path().join("second");
    ok(incept(&[&["train", "--data", s(&f.data), "--init", s(&first), "--out", s(&second)][..], &SMALL[..], &fixed[..]].concat()));
    check(&second);
    // The --init run draws its shuffles, augmentations and dropout masks after the epochs
    // its starting weights were trained on, instead of replaying them (which scored as if memorised).
    let state = |run: &Path| -> serde_json::Value {
        let meta = incept::io::safetensors_io::read_metadata(&run.join("last.safetensors")).unwrap();
        serde_json::from_str(&meta["incept_train_state"]).unwrap()
    };
    assert_eq!(state(&first)["draw_offset"], 0);
    assert_eq!(state(&second)["draw_offset"], 1, "{}", state(&second));
}

#[test]
fn sizes_that_input_sets_are_checked_before_anything_is_allocated() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let img = f.data.join("valid/ant/000.png");
    fails_with(capped(&["predict", "--model", s(&f.run), "--tta", "4294967295", s(&img)]), &["--tta 4294967295", "bytes"]);
    let out = tmp.path().join("f.safetensors");
    fails_with(
        capped(&["features", "--weights", s(&f.weights), "--image-size", "60000", "--out", s(&out), s(&img)]),
        &["--image-size 60000", "bytes"],
    );
    for command in [&["bench", "model", "--iters", "1"][..], &["bench", "kernels", "--family", "conv", "--limit", "1"], &["tune"]] {
        fails_with(capped(&[command, &["--image-size", "60000", "--batch", "1"]].concat()), &["--image-size 60000", "bytes"]);
    }

    // An 8 KB Keras file declaring a 3.2 GB dataset: refused from its declared shape, under a 1 GiB cap.
    let h5 = tmp.path().join("huge.h5");
    std::fs::write(&h5, hostile_h5()).unwrap();
    let t = fails_with(run_capped_at(1, &["convert", "keras", s(&h5), "--out", s(&tmp.path().join("w.safetensors"))]), &["huge.h5", "[8192, 8192, 3, 4]", "declares"]);
    assert!(t.contains("bytes"), "{t}");
    let o = run_capped_at(1, &["inspect", s(&h5)]);
    assert!(o.status.success() && text(&o).contains("declares"), "{}", text(&o));
    // A 4 GiB sparse file whose header does not fit its data: refused from its header, under a 1 GiB cap.
    let sparse = tmp.path().join("sparse.safetensors");
    let mut head = 64u64.to_le_bytes().to_vec();
    head.extend(format!("{:<64}", r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#).bytes());
    std::fs::write(&sparse, &head).unwrap();
    std::fs::OpenOptions::new().write(true).open(&sparse).unwrap().set_len(4 << 30).unwrap();
    fails_with(
        run_capped_at(1, &["convert", "storage", s(&sparse), "--out", s(&tmp.path().join("s16.safetensors")), "--f16"]),
        &["sparse.safetensors", "declares 16 bytes of tensor data"],
    );
}

/// A legacy Keras HDF5 weights file (8 KB) whose one dataset, a chunked,
/// deflated [8, 8, 3, 4], has its dataspace edited to declare [8192, 8192, 3, 4].
fn hostile_h5() -> Vec<u8> {
    use hdf5_pure::{AttrValue, FileBuilder};
    let mut b = FileBuilder::new();
    b.set_attr("layer_names", AttrValue::VarLenAsciiStringArray(vec!["dense".into()]));
    let mut g = b.create_group("dense");
    g.set_attr("weight_names", AttrValue::VarLenAsciiStringArray(vec!["kernel:0".into()]));
    g.create_dataset("kernel:0").with_f32_data(&[0.5; 768]).with_shape(&[8, 8, 3, 4]).with_chunks(&[8, 8, 3, 4]).with_deflate(6);
    b.add_group(g.finish());
    let mut bytes = b.finish().unwrap();
    let dims = |d: [u64; 4]| d.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let (small, huge) = (dims([8, 8, 3, 4]), dims([8192, 8192, 3, 4]));
    let mut patched = 0;
    let mut i = 0;
    while i + small.len() <= bytes.len() {
        if bytes[i..i + small.len()] == small[..] {
            bytes[i..i + small.len()].copy_from_slice(&huge);
            patched += 1;
        }
        i += 1;
    }
    assert!(patched > 0, "no dataspace to edit");
    bytes
}

#[test]
fn what_used_to_pass_in_silence_is_warned_about() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    let run = tmp.path().join("run");
    ok(incept(&[&["train", "--data", s(&data), "--weights", s(&f.weights), "--out", s(&run), "--epochs", "1"][..], &SMALL[..]].concat()));

    // A train/valid leak that differs only by a PNG text chunk (the pixels are the same).
    let leak = data.join("valid/ant/leak.png");
    std::fs::write(&leak, with_text_chunk(&std::fs::read(data.join("train/ant/000.png")).unwrap(), "copied")).unwrap();
    let t = ok(incept(&["evaluate", "--model", s(&run), "--split", "valid", "--out", s(&tmp.path().join("cm.png"))]));
    assert!(t.contains("warning:") && t.contains("train/ant/000.png") && t.contains("valid/ant/leak.png") && t.contains("only metadata chunks differ"), "{t}");
    std::fs::remove_file(&leak).unwrap();

    // --resume after the data changed: a class went from 2 to 5 images, one of them also under another class.
    for i in 0..3 {
        let png = with_text_chunk(&std::fs::read(data.join("train/bee/000.png")).unwrap(), &format!("new {i}"));
        std::fs::write(data.join(format!("train/bee/new{i}.png")), png).unwrap();
    }
    std::fs::copy(data.join("train/cat/001.png"), data.join("train/bee/new0.png")).unwrap();
    let t = ok(incept(&["train", "--resume", s(&run), "--epochs", "2"]));
    assert!(t.contains("warning: the train split of class bee has 5 images now, 2 when the run last trained"), "{t}");
    assert!(t.contains("label conflict") && t.contains("train/cat/001.png") && t.contains("train/bee/new0.png"), "{t}");

    // A split.json entry moved from train to valid by hand.
    let split_data = tmp.path().join("split_data");
    make_tree(&split_data, &[("train", 3)]);
    let split_run = tmp.path().join("split_run");
    ok(incept(&[&["train", "--data", s(&split_data), "--weights", s(&f.weights), "--out", s(&split_run), "--epochs", "1", "--validation-split", "0.34"][..], &SMALL[..]].concat()));
    let record_path = split_run.join("split.json");
    let original = std::fs::read_to_string(&record_path).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&original).unwrap();
    let moved = record["train"].as_array_mut().unwrap().remove(0);
    let moved_path = moved["path"].as_str().unwrap().to_string();
    record["valid"].as_array_mut().unwrap().push(moved);
    std::fs::write(&record_path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let t = ok(incept(&["evaluate", "--model", s(&split_run), "--split", "valid", "--out", s(&tmp.path().join("cm2.png"))]));
    assert!(t.contains("warning:") && t.contains("split.json") && t.contains("the file was edited") && t.contains(&moved_path), "{t}");

    // split.json naming an existing file by an absolute path: said as such, not "is gone".
    let mut record: serde_json::Value = serde_json::from_str(&original).unwrap();
    let first = record["valid"][0]["path"].as_str().unwrap().to_string();
    let absolute = std::fs::canonicalize(split_data.join("train").join(&first)).unwrap();
    record["valid"][0]["path"] = serde_json::json!(s(&absolute));
    std::fs::write(&record_path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let t = fails_with(incept(&["evaluate", "--model", s(&split_run), "--split", "valid"]), &["split.json", "not a path inside", s(&absolute)]);
    assert!(!t.contains("is gone"), "{t}");
}

#[cfg(unix)]
#[test]
fn messages_say_what_is_wrong() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    // --fine-tune-lr nan: the value as typed, not Some(NaN).
    let t = fails_with(
        incept(&["train", "--data", s(&f.data), "--weights", s(&f.weights), "--out", s(&out), "--head-epochs", "1", "--fine-tune-lr", "nan"]),
        &["--fine-tune-lr NaN", "positive learning rate"],
    );
    assert!(!t.contains("Some("), "{t}");

    // A class folder that is a link to another class folder: said, not just "has no images".
    let data = tmp.path().join("data");
    make_tree(&data, &[("train", 2), ("valid", 1)]);
    std::os::unix::fs::symlink(data.join("train/cat"), data.join("train/dog")).unwrap();
    fails_with(
        incept(&["train", "--data", s(&data), "--weights", s(&f.weights), "--out", s(&out), "--image-size", "75"]),
        &["train/dog", "is a link to", "has no images", "the same file as one listed before it"],
    );
    assert!(!out.exists());

    // predict says which path it cannot resolve (here: longer than the system allows) instead of skipping it silently.
    let pics = tmp.path().join("pics");
    std::fs::create_dir(&pics).unwrap();
    std::fs::copy(f.data.join("valid/ant/000.png"), pics.join("a.png")).unwrap();
    let name = "d".repeat(200);
    let script = format!("cd \"$0\" && for i in $(seq 1 24); do mkdir {name} && cd {name}; done && cp \"$1\" deep.png");
    assert!(Command::new("bash").args(["-c", &script, s(&pics), s(&pics.join("a.png"))]).status().unwrap().success());
    let t = ok(incept(&["predict", "--model", s(&f.run), s(&pics)]));
    assert!(t.contains("warning: skipping") && t.contains("cannot be resolved") && t.contains(&name), "{t}");
    assert_eq!(t.lines().filter(|l| l.contains(".png\t")).count(), 1, "{t}");
}

#[test]
fn quickstart_runs_the_binary_where_cargo_puts_it() {
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/quickstart.sh")).unwrap();
    let line = script.lines().find(|l| l.starts_with("bin=")).expect("quickstart.sh sets bin=");
    let bin = |target: Option<&str>| {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!("{line}; echo \"$bin\"")]).env_remove("CARGO_TARGET_DIR");
        if let Some(t) = target {
            cmd.env("CARGO_TARGET_DIR", t);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap().trim().to_string()
    };
    assert_eq!(bin(Some("/tmp/shared-target")), "/tmp/shared-target/release/incept");
    assert_eq!(bin(None), "target/release/incept");
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // The pipe's read end is closed before incept starts, so its first line
    // to standard output fails with a broken pipe, as under `incept … | head`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_incept")).args(["bench", "kernels", "--list"]).stdout(writer).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{err}");
}
