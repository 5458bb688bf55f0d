//! `incept convert keras` and `incept inspect` on files Keras itself wrote
//! (tests/data/keras, made by tools/make_keras_fixtures.py with tf_keras
//! 2.21 and Keras 3.15.1): every tensor of each file is filled from a
//! formula that names it and each of its elements (VALUES in the tool's
//! header), so a mapping error and an element order, transpose or layout
//! error inside a tensor shows; and incept's conversion is byte for byte
//! what the Python converter (tools/keras_h5_to_safetensors.py), run here,
//! writes.

use crate::binary;

use binary::{incept, ok, text};
use crate::common::{gunzip, keras_fixture};
use incept::io::keras_import::map_inception_v3;
use incept::io::keras_inception_v3::{bn_name, conv_name, convs};
use incept::io::keras_weights::{KerasFormat, read_keras_file};
use incept::io::{TensorMap, read_safetensors};
use std::path::{Path, PathBuf};

const CLASSES: [&str; 3] = ["cat", "dog", "fox"];

/// The fixture `name` in `dir`, gunzipped when it is stored as NAME.gz.
fn unpacked(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let gz = keras_fixture(&format!("{name}.gz"));
    if gz.exists() {
        std::fs::write(&out, gunzip(&gz)).unwrap();
    } else {
        std::fs::copy(keras_fixture(name), &out).unwrap();
    }
    out
}

/// VALUES of tools/make_keras_fixtures.py: what every tensor must hold
/// (conv k, Dense j of `dense` layers): a base per tensor times
/// f(i) = 1 + (i mod P) / (2P) over the row-major element index i, P = 1009
/// for tensors of up to 1009 elements, else 13; the last Dense kernel by
/// row, its bias 0.1·c.
fn expected(name: &str, shape: &[usize], dense: usize) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let (layer, var) = name.split_once('/').unwrap();
    let number = |prefix: &str| layer.strip_prefix(prefix).map(|r| r.strip_prefix('_').map_or(0, |k| k.parse::<usize>().unwrap()));
    // base · f(index(i)) for i in 0..n, where `index` maps an element to the index the formula uses.
    let values = |base: f64, distinct: usize, index: &dyn Fn(usize) -> usize| -> Vec<f32> {
        let period = if distinct <= 1009 { 1009 } else { 13 };
        (0..n).map(|i| (base * (1.0 + (index(i) % period) as f64 / (2 * period) as f64)) as f32).collect()
    };
    let element = |i: usize| i;
    if let Some(k) = number("conv2d") {
        let c = &convs()[k];
        return values((1.0 + k as f64 / 1000.0) / (c.kh * c.kw * c.cin) as f64, n, &element);
    }
    if let Some(j) = number("dense") {
        let last = j + 1 == dense;
        return match var {
            "kernel" if last => values((1.0 + j as f64 / 10.0) / shape[0] as f64, shape[0], &|i| i / shape[1]),
            "kernel" => values((1.0 + j as f64 / 10.0) / shape[0] as f64, n, &element),
            _ if last => (0..n).map(|c| (0.1 * c as f64) as f32).collect(),
            _ => values(0.001 * (j + 1) as f64, n, &element),
        };
    }
    let k = number("batch_normalization").unwrap() as f64;
    let base = match var {
        "beta" => 0.01 + k / 1e4,
        "moving_mean" => 0.02 + k / 1e4,
        _ => 1.0 + k / 1000.0,
    };
    values(base, n, &element)
}

#[track_caller]
fn check_values(what: &str, weights: &TensorMap, dense: usize) {
    assert_eq!(weights.len(), convs().len() * 4 + dense * 2, "{what}: tensor count");
    for k in [0, 1, 5, 8, 40, 93] {
        assert!(weights.contains_key(&format!("{}/kernel", conv_name(k))) && weights.contains_key(&format!("{}/moving_variance", bn_name(k))), "{what}: conv {k}");
    }
    for (name, t) in weights {
        assert_eq!(t.data, expected(name, &t.shape, dense), "{what}: {name} {:?}", t.shape);
    }
    // The fixture itself: the first kernel (3·3·3·32) holds 864 distinct values, so no reordering passes.
    let first = &weights["conv2d/kernel"].data;
    let distinct: std::collections::BTreeSet<u32> = first.iter().map(|v| v.to_bits()).collect();
    assert_eq!(distinct.len(), first.len(), "{what}: conv2d/kernel's values are not all distinct");
}

