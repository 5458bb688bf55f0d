//! One rule for every output path: a command never writes where it reads.
//! Before any work, each command resolves its outputs and its inputs (the
//! run's files, the data tree, the images, the weights) and refuses an output
//! that is, or is inside, one of its inputs, naming both. A folder given as
//! an input covers everything under it, so `train --out DATA/train/coat/run`
//! (a run that the next walk of DATA would read as images) is refused like
//! `predict --out RUN/best.safetensors`.
//!
//! Paths are compared after resolution: an existing path is made canonical
//! (links and `..` resolved); an output that does not exist yet is its
//! nearest existing ancestor made canonical, with the rest appended.

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// `path` absolute, with links and `..` resolved as far as it exists.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path))
    };
    // The nearest ancestor that exists, made canonical; the rest appended as written.
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            let mut out = canonical;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// A path with what it is to the command: the flag that gave an output
/// (`--out`), or what an input is (`the data tree`, `the run's run.json`).
pub type Named = (String, PathBuf);

/// `(what, path)` as a [`Named`].
pub fn named(what: impl Into<String>, path: impl Into<PathBuf>) -> Named {
    (what.into(), path.into())
}

/// Errors before any work when an output (`(flag, path)`) is one of the
/// inputs (`(what, path)`) or lies inside one (an input folder), naming
/// both; inputs that do not exist are skipped (reading them reports them).
pub fn refuse_output_inside_inputs(outputs: &[Named], inputs: &[Named]) -> Result<()> {
    let inputs: Vec<(&str, &Path, PathBuf)> = inputs.iter().filter(|(_, p)| p.exists()).map(|(what, p)| (what.as_str(), p.as_path(), resolve(p))).collect();
    for (flag, out) in outputs {
        let resolved = resolve(out);
        for (what, given, input) in &inputs {
            if resolved == *input || resolved.starts_with(input) {
                let relation = if resolved == *input { "is" } else { "is inside" };
                return Err(Error::Invalid(format!(
                    "{flag} {}: {relation} {what} {}{}; an output never replaces what the command reads, so write it elsewhere",
                    out.display(),
                    given.display(),
                    if resolved != *out { format!(" (resolved: {} in {})", resolved.display(), input.display()) } else { String::new() }
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_inside_inputs_are_refused_through_links_and_dot_dot() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let data = root.join("data");
        std::fs::create_dir_all(data.join("train/coat")).unwrap();
        std::fs::write(data.join("train/coat/0.png"), b"png").unwrap();
        let weights = root.join("w.safetensors");
        std::fs::write(&weights, b"w").unwrap();
        let inputs = [named("the data tree", &data), named("--weights", &weights), named("missing", "/nonexistent/x")];
        let out = |p: PathBuf| [named("--out", p)];
        // Not yet existing outputs resolve through their nearest existing ancestor.
        let e = refuse_output_inside_inputs(&out(data.join("train/coat/run/sub")), &inputs).unwrap_err().to_string();
        assert!(e.contains("--out") && e.contains("is inside the data tree") && e.contains(&data.display().to_string()), "{e}");
        let e = refuse_output_inside_inputs(&out(root.join("elsewhere/../w.safetensors")), &inputs).unwrap_err().to_string();
        assert!(e.contains("is --weights"), "{e}");
        #[cfg(unix)]
        {
            let link = root.join("link");
            std::os::unix::fs::symlink(data.join("train"), &link).unwrap();
            let e = refuse_output_inside_inputs(&out(link.join("coat/0.png")), &inputs).unwrap_err().to_string();
            assert!(e.contains("is inside the data tree"), "{e}");
        }
        // Beside the inputs: fine; a sibling whose name starts like an input is not inside it.
        refuse_output_inside_inputs(&[named("--out", root.join("run")), named("--out", root.join("data2/x"))], &inputs).unwrap();
        assert_eq!(resolve(&root.join("a/./b/../c")), root.join("a/c"));
    }
}
