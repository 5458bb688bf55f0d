//! Model definitions: layer graphs, the executor that runs any of them, the
//! built-in backbones and the weight files that say which one they hold.

pub mod backbone;
pub mod base;
pub mod efficientnet_lite0_graph;
pub mod executor;
pub mod graph;
pub mod inception_v3;
pub mod inception_v3_graph;
pub mod keras_names;
pub mod mobilenet_v2_graph;
pub mod weights_file;

pub use backbone::Backbone;
pub use base::Base;
pub use executor::{Boundary, LayerSummary, Network};
pub use weights_file::WeightsFile;
