//! DICOM input (src/data/dicom.rs): files written here with dicom-object
//! (CT with rescale slope/intercept, MONOCHROME1, 16-bit signed, 8-bit,
//! multi-frame, RLE, explicit big endian, implicit little endian, colour, a
//! file without an extension) checked pixel by pixel against the windowing
//! formula, written here in integer arithmetic; corrupt files skipped with a
//! warning; real files from the pydicom 3.0.2 wheel (fetched by
//! `tools/fetch-dicom-samples.sh`) checked against facts read with pydicom
//! (`tools/dicom_facts.py`) and grey levels of their pixels worked by hand;
//! and `incept train` on a class folder of .dcm files.

use crate::binary;

use dicom_core::smallvec::SmallVec;
use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, DicomValue, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use incept::data::dicom::{DicomFrame, FramePixels, PRESETS, read_frame};
use incept::data::{DicomOptions, ImageFolder, Loader, LoaderConfig, Skipped, Window, load_rgb_with};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------- writing test files

/// Pixel data of a synthetic file.
#[derive(Clone)]
enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
}

impl Pixels {
    fn bits(&self) -> u16 {
        match self {
            Pixels::U8(_) => 8,
            _ => 16,
        }
    }

    fn signed(&self) -> bool {
        matches!(self, Pixels::I16(_))
    }

