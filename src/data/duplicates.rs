//! Duplicates in a dataset. The same image (the same file, or another file
//! with the same bytes) in two of train, validation and test makes the
//! held-out scores measure memory instead of generalisation, silently: it is
//! refused. Two weaker cases are warned about: the same bytes under two
//! classes of one split (a label conflict: one image taught as two classes),
//! and two files in two splits whose pixels are the same though their bytes
//! are not (PNG files that differ only in metadata chunks, such as a text
//! chunk). Each file's contents are hashed ([`crate::io::word_hash`]);
//! files whose hashes agree are compared byte for byte before a duplicate is
//! reported. Duplicates within one class are allowed.

use crate::error::{Error, Result};
use crate::io::word_hash::{WordHash, file_hash};
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

    fn of_bytes(data: &[u8]) -> ContentKey {
        let mut h = WordHash::default();
        h.bytes(data);
        ContentKey { bytes: data.len() as u64, hash: h.finish() }
    }
}

/// One split's samples (file, label), named as the messages name the
/// split, with its class names.
pub struct SplitFiles<'a> {
    pub name: &'a str,
    pub samples: &'a [(PathBuf, usize)],
    pub classes: &'a [String],
}

/// What a PNG's pixels are made of: the header, the palette and the image
/// data (IHDR, PLTE and the IDAT stream), without the ancillary chunks
/// (text, time, colour profile) that tools add or strip. `None` for a file
/// that is not a well-formed PNG.
pub fn png_image_data(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut rest = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n")?;
    let mut out = Vec::new();
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
        let kind = &rest[4..8];
        let data = rest.get(8..8 + len)?;
        if matches!(kind, b"IHDR" | b"PLTE") {
            out.extend_from_slice(kind);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        if matches!(kind, b"IHDR" | b"PLTE" | b"IDAT") {
            out.extend_from_slice(data);
        }
        if kind == b"IEND" {
            return Some(out);
        }
        rest = rest.get(12 + len..)?;
    }
    None
}

/// One file seen, for comparisons with later ones.
struct Seen<'a> {
    split: usize,
    label: usize,
    path: &'a Path,
}

/// Errors, naming both files and both splits, when a file of one split has
/// the same contents as a file of another. Returns the warnings: the same
/// bytes under two classes of one split, the same PNG pixels in two splits.
/// Files that cannot be read are left to the loader (which skips them with
/// a warning).
pub fn check_duplicates(splits: &[SplitFiles]) -> Result<Vec<String>> {
    let mut by_bytes: HashMap<ContentKey, Vec<Seen>> = HashMap::new();
    let mut by_pixels: HashMap<ContentKey, Vec<Seen>> = HashMap::new();
    let mut warnings = Vec::new();
    for (s, split) in splits.iter().enumerate() {
        for (path, label) in split.samples {
            let Ok(bytes) = std::fs::read(path) else { continue };
            let seen = by_bytes.entry(ContentKey::of_bytes(&bytes)).or_default();
            let mut same_bytes_elsewhere = false;
            for earlier in seen.iter() {
                if (earlier.split, earlier.label) == (s, *label) || !same_bytes(earlier.path, &bytes) {
                    continue;
                }
                if earlier.split != s {
                    return Err(Error::Invalid(format!(
                        "{} ({}) and {} ({}) have the same contents: an image in two splits makes the {} scores measure memory, not generalisation; remove one of them",
                        earlier.path.display(),
                        splits[earlier.split].name,
                        path.display(),
                        split.name,
                        split.name
                    )));
                }
                same_bytes_elsewhere = true;
                warnings.push(format!(
                    "{} (class {}) and {} (class {}) of {} have the same contents: one image taught as two classes (a label conflict); remove the wrong one",
                    earlier.path.display(),
                    split.classes[earlier.label],
                    path.display(),
                    split.classes[*label],
                    split.name
                ));
            }
            // One representative per split and class is enough for later comparisons.
            if !seen.iter().any(|e| (e.split, e.label) == (s, *label)) {
                seen.push(Seen { split: s, label: *label, path });
            }
            if same_bytes_elsewhere {
                continue;
            }
            let Some(pixels) = png_image_data(&bytes) else { continue };
            let seen = by_pixels.entry(ContentKey::of_bytes(&pixels)).or_default();
            for earlier in seen.iter().filter(|e| e.split != s) {
                let earlier_pixels = std::fs::read(earlier.path).ok().and_then(|b| png_image_data(&b));
                // Not the same bytes: those in two splits were refused above.
                if earlier_pixels.as_deref() == Some(&pixels[..]) {
                    warnings.push(format!(
                        "{} ({}) and {} ({}) hold the same image (the same PNG image data; only metadata chunks differ): the {} scores partly measure memory; remove one of them",
                        earlier.path.display(),
                        splits[earlier.split].name,
                        path.display(),
                        split.name,
                        split.name
                    ));
                }
            }
            if !seen.iter().any(|e| e.split == s) {
                seen.push(Seen { split: s, label: *label, path });
            }
        }
    }
    Ok(warnings)
}

