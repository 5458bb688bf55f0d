//! `--weights FILE` and `--backbone NAME`, shared by the commands that build
//! a base network: the file says which backbone it holds, `--backbone`
//! picks one where no file is given and must agree with the file where one is.

use clap::Args;
use incept::models::{Backbone, Base, WeightsFile};
use incept::{Gpu, Result};
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
