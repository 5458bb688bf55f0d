//! The built-in backbones: which layer graph each one is, its input size,
//! its preprocessing and its Keras weight table. Everything else about a
//! network (planning, fusing, training) is the executor's and the same for all.

use super::efficientnet_lite0_graph::efficientnet_lite0_graph;
use super::executor::weight_table;
use super::graph::Graph;
use super::inception_v3_graph::inception_v3_graph;
use super::mobilenet_v2_graph::mobilenet_v2_graph;
use crate::data::Preprocess;
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    /// Keras InceptionV3, `include_top=False` (up to `mixed10`, 2048 channels).
    InceptionV3,
    /// Keras MobileNetV2, alpha 1.0, `include_top=False` (up to `out_relu`, 1280 channels).
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2,
    /// EfficientNet-Lite0 up to its head convolution's ReLU6 (`top_activation`, 1280 channels).
    #[serde(rename = "efficientnet_lite0")]
    EfficientNetLite0,
}

impl Backbone {
    pub const ALL: [Backbone; 3] = [Backbone::InceptionV3, Backbone::MobileNetV2, Backbone::EfficientNetLite0];

    /// The name `--backbone`, run.json and weight files' metadata use.
    pub fn name(self) -> &'static str {
        match self {
            Backbone::InceptionV3 => "inception_v3",
            Backbone::MobileNetV2 => "mobilenet_v2",
            Backbone::EfficientNetLite0 => "efficientnet_lite0",
        }
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Backbone::InceptionV3 => "InceptionV3",
            Backbone::MobileNetV2 => "MobileNetV2",
            Backbone::EfficientNetLite0 => "EfficientNet-Lite0",
        }
    }

    /// Parses [`Backbone::name`]; the error lists the names there are.
    pub fn from_name(name: &str) -> Result<Backbone> {
        Backbone::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Backbone::ALL.iter().map(|b| b.name()).collect();
            Error::Invalid(format!("unknown backbone '{name}': expected one of {}", names.join(", ")))
        })
    }

    /// The layer graph, InputLayer first, the base's output last.
    pub fn graph(self) -> Graph {
        match self {
            Backbone::InceptionV3 => inception_v3_graph(),
            Backbone::MobileNetV2 => mobilenet_v2_graph(),
            Backbone::EfficientNetLite0 => efficientnet_lite0_graph(),
        }
    }

    /// The input side the pretrained weights were trained at.
    pub fn native_size(self) -> usize {
        match self {
            Backbone::InceptionV3 => 299,
            Backbone::MobileNetV2 | Backbone::EfficientNetLite0 => 224,
        }
    }

    /// The smallest input side Keras accepts for the network (75 for
    /// InceptionV3, 32 for the five-times-downsampling mobile networks).
    pub fn min_size(self) -> usize {
        match self {
            Backbone::InceptionV3 => 75,
            Backbone::MobileNetV2 | Backbone::EfficientNetLite0 => 32,
        }
    }

    /// How the pretrained weights expect pixels: nsfwjs's InceptionV3 and
    /// MobileNetV2 were trained on x/255; EfficientNet-Lite on (x − 127)/128.
    pub fn default_preprocess(self) -> Preprocess {
        match self {
            Backbone::InceptionV3 | Backbone::MobileNetV2 => Preprocess::Rescale,
            Backbone::EfficientNetLite0 => Preprocess::Lite,
        }
    }

    /// Channels of the base's output (what global average pooling gives the head).
    pub fn feature_channels(self) -> usize {
        let s = self.native_size();
        // The graphs are constants of the program (their shapes are tested), so this cannot fail.
        let shapes = self.graph().output_shapes(1, s, s, 3).expect("a built-in graph has valid shapes at its native size");
        shapes.last().map_or(0, |s| s[3])
    }

    /// Errors unless an `h`×`w` input is large enough for the network.
    pub fn check_size(self, h: usize, w: usize) -> Result<()> {
        let min = self.min_size();
        if h < min || w < min {
            return Err(Error::Shape(format!("{} needs an input of at least {min}x{min}, got {h}x{w}", self.title())));
        }
        Ok(())
    }

    /// `(LAYER/VARIABLE, shape)` of every weight, in creation order.
    pub fn weight_table(self) -> Vec<(String, Vec<usize>)> {
        // The graphs are constants of the program (their shapes are tested), so this cannot fail.
        weight_table(&self.graph(), 3).expect("a built-in graph has a weight table")
    }

    /// Keras's parameter count without the top (moving statistics included).
    pub fn parameter_count(self) -> usize {
        self.weight_table().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// The backbone whose weight table names every tensor of `weights` (a
    /// file that does not say what it is): the first whose first weight is there.
    pub fn recognise(weights: &TensorMap) -> Option<Backbone> {
        let keras3 = |b: Backbone| b.canonical_names(weights).ok();
        Backbone::ALL.into_iter().find(|&b| keras3(b).is_some_and(|w| b.weight_table().first().is_some_and(|(name, _)| w.contains_key(name))))
    }

    /// The weights under this backbone's Keras 3 names: InceptionV3 files
    /// may use Keras 2's numbering (`conv2d_1` … `conv2d_94`); the other
    /// backbones' layers carry explicit names in both.
    pub fn canonical_names(self, weights: &TensorMap) -> Result<TensorMap> {
        match self {
            Backbone::InceptionV3 => super::inception_v3::keras3_names(weights),
            Backbone::MobileNetV2 | Backbone::EfficientNetLite0 => Ok(weights.clone()),
        }
    }

    /// Errors unless `weights` holds exactly this backbone's weights with
    /// the right shapes; the error names the first weight that is missing,
    /// has the wrong shape or data length, or is not part of the model.
    pub fn check_weights(self, weights: &TensorMap) -> Result<()> {
        let expected = self.weight_table();
        let title = self.title();
        for (name, shape) in &expected {
            let Some(t) = weights.get(name) else {
                return Err(Error::Invalid(format!("{title} weight '{name}' {shape:?} is missing")));
            };
            if &t.shape != shape {
                return Err(Error::Shape(format!("{title} weight '{name}' has shape {:?}, expected {shape:?}", t.shape)));
            }
            if t.data.len() != t.numel() {
                return Err(Error::Shape(format!("{title} weight '{name}' has {} values for shape {:?}", t.data.len(), t.shape)));
            }
        }
        if weights.len() != expected.len() {
            let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
            let extra = weights.keys().find(|n| !known.contains(n.as_str())).map_or("?", |n| n.as_str());
            return Err(Error::Invalid(format!(
                "'{extra}' is not a weight of {title} without top ({} weights given, {} expected)",
                weights.len(),
                expected.len()
            )));
        }
        Ok(())
    }

    /// Keras's default initialisation of every weight (Glorot-uniform
    /// kernels, gamma 1, beta 0, moving mean 0, moving variance 1), for
    /// training from scratch.
    pub fn random_weights(self, seed: u64) -> TensorMap {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut map = TensorMap::new();
        for (name, shape) in self.weight_table() {
            let n: usize = shape.iter().product();
            let data = if name.ends_with("/kernel") || name.ends_with("/depthwise_kernel") {
                // Glorot uniform: limit sqrt(6 / (fan_in + fan_out)), the receptive field counted in both.
                let receptive = shape[0] * shape[1];
                let limit = (6.0 / ((shape[2] + shape[3]) * receptive) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-limit..limit)).collect()
            } else if name.ends_with("/moving_variance") || name.ends_with("/gamma") {
                vec![1.0; n]
            } else {
                vec![0.0; n]
            };
            map.insert(name, HostTensor { shape, data });
        }
        map
    }
}

