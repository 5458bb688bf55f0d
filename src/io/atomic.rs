//! Atomic file writes: the bytes go to a hidden temporary file in the
//! target's directory (so the rename stays on one filesystem), which is
//! synced and then renamed over the target. A reader never sees a
//! half-written file, and a failed or interrupted write leaves the old file
//! intact and removes its temporary file.

use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically. Errors name `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes `path` atomically through a buffered writer, so large files stream
/// instead of being assembled in memory first; returns what `write` returns.
/// Errors name `path` (and the temporary file when writing it failed).
pub fn write_atomic_with<T>(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>) -> Result<T> {
    let tmp = temp_path(path)?;
    let written = write_temp(&tmp, write)
        .map_err(|e| io_err(path, format!("writing {}: {e}", tmp.display())))
        .and_then(|value| {
            fs::rename(&tmp, path).map_err(|e| io_err(path, format!("renaming {} into place: {e}", tmp.display())))?;
            Ok(value)
        });
    match written {
        Ok(value) => {
            sync_dir(path);
            Ok(value)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Errors, naming `path`, unless a file can be written atomically there
/// (its directory exists and is writable): lets a command fail before its
/// work rather than after it. Writes and removes a temporary file.
pub fn check_writable(path: &Path) -> Result<()> {
    let tmp = temp_path(path)?;
    File::create(&tmp).and_then(|_| fs::remove_file(&tmp)).map_err(|e| io_err(path, format!("cannot be written: {e}")))
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// `dir/.name.tmp-PID-N`: same directory, hidden, unique per process and call
/// (threads writing the same target never share a temporary file).
fn temp_path(path: &Path) -> Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| io_err(path, "not a file path"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id())))
}

/// The writer's process id when `name` is a temporary file name made by
/// [`temp_path`] (`.NAME.tmp-PID-N`), so a later run can remove the ones
/// whose writer was killed.
pub fn temp_file_writer(name: &str) -> Option<u32> {
    let (_, tail) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn write_temp<T>(tmp: &Path, write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>) -> std::io::Result<T> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    let value = write(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(value)
}

/// Makes the rename durable; best effort, as not every platform can open a directory.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Writes `files` (name, bytes) as the folder `dir`, atomically: they go to a
/// hidden temporary folder beside `dir`, are synced, and the folder is renamed
/// into place. An existing `dir` is replaced (moved aside, then removed once
/// the new folder is in place) only when `replace` is set. On failure the
/// temporary folder is removed and `dir` is as it was.
pub fn write_dir_atomic(dir: &Path, files: &[(String, Vec<u8>)], replace: bool) -> Result<()> {
    if dir.exists() && !replace {
        return Err(io_err(dir, "already exists"));
    }
    let tmp = temp_path(dir)?;
    let written = (|| -> std::io::Result<()> {
        fs::create_dir(&tmp)?;
        for (name, bytes) in files {
            write_temp(&tmp.join(name), |w| w.write_all(bytes))?;
        }
        File::open(&tmp)?.sync_all()
    })()
    .map_err(|e| io_err(dir, format!("writing {}: {e}", tmp.display())))
    .and_then(|()| {
        if !dir.exists() {
            return fs::rename(&tmp, dir).map_err(|e| io_err(dir, format!("renaming {} into place: {e}", tmp.display())));
        }
        let old = temp_path(dir)?;
        fs::rename(dir, &old).map_err(|e| io_err(dir, format!("moving the old folder aside: {e}")))?;
        if let Err(e) = fs::rename(&tmp, dir) {
            let _ = fs::rename(&old, dir);
            return Err(io_err(dir, format!("renaming {} into place: {e}", tmp.display())));
        }
        let _ = fs::remove_dir_all(&old);
        Ok(())
    });
    match written {
        Ok(()) => {
            sync_dir(dir);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_with_their_writer() {
        let tmp = temp_path(Path::new("/run/last.safetensors")).unwrap();
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_file_writer(name), Some(std::process::id()));
        for other in ["last.safetensors", ".last.safetensors", ".a.tmp-x-1", ".a.tmp-12", "a.tmp-12-3", ".incept.lock"] {
            assert_eq!(temp_file_writer(other), None, "{other}");
        }
    }
}
