//! The input pipeline (no GPU): class folders, decoding to RGB, Keras's
//! augmentation math, the threaded loader, IDX parsing and the fmnist4 writer.
//!
//! One test builds fmnist4 from Debian's real dataset-fashion-mnist files and
//! fails if they are missing (`tools/test.sh` installs them).

use incept::data::augment::{Augment, Transform};
use incept::data::fashion_mnist::{FMNIST4_CLASSES, Fmnist4Spec, write_fmnist4, write_fmnist4_with};
use incept::data::{
    Batch, ImageFolder, Loader, LoaderConfig, Preprocess, Skipped, load_image, load_rgb, parse_idx, read_idx,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------- helpers

/// An RGB PNG whose pixels depend on `seed`, so every file differs.
fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = |k: u32| ((x * 31 + y * 17 + seed * 53 + k * 7) % 251) as u8;
        image::Rgb([v(0), v(1), v(2)])
    });
    img.save(path).unwrap();
}

fn touch(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// `root/<class>/img_<i>.png` for each (class, count), of varying sizes.
fn make_tree(root: &Path, classes: &[(&str, usize)]) {
    let mut seed = 0;
    for (class, count) in classes {
        for i in 0..*count {
            seed += 1;
            write_png(&root.join(class).join(format!("img_{i:02}.png")), 9 + seed % 5, 7 + seed % 4, seed);
        }
    }
}

fn names(folder: &ImageFolder) -> Vec<(String, usize)> {
    folder
        .samples()
        .iter()
        .map(|(p, l)| (p.strip_prefix(folder.root()).unwrap().to_string_lossy().into_owned(), *l))
        .collect()
}

fn err_text<T: std::fmt::Debug>(r: incept::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn collect(loader: &Loader, epoch: usize) -> Vec<Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

fn quiet(loader: Loader) -> (Loader, Arc<Mutex<Vec<Skipped>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (loader.on_skip(move |s| sink.lock().unwrap().push(s.clone())), seen)
}

// ---------------------------------------------------------------- folders

#[test]
fn folder_lists_classes_and_files_in_keras_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Classes sort by bytes ("B" < "a" < "b"), as Python's sorted(os.listdir) does.
    write_png(&root.join("b/img2.png"), 4, 4, 1);
    write_png(&root.join("b/img10.png"), 4, 4, 2);
    write_png(&root.join("b/Img3.PNG"), 4, 4, 3);
    touch(&root.join("b/notes.txt"), b"not an image");
    write_png(&root.join("B/x.bmp"), 4, 4, 4);
    image::RgbImage::new(3, 3).save(root.join("B/y.jpg")).unwrap();
    write_png(&root.join("a/top.png"), 4, 4, 5);
    // Nested folders: walk roots sorted as strings ("a/sub b" < "a/sub/deep").
    write_png(&root.join("a/sub/s.png"), 4, 4, 6);
    write_png(&root.join("a/sub b/t.png"), 4, 4, 7);
    write_png(&root.join("a/sub/deep/u.png"), 4, 4, 8);
    touch(&root.join("stray.png"), b"top-level files are not a class");
    #[cfg(unix)]
    {
        // Symlinked folders are not entered (followlinks=False); a symlinked
        // file is listed once: unlike Keras, its second name is skipped and reported.
        write_png(&dir.path().join("elsewhere/v.png"), 4, 4, 9);
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("a/link")).unwrap();
        std::os::unix::fs::symlink(root.join("a/top.png"), root.join("a/zz_link.png")).unwrap();
    }
    let folder = ImageFolder::open(root).unwrap();
    #[cfg(unix)]
    assert_eq!(folder.classes(), ["B", "a", "b", "elsewhere"]);
    let got = names(&folder);
    let want_a = ["a/top.png", "a/sub/s.png", "a/sub b/t.png", "a/sub/deep/u.png"];
    let mut want: Vec<(String, usize)> = vec![("B/x.bmp".into(), 0), ("B/y.jpg".into(), 0)];
    want.extend(want_a.iter().map(|p| (p.to_string(), 1)));
    want.extend(["b/Img3.PNG", "b/img10.png", "b/img2.png"].iter().map(|p| (p.to_string(), 2)));
    want.push(("elsewhere/v.png".into(), 3));
    assert_eq!(got, want);
    assert_eq!(folder.len(), 10);
    assert_eq!(folder.class_counts(), [2, 4, 3, 1]);
    let skipped: Vec<&PathBuf> = folder.skipped_links().iter().map(|(p, _)| p).collect();
    assert_eq!(skipped, [&root.join("a/zz_link.png")]);
}