    /// The samples as stored, little endian bytes.
    fn le_bytes(&self) -> Vec<u8> {
        match self {
            Pixels::U8(v) => v.clone(),
            Pixels::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Pixels::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    fn stored(&self) -> Vec<i64> {
        match self {
            Pixels::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Pixels::U16(v) => v.iter().map(|&x| x as i64).collect(),
            Pixels::I16(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Syntax {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
    Rle,
}

struct Spec {
    rows: u16,
    cols: u16,
    frames: u32,
    samples: u16,
    photometric: &'static str,
    pixels: Pixels,
    rescale: Option<(&'static str, &'static str)>,
    window: Option<(&'static str, &'static str)>,
    syntax: Syntax,
}

impl Spec {
    fn mono(rows: u16, cols: u16, pixels: Pixels) -> Spec {
        Spec { rows, cols, frames: 1, samples: 1, photometric: "MONOCHROME2", pixels, rescale: None, window: None, syntax: Syntax::ExplicitLe }
    }
}

fn el(tag: dicom_core::Tag, vr: VR, v: impl Into<PrimitiveValue>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, v.into())
}

fn write_dicom(path: &Path, s: &Spec) {
    let mut elements = vec![
        el(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
        el(tags::SOP_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.2.1125.1"),
        el(tags::MODALITY, VR::CS, "CT"),
        el(tags::SAMPLES_PER_PIXEL, VR::US, s.samples),
        el(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, s.photometric),
        el(tags::ROWS, VR::US, s.rows),
        el(tags::COLUMNS, VR::US, s.cols),
        el(tags::BITS_ALLOCATED, VR::US, s.pixels.bits()),
        el(tags::BITS_STORED, VR::US, s.pixels.bits()),
        el(tags::HIGH_BIT, VR::US, s.pixels.bits() - 1),
        el(tags::PIXEL_REPRESENTATION, VR::US, s.pixels.signed() as u16),
    ];
    if s.samples == 3 {
        elements.push(el(tags::PLANAR_CONFIGURATION, VR::US, 0u16));
    }
    if s.frames > 1 {
        elements.push(el(tags::NUMBER_OF_FRAMES, VR::IS, s.frames.to_string().as_str()));
    }
    if let Some((slope, intercept)) = s.rescale {
        elements.push(el(tags::RESCALE_SLOPE, VR::DS, slope));
        elements.push(el(tags::RESCALE_INTERCEPT, VR::DS, intercept));
    }
    if let Some((center, width)) = s.window {
        elements.push(el(tags::WINDOW_CENTER, VR::DS, center));
        elements.push(el(tags::WINDOW_WIDTH, VR::DS, width));
    }
    let pixel_data = if s.syntax == Syntax::Rle {
        let frame_bytes = s.rows as usize * s.cols as usize * s.samples as usize * (s.pixels.bits() as usize / 8);
        let frames: Vec<Vec<u8>> = s.pixels.le_bytes().chunks(frame_bytes).map(|f| rle_frame(f, s.pixels.bits() as usize / 8 * s.samples as usize)).collect();
        DataElement::new(tags::PIXEL_DATA, VR::OB, DicomValue::from(PixelFragmentSequence::new_fragments(frames)))
    } else {
        let value = match &s.pixels {
            Pixels::U8(v) => PrimitiveValue::U8(SmallVec::from_vec(v.clone())),
            Pixels::U16(v) => PrimitiveValue::U16(SmallVec::from_vec(v.clone())),
            Pixels::I16(v) => PrimitiveValue::U16(SmallVec::from_vec(v.iter().map(|&x| x as u16).collect())),
        };
        DataElement::new(tags::PIXEL_DATA, if s.pixels.bits() == 8 { VR::OB } else { VR::OW }, value)
    };
    elements.push(pixel_data);
    let syntax = match s.syntax {
        Syntax::ExplicitLe => uids::EXPLICIT_VR_LITTLE_ENDIAN,
        Syntax::ImplicitLe => uids::IMPLICIT_VR_LITTLE_ENDIAN,
        // Retired from the standard, still read (and written here) by dicom-rs.
        Syntax::ExplicitBe => "1.2.840.10008.1.2.2",
        Syntax::Rle => uids::RLE_LOSSLESS,
    };
    let obj = InMemDicomObject::from_element_iter(elements);
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(syntax)).unwrap().write_to_file(path).unwrap();
}

/// One frame in DICOM RLE (PS3.5 Annex G): one segment per byte plane, most
/// significant byte first, each PackBits-encoded and padded to even length,
/// after a 64-byte header of the segment count and offsets.
fn rle_frame(le: &[u8], bytes_per_pixel: usize) -> Vec<u8> {
    let segments: Vec<Vec<u8>> = (0..bytes_per_pixel)
        .map(|plane| {
            // Byte `plane` counts from the most significant byte of each sample.
            let sample_bytes = if bytes_per_pixel == 3 { 1 } else { bytes_per_pixel };
            let plane_bytes: Vec<u8> = le
                .chunks(bytes_per_pixel)
                .map(|px| if sample_bytes == 1 { px[plane] } else { px[sample_bytes - 1 - plane] })
                .collect();
            let mut seg = packbits(&plane_bytes);
            if seg.len() % 2 == 1 {
                seg.push(0);
            }
            seg
        })
        .collect();
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
    let mut offset = 64u32;
    for (i, seg) in segments.iter().enumerate() {
        out[4 + 4 * i..8 + 4 * i].copy_from_slice(&offset.to_le_bytes());
        offset += seg.len() as u32;
    }
    for seg in segments {
        out.extend(seg);
    }
    out
}

/// PackBits: runs of 3 or more equal bytes as (257 − n, byte), the rest as
/// literal runs (n − 1, bytes…), at most 128 bytes per run.
fn packbits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let run = data[i..].iter().take(128).take_while(|&&b| b == data[i]).count();
        if run >= 3 {
            out.extend([(257 - run) as u8, data[i]]);
            i += run;
            continue;
        }
        let start = i;
        while i < data.len() && i - start < 128 && !(i + 2 < data.len() && data[i] == data[i + 1] && data[i] == data[i + 2]) {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&data[start..i]);
    }
    out
}

/// Deterministic samples covering a wide range (a linear congruential sequence).
fn samples(n: usize, lo: i64, hi: i64, seed: u64) -> Vec<i64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            lo + ((x >> 33) % (hi - lo + 1) as u64) as i64
        })
        .collect()
}

// ---------------------------------------------------------------- the formula, independently

/// The window formula in exact integer arithmetic, for integer values and an
/// integer window of even width: ⌊255 · (clamp(v, L − W/2, L + W/2) − (L − W/2)) / W⌋.
fn expected_grey(v: i64, width: i64, center: i64) -> u8 {
    assert_eq!(width % 2, 0);
    let lo = center - width / 2;
    let t = v.clamp(lo, lo + width) - lo;
    (255 * t / width) as u8
}

fn values(frame: &DicomFrame) -> &[f64] {
    match frame.pixels() {
        FramePixels::Monochrome { values, .. } => values,
        FramePixels::Rgb(_) => panic!("expected a monochrome frame"),
    }
}

fn grey_of(rgb: &image::RgbImage) -> Vec<u8> {
    rgb.pixels()
        .map(|p| {
            assert!(p[0] == p[1] && p[1] == p[2], "grey replicated to RGB: {p:?}");
            p[0]
        })
        .collect()
}

fn window(text: &str) -> Window {
    Window::parse(text).unwrap()
}

// ---------------------------------------------------------------- synthetic files

#[test]
fn ct_rescale_gives_hounsfield_units_and_each_preset_windows_them() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, cols) = (13, 17);
    let stored = samples(rows * cols, -2048, 3000, 1);
    let path = dir.path().join("ct.dcm");
    let spec = Spec {
        rescale: Some(("2", "-1024")),
        ..Spec::mono(rows as u16, cols as u16, Pixels::I16(stored.iter().map(|&v| v as i16).collect()))
    };
    write_dicom(&path, &spec);
    let frame = read_frame(&path, None).unwrap();
    assert_eq!((frame.width(), frame.height()), (cols as u32, rows as u32));
    let hu: Vec<i64> = stored.iter().map(|&s| s * 2 - 1024).collect();
    assert_eq!(values(&frame), hu.iter().map(|&h| h as f64).collect::<Vec<_>>());
    for (name, w, l) in PRESETS.iter().filter(|(_, w, _)| *w as i64 % 2 == 0) {
        let grey = grey_of(&frame.to_rgb(Some(window(name))).unwrap());
        let expected: Vec<u8> = hu.iter().map(|&h| expected_grey(h, *w as i64, *l as i64)).collect();
        assert_eq!(grey, expected, "window {name}");
    }
    // The lungs window on this spread of HU reaches both ends and the middle.
    let lungs = grey_of(&frame.to_rgb(Some(window("lung"))).unwrap());
    assert!(lungs.contains(&0) && lungs.contains(&255) && lungs.iter().any(|&g| g > 0 && g < 255));
    // Through the image path at the native size (nearest resize is the identity there).
    let options = DicomOptions { window: Some(window("mediastinum")), frame: None };
    let rgb = load_rgb_with(&path, rows.max(cols), &options).unwrap();
    assert_eq!(rgb.len(), rows.max(cols) * rows.max(cols) * 3);
    let native = frame.to_rgb(options.window).unwrap();
    let square = load_rgb_with(&path, 1, &options).unwrap();
    // PIL's nearest rule for 1×1: the source pixel under the centre.
    let centre = native.get_pixel(cols as u32 / 2, rows as u32 / 2);
    assert_eq!(square, centre.0);
}

