//! What only InceptionV3 needs beyond its graph: the Keras 2 numbering of
//! its auto-named layers.

use crate::error::{Error, Result};
use crate::io::TensorMap;

/// Accepts Keras 2 numbering (`conv2d_1` … `conv2d_94`) by shifting every
/// index down by one, as Keras's legacy loader maps layers by position.
pub fn keras3_names(weights: &TensorMap) -> Result<TensorMap> {
    if weights.contains_key("conv2d/kernel") || !weights.contains_key("conv2d_94/kernel") {
        return Ok(weights.clone());
    }
    let mut out = TensorMap::new();
    for (name, t) in weights {
        let (layer, var) = name.split_once('/').ok_or_else(|| Error::Invalid(format!("weight name '{name}' is not LAYER/VARIABLE")))?;
        let renamed = match layer.rsplit_once('_') {
            Some((prefix @ ("conv2d" | "batch_normalization"), k)) => {
                let k: usize = k.parse().map_err(|_| Error::Invalid(format!("weight name '{name}': bad layer number")))?;
                match k {
                    0 => return Err(Error::Invalid(format!("weight '{name}': Keras 2 numbering starts at 1"))),
                    1 => format!("{prefix}/{var}"),
                    k => format!("{prefix}_{}/{var}", k - 1),
                }
            }
            _ => name.clone(),
        };
        out.insert(renamed, t.clone());
    }
    Ok(out)
}
