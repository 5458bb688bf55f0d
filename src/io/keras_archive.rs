//! What a Keras 3 `.keras` archive holds, read without HDF5: the zip's
//! members, `config.json` (the model's layers, walked into nested models)
//! and `metadata.json` (Keras's version, and the preprocessing incept's
//! Keras export records under "incept"). The weights, `model.weights.h5`,
//! are HDF5, read by [`read_member`] for `io::keras_weights`. Every member's
//! declared size is checked before it is read, and no read goes past it, so
//! a zip bomb is refused.

use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

/// The largest config.json or metadata.json read (a real InceptionV3 config is ~100 KB).
const MAX_JSON_BYTES: u64 = 64 << 20;

/// The first bytes of a zip archive (a .keras file).
pub const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";

/// What the archive says about itself.
#[derive(Clone, Debug)]
pub struct KerasArchive {
    /// (member name, uncompressed bytes), in archive order.
    pub members: Vec<(String, u64)>,
    /// Layers of every class, nested models walked, with their count.
    pub layer_counts: BTreeMap<String, usize>,
    /// `(units, activation)` of every Dense layer, in config order.
    pub dense: Vec<(u64, String)>,
    /// The input's `batch_shape` (Keras 3) as written, e.g. `[null, 299, 299, 3]`.
    pub input_shape: Option<String>,
    /// `metadata.json`'s top-level strings and the "incept" object's entries.
    pub metadata: Vec<(String, String)>,
    /// config.json as read.
    pub config: Value,
    /// metadata.json's "incept" object (what incept's Keras export records).
    pub incept: serde_json::Map<String, Value>,
}

/// The bytes of member `name` of the zip archive in `bytes`, refused when it
/// unpacks to more than `max` bytes (`path` names the archive in errors).
pub fn read_member(path: &Path, bytes: &[u8], name: &str, max: u64) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::Io { path: path.display().to_string(), reason };
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let f = zip.by_name(name).map_err(|e| bad(format!("no member {name}: {e}")))?;
    if f.size() > max {
        return Err(bad(format!("{name} unpacks to {} bytes (at most {max})", f.size())));
    }
    let declared = f.size();
    // Grown as bytes really arrive: the declared size is only the archive's claim.
    let mut out = Vec::with_capacity(declared.min(1 << 27) as usize);
    f.take(declared + 1).read_to_end(&mut out).map_err(|e| bad(format!("cannot unpack {name}: {e}")))?;
    if out.len() as u64 != declared {
        return Err(bad(format!("{name} unpacks to {} bytes, its zip entry says {declared}", out.len())));
    }
    Ok(out)
}

impl KerasArchive {
    /// Reads the archive in `bytes` (`path` names it in errors).
    pub fn read(path: &Path, bytes: &[u8]) -> Result<KerasArchive> {
        let bad = |reason: String| Error::Io { path: path.display().to_string(), reason };
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a zip archive: {e}")))?;
        let mut members = Vec::with_capacity(zip.len());
        for i in 0..zip.len() {
            let f = zip.by_index(i).map_err(|e| bad(format!("damaged zip entry {i}: {e}")))?;
            let name = f.name().map_err(|e| bad(format!("zip entry {i} has no readable name: {e}")))?.to_string();
            members.push((name, f.size()));
        }
        for need in ["config.json", "model.weights.h5"] {
            if !members.iter().any(|(n, _)| n == need) {
                let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
                return Err(bad(format!("a .keras archive needs {need}; it has {names:?}")));
            }
        }
        let mut json = |name: &str| -> Result<Option<Value>> {
            let Ok(f) = zip.by_name(name) else { return Ok(None) };
            if f.size() > MAX_JSON_BYTES {
                return Err(bad(format!("{name} unpacks to {} bytes (at most {MAX_JSON_BYTES})", f.size())));
            }
            let mut text = Vec::new();
            // take(): the declared size is the zip's claim; never read past the limit.
            f.take(MAX_JSON_BYTES + 1).read_to_end(&mut text).map_err(|e| bad(format!("cannot unpack {name}: {e}")))?;
            serde_json::from_slice(&text).map(Some).map_err(|e| bad(format!("{name} is not JSON: {e}")))
        };
        let config = json("config.json")?.unwrap_or(Value::Null);
        let meta = json("metadata.json")?;
        let mut archive =
            KerasArchive { members, layer_counts: BTreeMap::new(), dense: Vec::new(), input_shape: None, metadata: Vec::new(), config: Value::Null, incept: Default::default() };
        archive.walk(&config);
        archive.config = config;
        if archive.layer_counts.is_empty() {
            return Err(bad("config.json lists no layers (not a Keras model config)".into()));
        }
        if let Some(Value::Object(meta)) = meta {
            for (k, v) in &meta {
                match v {
                    Value::Object(inner) if k == "incept" => {
                        archive.metadata.extend(inner.iter().map(|(ik, iv)| (format!("incept.{ik}"), plain(iv))));
                        archive.incept = inner.clone();
                    }
                    other => archive.metadata.push((k.clone(), plain(other))),
                }
            }
        }
        Ok(archive)
    }

    /// Counts the layers of a model config, walking nested Functional/Sequential models.
    fn walk(&mut self, model: &Value) {
        let Some(layers) = model.pointer("/config/layers").and_then(Value::as_array) else { return };
        for layer in layers {
            let class = layer.get("class_name").and_then(Value::as_str).unwrap_or("?");
            *self.layer_counts.entry(class.to_string()).or_default() += 1;
            let config = layer.get("config").unwrap_or(&Value::Null);
            match class {
                "Functional" | "Sequential" | "Model" => self.walk(layer),
                "Dense" => self.dense.push((
                    config.get("units").and_then(Value::as_u64).unwrap_or(0),
                    config.get("activation").and_then(Value::as_str).unwrap_or("?").to_string(),
                )),
                "InputLayer" if self.input_shape.is_none() => {
                    self.input_shape = config.get("batch_shape").or_else(|| config.get("batch_input_shape")).map(Value::to_string);
                }
                _ => {}
            }
        }
    }

    /// Which model the config describes: InceptionV3's 94 Conv2D and 94
    /// BatchNormalization layers (plus a Dense head), or the layer counts.
    pub fn model(&self) -> String {
        let count = |c: &str| self.layer_counts.get(c).copied().unwrap_or(0);
        let head = match self.dense.as_slice() {
            [] => String::new(),
            dense => format!(" + head {}", dense.iter().map(|(u, a)| format!("Dense({u}, {a})")).collect::<Vec<_>>().join(" → ")),
        };
        let input = self.input_shape.as_deref().map(|s| format!(", input {s}")).unwrap_or_default();
        if count("Conv2D") == 94 && count("BatchNormalization") == 94 {
            format!("Keras InceptionV3 base (94 Conv2D, 94 BatchNormalization){head}{input}")
        } else {
            let layers: Vec<String> = self.layer_counts.iter().map(|(c, n)| format!("{n} {c}")).collect();
            format!("not InceptionV3 (which has 94 Conv2D and 94 BatchNormalization layers): {}{input}", layers.join(", "))
        }
    }
}

fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
