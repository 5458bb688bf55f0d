//! The run directory as a unit: `train` holds an exclusive advisory lock on
//! `RUN/.incept.lock` for as long as it runs (the OS releases it when the
//! process dies, however it dies, so a killed run can be resumed), refuses a
//! directory that already holds a run unless told to resume or overwrite it,
//! and removes the temporary files that a killed writer left behind.
//!
//! A directory "holds a run" when it has a run.json. Everything else incept
//! writes there is derived from run.json and the checkpoints.
//!
//! The lock belongs to a directory, not to a path: a directory removed,
//! replaced or moved while its trainer runs (`rm -rf RUN; mkdir RUN`, then a
//! second `train --out RUN`) would let two trainers write one path. So the
//! trainer records the identity (device and inode) of the directory and of
//! its lock file when it takes the lock, and every write goes through
//! [`RunDir::for_writing`], which checks both first: a trainer whose
//! directory is no longer the one it locked stops, writing nothing more.

use super::checkpoint::{BEST, LAST};
use super::config::TrainConfig;
use super::split_record::SPLIT_JSON;
use crate::error::{Error, Result};
use crate::io::output_paths::{Named, named};
use crate::io::write_atomic;
use crate::report::history::{HISTORY_CSV, HISTORY_JSON};
use crate::report::curves::{PRECISION_RECALL_PNG, ROC_PNG};
use crate::report::evaluation::{EVALUATION_CSV, METRICS_JSON};
use crate::report::plots::{ACCURACY_PNG, LOSS_PNG};
use crate::report::profile::{PROFILE_JSON, PROFILE_PNG};
use crate::report::top_losses::TOP_LOSSES_PNG;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub const RUN_CONFIG: &str = "run.json";
pub const LOCK_FILE: &str = ".incept.lock";
/// Written by `incept evaluate` next to the run's own files.
pub const CONFUSION_PNG: &str = "confusion_matrix.png";

/// Every file a run writes (`evaluate`'s outputs included), removed by
/// `--overwrite` (run.json last, so an interrupted overwrite still reads as a run).
const RUN_FILES: [&str; 14] = [
    LAST,
    BEST,
    HISTORY_CSV,
    HISTORY_JSON,
    LOSS_PNG,
    ACCURACY_PNG,
    CONFUSION_PNG,
    METRICS_JSON,
    EVALUATION_CSV,
    ROC_PNG,
    PRECISION_RECALL_PNG,
    TOP_LOSSES_PNG,
    SPLIT_JSON,
    RUN_CONFIG,
];

/// The files `train` writes that other commands (predict, evaluate, export,
/// explain, `--resume`, `--init`) read: no command's output may replace one.
const TRAIN_FILES: [&str; 11] =
    [RUN_CONFIG, BEST, LAST, SPLIT_JSON, HISTORY_CSV, HISTORY_JSON, LOSS_PNG, ACCURACY_PNG, PROFILE_JSON, PROFILE_PNG, LOCK_FILE];

/// The run's own files in `dir`, as inputs of a command that reads the run
/// (see `io::output_paths`).
pub fn run_files_as_inputs(dir: &Path) -> Vec<Named> {
    TRAIN_FILES.iter().map(|name| named(format!("the run's {name}"), dir.join(name))).collect()
}

/// Where `train --out DIR` writes (given by `flag`): the directory and every
/// file a run holds there, as outputs (see `io::output_paths`).
pub fn run_outputs(flag: &str, dir: &Path) -> Vec<Named> {
    let mut out = vec![named(flag, dir)];
    out.extend(RUN_FILES.iter().chain(TRAIN_FILES.iter()).map(|name| named(flag, dir.join(name))));
    out
}

/// A locked run directory; the lock lasts as long as this value.
pub struct RunDir {
    path: PathBuf,
    _lock: File,
    /// (device, inode) of the directory and of the lock file when locked.
    identity: Option<[(u64, u64); 2]>,
}