#[test]
fn folder_errors_name_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = err_text(ImageFolder::open(&missing));
    assert!(e.contains("nope") && e.contains("cannot open"), "{e}");

    touch(&dir.path().join("file.png"), b"x");
    let e = err_text(ImageFolder::open(&dir.path().join("file.png")));
    assert!(e.contains("is not a folder"), "{e}");

    let flat = dir.path().join("flat");
    write_png(&flat.join("a.png"), 2, 2, 1);
    let e = err_text(ImageFolder::open(&flat));
    assert!(e.contains("flat") && e.contains("no class folders"), "{e}");

    let one_empty = dir.path().join("one_empty");
    write_png(&one_empty.join("cats/a.png"), 2, 2, 1);
    touch(&one_empty.join("dogs/readme.txt"), b"no images here");
    let e = err_text(ImageFolder::open(&one_empty));
    assert!(e.contains("class folder dogs has no images") && e.contains("one_empty"), "{e}");

    let none = dir.path().join("none");
    fs::create_dir_all(none.join("cats")).unwrap();
    touch(&none.join("dogs/readme.txt"), b"no images here");
    let e = err_text(ImageFolder::open(&none));
    assert!(e.contains("none") && e.contains("has no images in any of its class folders"), "{e}");
    assert!(e.contains("cats") && e.contains("dogs"), "{e}");
}

#[test]
fn splits_must_have_the_same_classes() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(&dir.path().join("train"), &[("cat", 1), ("dog", 1)]);
    make_tree(&dir.path().join("valid"), &[("cat", 1), ("dog", 2)]);
    make_tree(&dir.path().join("test"), &[("cat", 1), ("fox", 1)]);
    let train = ImageFolder::open(&dir.path().join("train")).unwrap();
    let valid = ImageFolder::open(&dir.path().join("valid")).unwrap();
    let test = ImageFolder::open(&dir.path().join("test")).unwrap();
    train.check_same_classes(&valid).unwrap();
    let e = err_text(train.check_same_classes(&test));
    assert!(e.contains("train") && e.contains("test"), "{e}");
    assert!(e.contains(r#"["cat", "dog"]"#) && e.contains(r#"["cat", "fox"]"#), "{e}");
}

// ---------------------------------------------------------------- decoding

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
}

/// An 8-bit palette PNG, written by hand (the `image` crate encodes no palettes);
/// palette entry 0 is fully transparent through a tRNS chunk.
fn palette_png(w: u32, h: u32, palette: &[[u8; 3]], index: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 3, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"PLTE", &palette.concat());
    png_chunk(&mut out, b"tRNS", &[0]);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        raw.extend((0..w).map(|x| index(x, y)));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn grayscale_alpha_palette_and_jpeg_load_as_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(10 * x + 100 * y) as u8])).save(d.join("gray.png")).unwrap();
    assert_eq!(load_rgb(&d.join("gray.png"), 3).unwrap().len(), 27);
    // 3×2 → 2×2 nearest picks columns 0 and 2 (PIL centre rule: (i + 0.5)·3/2).
    assert_eq!(load_rgb(&d.join("gray.png"), 2).unwrap(), [0, 0, 0, 20, 20, 20, 100, 100, 100, 120, 120, 120]);

    let gray_alpha = image::ImageBuffer::from_fn(2, 2, |x, _| image::LumaA([77u8, (x * 255) as u8]));
    gray_alpha.save(d.join("gray_alpha.png")).unwrap();
    assert_eq!(load_rgb(&d.join("gray_alpha.png"), 2).unwrap(), [77; 12]);

    // Alpha is dropped, not composited: a fully transparent pixel keeps its colour.
    let rgba = image::RgbaImage::from_fn(2, 1, |x, _| image::Rgba([10, 20, 30, (x * 255) as u8]));
    rgba.save(d.join("rgba.png")).unwrap();
    assert_eq!(load_rgb(&d.join("rgba.png"), 1).unwrap(), [10, 20, 30]);
    assert_eq!(load_rgb(&d.join("rgba.png"), 2).unwrap(), [10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30]);

    let palette = [[250, 0, 0], [0, 128, 255], [7, 8, 9]];
    touch(&d.join("palette.png"), &palette_png(3, 1, &palette, |x, _| x as u8));
    assert_eq!(load_rgb(&d.join("palette.png"), 3).unwrap()[..9], [250, 0, 0, 0, 128, 255, 7, 8, 9]);

    let solid = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 100, 50]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100).encode_image(&solid).unwrap();
    touch(&d.join("solid.jpg"), &jpeg);
    let px = load_rgb(&d.join("solid.jpg"), 4).unwrap();
    assert_eq!(px.len(), 48);
    for p in px.chunks(3) {
        assert!(p.iter().zip([200u8, 100, 50]).all(|(&a, b)| a.abs_diff(b) <= 2), "JPEG pixel {p:?}");
    }
    // Preprocessing: Keras's float32 arithmetic, `x *= 1/255` (numpy: values where it differs from x / 255).
    for (v, keras_bits) in [(3u8, 0x3c40c0c2u32), (6, 0x3cc0c0c2), (7, 0x3ce0e0e2), (12, 0x3d40c0c2), (255, 0x3f800000)]
    {
        assert_eq!(Preprocess::Rescale.apply(v).to_bits(), keras_bits, "{v}");
    }
    let x = load_image(&d.join("gray.png"), 3, Preprocess::Rescale).unwrap();
    assert_eq!(x[3], Preprocess::Rescale.apply(10));
    let x = load_image(&d.join("gray.png"), 3, Preprocess::Inception).unwrap();
    assert_eq!((x[0], x[3]), (-1.0, 10.0 / 127.5 - 1.0));
}

