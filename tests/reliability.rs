//! What a run directory guarantees, tested through the `incept` binary:
//! one trainer at a time, arguments checked before anything is written,
//! checkpoints that agree with run.json (or are refused, naming what
//! differs), resume that refuses conflicting flags and repairs leftovers,
//! SIGKILL at random points never leaving a disagreeing or unresumable run,
//! folder walks that survive link cycles, and oversized flags that fail
//! with a message under a memory cap instead of aborting.
mod binary;

use binary::{incept, make_tree, ok, text, weights};
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
/// disk use small.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let name = e.unwrap().file_name();
        let (src, dst) = (from.join(&name), to.join(&name));
        if src.extension().is_some_and(|x| x == "safetensors") {
            std::fs::hard_link(&src, &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
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

    // The reproduction: a new run into a run directory is refused, naming both ways out.
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
    host_memory_refusal(&train);
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