/// Every Keras form the fixtures hold: (file, form, has the head).
const FORMS: [(&str, KerasFormat, bool); 7] = [
    ("inception_v3_tf_keras.h5", KerasFormat::LegacyWeights, false),
    ("inception_v3_head_tf_keras_save.h5", KerasFormat::LegacyModel, true),
    ("inception_v3_nested_head_tf_keras_save.h5", KerasFormat::LegacyModel, true),
    ("inception_v3_keras3.weights.h5", KerasFormat::Keras3Weights, false),
    ("inception_v3_head_keras3.weights.h5", KerasFormat::Keras3Weights, true),
    ("inception_v3_head.keras", KerasFormat::Keras3Archive, true),
    ("inception_v3_nested_head.keras", KerasFormat::Keras3Archive, true),
];

#[test]
fn every_keras_form_maps_onto_incepts_names_with_the_values_keras_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, form, head) in FORMS {
        let path = unpacked(tmp.path(), name);
        let file = read_keras_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.format, form, "{name}");
        let imported = map_inception_v3(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(imported.has_head(), head, "{name}");
        if head {
            assert_eq!((imported.hidden.as_slice(), imported.classes), (&[512, 512][..], 3), "{name}");
        }
        check_values(name, &imported.all(), if head { 3 } else { 0 });
    }
}

/// The Python that runs tools/keras_h5_to_safetensors.py: `INCEPT_TOOLS_PYTHON`,
/// else the venv `bash tools/python-tools.sh` makes under target/ (tools/test.sh runs it).
fn tools_python() -> PathBuf {
    let python = std::env::var_os("INCEPT_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-tools/venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: the Python converter's check needs h5py, numpy and safetensors; run `bash tools/python-tools.sh` (tools/test.sh does) or set INCEPT_TOOLS_PYTHON",
        python.display()
    );
    python
}

/// The header of a safetensors file as JSON, and the bytes after it.
fn safetensors_parts(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), bytes[8 + n..].to_vec())
}

#[test]
fn the_base_alone_becomes_the_safetensors_file_the_python_converter_writes() {
    let python = tools_python();
    let converter = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/keras_h5_to_safetensors.py");
    let tmp = tempfile::tempdir().unwrap();
    for name in ["inception_v3_tf_keras.h5", "inception_v3_keras3.weights.h5"] {
        let path = unpacked(tmp.path(), name);
        let out = tmp.path().join(format!("{name}.safetensors"));
        let t = ok(incept(&["convert", "keras", path.to_str().unwrap(), "--out", out.to_str().unwrap()]));
        assert!(t.contains("InceptionV3 base, 21802784 parameters") && t.contains("376 tensors"), "{t}");
        check_values(name, &read_safetensors(&out).unwrap(), 0);

        let reference = tmp.path().join(format!("{name}.python.safetensors"));
        let o = std::process::Command::new(&python).arg(&converter).arg(&path).arg(&reference).output().unwrap();
        assert!(o.status.success(), "{name}: the Python converter failed: {}", text(&o));
        // The same header (names, dtypes, shapes, offsets, metadata; the Python writer orders the
        // metadata keys at random, so headers are compared as JSON) and the same tensor bytes.
        let (ours, our_data) = safetensors_parts(&out);
        let (theirs, their_data) = safetensors_parts(&reference);
        assert_eq!(ours, theirs, "{name}: headers differ");
        assert!(our_data == their_data, "{name}: tensor bytes differ");
        let metadata = &ours["__metadata__"];
        assert_eq!(metadata["source"], format!("keras: {name}"), "{metadata}");
    }
}