// ---------------------------------------------------------------- augmentation

fn image_from(h: usize, w: usize, c: usize, f: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(h * w * c);
    for r in 0..h {
        for col in 0..w {
            for ch in 0..c {
                out.push(f(r, col, ch));
            }
        }
    }
    out
}

fn t(shear_deg: f64, zx: f64, zy: f64, flip_horizontal: bool) -> Transform {
    Transform { shear_deg, zx, zy, flip_horizontal }
}

#[test]
fn augment_identity_and_pure_flip() {
    let img = image_from(5, 4, 3, |r, c, ch| (r * 40 + c * 9 + ch) as f32);
    assert_eq!(Transform::IDENTITY.apply(&img, 5, 4, 3).unwrap(), img);
    assert!(Transform::IDENTITY.sampling_matrix(5, 4).is_none());
    // No ranges: every draw is the identity.
    let none = Augment { shear_range_deg: 0.0, zoom_range: 0.0, horizontal_flip: false };
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..10 {
        assert_eq!(none.draw(&mut rng), Transform::IDENTITY);
    }
    let flipped = t(0.0, 1.0, 1.0, true).apply(&img, 5, 4, 3).unwrap();
    assert_eq!(flipped, image_from(5, 4, 3, |r, c, ch| (r * 40 + (3 - c) * 9 + ch) as f32));
    assert!(err_text(Transform::IDENTITY.apply(&img, 4, 4, 3)).contains("60 values"));
}

#[test]
fn augment_zoom_out_with_nearest_fill() {
    // zx = 2: source column = 2·(c − 1.5) + 1.5 → −1.5 (clamped to 0), 0.5, 2.5, 4.5 (clamped to 3).
    let img = image_from(4, 4, 1, |r, c, _| (10 * r + c * c) as f32);
    let out = t(0.0, 2.0, 1.0, false).apply(&img, 4, 4, 1).unwrap();
    let want = image_from(4, 4, 1, |r, c, _| 10.0 * r as f32 + [0.0, 0.5, 6.5, 9.0][c]);
    assert_eq!(out, want);
    // Zooming far out fills with the nearest edge: each corner keeps its corner value.
    let img = image_from(5, 5, 2, |r, c, ch| (r * 50 + c * 7 + ch) as f32);
    let out = t(0.0, 3.0, 3.0, false).apply(&img, 5, 5, 2).unwrap();
    for (r, c) in [(0, 0), (0, 4), (4, 0), (4, 4)] {
        for ch in 0..2 {
            assert_eq!(out[(r * 5 + c) * 2 + ch], img[(r * 5 + c) * 2 + ch], "corner ({r}, {c})");
        }
    }
}