#[test]
fn custom_window_and_odd_width_follow_the_formula() {
    let dir = tempfile::tempdir().unwrap();
    let stored: Vec<i64> = (-300..300).step_by(7).collect();
    let path = dir.path().join("signed.dcm");
    write_dicom(&path, &Spec::mono(1, stored.len() as u16, Pixels::I16(stored.iter().map(|&v| v as i16).collect())));
    let frame = read_frame(&path, None).unwrap();
    assert_eq!(values(&frame), stored.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let grey = grey_of(&frame.to_rgb(Some(window("400,-20"))).unwrap());
    assert_eq!(grey, stored.iter().map(|&v| expected_grey(v, 400, -20)).collect::<Vec<_>>());
    // Odd width 375 (brain_soft): lo = 40 − 187.5; doubling everything keeps it in integers.
    let grey = grey_of(&frame.to_rgb(Some(window("brain_soft"))).unwrap());
    assert_eq!(grey, stored.iter().map(|&v| expected_grey(2 * v, 750, 80)).collect::<Vec<_>>());
}

#[test]
fn monochrome1_is_inverted_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let stored: Vec<u8> = (0..=255).collect();
    let path = dir.path().join("mono1.dcm");
    let spec = Spec { photometric: "MONOCHROME1", ..Spec::mono(16, 16, Pixels::U8(stored.clone())) };
    write_dicom(&path, &spec);
    let frame = read_frame(&path, None).unwrap();
    assert!(matches!(frame.pixels(), FramePixels::Monochrome { monochrome1: true, .. }));
    let grey = grey_of(&frame.to_rgb(Some(window("100,50"))).unwrap());
    assert_eq!(grey, stored.iter().map(|&v| 255 - expected_grey(v as i64, 100, 50)).collect::<Vec<_>>());
    // Without a window or one of its own, the frame's range: 0 → 255 (inverted), 255 → 0.
    let grey = grey_of(&frame.to_rgb(None).unwrap());
    assert_eq!(grey, stored.iter().map(|&v| 255 - v).collect::<Vec<_>>());
}

#[test]
fn default_window_is_the_files_own_else_the_frames_range() {
    let dir = tempfile::tempdir().unwrap();
    let stored: Vec<u16> = samples(64, 0, 4095, 2).into_iter().map(|v| v as u16).collect();
    let own = dir.path().join("own.dcm");
    write_dicom(&own, &Spec { window: Some(("600", "1600")), ..Spec::mono(8, 8, Pixels::U16(stored.clone())) });
    let frame = read_frame(&own, None).unwrap();
    assert_eq!(frame.window(None), Some(Window { width: 1600.0, center: 600.0 }));
    let grey = grey_of(&frame.to_rgb(None).unwrap());
    assert_eq!(grey, stored.iter().map(|&v| expected_grey(v as i64, 1600, 600)).collect::<Vec<_>>());
    // A window given wins over the file's.
    assert_eq!(frame.window(Some(window("brain"))), Some(window("brain")));

    let plain = dir.path().join("plain.dcm");
    write_dicom(&plain, &Spec::mono(8, 8, Pixels::U16(stored.clone())));
    let frame = read_frame(&plain, None).unwrap();
    let (min, max) = (*stored.iter().min().unwrap() as i64, *stored.iter().max().unwrap() as i64);
    let grey = grey_of(&frame.to_rgb(None).unwrap());
    assert_eq!(grey, stored.iter().map(|&v| (255 * (v as i64 - min) / (max - min)) as u8).collect::<Vec<_>>());
    assert!(grey.contains(&0) && grey.contains(&255));

    // A constant frame with no window is all 0.
    let flat = dir.path().join("flat.dcm");
    write_dicom(&flat, &Spec::mono(3, 3, Pixels::U16(vec![700; 9])));
    assert_eq!(grey_of(&read_frame(&flat, None).unwrap().to_rgb(None).unwrap()), [0; 9]);
}

