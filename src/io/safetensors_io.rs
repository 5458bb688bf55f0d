//! safetensors files of f32 weights, stored as F32 or F16.
//!
//! Writing is atomic (`io::atomic`): the bytes go to a temporary file in the
//! target's directory, which is synced and then renamed over the target, so a
//! reader never sees a half-written file and a crash leaves the old file intact.
//! The header is written by hand, tensors sorted by name and metadata by key,
//! so the same tensors always give the same bytes (fetch scripts check a sha256).
//! Reading goes through the `safetensors` crate, which validates the layout.

use super::atomic::write_atomic_with;
use super::{HostTensor, TensorMap};
use crate::error::{Error, Result};
use half::f16;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

/// How values are stored in the file (always f32 in memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    F32,
    F16,
}

impl StorageDtype {
    fn bytes(self) -> usize {
        match self {
            StorageDtype::F32 => 4,
            StorageDtype::F16 => 2,
        }
    }

    /// The dtype's name in safetensors headers.
    pub fn name(self) -> &'static str {
        match self {
            StorageDtype::F32 => "F32",
            StorageDtype::F16 => "F16",
        }
    }
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// Writes `tensors` to `path` atomically; returns the file size in bytes.
/// Fails, naming the tensor, when a tensor's data does not fill its shape,
/// holds a NaN or an infinity (incept never saves a non-finite number), or
/// (for F16) a value is not finite in half precision.
pub fn write_safetensors(
    path: &Path,
    tensors: &TensorMap,
    storage: StorageDtype,
    metadata: &BTreeMap<String, String>,
) -> Result<u64> {
    for (name, t) in tensors {
        if t.data.len() != t.numel() {
            return Err(io_err(
                path,
                format!("tensor '{name}' has {} values but its shape {:?} needs {}", t.data.len(), t.shape, t.numel()),
            ));
        }
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(io_err(path, format!("not written: tensor '{name}' holds {} at index {i}; incept never saves a non-finite number", t.data[i])));
        }
        if storage == StorageDtype::F16
            && let Some(i) = t.data.iter().position(|v| !f16::from_f32(*v).is_finite())
        {
            return Err(io_err(
                path,
                format!("tensor '{name}' value {} at index {i} overflows F16; store F32 instead", t.data[i]),
            ));
        }
    }
    let header = header_bytes(tensors, storage, metadata);
    write_atomic_with(path, |w| write_tensors(w, &header, tensors, storage))
}

/// The 8-byte length, the JSON header padded with spaces to a multiple of 8.
fn header_bytes(tensors: &TensorMap, storage: StorageDtype, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut entries = Vec::with_capacity(tensors.len() + 1);
    if !metadata.is_empty() {
        let fields: Vec<String> = metadata.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v))).collect();
        entries.push(format!("\"__metadata__\":{{{}}}", fields.join(",")));
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        let end = offset + t.numel() * storage.bytes();
        let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
        entries.push(format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            quote(name),
            storage.name(),
            shape.join(",")
        ));
        offset = end;
    }
    let mut json = format!("{{{}}}", entries.join(",")).into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out
}

fn write_tensors(
    w: &mut impl Write,
    header: &[u8],
    tensors: &TensorMap,
    storage: StorageDtype,
) -> std::io::Result<u64> {
    w.write_all(header)?;
    let mut bytes = header.len() as u64;
    for t in tensors.values() {
        for &v in &t.data {
            match storage {
                StorageDtype::F32 => w.write_all(&v.to_le_bytes()),
                StorageDtype::F16 => w.write_all(&f16::from_f32(v).to_le_bytes()),
            }?;
        }
        bytes += (t.data.len() * storage.bytes()) as u64;
    }
    Ok(bytes)
}

/// Reads every tensor of a safetensors file as f32 (F32 or F16 storage).
pub fn read_safetensors(path: &Path) -> Result<TensorMap> {
    Ok(read_safetensors_with_metadata(path)?.0)
}

