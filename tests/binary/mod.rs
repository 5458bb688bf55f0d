//! Helpers shared by the tests that run the `incept` binary.
#![allow(dead_code)]

use incept::io::{StorageDtype, write_safetensors};
use incept::models::Backbone;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const CLASSES: [&str; 3] = ["ant", "bee", "cat"];

pub fn incept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_incept")).args(args).output().expect("running incept")
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "incept failed:\n{}", text(&o));
    text(&o)
}

/// A class-per-folder tree whose classes differ in colour, 40×30 RGB PNGs.
pub fn make_tree(root: &Path, per_split: &[(&str, usize)]) {
    for (s, (split, n)) in per_split.iter().enumerate() {
        for (c, class) in CLASSES.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..*n {
                let img = image::RgbImage::from_fn(40, 30, |x, y| {
                    let base = [(200, 40, 40), (40, 200, 40), (40, 40, 200)][c];
                    // Each split's images differ from every other split's (no leak between them).
                    let j = ((x * 7 + y * 3 + i as u32 * 11 + s as u32 * 5) % 40) as u8;
                    image::Rgb([base.0 + j, base.1 + j, base.2 + j])
                });
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

pub fn weights(dir: &Path) -> PathBuf {
    let path = dir.join("base.safetensors");
    write_safetensors(&path, &Backbone::InceptionV3.random_weights(3), StorageDtype::F16, &BTreeMap::new()).unwrap();
    path
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