#[test]
fn augment_shear_matches_hand_computed_pixels() {
    // 30°: source row = cos30·(r − 2) + 2, source column = c − sin30·(r − 2).
    // The image is linear (10r + c), so bilinear sampling reproduces it exactly.
    let img = image_from(5, 5, 1, |r, c, _| (10 * r + c) as f32);
    let out = t(30.0, 1.0, 1.0, false).apply(&img, 5, 5, 1).unwrap();
    let cos = 30f64.to_radians().cos();
    let at = |r: usize, c: usize| out[r * 5 + c] as f64;
    assert!((at(4, 2) - (10.0 * (2.0 * cos + 2.0) + 1.0)).abs() < 1e-4, "{}", at(4, 2));
    assert!((at(0, 0) - (10.0 * (2.0 - 2.0 * cos) + 1.0)).abs() < 1e-4, "{}", at(0, 0));
    // Column −1 falls outside: nearest fill clamps it to column 0.
    assert!((at(4, 0) - 10.0 * (2.0 * cos + 2.0)).abs() < 1e-4, "{}", at(4, 0));
}

include!("data/augment_golden.rs");

#[test]
fn augment_matches_keras_golden() {
    // tools/augment_golden.py: Keras's apply_affine_transform (scipy order 1, 'nearest') and flip_axis.
    // Bit-exact here (Linux, glibc); the tolerance allows another libm's sin/cos.
    let keras_image = |h, w, c| image_from(h, w, c, |r, col, ch| ((r * 37 + col * 11 + ch * 5) % 29) as f32 * 8.0);
    let cases: [(&[f32], usize, usize, usize, Transform); 2] =
        [(&GOLDEN_NONSQUARE, 5, 4, 2, t(17.0, 1.3, 0.7, false)), (&GOLDEN_TUTORIAL, 7, 7, 3, t(0.2, 1.17, 0.83, true))];
    for (golden, h, w, c, tr) in cases {
        let out = tr.apply(&keras_image(h, w, c), h, w, c).unwrap();
        let worst = out.iter().zip(golden).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{h}×{w}×{c} {tr:?}: max difference from Keras {worst}");
    }
}

#[test]
fn augment_draws_keras_ranges() {
    let mut rng = StdRng::seed_from_u64(3);
    let draws: Vec<Transform> = (0..4000).map(|_| Augment::TUTORIAL.draw(&mut rng)).collect();
    assert!(draws.iter().all(|d| (-0.2..0.2).contains(&d.shear_deg)));
    assert!(draws.iter().all(|d| (0.8..1.2).contains(&d.zx) && (0.8..1.2).contains(&d.zy)));
    assert!(draws.iter().any(|d| d.zx > 1.15 && d.zy < 0.85), "zx and zy are drawn independently");
    assert!(draws.iter().any(|d| d.shear_deg < -0.19) && draws.iter().any(|d| d.shear_deg > 0.19));
    let flips = draws.iter().filter(|d| d.flip_horizontal).count();
    assert!((1800..2200).contains(&flips), "{flips} flips of 4000");
    let no_flip = Augment { horizontal_flip: false, ..Augment::TUTORIAL };
    assert!((0..100).all(|_| !no_flip.draw(&mut rng).flip_horizontal));
    assert!(Augment { zoom_range: 1.0, ..Augment::TUTORIAL }.validate().is_err());
    assert!(Augment { shear_range_deg: -1.0, ..Augment::TUTORIAL }.validate().is_err());
    assert!(Augment { zoom_range: f32::NAN, ..Augment::TUTORIAL }.validate().is_err());
}

// ---------------------------------------------------------------- loader

fn train_config(workers: usize, prefetch: usize) -> LoaderConfig {
    LoaderConfig {
        image_size: 8,
        batch: 3,
        shuffle: true,
        augment: Some(Augment::TUTORIAL),
        preprocess: Preprocess::Rescale,
        dicom: Default::default(),
        seed: 42,
        workers,
        prefetch,
    }
}

#[test]
fn loader_is_deterministic_across_worker_counts() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("a", 4), ("b", 3), ("c", 4)]);
    let run = |workers, prefetch| {
        let loader = Loader::new(ImageFolder::open(dir.path()).unwrap(), train_config(workers, prefetch)).unwrap();
        (collect(&loader, 0), collect(&loader, 1))
    };
    let reference = run(1, 0);
    assert_eq!(reference.0.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3, 3, 2]);
    for (workers, prefetch) in [(2, 0), (3, 1), (8, 4)] {
        assert!(run(workers, prefetch) == reference, "workers {workers}, prefetch {prefetch} differ");
    }
    // Augmentation depends on the epoch: the same image differs between epochs.
    let image_of = |batches: &[Batch], path: &Path| {
        let b = batches.iter().find(|b| b.paths.iter().any(|p| p == path)).unwrap();
        let i = b.paths.iter().position(|p| p == path).unwrap();
        b.images[i * 192..(i + 1) * 192].to_vec()
    };
    let first = &reference.0[0].paths[0];
    assert_ne!(image_of(&reference.0, first), image_of(&reference.1, first));
}

