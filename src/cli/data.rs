//! `incept data`: the default dataset, offline.

use clap::Subcommand;
use incept::data::fashion_mnist::INSTALL_SCRIPT;
use incept::data::write_fmnist4;
use incept::io::output_paths::{named, refuse_output_inside_inputs};
use incept::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum DataCommand {
    /// "fmnist4": Fashion-MNIST labels 0, 2, 4, 6 (T-shirt/top, Pullover, Coat, Shirt) as a
    /// class-per-folder PNG tree: per class 150 train, 50 valid, 100 test images. Installs
    /// Debian's dataset-fashion-mnist when it is missing.
    FashionMnist {
        #[arg(long)]
        out: PathBuf,
        /// Folder with the IDX files (default: Debian's /usr/share/datasets/fashion-mnist).
        #[arg(long)]
        source: Option<PathBuf>,
    },
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::FashionMnist { out, source } => {
            let inputs: Vec<_> = source.iter().map(|s| named("--source", s)).collect();
            refuse_output_inside_inputs(&[named("--out", &out)], &inputs)?;
            if source.is_none() && !Path::new(incept::data::fashion_mnist::DEBIAN_DIR).is_dir() {
                install_debian_package()?;
            }
            let summary = write_fmnist4(&out, source.as_deref())?;
            println!(
                "fmnist4 in {}: classes {:?}; train {}, valid {}, test {} images ({} written, {} unchanged)",
                summary.root.display(),
                summary.classes,
                summary.train,
                summary.valid,
                summary.test,
                summary.written,
                summary.unchanged
            );
            Ok(())
        }
    }
}

/// The install script, embedded so that the binary works from anywhere.
const INSTALL_SCRIPT_TEXT: &str = include_str!("../../tools/install-fashion-mnist.sh");

fn install_debian_package() -> Result<()> {
    println!("installing Debian's dataset-fashion-mnist ({INSTALL_SCRIPT})");
    let status = std::process::Command::new("bash")
        .args(["-c", INSTALL_SCRIPT_TEXT])
        .status()
        .map_err(|e| Error::Invalid(format!("cannot run bash for {INSTALL_SCRIPT}: {e}")))?;
    if !status.success() {
        return Err(Error::Invalid(format!("{INSTALL_SCRIPT} failed ({status}); install dataset-fashion-mnist by hand")));
    }
    Ok(())
}