/// (device, inode) of what `path` names now; `None` where it is gone (or
/// the platform has no inodes).
fn identity_of(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// Whether `dir` holds a run (has a run.json).
pub fn holds_run(dir: &Path) -> bool {
    dir.join(RUN_CONFIG).exists()
}

/// The refusal for `train --out DIR` on a directory with a run.
pub fn refuse_existing(dir: &Path) -> Error {
    io_err(
        dir,
        format!(
            "holds a run already ({RUN_CONFIG}); continue it with `incept train --resume {0}`, or replace it with `--out {0} --overwrite`",
            dir.display()
        ),
    )
}

impl RunDir {
    /// Opens `dir` for a new run: creates it when missing, takes the lock,
    /// refuses a directory that holds a run (unless `overwrite`, which
    /// removes the run's files), and removes stale temporary files. Call it
    /// only once every argument has been checked: it creates the directory
    /// and its lock file, and never removes a lock file (another process may
    /// be waiting on that very file).
    pub fn create(dir: &Path, overwrite: bool) -> Result<RunDir> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, format!("cannot create the run directory: {e}")))?;
        let run = RunDir::lock(dir)?;
        if holds_run(&run.path) {
            if !overwrite {
                return Err(refuse_existing(dir));
            }
            for name in RUN_FILES {
                match fs::remove_file(run.path.join(name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_err(&run.path.join(name), format!("cannot remove for --overwrite: {e}")));
                    }
                    _ => {}
                }
            }
        }
        Ok(run)
    }

    /// Opens the run in `dir` to continue it: takes the lock and removes
    /// stale temporary files; errors when `dir` holds no run.
    pub fn resume(dir: &Path) -> Result<RunDir> {
        if !holds_run(dir) {
            return Err(io_err(dir, format!("holds no run to resume (no {RUN_CONFIG}); start one with `incept train --out {}`", dir.display())));
        }
        RunDir::lock(dir)
    }

    fn lock(dir: &Path) -> Result<RunDir> {
        let path = fs::canonicalize(dir).map_err(|e| io_err(dir, format!("cannot open the run directory: {e}")))?;
        let lock_path = path.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err(dir, format!("cannot write the run directory: {e}")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io_err(
                    dir,
                    "another `incept train` is running in this run directory (it holds the lock on .incept.lock); wait for it to finish, or train into another --out",
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, format!("cannot lock the run directory: {e}"))),
        }
        let identity = identity_of(&path).zip(identity_of(&lock_path)).map(|(dir, lock)| [dir, lock]);
        let run = RunDir { path, _lock: file, identity };
        let removed = remove_stale_temp_files(&run.path)?;
        if removed > 0 {
            eprintln!("removed {removed} temporary file(s) left in {} by an interrupted run", run.path.display());
        }
        Ok(run)
    }

    /// The directory, absolute and canonical.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory to write into, after checking that it is still the one
    /// this trainer locked (same directory and lock file, by device and
    /// inode): every write of a run goes through here. Errors, naming the
    /// directory, when it was removed, replaced or moved.
    pub fn for_writing(&self) -> Result<&Path> {
        let Some([dir, lock]) = self.identity else { return Ok(&self.path) };
        let now = [identity_of(&self.path), identity_of(&self.path.join(LOCK_FILE))];
        if now != [Some(dir), Some(lock)] {
            let what = if now[0] != Some(dir) { "was removed, replaced or moved" } else { "lost its lock file (.incept.lock was removed or replaced)" };
            return Err(io_err(
                &self.path,
                format!(
                    "{what} while this `incept train` ran, so another trainer may own it now; stopping without writing anything more (this trainer's run is not in that directory)"
                ),
            ));
        }
        Ok(&self.path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn save_config(&self, cfg: &TrainConfig) -> Result<()> {
        save_config(self.for_writing()?, cfg)
    }
}

pub fn save_config(dir: &Path, cfg: &TrainConfig) -> Result<()> {
    let path = dir.join(RUN_CONFIG);
    let json = serde_json::to_string_pretty(cfg).map_err(|e| io_err(&path, format!("cannot encode the run configuration: {e}")))?;
    write_atomic(&path, json.as_bytes())
}

/// The preprocessing of the run whose checkpoint `file` is, from the run.json
/// beside it, as `incept inspect` reports it; `None` when there is no
/// readable run.json there.
pub fn preprocess_beside(file: &Path) -> Option<String> {
    let dir = file.parent()?;
    if !dir.join(RUN_CONFIG).is_file() {
        return None;
    }
    let cfg = load_config(dir).ok()?;
    Some(format!("{} ({}), from the run's run.json", cfg.preprocess.name(), cfg.preprocess.formula()))
}

/// Reads and validates `dir/run.json`; errors name the file.
pub fn load_config(dir: &Path) -> Result<TrainConfig> {
    let path = dir.join(RUN_CONFIG);
    let text = fs::read_to_string(&path).map_err(|e| io_err(&path, format!("cannot read the run configuration: {e}")))?;
    let cfg: TrainConfig = serde_json::from_str(&text).map_err(|e| io_err(&path, format!("bad run configuration: {e}")))?;
    cfg.validate().map_err(|e| io_err(&path, format!("bad run configuration: {e}")))?;
    Ok(cfg)
}

/// Removes `dir/.NAME.tmp-PID-N` files (see `io::atomic`) whose writer is
/// gone. Only called under the run lock, so no `train` is writing them; a
/// temporary file of a live process (an `evaluate` writing its image) stays.
fn remove_stale_temp_files(dir: &Path) -> Result<usize> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, format!("cannot list the run directory: {e}")))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(crate::io::atomic::temp_file_writer) else { continue };
        if pid != std::process::id() && !process_alive(pid) {
            fs::remove_file(entry.path()).map_err(|e| io_err(&entry.path(), format!("cannot remove a stale temporary file: {e}")))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether process `pid` exists (Linux: /proc); elsewhere assume it does
/// not, as the lock already excludes other trainers.
fn process_alive(pid: u32) -> bool {
    cfg!(target_os = "linux") && Path::new(&format!("/proc/{pid}")).exists()
}