#[test]
fn batches_follow_keras_order_of_operations() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("a", 3), ("b", 2)]);
    for pre in [Preprocess::Rescale, Preprocess::Inception] {
        let config = LoaderConfig { preprocess: pre, workers: 2, ..LoaderConfig::new(6, 4) };
        let loader = Loader::new(ImageFolder::open(dir.path()).unwrap(), config).unwrap();
        let batches = collect(&loader, 0);
        assert_eq!(batches.len(), 2);
        let b = &batches[0];
        assert_eq!(b.shape(), [4, 6, 6, 3]);
        assert_eq!(b.labels, [0, 0, 0, 1]);
        assert_eq!(b.one_hot, [1., 0., 1., 0., 1., 0., 0., 1.]);
        for (i, path) in b.paths.iter().enumerate() {
            assert_eq!(b.images[i * 108..(i + 1) * 108], load_image(path, 6, pre).unwrap()[..]);
        }
    }
    // Augmentation happens on 0..255 values before the preprocessing: an
    // augmentation with no range reproduces the plain pipeline exactly.
    let plain = Loader::new(ImageFolder::open(dir.path()).unwrap(), LoaderConfig::new(6, 5)).unwrap();
    let none = Augment { shear_range_deg: 0.0, zoom_range: 0.0, horizontal_flip: false };
    let config = LoaderConfig { augment: Some(none), ..LoaderConfig::new(6, 5) };
    let augmented = Loader::new(ImageFolder::open(dir.path()).unwrap(), config).unwrap();
    assert!(collect(&plain, 0) == collect(&augmented, 0));
    // With flips only, each image is either the plain one or its mirror.
    let config = LoaderConfig { augment: Some(Augment { horizontal_flip: true, ..none }), ..LoaderConfig::new(6, 5) };
    let flipping = Loader::new(ImageFolder::open(dir.path()).unwrap(), config).unwrap();
    let (p, f) = (&collect(&plain, 0)[0], &collect(&flipping, 0)[0]);
    let mut mirrored = 0;
    for i in 0..5 {
        let (a, b) = (&p.images[i * 108..(i + 1) * 108], &f.images[i * 108..(i + 1) * 108]);
        let mirror = Transform { flip_horizontal: true, ..Transform::IDENTITY }.apply(a, 6, 6, 3).unwrap();
        assert!(a == b || mirror == b, "image {i} is neither plain nor mirrored");
        mirrored += usize::from(a != b);
    }
    assert!(mirrored > 0 && mirrored < 5, "{mirrored} of 5 mirrored");
}

#[test]
fn shuffle_differs_across_epochs_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("a", 6), ("b", 6)]);
    let open = |seed, shuffle| {
        let config = LoaderConfig { seed, shuffle, workers: 2, ..LoaderConfig::new(4, 5) };
        Loader::new(ImageFolder::open(dir.path()).unwrap(), config).unwrap()
    };
    let loader = open(7, true);
    let (e0, e1) = (loader.order(0), loader.order(1));
    assert_ne!(e0, e1);
    let mut sorted = e0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..12).collect::<Vec<_>>());
    assert_eq!(open(7, true).order(1), e1);
    assert_ne!(open(8, true).order(0), e0);
    assert_eq!(open(7, false).order(3), (0..12).collect::<Vec<_>>());
    // The batches follow that order.
    let paths: Vec<PathBuf> = collect(&loader, 1).into_iter().flat_map(|b| b.paths).collect();
    let want: Vec<PathBuf> = e1.iter().map(|&i| loader.folder().samples()[i].0.clone()).collect();
    assert_eq!(paths, want);
    assert!(collect(&loader, 1) == collect(&open(7, true), 1));
}

#[test]
fn batch_larger_than_split_gives_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("a", 2), ("b", 3)]);
    let loader = Loader::new(ImageFolder::open(dir.path()).unwrap(), LoaderConfig::new(5, 32)).unwrap();
    assert_eq!(loader.batches_per_epoch(), 1);
    let batches = collect(&loader, 0);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].shape(), [5, 5, 5, 3]);
    assert_eq!(batches[0].one_hot.len(), 10);
    // Dropping an epoch early stops its workers.
    let mut epoch = loader.epoch(1);
    assert!(epoch.next().is_some());
    drop(epoch);
    let e = err_text(Loader::new(ImageFolder::open(dir.path()).unwrap(), LoaderConfig::new(5, 0)));
    assert!(e.contains("batch must be at least 1"), "{e}");
    let config = LoaderConfig { workers: 0, ..LoaderConfig::new(5, 2) };
    assert!(Loader::new(ImageFolder::open(dir.path()).unwrap(), config).is_err());
    let config =
        LoaderConfig { augment: Some(Augment { zoom_range: 2.0, ..Augment::TUTORIAL }), ..LoaderConfig::new(5, 2) };
    assert!(Loader::new(ImageFolder::open(dir.path()).unwrap(), config).is_err());
}

