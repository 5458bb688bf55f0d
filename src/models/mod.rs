//! Model definitions.

pub mod graph;
pub mod inception_v3_graph;
