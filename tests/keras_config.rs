//! Keras architectures read from the configs Keras itself wrote
//! (tests/data/keras: `inception_v3_head_config.json` and the `.h5` saved
//! by tf_keras from tools/make_keras_fixtures.py; `*_config.json.gz` from
//! tools/make_keras_configs.py) into incept's layer graph: InceptionV3's and
//! MobileNetV2's bases must come out as the built-in graphs, layer by layer
//! (kind, window, filters, BatchNorm settings and connections), and the
//! layers incept does not run yet are named, as `incept inspect` reports them.

use incept::io::keras_config::{Support, read_model};
use incept::io::keras_weights::read_keras_file;
use incept::models::Backbone;
use incept::models::graph::Graph;
use crate::common::{gunzip, keras_fixture};
use serde_json::Value;

fn config_gz(name: &str) -> Value {
    serde_json::from_slice(&gunzip(&keras_fixture(name))).unwrap()
}

/// Layer for layer, matched by name: the same kinds with the same settings
/// and the same inputs (by name); the input layer is matched by position
/// (Keras numbers it per session). Keras lists a functional model's layers
/// in an order of its own, so the order may differ from the built-in's.
fn assert_same_graph(got: &Graph, want: &Graph, what: &str) {
    assert_eq!(got.layers.len(), want.layers.len(), "{what}: layer count");
    let name = |g: &Graph, i: usize| if i == 0 { "input".to_string() } else { g.layers[i].name.clone() };
    for (i, w) in want.layers.iter().enumerate() {
        let j = if i == 0 { 0 } else { got.layers.iter().position(|g| g.name == w.name).unwrap_or_else(|| panic!("{what}: no layer '{}'", w.name)) };
        let g = &got.layers[j];
        assert_eq!(g.kind, w.kind, "{what}: layer '{}'", w.name);
        let inputs = |graph: &Graph, l: &incept::models::graph::Layer| l.inputs.iter().map(|&k| name(graph, k)).collect::<Vec<_>>();
        assert_eq!(inputs(got, g), inputs(want, w), "{what}: inputs of '{}'", w.name);
    }
    assert_eq!(got.output_name(), want.output_name(), "{what}: output layer");
}

#[test]
fn keras_3s_inception_v3_config_is_the_built_in_graph() {
    let path = keras_fixture("inception_v3_head_config.json");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let model = read_model(&path, &config).unwrap();
    // The head after the base: GlobalAveragePooling2D, then Dense and Dropout layers.
    let head: Vec<&str> = model.layers.iter().filter(|l| l.support == Support::Head).map(|l| l.class.as_str()).collect();
    assert_eq!(head.first(), Some(&"GlobalAveragePooling2D"), "{head:?}");
    assert!(head.contains(&"Dense"));
    assert_same_graph(&model.base_graph(&path).unwrap(), &Backbone::InceptionV3.graph(), "InceptionV3 (Keras 3 .keras config)");
}

#[test]
fn tf_keras_model_config_in_an_h5_is_read_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let h5 = tmp.path().join("model.h5");
    std::fs::write(&h5, gunzip(&keras_fixture("inception_v3_head_tf_keras_save.h5.gz"))).unwrap();
    let file = read_keras_file(&h5).unwrap();
    let config = file.raw_config.expect("save() writes model_config");
    let model = read_model(&h5, &config).unwrap();
    let base = model.base_graph(&h5).unwrap();
    assert_same_graph(&base, &Backbone::InceptionV3.graph(), "InceptionV3 (tf_keras save() .h5)");
}

#[test]
fn a_base_nested_as_a_layer_is_flattened_into_the_same_graph() {
    let path = keras_fixture("inception_v3_nested_head.keras");
    let config = read_keras_file(&path).unwrap().raw_config.unwrap();
    let got = read_model(&path, &config).unwrap().base_graph(&path).unwrap();
    // The nested base's auto names were numbered after another model's in
    // the session that wrote it, so compare what they are, not what they are called.
    let want = Backbone::InceptionV3.graph();
    let kinds = |g: &Graph| {
        let mut k: Vec<String> = g.layers.iter().map(|l| format!("{:?} <- {}", l.kind, l.inputs.len())).collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&got), kinds(&want));
    let last = |g: &Graph| *g.output_shapes(1, 299, 299, 3).unwrap().last().unwrap();
    assert_eq!(last(&got), [1, 8, 8, 2048]);
    assert_eq!(last(&got), last(&want));
}