#[test]
fn images_left_undecoded_keep_their_place_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("a", 3), ("b", 4)]);
    let config = LoaderConfig { shuffle: true, seed: 3, workers: 2, ..LoaderConfig::new(6, 3) };
    let loader = Loader::new(ImageFolder::open(dir.path()).unwrap(), config).unwrap();
    let full = collect(&loader, 2);
    let without: Vec<bool> = (0..loader.len()).map(|i| i % 3 != 1).collect();
    let partial: Vec<Batch> = loader.epoch_without_pixels(2, Arc::new(without.clone())).map(|b| b.unwrap()).collect();
    assert_eq!(partial.len(), full.len());
    let order = loader.order(2);
    let px = 6 * 6 * 3;
    for (k, (p, f)) in partial.iter().zip(&full).enumerate() {
        assert_eq!((&p.labels, &p.paths, &p.one_hot, &p.samples), (&f.labels, &f.paths, &f.one_hot, &f.samples));
        assert_eq!(p.samples, order[k * 3..(k * 3 + p.len()).min(order.len())]);
        assert_eq!(f.decoded, vec![true; f.len()]);
        assert_eq!(p.decoded, p.samples.iter().map(|&s| !without[s]).collect::<Vec<_>>());
        // The decoded positions' pixels, in batch order, are the full batch's.
        let kept: Vec<f32> = (0..f.len()).filter(|&i| p.decoded[i]).flat_map(|i| f.images[i * px..(i + 1) * px].to_vec()).collect();
        assert_eq!(p.images, kept);
        assert_eq!(p.shape(), [p.decoded_len(), 6, 6, 3]);
    }
    assert!(partial.iter().any(|b| b.decoded_len() < b.len()), "some images were left undecoded");
}

#[test]
fn unreadable_files_are_skipped_once_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_tree(root, &[("a", 2), ("b", 2)]);
    touch(&root.join("a/corrupt.png"), b"this is not a PNG at all");
    let whole = fs::read(root.join("a/img_00.png")).unwrap();
    touch(&root.join("a/truncated.png"), &whole[..whole.len() / 2]);
    touch(&root.join("b/empty.jpg"), b"");
    let folder = ImageFolder::open(root).unwrap();
    assert_eq!(folder.len(), 7);
    let config = LoaderConfig { workers: 3, shuffle: true, seed: 5, ..LoaderConfig::new(4, 2) };
    let (loader, seen) = quiet(Loader::new(folder, config).unwrap());
    for epoch in 0..3 {
        let batches = collect(&loader, epoch);
        assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), [2, 2], "epoch {epoch}");
        assert!(
            batches.iter().flat_map(|b| &b.paths).all(|p| p.file_name().unwrap().to_string_lossy().starts_with("img_"))
        );
    }
    let seen = seen.lock().unwrap().clone();
    let mut warned: Vec<String> =
        seen.iter().map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    warned.sort();
    assert_eq!(warned, ["corrupt.png", "empty.jpg", "truncated.png"], "{seen:?}");
    assert!(seen.iter().all(|s| !s.reason.is_empty()));
    assert_eq!(loader.skipped(), 3);
    assert_eq!(loader.skipped_files().len(), 3);
    assert_eq!(loader.batches_per_epoch(), 2);

    // A split where nothing loads is an error, not an empty epoch.
    let bad = dir.path().join("bad");
    touch(&bad.join("x/one.png"), b"garbage");
    touch(&bad.join("y/two.png"), b"garbage");
    let (loader, _) = quiet(Loader::new(ImageFolder::open(&bad).unwrap(), LoaderConfig::new(4, 2)).unwrap());
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(results.len(), 1);
    let e = err_text(results.into_iter().next().unwrap());
    assert!(e.contains("bad") && e.contains("none of its 2 images could be loaded"), "{e}");
}

// ---------------------------------------------------------------- IDX

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

