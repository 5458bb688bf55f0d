//! IDX files (the MNIST container format), plain or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (0x08 = unsigned byte, the only type
//! read here), the number of dimensions, each dimension as a big-endian u32,
//! then the values in row-major order.

use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl Idx {
    /// Number of items (the first dimension).
    pub fn len(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per item (the product of the other dimensions).
    pub fn item_size(&self) -> usize {
        self.dims.iter().skip(1).product()
    }

    /// Item `i`'s values.
    pub fn item(&self, i: usize) -> &[u8] {
        let n = self.item_size();
        &self.data[i * n..(i + 1) * n]
    }
}

fn idx_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.into() }
}

/// Reads and parses `path`, decompressing it first when it starts with the gzip magic.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let raw = std::fs::read(path).map_err(|e| idx_err(path, format!("cannot read IDX file: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| idx_err(path, format!("corrupt or truncated gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, path)
}

/// Parses IDX bytes; `path` only names the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Idx> {
    if bytes.len() < 4 {
        return Err(idx_err(path, format!("IDX header truncated: {} bytes, the magic number needs 4", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(idx_err(
            path,
            format!("bad IDX magic {:02x?}: the first two bytes must be 0 (is this an IDX file?)", &bytes[..4]),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(idx_err(
            path,
            format!("IDX value type 0x{:02x} is not supported (only 0x08, unsigned byte)", bytes[2]),
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 {
        return Err(idx_err(path, "IDX header declares 0 dimensions"));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(idx_err(
            path,
            format!("IDX header truncated: {rank} dimensions need {header} header bytes, the file has {}", bytes.len()),
        ));
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| idx_err(path, format!("IDX dimensions {dims:?} overflow")))?;
    let found = bytes.len() - header;
    if found < expected {
        return Err(idx_err(
            path,
            format!("IDX data truncated: dimensions {dims:?} need {expected} bytes of data, the file has {found}"),
        ));
    }
    if found > expected {
        return Err(idx_err(
            path,
            format!("IDX data has {found} bytes but dimensions {dims:?} need {expected}: trailing data"),
        ));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}
