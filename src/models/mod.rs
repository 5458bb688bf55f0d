//! Model definitions.

pub mod graph;
pub mod inception_v3_graph;
pub mod inception_v3;

pub use inception_v3::{Boundary, InceptionV3};
