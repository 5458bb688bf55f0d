//! `--weights FILE` and `--backbone NAME`, shared by the commands that build
//! a base network: the file says which backbone it holds, `--backbone`
//! picks one where no file is given and must agree with the file where one is.

use clap::Args;
use incept::data::{DicomOptions, Preprocess, load_image_with};
use incept::models::{Backbone, Base, WeightsFile};
use incept::train::memory;
use incept::{Gpu, Result, Tensor};
use std::path::PathBuf;

#[derive(Args)]
pub struct BaseArgs {
    /// Weights (safetensors, Keras names); the file says which backbone it holds.
    /// Random Keras initialisation when absent.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The network without --weights [default: inception_v3]; with --weights it must be the file's.
    #[arg(long, value_enum)]
    pub backbone: Option<Backbone>,
}

impl BaseArgs {
    /// The weights file, read and checked, when one is given.
    pub fn file(&self) -> Result<Option<WeightsFile>> {
        self.weights.as_deref().map(|p| WeightsFile::read_expecting(p, self.backbone)).transpose()
    }

    /// The base with the last `unfreeze_last` Keras layers trainable.
    pub fn load(&self, gpu: &Gpu, unfreeze_last: usize) -> Result<Base> {
        match self.file()? {
            Some(file) => Base::from_tensor_map(gpu, file.backbone, &file.base, unfreeze_last),
            None => Base::random(gpu, self.backbone.unwrap_or(Backbone::InceptionV3), 0, unfreeze_last),
        }
    }
}

/// The frozen base of `file`, after checking that batches of `batch`
/// `size`² images and their largest activation fit the adapter and the host
/// (errors name --batch and --image-size).
pub fn base_for_batches(gpu: &Gpu, file: &WeightsFile, batch: usize, size: usize) -> Result<Base> {
    memory::check_images_fit(gpu, &format!("--batch {batch}"), batch, &format!("--image-size {size}"), size, 1)?;
    let base = Base::from_tensor_map(gpu, file.backbone, &file.base, 0)?;
    memory::check_activations_fit(gpu, batch, size, &base.output_shapes(1, size, size)?)?;
    Ok(base)
}

/// `paths` loaded at `size`² and preprocessed, as one [n, size, size, 3] input.
pub fn image_batch(gpu: &Gpu, paths: &[PathBuf], size: usize, preprocess: Preprocess, dicom: &DicomOptions) -> Result<Tensor> {
    let mut pixels = Vec::with_capacity(paths.len() * size * size * 3);
    for path in paths {
        pixels.extend(load_image_with(path, size, preprocess, dicom)?);
    }
    Tensor::from_slice(gpu, &[paths.len(), size, size, 3], &pixels)
}
