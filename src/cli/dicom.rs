//! The DICOM flags shared by the commands that read images.

use clap::Args;
use incept::data::dicom::PRESETS;
use incept::data::{DicomOptions, Window};

/// How DICOM files are read: on `train` (stored in run.json), `features`,
/// and as overrides of the run's on `predict`/`evaluate`.
#[derive(Args, Clone, Copy, Default)]
pub struct DicomArgs {
    #[arg(long, value_name = "W,L|NAME", value_parser = Window::parse, allow_hyphen_values = true, help = window_help())]
    pub dicom_window: Option<Window>,
    /// Read frame K (from 0) of multi-frame DICOM files [default: multi-frame files are skipped].
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub dicom_frame: Option<usize>,
}

impl DicomArgs {
    /// The flags given over `base` (the defaults, or a run's own).
    pub fn over(self, base: DicomOptions) -> DicomOptions {
        DicomOptions { window: self.dicom_window.or(base.window), frame: self.dicom_frame.or(base.frame) }
    }
}

fn window_help() -> String {
    let names: Vec<&str> = PRESETS.iter().map(|(name, ..)| *name).collect();
    format!(
        "Window for DICOM images: W,L (width, center in modality units, HU for CT) or one of fastai's presets ({}; `lung` for `lungs`) [default: the file's own window, else the frame's range]",
        names.join(", ")
    )
}