/// `--backbone NAME`: clap lists and parses [`Backbone::name`]s.
impl clap::ValueEnum for Backbone {
    fn value_variants<'a>() -> &'a [Self] {
        &Backbone::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.title()))
    }
}

impl std::fmt::Display for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layer and parameter counts as Keras reports them (`len(model.layers)`,
    /// `model.count_params()`) for `include_top=False`.
    #[test]
    fn keras_counts() {
        let cases = [
            (Backbone::InceptionV3, 311, 21_802_784, 2048),
            (Backbone::MobileNetV2, 154, 2_257_984, 1280),
            // The PyPI .pth holds 4,694,024 floats: these and the 1280→1000 classifier (and 49 integer BatchNorm step counters).
            (Backbone::EfficientNetLite0, 141, 4_694_024 - 1_281_000, 1280),
        ];
        for (b, layers, params, channels) in cases {
            assert_eq!(b.graph().layers.len(), layers, "{b} layers");
            assert_eq!(b.parameter_count(), params, "{b} parameters");
            assert_eq!(b.feature_channels(), channels, "{b} output channels");
            assert_eq!(Backbone::from_name(b.name()).unwrap(), b);
        }
        assert!(Backbone::from_name("resnet50").unwrap_err().to_string().contains("mobilenet_v2"));
    }

    #[test]
    fn recognises_each_backbone_by_its_weights() {
        for b in Backbone::ALL {
            let w = b.random_weights(1);
            b.check_weights(&w).unwrap();
            assert_eq!(Backbone::recognise(&w), Some(b));
        }
    }

    /// Output sides at the native input size: 8×8 for InceptionV3 at 299², 7×7 for the others at 224².
    #[test]
    fn output_sides_at_native_size() {
        for (b, side) in [(Backbone::InceptionV3, 8), (Backbone::MobileNetV2, 7), (Backbone::EfficientNetLite0, 7)] {
            let s = b.native_size();
            let shapes = b.graph().output_shapes(1, s, s, 3).unwrap();
            assert_eq!(shapes.last().unwrap(), &[1, side, side, b.feature_channels()], "{b}");
        }
    }
}