/// The tensors (as f32) and the `__metadata__` strings of a safetensors
/// file. The header is read and checked first: its length and the tensor
/// data it declares must be what the file holds, and the data must fit the
/// host's memory, before the file is read whole.
pub fn read_safetensors_with_metadata(path: &Path) -> Result<(TensorMap, BTreeMap<String, String>)> {
    let header = read_header(path)?;
    let declared = header.data_bytes()?;
    let file_data = header.file_len - 8 - header.len;
    if declared != file_data {
        return Err(io_err(
            path,
            format!("not a valid safetensors file: its header declares {declared} bytes of tensor data, but the file holds {file_data} after the header"),
        ));
    }
    // The file's bytes and the f32 values decoded from them (twice the bytes for F16).
    crate::host_memory::check_host_bytes(|| format!("reading {} ({} bytes)", path.display(), header.file_len), 3 * header.file_len as u128)?;
    let bytes = fs::read(path).map_err(|e| io_err(path, e))?;
    decode_safetensors(path, &bytes)
}

/// The safetensors crate's own cap on a header.
const MAX_HEADER: u64 = 100_000_000;

/// A safetensors file's JSON header, read without its data.
struct Header {
    path: std::path::PathBuf,
    /// Bytes of the JSON header, and of the whole file.
    len: u64,
    file_len: u64,
    json: serde_json::Value,
}

impl Header {
    /// The bytes of tensor data the header declares: the end of the last
    /// tensor's `data_offsets` (0 without tensors).
    fn data_bytes(&self) -> Result<u64> {
        let bad = |why: String| io_err(&self.path, format!("not a valid safetensors file: {why}"));
        let entries = self.json.as_object().ok_or_else(|| bad("the header is not a JSON object".into()))?;
        let mut end = 0u64;
        for (name, info) in entries.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
            let offsets = info.get("data_offsets").and_then(|o| o.as_array()).filter(|o| o.len() == 2);
            let Some([Some(_), Some(stop)]) = offsets.map(|o| [o[0].as_u64(), o[1].as_u64()]) else {
                return Err(bad(format!("tensor '{name}' has no data_offsets [begin, end]")));
            };
            end = end.max(stop);
        }
        Ok(end)
    }
}

/// Reads and parses the header of the safetensors file `path`, after
/// checking its declared length against the cap and the file's length.
fn read_header(path: &Path) -> Result<Header> {
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| io_err(path, format!("not a valid safetensors file: no header length ({e})")))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(io_err(path, format!("not a valid safetensors file: header of {len} bytes (at most {MAX_HEADER})")));
    }
    if len > file_len - 8 {
        return Err(io_err(path, format!("not a valid safetensors file: header of {len} bytes but the file ends after {}", file_len - 8)));
    }
    let mut header = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut header).map_err(|e| io_err(path, e))?;
    if header.len() as u64 != len {
        return Err(io_err(path, format!("not a valid safetensors file: header of {len} bytes but the file ends after {}", header.len())));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| io_err(path, format!("not a valid safetensors file: header is not JSON ({e})")))?;
    Ok(Header { path: path.to_path_buf(), len, file_len, json })
}

/// [`read_safetensors_with_metadata`] of a file already in memory; `path`
/// names it in errors.
pub fn decode_safetensors(path: &Path, bytes: &[u8]) -> Result<(TensorMap, BTreeMap<String, String>)> {
    let invalid = |e: safetensors::SafeTensorError| io_err(path, format!("not a valid safetensors file: {e}"));
    let file = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let mut out = TensorMap::new();
    for (name, view) in file.iter() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(io_err(
                    path,
                    format!("tensor '{name}' is stored as {other:?}; only F32 and F16 can be read"),
                ));
            }
        };
        out.insert(name.to_string(), HostTensor { shape: view.shape().to_vec(), data });
    }
    Ok((out, header.metadata().clone().unwrap_or_default().into_iter().collect()))
}

/// The `__metadata__` strings of a safetensors file (empty when it has
/// none), from its header alone: the tensor data is not read.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let header = read_header(path)?.json;
    let mut out = BTreeMap::new();
    if let Some(meta) = header.get("__metadata__") {
        let meta = meta.as_object().ok_or_else(|| io_err(path, "not a valid safetensors file: __metadata__ is not an object"))?;
        for (k, v) in meta {
            let v = v.as_str().ok_or_else(|| io_err(path, format!("not a valid safetensors file: metadata '{k}' is not a string")))?;
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(out)
}