/// Three class folders of two 75×75 PNGs each.
fn image_tree(root: &Path) {
    for (c, class) in CLASSES.iter().enumerate() {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..2u32 {
            let img = image::RgbImage::from_fn(75, 75, |x, y| image::Rgb([(x * 3 + i * 40) as u8, (y * 2 + c as u32 * 60) as u8, 90]));
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

#[test]
fn a_model_with_the_head_becomes_a_run_that_predict_and_evaluate_use() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    image_tree(&images);
    // incept's Keras export recorded classes, size and preprocessing in metadata.json: no flags needed.
    let keras = keras_fixture("inception_v3_head.keras");
    let run = tmp.path().join("run");
    let t = ok(incept(&["convert", "keras", keras.to_str().unwrap(), "--out", run.to_str().unwrap()]));
    assert!(t.contains("+ head Dense 2048→512→512→3") && t.contains("classes cat, dog, fox") && t.contains("preprocessing inception"), "{t}");
    let cfg = incept::train::run_dir::load_config(&run).unwrap();
    assert_eq!((cfg.image_size, cfg.head.as_slice(), cfg.classes.as_slice()), (75, &[512, 512][..], &CLASSES.map(String::from)[..]));
    assert_eq!(cfg.dropout, 0.3);
    let best = incept::train::checkpoint::load_matching(&run.join("best.safetensors"), &cfg).unwrap();
    check_values("best.safetensors", &best.tensors, 3);

    // Constant kernels make every logit the same but for the last bias (0.1·c), so the
    // probabilities are softmax(0, 0.1, 0.2) for every image: a mapped head shows it.
    let t = ok(incept(&["predict", "--model", run.to_str().unwrap(), images.join("dog/0.png").to_str().unwrap()]));
    let z: f64 = (0..3).map(|c| (0.1 * c as f64).exp()).sum();
    let want: Vec<String> = (0..3).map(|c| format!("{}={:.4}", CLASSES[c], (0.1 * c as f64).exp() / z)).collect();
    assert!(t.contains(&format!("\tfox\t{}", want.join(" "))), "{t}\nwant {want:?}");

    let t = ok(incept(&["evaluate", "--model", run.to_str().unwrap(), "--data", images.to_str().unwrap(), "--top-losses", "0"]));
    // Every image is predicted fox.
    assert!(t.contains("accuracy: 0.3333") && t.contains("cat    0    0    2") && t.contains("fox    0    0    2"), "{t}");

    // Nothing to resume: the refusal says how to fine-tune it instead.
    let o = incept(&["train", "--resume", run.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("imported from the Keras file") && err.contains("--init"), "{err}");
}

#[test]
fn class_names_size_and_preprocessing_come_from_flags_when_the_file_lacks_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    image_tree(&data.join("train"));
    let h5 = unpacked(tmp.path(), "inception_v3_head_tf_keras_save.h5");
    let convert = |file: &Path, out: &Path, flags: &[&str]| {
        let mut args = vec!["convert", "keras", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        incept(&args)
    };
    let refused = |o: std::process::Output, file: &Path, what: &str, out: &Path| {
        let t = text(&o);
        assert!(!o.status.success() && t.contains(file.file_name().unwrap().to_str().unwrap()) && t.contains(what) && !t.contains("panicked"), "{what}: {t}");
        assert!(!out.exists(), "{}: written though the conversion failed", out.display());
    };
    let run = tmp.path().join("run_h5");
    refused(convert(&h5, &run, &["--data", data.to_str().unwrap()]), &h5, "--preprocess rescale", &run);
    refused(convert(&h5, &run, &["--preprocess", "rescale"]), &h5, "--classes", &run);
    refused(convert(&h5, &run, &["--preprocess", "rescale", "--classes", "a,b"]), &h5, "3 outputs", &run);
    // The input size comes from model_config (75), the classes from DATA/train's sorted folders.
    ok(convert(&h5, &run, &["--preprocess", "rescale", "--data", data.to_str().unwrap()]));
    let cfg = incept::train::run_dir::load_config(&run).unwrap();
    assert_eq!((cfg.image_size, cfg.classes.as_slice(), cfg.preprocess.name()), (75, &CLASSES.map(String::from)[..], "rescale"));
    assert_eq!(cfg.data, std::fs::canonicalize(&data).unwrap());
    refused(convert(&h5, &run, &["--preprocess", "rescale", "--data", data.to_str().unwrap()]), &run, "holds a run already", &tmp.path().join("never"));

    // The guide's nested form without incept's metadata: every setting from flags.
    let nested = keras_fixture("inception_v3_nested_head.keras");
    let run = tmp.path().join("run_nested");
    refused(convert(&nested, &run, &["--classes", "x,y,z", "--preprocess", "inception", "--image-size", "74"]), &nested, "--image-size 74", &run);
    ok(convert(&nested, &run, &["--classes", "x,y,z", "--preprocessing", "inception", "--image-size", "99"]));
    let cfg = incept::train::run_dir::load_config(&run).unwrap();
    assert_eq!((cfg.image_size, cfg.classes.join(","), cfg.preprocess.name()), (99, "x,y,z".to_string(), "inception"));

    // A .weights.h5 with incept's root attributes: they must agree with the flags.
    let weights = unpacked(tmp.path(), "inception_v3_head_keras3.weights.h5");
    let run = tmp.path().join("run_weights");
    refused(convert(&weights, &run, &["--preprocess", "rescale"]), &weights, "trained with inception", &run);
    refused(convert(&weights, &run, &["--classes", "x,y,z"]), &weights, "records [\"cat\", \"dog\", \"fox\"]", &run);
    ok(convert(&weights, &run, &[]));

    // The base alone takes none of these flags.
    let base = unpacked(tmp.path(), "inception_v3_keras3.weights.h5");
    let out = tmp.path().join("base.safetensors");
    refused(convert(&base, &out, &["--classes", "a,b"]), &base, "without a head", &out);
}

#[test]
fn other_models_and_damaged_files_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let keras3 = unpacked(tmp.path(), "inception_v3_keras3.weights.h5");
    let bytes = std::fs::read(&keras3).unwrap();
    let truncated = tmp.path().join("truncated.weights.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let legacy = std::fs::read(unpacked(tmp.path(), "inception_v3_tf_keras.h5")).unwrap();
    let truncated_legacy = tmp.path().join("truncated_legacy.h5");
    std::fs::write(&truncated_legacy, &legacy[..legacy.len() - 1000]).unwrap();
    let header_only = tmp.path().join("header_only.h5");
    std::fs::write(&header_only, &bytes[..600]).unwrap();
    let cases: [(PathBuf, &str); 7] = [
        (keras_fixture("tiny_dense.weights.h5"), "not Keras 3 InceptionV3 weights"),
        (keras_fixture("tiny_dense_tf_keras.h5"), "not Keras InceptionV3: 0 Conv2D"),
        (keras_fixture("tiny_dense.keras"), "not Keras InceptionV3: 0 Conv2D"),
        (keras_fixture("inception_v3_head_no_weights.keras"), "needs model.weights.h5"),
        (truncated, "truncated"),
        (truncated_legacy, "truncated"),
        (header_only, "HDF5"),
    ];
    for (file, what) in cases {
        let out = tmp.path().join("out");
        let o = incept(&["convert", "keras", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--classes", "a,b,c", "--preprocess", "rescale"]);
        let t = text(&o);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(!o.status.success() && t.contains(name) && t.contains(what) && !t.contains("panicked"), "{name}: {t}");
        assert!(!out.exists(), "{name}: output written");
    }
}

#[test]
fn inspect_reads_keras_hdf5_files_on_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let inspect = |p: &Path| ok(incept(&["inspect", p.to_str().unwrap()]));
    let t = inspect(&unpacked(tmp.path(), "inception_v3_tf_keras.h5"));
    assert!(t.contains("Keras 2 / tf_keras HDF5 weights") && t.contains("tensors: 376 (376 F32), 21802784 parameters"), "{t}");
    assert!(t.contains("model: InceptionV3 base (include_top=False)\n") && t.contains("metadata keras_version: 2.21.0"), "{t}");
    assert!(t.contains("conv2d_93/kernel") && t.contains("[1, 1, 2048, 192]"), "{t}");

    let t = inspect(&unpacked(tmp.path(), "inception_v3_head_keras3.weights.h5"));
    assert!(t.contains("Keras 3 weights (.weights.h5, no config") && t.contains("tensors: 382 (382 F32), 23116067 parameters"), "{t}");
    assert!(t.contains("+ head Dense 2048→512→512→3") && t.contains("preprocessing: inception, from the file's metadata"), "{t}");

    let t = inspect(&keras_fixture("inception_v3_nested_head.keras"));
    assert!(t.contains("Keras 3 .keras archive") && t.contains("tensors: 382") && t.contains("+ head Dense 2048→512→512→3"), "{t}");
    assert!(t.contains("preprocessing: not recorded"), "{t}");

    // Another model: listed as stored, and said not to be InceptionV3.
    let t = inspect(&keras_fixture("tiny_dense.weights.h5"));
    assert!(t.contains("HDF5") && t.contains("not a Keras InceptionV3 file") && t.contains("/layers/dense/vars/0") && t.contains("[4, 3]"), "{t}");
}