#[test]
fn eight_bit_and_every_uncompressed_or_rle_syntax_decode_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("u8", Pixels::U8(samples(35, 0, 255, 3).into_iter().map(|v| v as u8).collect())),
        ("u16", Pixels::U16(samples(35, 0, 65535, 4).into_iter().map(|v| v as u16).collect())),
        ("i16", Pixels::I16(samples(35, -32768, 32767, 5).into_iter().map(|v| v as i16).collect())),
    ];
    for (name, pixels) in cases {
        // Runs of equal samples exercise RLE's replicate runs.
        let pixels = match pixels {
            Pixels::U8(mut v) => {
                v[10..20].fill(9);
                Pixels::U8(v)
            }
            other => other,
        };
        for syntax in [Syntax::ExplicitLe, Syntax::ImplicitLe, Syntax::ExplicitBe, Syntax::Rle] {
            let path = dir.path().join(format!("{name}-{}.dcm", syntax as u8));
            write_dicom(&path, &Spec { syntax, rescale: Some(("1", "-7")), ..Spec::mono(5, 7, pixels.clone()) });
            let frame = read_frame(&path, None).unwrap_or_else(|e| panic!("{name}, syntax {}: {e}", syntax as u8));
            let expected: Vec<f64> = pixels.stored().iter().map(|&v| (v - 7) as f64).collect();
            assert_eq!(values(&frame), expected, "{name}, syntax {}", syntax as u8);
        }
    }
}

#[test]
fn multi_frame_files_need_a_frame_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.dcm");
    let stored: Vec<u16> = (0..3 * 4 * 5).map(|v| v as u16 * 10).collect();
    write_dicom(&path, &Spec { frames: 3, ..Spec::mono(4, 5, Pixels::U16(stored.clone())) });
    let e = read_frame(&path, None).unwrap_err().to_string();
    assert!(e.contains("frames.dcm") && e.contains("3 frames") && e.contains("--dicom-frame"), "{e}");
    for k in 0..3 {
        let frame = read_frame(&path, Some(k)).unwrap();
        assert_eq!(values(&frame), stored[k * 20..(k + 1) * 20].iter().map(|&v| v as f64).collect::<Vec<_>>());
    }
    let e = read_frame(&path, Some(3)).unwrap_err().to_string();
    assert!(e.contains("frames.dcm") && e.contains("--dicom-frame 3 is out of range") && e.contains("3 frame(s)"), "{e}");
    // A single-frame file is frame 0.
    let single = dir.path().join("single.dcm");
    write_dicom(&single, &Spec::mono(2, 2, Pixels::U16(vec![1, 2, 3, 4])));
    assert!(read_frame(&single, Some(0)).is_ok());
    assert!(read_frame(&single, Some(1)).is_err());
}

#[test]
fn colour_dicoms_are_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let rgb: Vec<u8> = samples(4 * 6 * 3, 0, 255, 6).into_iter().map(|v| v as u8).collect();
    for syntax in [Syntax::ExplicitLe, Syntax::Rle] {
        let path = dir.path().join(format!("rgb-{}.dcm", syntax as u8));
        write_dicom(&path, &Spec { samples: 3, photometric: "RGB", syntax, ..Spec::mono(4, 6, Pixels::U8(rgb.clone())) });
        let frame = read_frame(&path, None).unwrap();
        assert_eq!(frame.pixels(), &FramePixels::Rgb(rgb.clone()));
        // No window applies to colour.
        assert_eq!(frame.to_rgb(Some(window("lungs"))).unwrap().into_raw(), rgb);
    }
}

