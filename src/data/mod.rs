//! Image input: class-per-folder splits, decoding, Keras-compatible resizing,
//! augmentation and preprocessing, DICOM windowing, a threaded batch
//! loader, test-time augmentation, and the Fashion-MNIST subset used as the
//! default dataset.

pub mod augment;
pub mod dicom;
pub mod duplicates;
pub mod fashion_mnist;
pub mod folder;
pub mod idx;
pub mod image_file;
pub mod loader;
pub mod split;
pub mod tta;
pub mod walk;

pub use augment::{Augment, Transform};
pub use dicom::{DicomOptions, Window};
pub use fashion_mnist::{Fmnist4Spec, Summary, write_fmnist4, write_fmnist4_with};
pub use folder::{ImageFolder, is_image_file};
pub use idx::{Idx, parse_idx, read_idx};
pub use image_file::{Preprocess, load_image, load_image_with, load_rgb, load_rgb_with};
pub use loader::{Batch, Epoch, Loader, LoaderConfig, Skipped};
pub use tta::Tta;
