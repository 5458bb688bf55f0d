//! Writes `incept::io::synthetic::synthetic_inception_v3_weights()` as an F32
//! safetensors file, so that `tools/make_goldens.py` can check that Python's
//! copy of the formula gives bit-identical weights.
//!
//! cargo run --example dump_synthetic_weights -- OUT.safetensors

use incept::io::synthetic::synthetic_inception_v3_weights;
use incept::io::{StorageDtype, write_safetensors};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: dump_synthetic_weights OUT.safetensors");
        return ExitCode::from(2);
    };
    let weights = synthetic_inception_v3_weights();
    match write_safetensors(Path::new(out), &weights, StorageDtype::F32, &BTreeMap::new()) {
        Ok(bytes) => {
            println!("wrote {} tensors, {bytes} bytes to {out}", weights.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dump_synthetic_weights: {e}");
            ExitCode::FAILURE
        }
    }
}