#[test]
fn dicom_files_are_found_by_extension_or_magic_and_corrupt_ones_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let class_a = dir.path().join("a");
    let class_b = dir.path().join("b");
    std::fs::create_dir_all(&class_a).unwrap();
    std::fs::create_dir_all(&class_b).unwrap();
    let stored: Vec<i16> = samples(36, -1000, 1000, 7).into_iter().map(|v| v as i16).collect();
    let spec = Spec { rescale: Some(("1", "-24")), ..Spec::mono(6, 6, Pixels::I16(stored.clone())) };
    write_dicom(&class_a.join("upper.DCM"), &spec);
    write_dicom(&class_a.join("no_extension"), &spec);
    write_dicom(&class_b.join("good.dicom"), &spec);
    // Not DICOM and not an image: ignored.
    std::fs::write(class_a.join("notes"), b"not an image").unwrap();
    // Corrupt: garbage with the extension, and a real file cut short.
    std::fs::write(class_b.join("garbage.dcm"), vec![7u8; 300]).unwrap();
    let whole = std::fs::read(class_a.join("upper.DCM")).unwrap();
    std::fs::write(class_b.join("truncated"), &whole[..whole.len() - 40]).unwrap();

    let folder = ImageFolder::open(dir.path()).unwrap();
    let names: Vec<String> = folder.samples().iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["no_extension", "upper.DCM", "garbage.dcm", "good.dicom", "truncated"]);

    let lungs = DicomOptions { window: Some(window("lungs")), frame: None };
    let skipped = Arc::new(Mutex::new(Vec::<Skipped>::new()));
    let seen = skipped.clone();
    let config = LoaderConfig { dicom: lungs, workers: 2, ..LoaderConfig::new(6, 8) };
    let loader = Loader::new(folder, config).unwrap().on_skip(move |s| seen.lock().unwrap().push(s.clone()));
    let batches: Vec<_> = loader.epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.labels, [0, 0, 1]);
    // Every good file gives the lungs window of the same HU, rescaled by 1/255.
    let expected: Vec<f32> = stored
        .iter()
        .flat_map(|&s| [expected_grey(s as i64 - 24, 1500, -600); 3])
        .map(|g| g as f32 * (1.0f64 / 255.0) as f32)
        .collect();
    for i in 0..3 {
        assert_eq!(batch.images[i * 108..(i + 1) * 108], expected[..], "image {i}");
    }
    let skipped = skipped.lock().unwrap();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].path.ends_with("garbage.dcm") && skipped[0].reason.contains("cannot read DICOM file"), "{:?}", skipped[0]);
    assert!(skipped[1].path.ends_with("truncated") && skipped[1].reason.contains("DICOM"), "{:?}", skipped[1]);
}

#[test]
fn multi_frame_files_are_skipped_by_the_loader_unless_a_frame_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    for class in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        write_dicom(&dir.path().join(class).join("one.dcm"), &Spec::mono(3, 3, Pixels::U8((0..9).collect())));
    }
    write_dicom(&dir.path().join("b/two.dcm"), &Spec { frames: 2, ..Spec::mono(3, 3, Pixels::U8((0..18).collect())) });
    let load = |frame: Option<usize>| {
        let skipped = Arc::new(Mutex::new(Vec::<Skipped>::new()));
        let seen = skipped.clone();
        let config = LoaderConfig { dicom: DicomOptions { window: None, frame }, ..LoaderConfig::new(3, 8) };
        let loader = Loader::new(ImageFolder::open(dir.path()).unwrap(), config).unwrap().on_skip(move |s| seen.lock().unwrap().push(s.clone()));
        let images: usize = loader.epoch(0).map(|b| b.unwrap().len()).sum();
        let skipped = skipped.lock().unwrap().clone();
        (images, skipped)
    };
    let (images, skipped) = load(None);
    assert_eq!(images, 2);
    assert!(skipped.len() == 1 && skipped[0].path.ends_with("two.dcm") && skipped[0].reason.contains("2 frames"), "{skipped:?}");
    let (images, skipped) = load(Some(1));
    // Frame 1 of the two-frame file; the single-frame files have no frame 1.
    assert_eq!(images, 1);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().all(|s| s.reason.contains("--dicom-frame 1 is out of range")), "{skipped:?}");
    let bad = LoaderConfig { dicom: DicomOptions { window: Some(Window { width: -1.0, center: 0.0 }), frame: None }, ..LoaderConfig::new(3, 8) };
    assert!(Loader::new(ImageFolder::open(dir.path()).unwrap(), bad).unwrap_err().to_string().contains("--dicom-window"));
}

// ---------------------------------------------------------------- real files (pydicom 3.0.2)

fn sample(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dicom/pydicom-3.0.2").join(name);
    assert!(path.is_file(), "{} is missing: run `bash tools/fetch-dicom-samples.sh` (or tools/test.sh) first", path.display());
    path
}

fn attribute(path: &Path, tag: dicom_core::Tag) -> String {
    dicom_object::open_file(path).unwrap().element(tag).unwrap().to_str().unwrap().trim().to_string()
}

fn grey_sum(frame: &DicomFrame, w: Option<Window>) -> u64 {
    grey_of(&frame.to_rgb(w).unwrap()).iter().map(|&g| g as u64).sum()
}

/// (row, col) → value of a monochrome frame.
fn at(frame: &DicomFrame, row: usize, col: usize) -> f64 {
    values(frame)[row * frame.width() as usize + col]
}

