//! Converts a TF.js layers model of Keras InceptionV3 to safetensors with
//! Keras 3 names (used by weights/fetch.sh until the CLI has a subcommand).
//!
//! cargo run --release --example convert_tfjs -- MODEL_JSON WEIGHTS_BIN OUT.safetensors [--f16]

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let f16 = args.iter().any(|a| a == "--f16");
    let paths: Vec<&String> = args.iter().filter(|a| *a != "--f16").collect();
    let [model_json, weights_bin, out] = paths.as_slice() else {
        eprintln!("usage: convert_tfjs MODEL_JSON WEIGHTS_BIN OUT.safetensors [--f16]");
        return ExitCode::from(2);
    };
    match incept::io::convert_inception_v3(Path::new(model_json), Path::new(weights_bin), Path::new(out), f16) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("convert_tfjs: {e}");
            ExitCode::FAILURE
        }
    }
}