#[test]
fn idx_parses_plain_and_gzip_and_names_what_is_wrong() {
    let data: Vec<u8> = (0..12).collect();
    let idx = parse_idx(&idx_bytes(&[3, 2, 2], &data), Path::new("x")).unwrap();
    assert_eq!((idx.dims.clone(), idx.len(), idx.item_size()), (vec![3, 2, 2], 3, 4));
    assert_eq!(idx.item(1), [4, 5, 6, 7]);

    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("tiny-idx3-ubyte.gz");
    touch(&gz, &gzip(&idx_bytes(&[3, 2, 2], &data)));
    assert_eq!(read_idx(&gz).unwrap(), idx);
    let plain = dir.path().join("tiny-idx1-ubyte");
    touch(&plain, &idx_bytes(&[4], &[9, 8, 7, 6]));
    assert_eq!(read_idx(&plain).unwrap().data, [9, 8, 7, 6]);

    let p = Path::new("some/file-idx3-ubyte");
    let check = |bytes: &[u8], words: &[&str]| {
        let e = err_text(parse_idx(bytes, p));
        assert!(e.contains("some/file-idx3-ubyte"), "{e}");
        for w in words {
            assert!(e.contains(w), "{e} lacks {w}");
        }
    };
    check(&[0, 0], &["header truncated"]);
    check(&[1, 0, 8, 1, 0, 0, 0, 0], &["bad IDX magic"]);
    check(&[0, 0, 0x0d, 1, 0, 0, 0, 0], &["0x0d", "not supported"]);
    check(&[0, 0, 8, 0], &["0 dimensions"]);
    check(&idx_bytes(&[3, 2, 2], &[])[..10], &["header truncated", "3 dimensions", "16"]);
    check(&idx_bytes(&[3, 2, 2], &data[..11]), &["data truncated", "[3, 2, 2]", "12", "11"]);
    check(&idx_bytes(&[3, 2, 2], &[0; 13]), &["trailing"]);

    let e = err_text(read_idx(&dir.path().join("absent")));
    assert!(e.contains("absent") && e.contains("cannot read"), "{e}");
    let whole = gzip(&idx_bytes(&[3, 2, 2], &data));
    touch(&gz, &whole[..whole.len() - 10]);
    let e = err_text(read_idx(&gz));
    assert!(e.contains("tiny-idx3-ubyte.gz") && e.contains("gzip"), "{e}");
}

// ---------------------------------------------------------------- fmnist4

/// Synthetic Fashion-MNIST: `n` images of 3×2 pixels, labels i mod 10,
/// pixel values derived from the index. Train files gzipped, test files plain.
fn synthetic_fmnist(dir: &Path, n_train: u32, n_test: u32) {
    let images = |n: u32, salt: u32| -> Vec<u8> { (0..n * 6).map(|k| ((k * 7 + salt) % 256) as u8).collect() };
    let labels = |n: u32| -> Vec<u8> { (0..n).map(|i| (i % 10) as u8).collect() };
    touch(&dir.join("train-images-idx3-ubyte.gz"), &gzip(&idx_bytes(&[n_train, 3, 2], &images(n_train, 0))));
    touch(&dir.join("train-labels-idx1-ubyte.gz"), &gzip(&idx_bytes(&[n_train], &labels(n_train))));
    touch(&dir.join("t10k-images-idx3-ubyte"), &idx_bytes(&[n_test, 3, 2], &images(n_test, 100)));
    touch(&dir.join("t10k-labels-idx1-ubyte"), &idx_bytes(&[n_test], &labels(n_test)));
}