#[test]
fn real_ct_slice_in_hounsfield_units() {
    let path = sample("CT_small.dcm");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 39206);
    assert_eq!(attribute(&path, tags::RESCALE_SLOPE), "1");
    assert_eq!(attribute(&path, tags::RESCALE_INTERCEPT), "-1024");
    let frame = read_frame(&path, None).unwrap();
    assert_eq!((frame.width(), frame.height()), (128, 128));
    // Facts read with pydicom (pixel_array · slope + intercept): tools/dicom_facts.py.
    assert_eq!([at(&frame, 0, 0), at(&frame, 5, 7), at(&frame, 10, 3), at(&frame, 15, 15)], [-849.0, -838.0, -821.0, -826.0]);
    let hu = values(&frame);
    assert_eq!(hu.iter().cloned().fold(f64::INFINITY, f64::min), -896.0);
    assert_eq!(hu.iter().cloned().fold(f64::NEG_INFINITY, f64::max), 1167.0);
    assert_eq!(hu.iter().sum::<f64>(), -1950906.0);
    assert_eq!(grey_sum(&frame, Some(window("lungs"))), 3342908);
    assert_eq!(grey_sum(&frame, Some(window("mediastinum"))), 1555508);
    assert_eq!(grey_sum(&frame, Some(window("brain"))), 1474215);
    // No window in the file: the frame's range.
    assert_eq!(grey_sum(&frame, None), 1565185);
}

/// Grey levels of real pixels worked by hand, ⌊255 · (v − lo) / W⌋ with
/// lo = L − W/2 (values below lo give 0), independent of incept's code and
/// of tools/dicom_facts.py; the HU values are pydicom's (pixel_array · slope
/// + intercept).
#[test]
fn real_files_window_as_worked_by_hand() {
    let grey = |frame: &DicomFrame, w: Option<Window>, row: usize, col: usize| {
        let rgb = frame.to_rgb(w).unwrap();
        rgb.get_pixel(col as u32, row as u32)[0]
    };
    let ct = read_frame(&sample("CT_small.dcm"), None).unwrap();
    // (row, col, HU, grey): lungs W 1500 L −600, lo −1350: −849 → 255·501/1500 = 85.17 → 85, …
    for (r, c, hu, g) in [(0, 0, -849.0, 85), (5, 7, -838.0, 87), (10, 3, -821.0, 89), (15, 15, -826.0, 89)] {
        assert_eq!((at(&ct, r, c), grey(&ct, Some(window("lungs")), r, c)), (hu, g), "lungs at ({r}, {c})");
    }
    // Mediastinum W 350 L 50, lo −125: −66 → 255·59/350 = 42.98 → 42; −91 → 24.77; 76 → 146.44; 77 → 147.17.
    for (r, c, hu, g) in [(0, 48, -66.0, 42), (54, 101, -91.0, 24), (84, 63, 76.0, 146), (105, 90, 77.0, 147), (0, 0, -849.0, 0)] {
        assert_eq!((at(&ct, r, c), grey(&ct, Some(window("mediastinum")), r, c)), (hu, g), "mediastinum at ({r}, {c})");
    }
    // Brain W 80 L 40, lo 0: 29 → 255·29/80 = 92.43 → 92; 34 → 108.38; 37 → 117.94; 66 → 210.38.
    for (r, c, hu, g) in [(0, 49, 29.0, 92), (73, 3, 34.0, 108), (86, 36, 37.0, 117), (101, 68, 66.0, 210)] {
        assert_eq!((at(&ct, r, c), grey(&ct, Some(window("brain")), r, c)), (hu, g), "brain at ({r}, {c})");
    }
    // No window in the file: its range −896 … 1167, W 2063, lo −896: −849 → 255·47/2063 = 5.81 → 5; −838 → 7.17; −826 → 8.65.
    for (r, c, g) in [(0, 0, 5), (5, 7, 7), (15, 15, 8)] {
        assert_eq!(grey(&ct, None, r, c), g, "the frame's range at ({r}, {c})");
    }
    // Its own window W 100 L 30, lo −20: 76 → 255·96/100 = 244.8 → 244; 23 → 109.65 → 109; −963 → 0.
    let small = read_frame(&sample("dicomdirtests/77654033/CT2/17106"), None).unwrap();
    for (r, c, g) in [(0, 0, 244), (15, 15, 109), (5, 7, 0)] {
        assert_eq!(grey(&small, None, r, c), g, "17106's own window at ({r}, {c})");
    }
    // MR, its own window W 1600 L 600, lo −200: 905 → 255·1105/1600 = 176.11 → 176; 847 → 166.87; 392 → 94.35; 654 → 136.11.
    let mr = read_frame(&sample("MR_small.dcm"), None).unwrap();
    for (r, c, g) in [(0, 0, 176), (5, 7, 166), (10, 3, 94), (15, 15, 136)] {
        assert_eq!(grey(&mr, None, r, c), g, "MR's own window at ({r}, {c})");
    }
}

