//! Leaks between dataset splits: the same image (the same file, or another
//! file with the same bytes) in two of train, validation and test makes the
//! held-out scores measure memory instead of generalisation, silently. Each
//! file's contents are hashed ([`crate::io::word_hash`]); files whose size
//! and hash agree are compared byte for byte before a duplicate is reported.
//! Duplicates within one split are not a leak and are allowed.

use crate::error::{Error, Result};
use crate::io::word_hash::file_hash;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A file's size and content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentKey {
    pub bytes: u64,
    pub hash: u64,
}

impl ContentKey {
    pub fn of(path: &Path) -> Result<ContentKey> {
        let (bytes, hash) = file_hash(path)?;
        Ok(ContentKey { bytes, hash })
    }
}

/// One split's files, named as the error messages name the split.
pub struct SplitFiles<'a> {
    pub name: &'a str,
    pub files: &'a [PathBuf],
}

/// Errors, naming both files and both splits, when a file of one split has
/// the same contents as a file of another. Files that cannot be read are
/// left to the loader (which skips them with a warning).
pub fn check_no_leaks(splits: &[SplitFiles]) -> Result<()> {
    let mut first: HashMap<ContentKey, Vec<(usize, &Path)>> = HashMap::new();
    for (s, split) in splits.iter().enumerate() {
        for path in split.files {
            let Ok(key) = ContentKey::of(path) else { continue };
            let seen = first.entry(key).or_default();
            for &(other, earlier) in seen.iter() {
                if other != s && same_bytes(earlier, path) {
                    return Err(Error::Invalid(format!(
                        "{} ({}) and {} ({}) have the same contents: an image in two splits makes the {} scores measure memory, not generalisation; remove one of them",
                        earlier.display(),
                        splits[other].name,
                        path.display(),
                        split.name,
                        split.name
                    )));
                }
            }
            // One representative per split is enough for later comparisons.
            if !seen.iter().any(|&(other, _)| other == s) {
                seen.push((s, path));
            }
        }
    }
    Ok(())
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_in_two_splits_are_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let (a, b, c, d) = (write("a", b"one image"), write("b", b"another one"), write("c", b"one image"), write("d", b"one imagf"));
        // Within one split: allowed.
        check_no_leaks(&[SplitFiles { name: "train", files: &[a.clone(), c.clone()] }]).unwrap();
        // Same size, one byte different: no leak.
        check_no_leaks(&[SplitFiles { name: "train", files: &[a.clone(), b.clone()] }, SplitFiles { name: "test", files: std::slice::from_ref(&d) }]).unwrap();
        let e = check_no_leaks(&[SplitFiles { name: "train", files: &[a.clone(), b] }, SplitFiles { name: "test", files: &[d, c.clone()] }])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&a.display().to_string()) && e.contains(&c.display().to_string()) && e.contains("test"), "{e}");
        // The very same file listed in two splits.
        let e = check_no_leaks(&[SplitFiles { name: "train", files: std::slice::from_ref(&a) }, SplitFiles { name: "validation", files: std::slice::from_ref(&a) }])
            .unwrap_err()
            .to_string();
        assert!(e.contains("validation"), "{e}");
    }
}