/// Every file under `root` (relative path → bytes).
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn fmnist4_from_synthetic_idx_writes_the_expected_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("fmnist4"));
    synthetic_fmnist(&src, 40, 30);
    let spec = Fmnist4Spec { train_per_class: 2, valid_per_class: 1, test_per_class: 2 };
    let s = write_fmnist4_with(&out, Some(&src), &spec).unwrap();
    assert_eq!((s.train, s.valid, s.test, s.written, s.unchanged, s.removed), (8, 4, 8, 20, 0, 0));
    assert_eq!(s.classes, ["0_tshirt_top", "2_pullover", "4_coat", "6_shirt"]);
    let tree = snapshot(&out);
    let mut want = Vec::new();
    for (label, class) in FMNIST4_CLASSES {
        let l = label as usize;
        want.extend([l, l + 10].map(|i| format!("train/{class}/train_{i:05}.png")));
        want.push(format!("valid/{class}/train_{:05}.png", l + 20));
        want.extend([l, l + 10].map(|i| format!("test/{class}/test_{i:05}.png")));
    }
    want.sort();
    assert_eq!(tree.keys().cloned().collect::<Vec<_>>(), want);
    // Pixels round-trip: 2 wide, 3 high, grayscale, the source item's bytes.
    let img = image::open(out.join("valid/4_coat/train_00024.png")).unwrap();
    assert_eq!((img.width(), img.height(), img.color()), (2, 3, image::ColorType::L8));
    assert_eq!(img.to_luma8().into_raw(), (24 * 6..25 * 6).map(|k| ((k * 7) % 256) as u8).collect::<Vec<_>>());
    let img = image::open(out.join("test/6_shirt/test_00016.png")).unwrap().to_luma8();
    assert_eq!(img.into_raw(), (16 * 6..17 * 6).map(|k| ((k * 7 + 100) % 256) as u8).collect::<Vec<_>>());

    // Idempotent: a re-run rewrites nothing and leaves the same bytes.
    let s = write_fmnist4_with(&out, Some(&src), &spec).unwrap();
    assert_eq!((s.written, s.unchanged, s.removed), (0, 20, 0));
    assert_eq!(snapshot(&out), tree);
    // Damaged or stale files are repaired; other files are left alone.
    touch(&out.join("train/2_pullover/train_00002.png"), b"damaged");
    touch(&out.join("train/2_pullover/train_00032.png"), b"stale");
    touch(&out.join("train/2_pullover/.train_00012.png.tmp-1-0"), b"leftover");
    touch(&out.join("train/2_pullover/notes.txt"), b"mine");
    let s = write_fmnist4_with(&out, Some(&src), &spec).unwrap();
    assert_eq!((s.written, s.unchanged, s.removed), (1, 19, 2));
    let mut after = snapshot(&out);
    assert_eq!(after.remove("train/2_pullover/notes.txt").unwrap(), b"mine");
    assert_eq!(after, tree);

    // The tree opens as splits with the labels in Fashion-MNIST order.
    let train = ImageFolder::open(&out.join("train")).unwrap();
    let test = ImageFolder::open(&out.join("test")).unwrap();
    train.check_same_classes(&test).unwrap();
    assert_eq!(train.class_counts(), [2, 2, 2, 2]);
    let loader = Loader::new(train, LoaderConfig::new(3, 8)).unwrap();
    let b = collect(&loader, 0).remove(0);
    assert_eq!(b.labels, [0, 0, 1, 1, 2, 2, 3, 3]);
    assert!(b.images.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]), "grayscale replicated");
}

#[test]
fn fmnist4_errors_explain_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_text(write_fmnist4(&dir.path().join("out"), Some(dir.path())));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("dataset-fashion-mnist"), "{e}");
    let src = dir.path().join("src");
    synthetic_fmnist(&src, 40, 30);
    let spec = Fmnist4Spec { train_per_class: 4, valid_per_class: 1, test_per_class: 1 };
    let e = err_text(write_fmnist4_with(&dir.path().join("out"), Some(&src), &spec));
    assert!(e.contains("train-labels") && e.contains("4 images of label 0") && e.contains("needs 5"), "{e}");
    touch(&src.join("t10k-labels-idx1-ubyte"), &idx_bytes(&[29], &[0; 29]));
    let e =
        err_text(write_fmnist4_with(&dir.path().join("out"), Some(&src), &Fmnist4Spec { train_per_class: 1, ..spec }));
    assert!(e.contains("29 labels") && e.contains("30 images"), "{e}");
}

#[test]
fn fmnist4_from_the_real_debian_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_fmnist4(dir.path(), None).unwrap_or_else(|e| {
        panic!("this test needs Debian's dataset-fashion-mnist (run tools/install-fashion-mnist.sh, or tools/test.sh): {e}")
    });
    assert_eq!((s.train, s.valid, s.test, s.written), (600, 200, 400, 1200));
    for (split, per_class) in [("train", 150), ("valid", 50), ("test", 100)] {
        let folder = ImageFolder::open(&dir.path().join(split)).unwrap();
        assert_eq!(folder.class_counts(), [per_class; 4], "{split}");
    }
    let img = image::open(
        dir.path()
            .join("train/0_tshirt_top")
            .join(fs::read_dir(dir.path().join("train/0_tshirt_top")).unwrap().next().unwrap().unwrap().file_name()),
    );
    assert_eq!(img.map(|i| (i.width(), i.height())).unwrap(), (28, 28));
}
