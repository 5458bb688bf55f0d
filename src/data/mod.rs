//! Image input: decoding, Keras-compatible resizing and preprocessing.

pub mod image_file;

pub use image_file::{Preprocess, load_image};