fn same_bytes(a: &Path, b: &[u8]) -> bool {
    std::fs::read(a).is_ok_and(|x| x == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["coat".into(), "shirt".into()]
    }

    #[test]
    fn the_same_bytes_in_two_splits_are_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let (a, b, c, d) = (write("a", b"one image"), write("b", b"another one"), write("c", b"one image"), write("d", b"one imagf"));
        let classes = classes();
        fn split<'a>(name: &'a str, samples: &'a [(PathBuf, usize)], classes: &'a [String]) -> SplitFiles<'a> {
            SplitFiles { name, samples, classes }
        }
        // Within one class of one split: allowed, without a word.
        assert!(check_duplicates(&[split("train", &[(a.clone(), 0), (c.clone(), 0)], &classes)]).unwrap().is_empty());
        // Same size, one byte different: no leak.
        check_duplicates(&[split("train", &[(a.clone(), 0), (b.clone(), 1)], &classes), split("test", &[(d.clone(), 0)], &classes)]).unwrap();
        let e = check_duplicates(&[split("train", &[(a.clone(), 0), (b, 0)], &classes), split("test", &[(d, 0), (c.clone(), 0)], &classes)]).unwrap_err().to_string();
        assert!(e.contains(&a.display().to_string()) && e.contains(&c.display().to_string()) && e.contains("test"), "{e}");
        // The very same file listed in two splits.
        let e = check_duplicates(&[split("train", &[(a.clone(), 0)], &classes), split("validation", &[(a.clone(), 1)], &classes)]).unwrap_err().to_string();
        assert!(e.contains("validation"), "{e}");
        // The same bytes under two classes of one split: a label conflict, warned about naming both.
        let w = check_duplicates(&[split("train", &[(a.clone(), 0), (c.clone(), 1)], &classes)]).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains(&a.display().to_string()) && w[0].contains(&c.display().to_string()) && w[0].contains("label conflict"), "{w:?}");
    }

    /// A PNG of `pixels` (RGB, 2×1), with a tEXt chunk before IEND when `text` is given.
    fn png(pixels: [u8; 6], text: Option<&str>) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_raw(2, 1, pixels.to_vec()).unwrap().write_to(&mut out, image::ImageFormat::Png).unwrap();
        let mut bytes = out.into_inner();
        if let Some(t) = text {
            let data = [b"Comment\0".as_slice(), t.as_bytes()].concat();
            let mut crc = flate2::Crc::new();
            crc.update(b"tEXt");
            crc.update(&data);
            let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
            chunk.extend(b"tEXt");
            chunk.extend(&data);
            chunk.extend(crc.sum().to_be_bytes());
            let iend = bytes.len() - 12;
            bytes.splice(iend..iend, chunk);
        }
        bytes
    }

    #[test]
    fn pngs_that_differ_only_in_a_text_chunk_are_the_same_image() {
        let (plain, commented) = (png([1, 2, 3, 4, 5, 6], None), png([1, 2, 3, 4, 5, 6], Some("a note")));
        assert_ne!(plain, commented);
        assert_eq!(png_image_data(&plain), png_image_data(&commented));
        assert_ne!(png_image_data(&plain), png_image_data(&png([1, 2, 3, 4, 5, 7], None)));
        assert_eq!(png_image_data(b"not a png"), None);

        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        std::fs::write(&a, &plain).unwrap();
        std::fs::write(&b, &commented).unwrap();
        let classes = classes();
        let w = check_duplicates(&[
            SplitFiles { name: "train", samples: &[(a.clone(), 0)], classes: &classes },
            SplitFiles { name: "validation", samples: &[(b.clone(), 0)], classes: &classes },
        ])
        .unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("a.png") && w[0].contains("b.png") && w[0].contains("only metadata chunks differ"), "{w:?}");
    }
}
