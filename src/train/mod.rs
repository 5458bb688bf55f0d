//! Transfer learning as the Keras recipe does it: a pretrained base with its
//! last layers unfrozen, a Dense head, Adam, ReduceLROnPlateau, checkpoints.

pub mod callbacks;
pub mod checkpoint;
pub mod class_weight;
pub mod classifier;
pub mod config;
pub mod divergence;
pub mod feature_cache;
pub mod fit;
pub mod head;
pub mod imported;
pub mod init;
pub mod memory;
pub mod optimizer;
pub mod profile;
pub mod run_dir;
pub mod schedule;
pub mod split_record;
pub mod splits;
pub mod stages;
pub mod start;

pub use classifier::Classifier;
pub use config::TrainConfig;