#[test]
fn real_ct_file_without_an_extension_uses_its_own_window() {
    let path = sample("dicomdirtests/77654033/CT2/17106");
    assert!(incept::data::is_image_file(&path));
    let frame = read_frame(&path, None).unwrap();
    assert_eq!((frame.width(), frame.height()), (16, 16));
    assert_eq!([at(&frame, 0, 0), at(&frame, 5, 7), at(&frame, 10, 3), at(&frame, 15, 15)], [76.0, -963.0, -888.0, 23.0]);
    assert_eq!(values(&frame).iter().sum::<f64>(), -158395.0);
    assert_eq!(frame.window(None), Some(Window { width: 100.0, center: 30.0 }));
    assert_eq!(grey_sum(&frame, None), 3033);
    assert_eq!(grey_sum(&frame, Some(window("lungs"))), 31694);
}

#[test]
fn real_mr_slice_is_the_same_in_six_transfer_syntaxes() {
    let reference = read_frame(&sample("MR_small.dcm"), None).unwrap();
    assert_eq!((reference.width(), reference.height()), (64, 64));
    assert_eq!([at(&reference, 0, 0), at(&reference, 5, 7), at(&reference, 10, 3), at(&reference, 15, 15)], [905.0, 847.0, 392.0, 654.0]);
    assert_eq!(values(&reference).iter().sum::<f64>(), 2125338.0);
    assert_eq!(grey_sum(&reference, None), 460890, "its own window W 1600, L 600");
    // Implicit VR LE, explicit VR big endian (two files), RLE lossless, JPEG 2000 lossless.
    for name in ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"] {
        let frame = read_frame(&sample(name), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frame, reference, "{name}");
    }
}

#[test]
fn real_jpeg2000_file() {
    let frame = read_frame(&sample("JPEG2000.dcm"), None).unwrap();
    assert_eq!((frame.width(), frame.height()), (256, 1024));
    assert_eq!([at(&frame, 500, 100), at(&frame, 600, 128), at(&frame, 300, 200), at(&frame, 464, 254), at(&frame, 423, 143)], [26.0, -8.0, 31.0, -30.0, 245.0]);
    assert_eq!(values(&frame).iter().sum::<f64>(), 3527976.0);
}

/// Pixels (row r, column 50) for r = 5, 15, …, 95 of pydicom's colour test image (ten bands).
fn band_colours(rgb: &image::RgbImage) -> Vec<[u8; 3]> {
    (5..100).step_by(10).map(|r| rgb.get_pixel(50, r).0).collect()
}

#[test]
fn real_colour_files_rle_jpeg_baseline_and_ybr() {
    let bands = [[255, 0, 0], [255, 128, 128], [0, 255, 0], [128, 255, 128], [0, 0, 255], [128, 128, 255], [0, 0, 0], [64, 64, 64], [192, 192, 192], [255, 255, 255]];
    let rle = read_frame(&sample("SC_rgb_rle.dcm"), None).unwrap().to_rgb(None).unwrap();
    assert_eq!(rle.dimensions(), (100, 100));
    assert_eq!(band_colours(&rle), bands);
    assert_eq!(rle.as_raw().iter().map(|&v| v as u64).sum::<u64>(), 3831000);
    // JPEG baseline (YBR_FULL) and uncompressed YBR_FULL_422: lossy or
    // subsampled, so within 3 of the RGB values pydicom gives for them.
    let lossy = [[254, 0, 0], [255, 127, 127], [0, 255, 5], [129, 255, 129], [0, 0, 254], [128, 127, 255], [0, 0, 0], [64, 64, 64], [192, 192, 192], [255, 255, 255]];
    for name in ["SC_rgb_jpeg_dcmtk.dcm", "SC_ybr_full_422_uncompressed.dcm"] {
        let rgb = read_frame(&sample(name), None).unwrap_or_else(|e| panic!("{e}")).to_rgb(None).unwrap();
        for (got, want) in band_colours(&rgb).iter().zip(&lossy) {
            assert!(got.iter().zip(want).all(|(&g, &w)| (g as i32 - w as i32).abs() <= 3), "{name}: {got:?} vs {want:?}");
        }
        assert_eq!(rgb.dimensions(), (100, 100));
    }
    // The uncompressed one converts (YBR → RGB, BT.601) exactly as pydicom does.
    let ybr = read_frame(&sample("SC_ybr_full_422_uncompressed.dcm"), None).unwrap().to_rgb(None).unwrap();
    assert_eq!(band_colours(&ybr), lossy);
    assert_eq!(ybr.as_raw().iter().map(|&v| v as u64).sum::<u64>(), 3832000);
    let two = sample("SC_rgb_rle_2frame.dcm");
    assert!(read_frame(&two, None).unwrap_err().to_string().contains("2 frames"));
    let second = read_frame(&two, Some(1)).unwrap().to_rgb(None).unwrap();
    assert_eq!(band_colours(&second), [[0, 255, 255], [0, 127, 127], [255, 0, 255], [127, 0, 127], [255, 255, 0], [127, 127, 0], [255, 255, 255], [191, 191, 191], [63, 63, 63], [0, 0, 0]]);
    assert_eq!(second.as_raw().iter().map(|&v| v as u64).sum::<u64>(), 3819000);
}