#[test]
fn keras_applications_mobilenet_v2_config_is_the_built_in_graph() {
    let config = config_gz("mobilenet_v2_config.json.gz");
    let path = keras_fixture("mobilenet_v2_config.json.gz");
    let model = read_model(&path, &config).unwrap();
    assert_eq!(model.layers.len(), 154, "Keras's len(model.layers)");
    assert_same_graph(&model.base_graph(&path).unwrap(), &Backbone::MobileNetV2.graph(), "MobileNetV2 (keras.applications)");
    let summary = model.summary(&path);
    assert!(summary.contains("maps onto incept's layer graph") && summary.contains("'out_relu'"), "{summary}");
}

#[test]
fn densenet121s_base_uses_only_layers_incept_runs() {
    let config = config_gz("densenet121_config.json.gz");
    let path = keras_fixture("densenet121_config.json.gz");
    let model = read_model(&path, &config).unwrap();
    assert_eq!(model.layers.len(), 427);
    let graph = model.base_graph(&path).unwrap();
    // Its dense blocks concatenate; its transitions average-pool.
    let shapes = graph.output_shapes(1, 224, 224, 3).unwrap();
    assert_eq!(shapes.last().unwrap(), &[1, 7, 7, 1024], "DenseNet121's base output at 224²");
}

#[test]
fn unsupported_layers_are_named_with_their_class_and_why() {
    let cases = [
        // ResNet50's convolutions have biases.
        ("resnet50_config.json.gz", 175, "'conv1_conv' (Conv2D)", "bias"),
        // EfficientNetB0 starts with Rescaling and Normalization, and uses swish and squeeze-excite
        // (global pooling inside the network, Reshape, Multiply).
        ("efficientnet_b0_config.json.gz", 237, "'rescaling' (Rescaling)", "Multiply"),
    ];
    for (file, layers, first, mentioned) in cases {
        let path = keras_fixture(file);
        let config = config_gz(file);
        let model = read_model(&path, &config).unwrap();
        assert_eq!(model.layers.len(), layers, "{file}");
        let e = model.base_graph(&path).unwrap_err().to_string();
        assert!(e.contains(file) && e.contains(first), "{file}: {e}");
        let summary = model.summary(&path);
        assert!(summary.contains(first) && summary.contains(mentioned), "{file}: {summary}");
    }
}

#[test]
fn inspect_reports_the_architecture_of_a_keras_file_and_lists_its_layers() {
    let file = keras_fixture("inception_v3_nested_head.keras");
    let brief = crate::binary::ok(crate::binary::incept(&["inspect", "--brief", file.to_str().unwrap()]));
    assert!(brief.contains("architecture: 317 layers; the base, 311 layers up to 'mixed10', maps onto incept's layer graph"), "{brief}");
    assert!(brief.contains("then a head from 'global_average_pooling2d") && !brief.contains("from the file's config"), "{brief}");
    let full = crate::binary::ok(crate::binary::incept(&["inspect", file.to_str().unwrap()]));
    assert!(full.contains("layers (317), from the file's config:"), "{full}");
    let line = |name: &str| full.lines().find(|l| l.trim_start().starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no line for {name}: {full}")).to_string();
    assert!(line("mixed10").contains("Concatenate") && line("mixed10").contains("supported"), "{}", line("mixed10"));
    assert!(line("dense_3").contains("head"), "{}", line("dense_3"));
}

#[test]
fn inspect_lists_which_layers_are_not_supported_before_anyone_converts() {
    // A .keras archive holding EfficientNetB0's config as Keras wrote it (its weights are not needed to list layers).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("efficientnet_b0.keras");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = zip::write::SimpleFileOptions::default();
    zip.start_file("metadata.json", stored).unwrap();
    std::io::Write::write_all(&mut zip, br#"{"keras_version": "3.15.1"}"#).unwrap();
    zip.start_file("config.json", stored).unwrap();
    std::io::Write::write_all(&mut zip, &gunzip(&keras_fixture("efficientnet_b0_config.json.gz"))).unwrap();
    zip.start_file("model.weights.h5", stored).unwrap();
    std::io::Write::write_all(&mut zip, b"not read").unwrap();
    zip.finish().unwrap();
    let out = crate::binary::ok(crate::binary::incept(&["inspect", path.to_str().unwrap()]));
    assert!(out.contains("architecture: 237 layers;") && out.contains("the first 'rescaling' (Rescaling)"), "{out}");
    let silu = out.lines().find(|l| l.trim_start().starts_with("stem_activation ")).expect("stem_activation listed");
    assert!(silu.contains("NOT SUPPORTED") && silu.contains("silu"), "{silu}");
    let conv = out.lines().find(|l| l.trim_start().starts_with("stem_conv ")).expect("stem_conv listed");
    assert!(conv.contains("supported") && !conv.contains("NOT"), "{conv}");
}
