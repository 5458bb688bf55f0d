//! Model definitions: layer graphs, the executor that runs any of them, and InceptionV3.

pub mod executor;
pub mod graph;
pub mod inception_v3;
pub mod inception_v3_graph;

pub use executor::{Boundary, LayerSummary, Network};
pub use inception_v3::InceptionV3;