// ---------------------------------------------------------------- the binary

#[test]
fn train_refuses_bad_dicom_flags_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for split in ["train", "valid"] {
        for class in ["a", "b"] {
            std::fs::create_dir_all(data.join(split).join(class)).unwrap();
            write_dicom(&data.join(split).join(class).join("x.dcm"), &Spec::mono(4, 4, Pixels::U8((0..16).collect())));
        }
    }
    let out = dir.path().join("run");
    for (value, says) in [("bone", "no `bone` preset"), ("0,40", "must be > 0"), ("nan,40", "finite"), ("-10,5", "must be > 0"), ("lungz", "unknown window")] {
        let o = binary::incept(&["train", "--data", data.to_str().unwrap(), "--random-init", "--out", out.to_str().unwrap(), "--dicom-window", value]);
        let text = binary::text(&o);
        assert!(!o.status.success() && text.contains("--dicom-window") && text.contains(says), "{value}: {text}");
        assert!(!out.exists(), "{value}: nothing may be written");
    }
    let o = binary::incept(&["train", "--data", data.to_str().unwrap(), "--random-init", "--out", out.to_str().unwrap(), "--dicom-frame", "-1"]);
    assert!(!o.status.success() && binary::text(&o).contains("--dicom-frame"));
    assert!(!out.exists());
}

#[test]
fn train_runs_on_a_class_folder_of_dicom_files_and_predict_uses_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (split, n, seed) in [("train", 3, 0u64), ("valid", 1, 100)] {
        for (c, class) in ["air", "bone"].iter().enumerate() {
            let folder = data.join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..n {
                let base = if c == 0 { -900 } else { 700 };
                // Distinct pixels per split: the same file in train/ and valid/ is refused as a leak.
                let stored: Vec<i16> = samples(40 * 30, base, base + 200, seed + i as u64).into_iter().map(|v| (v + 1024) as i16).collect();
                let spec = Spec { rescale: Some(("1", "-1024")), ..Spec::mono(30, 40, Pixels::I16(stored)) };
                // One training file per class without an extension.
                let name = if i == 0 { format!("slice{i}") } else { format!("slice{i}.dcm") };
                write_dicom(&folder.join(name), &spec);
            }
        }
    }
    let weights = binary::weights(dir.path());
    let run = dir.path().join("run");
    let text = binary::ok(binary::incept(&[
        "train", "--data", data.to_str().unwrap(), "--weights", weights.to_str().unwrap(), "--out", run.to_str().unwrap(),
        "--image-size", "75", "--epochs", "1", "--batch", "2", "--dicom-window", "lung",
    ]));
    assert!(text.contains("DICOM input: window lungs (W 1500, L -600)"), "{text}");
    assert!(!text.contains("warning: skipping"), "{text}");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(cfg["dicom"]["window"], serde_json::json!({"width": 1500.0, "center": -600.0}));
    // predict reads the run's window; a two-frame file is skipped with its reason.
    let two = dir.path().join("two.dcm");
    write_dicom(&two, &Spec { frames: 2, ..Spec::mono(4, 4, Pixels::U8((0..32).collect())) });
    let one = data.join("valid/air/slice0");
    let text = binary::ok(binary::incept(&["predict", "--model", run.to_str().unwrap(), one.to_str().unwrap(), two.to_str().unwrap()]));
    assert!(text.contains("slice0\t") && text.contains("two.dcm") && text.contains("2 frames"), "{text}");
    // Overriding the run's window (and choosing a frame) reads the two-frame file too.
    let text = binary::ok(binary::incept(&["predict", "--model", run.to_str().unwrap(), "--dicom-window", "brain", "--dicom-frame", "1", two.to_str().unwrap()]));
    assert!(text.contains("two.dcm\t") && !text.contains("skipping"), "{text}");
    // Resuming with another window is refused.
    let o = binary::incept(&["train", "--resume", run.to_str().unwrap(), "--epochs", "2", "--dicom-window", "brain"]);
    assert!(!o.status.success() && binary::text(&o).contains("--dicom-window"), "{}", binary::text(&o));
}
