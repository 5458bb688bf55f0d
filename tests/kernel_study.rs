//! What docs/kernels.md promises a student: the variants it names exist in
//! the lab, a shader edited in `INCEPT_SHADER_DIR` is checked and timed
//! without rebuilding (a wrong edit is caught by the oracle, a broken one
//! reported with its file and line, never a panic), and the roofline is
//! drawn under ceilings measured on the adapter.

use crate::binary::{incept, ok, text};
use crate::common::repo_path;
use incept::ops::probe;
use incept::{Gpu, Tensor};
use std::path::Path;
use std::process::{Command, Output};

/// `incept ARGS` with `INCEPT_SHADER_DIR=dir`.
fn with_shader_dir(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_incept")).env("INCEPT_SHADER_DIR", dir).args(args).output().expect("running incept")
}

/// A copy of shaders/ in which `file`'s text has `from` replaced by `to`.
fn edited_shaders(dir: &Path, file: &str, from: &str, to: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(repo_path("shaders")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} no longer contains {from:?}: update the test");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

const QUICK_MATMUL: [&str; 13] =
    ["bench", "kernels", "--family", "matmul", "--variant", "blocked", "--batch", "1", "--image-size", "75", "--limit", "1", "--min-time=0"];

#[test]
fn the_guide_names_only_families_and_variants_the_lab_has() {
    let listing = ok(incept(&["bench", "kernels", "--list"]));
    let mut lab: Vec<(String, Vec<String>)> = Vec::new();
    for line in listing.lines() {
        if let Some(variants) = line.strip_prefix("  variants: ") {
            lab.last_mut().expect("a family line first").1 = variants.split(", ").map(String::from).collect();
        } else if let Some((family, _)) = line.split_once(": ") {
            lab.push((family.to_string(), Vec::new()));
        }
    }
    assert!(lab.iter().any(|(f, v)| f == "conv" && v.len() > 3), "--list lists the conv variants: {listing}");
    let guide = std::fs::read_to_string(repo_path("docs/kernels.md")).unwrap();
    let mut named = 0;
    for command in guide.split('`').filter(|c| c.contains("bench kernels")) {
        let words: Vec<&str> = command.split_whitespace().collect();
        let flag = |name: &str| words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).copied();
        let Some(family) = flag("--family") else { continue };
        let variants = &lab.iter().find(|(f, _)| f == family).unwrap_or_else(|| panic!("docs/kernels.md names family {family}, which the lab lacks: `{command}`")).1;
        if let Some(variant) = flag("--variant")
            && variant != "NAME"
            && variant != "auto"
        {
            assert!(variants.iter().any(|v| v == variant), "docs/kernels.md names {family} variant {variant}, which the lab lacks (it has {variants:?}): `{command}`");
            named += 1;
        }
    }
    assert!(named >= 10, "the guide's ladders name {named} variants by command; expected every step's");
}

#[test]
fn a_shader_edited_in_the_shader_dir_is_checked_again_without_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    // The unedited copy runs and agrees with the oracle.
    let same = tmp.path().join("same");
    edited_shaders(&same, "matmul_register.wgsl", "", "");
    ok(with_shader_dir(&same, &QUICK_MATMUL));
    // An edit that doubles the register-blocked product is caught by the oracle (the naive kernel).
    let doubled = tmp.path().join("doubled");
    edited_shaders(&doubled, "matmul_register.wgsl", "= acc[2u * i + j / 4u][j % 4u];", "= 2.0 * acc[2u * i + j / 4u][j % 4u];");
    let o = with_shader_dir(&doubled, &QUICK_MATMUL);
    assert!(!o.status.success());
    assert!(text(&o).contains("matmul variant blocked disagrees with the oracle"), "{}", text(&o));
}

#[test]
fn a_broken_shader_is_reported_with_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shaders");
    edited_shaders(&dir, "matmul_register.wgsl", "var acc: array<vec4<f32>, 16>;", "var acc: array<vec4<f32>, 16> = ;");
    let line = std::fs::read_to_string(dir.join("matmul_register.wgsl")).unwrap().lines().position(|l| l.contains("16> = ;")).unwrap() + 1;
    let o = with_shader_dir(&dir, &QUICK_MATMUL);
    assert_eq!(o.status.code(), Some(1), "an error, not a crash: {}", text(&o));
    let message = text(&o);
    assert!(message.contains(&format!("matmul_register.wgsl:{line}:")), "names the file and line {line}: {message}");
    assert!(!message.contains("panicked"), "{message}");
    // A file missing from the folder is named too.
    std::fs::remove_file(dir.join("matmul_naive.wgsl")).unwrap();
    let message = text(&with_shader_dir(&dir, &QUICK_MATMUL));
    assert!(message.contains("matmul_naive.wgsl") && message.contains("INCEPT_SHADER_DIR"), "{message}");
}

#[test]
fn the_roofline_is_drawn_under_ceilings_measured_on_the_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let (png, json) = (tmp.path().join("roofline.png"), tmp.path().join("roofline.json"));
    let mut args = QUICK_MATMUL.to_vec();
    args.truncate(4);
    args.extend(["--batch", "1", "--image-size", "75", "--limit", "2", "--min-time=0", "--roofline", png.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    ok(incept(&args));
    let image = image::open(&png).unwrap();
    assert!(image.width() > 500 && image.height() > 300);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (gflops, gbs) = (v["ceilings"]["gflops"].as_f64().unwrap(), v["ceilings"]["gb_per_s"].as_f64().unwrap());
    assert!(gflops > 0.0 && gbs > 0.0, "{v}");
    let points = v["points"].as_array().unwrap();
    // Every variant the adapter runs, on each of the two shapes.
    assert!(points.len() >= 4, "{v}");
    for p in points {
        let (flops, bytes, intensity) = (p["flops"].as_f64().unwrap(), p["bytes"].as_f64().unwrap(), p["intensity"].as_f64().unwrap());
        assert!((intensity - flops / bytes).abs() <= 1e-9 * intensity, "{p}");
        let roof = gflops.min(gbs * intensity);
        assert!((p["of_roofline"].as_f64().unwrap() - p["gflops_per_s"].as_f64().unwrap() / roof).abs() < 1e-9, "{p}");
    }
}

#[test]
fn the_probes_compute_what_they_are_timed_for() {
    let gpu = Gpu::shared().unwrap();
    let values: Vec<f32> = (0..4 * 301).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
    let x = Tensor::from_slice(&gpu, &[values.len()], &values).unwrap();
    assert_eq!(probe::stream_copy(&x).unwrap().to_vec().unwrap(), values);
    let got: Vec<f64> = probe::fma_peak(&x, 37).unwrap().to_vec().unwrap().iter().map(|&v| f64::from(v)).collect();
    let want = probe::fma_peak_reference(&values, 37);
    let error = incept::reference::rel_l2_f64(&got, &want);
    assert!(error < 1e-5, "relative L2 {error:.1e}");
    let odd = Tensor::from_slice(&gpu, &[7], &values[..7]).unwrap();
    assert!(probe::stream_copy(&odd).is_err());
}
