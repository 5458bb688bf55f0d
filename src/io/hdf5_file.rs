//! HDF5 files as Keras writes them, read in pure Rust (the `hdf5-pure`
//! crate, no libhdf5): groups by path, string and string-list attributes in
//! any of the encodings h5py uses (fixed-length byte strings as old Keras
//! wrote them, variable-length strings as h5py 3 writes them), and float32
//! datasets. Every error names the file and the object inside it.

use super::HostTensor;
use crate::error::{Error, Result};
use hdf5_pure::{AttrValue, DType, File, Group};
use std::path::{Path, PathBuf};

/// The 8-byte signature at the start of every HDF5 file (without a user block).
pub const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// How deep [`Node::all_datasets`] walks.
const MAX_DEPTH: usize = 32;

/// An HDF5 file in memory; `path` names it in errors (for a `.keras`
/// archive's weights: `archive.keras!model.weights.h5`).
pub struct H5 {
    path: PathBuf,
    file: File,
    /// The file's length in bytes: no dataset can hold more than
    /// [`MAX_DEFLATE_RATIO`] times this.
    len: u64,
}

/// deflate's largest compression ratio (about 1032:1): a dataset declaring
/// more values than its file could hold even compressed is refused before
/// any of it is read (an 8 KB file declaring a [8192, 8192, 3, 4] array).
const MAX_DEFLATE_RATIO: u128 = 1032;

impl H5 {
    /// Parses `bytes`. A file shorter than its superblock says is refused as
    /// truncated before any object is read.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<H5> {
        let len = bytes.len() as u64;
        let file = File::from_bytes(bytes).map_err(|e| io_err(path, format!("not a readable HDF5 file: {e}")))?;
        let eof = file.superblock().eof_address;
        if eof > len {
            return Err(io_err(path, format!("truncated HDF5 file: it has {len} bytes, its superblock says {eof}")));
        }
        Ok(H5 { path: path.to_path_buf(), file, len })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root(&self) -> Node<'_> {
        Node { h5: self, group: self.file.root(), at: String::new() }
    }

    /// An error about object `at` of this file.
    pub fn err(&self, at: &str, reason: impl std::fmt::Display) -> Error {
        let at = if at.is_empty() { "/" } else { at };
        io_err(&self.path, format!("{at}: {reason}"))
    }
}

/// A group of an [`H5`] file with its path inside the file.
pub struct Node<'a> {
    h5: &'a H5,
    group: Group,
    at: String,
}

impl<'a> Node<'a> {
    /// Path of this group inside the file (`/` for the root).
    pub fn at(&self) -> &str {
        if self.at.is_empty() { "/" } else { &self.at }
    }

    fn child_path(&self, name: &str) -> String {
        format!("{}/{name}", self.at)
    }

    /// The subgroup `name`, or `None` when there is none.
    pub fn group(&self, name: &str) -> Result<Option<Node<'a>>> {
        if !self.group_names()?.iter().any(|g| g == name) {
            return Ok(None);
        }
        let group = self.group.group(name).map_err(|e| self.h5.err(&self.child_path(name), e))?;
        Ok(Some(Node { h5: self.h5, group, at: self.child_path(name) }))
    }

    /// Names of the subgroups.
    pub fn group_names(&self) -> Result<Vec<String>> {
        self.group.groups().map_err(|e| self.h5.err(&self.at, format!("cannot list the groups: {e}")))
    }

    /// Names of the datasets.
    pub fn dataset_names(&self) -> Result<Vec<String>> {
        self.group.datasets().map_err(|e| self.h5.err(&self.at, format!("cannot list the datasets: {e}")))
    }

    /// The float32 dataset at `name` (a path relative to this group, as
    /// Keras's `weight_names` give it), with its shape.
    pub fn tensor(&self, name: &str) -> Result<HostTensor> {
        let at = self.child_path(name);
        let ds = self.group.dataset(name).map_err(|e| self.h5.err(&at, format!("no such dataset ({e})")))?;
        let dtype = ds.dtype().map_err(|e| self.h5.err(&at, e))?;
        if dtype != DType::F32 {
            return Err(self.h5.err(&at, format!("stored as {dtype:?}; Keras weights are float32")));
        }
        let shape: Vec<usize> = ds.shape().map_err(|e| self.h5.err(&at, e))?.into_iter().map(|d| d as usize).collect();
        self.check_declared_size(&at, &shape)?;
        let data = ds.read_f32().map_err(|e| self.h5.err(&at, format!("cannot read: {e}")))?;
        let t = HostTensor { shape, data };
        if t.data.len() != t.numel() {
            return Err(self.h5.err(&at, format!("{} values for shape {:?}", t.data.len(), t.shape)));
        }
        Ok(t)
    }

    /// Errors, naming the dataset, unless float32 values of `shape` could be
    /// in this file (at most [`MAX_DEFLATE_RATIO`] times its length) and fit
    /// the host's memory: checked before the values are read.
    fn check_declared_size(&self, at: &str, shape: &[usize]) -> Result<()> {
        let bytes = shape.iter().fold(4u128, |n, &d| n.saturating_mul(d as u128));
        let most = MAX_DEFLATE_RATIO * self.h5.len as u128;
        if bytes > most {
            return Err(self.h5.err(
                at,
                format!("declares {shape:?} float32 values ({bytes} bytes), more than a {}-byte file can hold even compressed (at most {most} bytes); the file is damaged or not Keras weights", self.h5.len),
            ));
        }
        crate::host_memory::check_host_bytes(|| format!("{} in {}: dataset {shape:?}", at, self.h5.path.display()), bytes)
    }

    /// The dtype name and shape of dataset `name`, its values unread.
    pub fn describe(&self, name: &str) -> Result<(String, Vec<usize>)> {
        let at = self.child_path(name);
        let ds = self.group.dataset(name).map_err(|e| self.h5.err(&at, format!("no such dataset ({e})")))?;
        let dtype = ds.dtype().map_err(|e| self.h5.err(&at, e))?;
        let shape = ds.shape().map_err(|e| self.h5.err(&at, e))?.into_iter().map(|d| d as usize).collect();
        Ok((format!("{dtype:?}"), shape))
    }

    /// (path, dtype, shape) of every dataset under this group, groups walked
    /// depth-first in name order (at most `MAX_DEPTH` deep: HDF5 links may form cycles).
    pub fn all_datasets(&self) -> Result<Vec<(String, String, Vec<usize>)>> {
        let mut out = Vec::new();
        self.collect_datasets(0, &mut out)?;
        Ok(out)
    }

    fn collect_datasets(&self, depth: usize, out: &mut Vec<(String, String, Vec<usize>)>) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.h5.err(&self.at, format!("groups nested more than {MAX_DEPTH} deep")));
        }
        let mut names = self.dataset_names()?;
        names.sort();
        for name in names {
            let (dtype, shape) = self.describe(&name)?;
            out.push((self.child_path(&name), dtype, shape));
        }
        let mut groups = self.group_names()?;
        groups.sort();
        for name in groups {
            if let Some(child) = self.group(&name)? {
                child.collect_datasets(depth + 1, out)?;
            }
        }
        Ok(())
    }

    /// The string attribute `name`, or `None` when it is absent; errors when it is not a string.
    pub fn string_attr(&self, name: &str) -> Result<Option<String>> {
        let attrs = self.group.attrs().map_err(|e| self.h5.err(&self.at, format!("cannot read the attributes: {e}")))?;
        match attrs.get(name) {
            None => Ok(None),
            Some(v) => match strings(v) {
                Some(mut s) if s.len() == 1 => Ok(s.pop()),
                _ => Err(self.h5.err(&self.at, format!("attribute '{name}' is {v:?}, expected a string"))),
            },
        }
    }

    /// The numeric attribute `name` as an integer, or `None` when absent.
    pub fn int_attr(&self, name: &str) -> Result<Option<i64>> {
        let attrs = self.group.attrs().map_err(|e| self.h5.err(&self.at, format!("cannot read the attributes: {e}")))?;
        Ok(match attrs.get(name) {
            Some(AttrValue::I64(v)) => Some(*v),
            Some(AttrValue::I32(v)) => Some(i64::from(*v)),
            Some(AttrValue::U64(v)) => i64::try_from(*v).ok(),
            Some(AttrValue::U32(v)) => Some(i64::from(*v)),
            Some(other) => return Err(self.h5.err(&self.at, format!("attribute '{name}' is {other:?}, expected an integer"))),
            None => None,
        })
    }

    /// The string-list attribute `name`, also when Keras split a long one
    /// into `name0`, `name1`, … (its HDF5 object-header limit); empty when absent.
    pub fn string_list_attr(&self, name: &str) -> Result<Vec<String>> {
        let attrs = self.group.attrs().map_err(|e| self.h5.err(&self.at, format!("cannot read the attributes: {e}")))?;
        let list = |key: &str| -> Result<Option<Vec<String>>> {
            attrs.get(key).map(|v| strings(v).ok_or_else(|| self.h5.err(&self.at, format!("attribute '{key}' is {v:?}, expected strings")))).transpose()
        };
        if let Some(v) = list(name)? {
            return Ok(v);
        }
        let mut out = Vec::new();
        for i in 0.. {
            match list(&format!("{name}{i}"))? {
                Some(v) => out.extend(v),
                None => break,
            }
        }
        Ok(out)
    }
}

/// The strings of a string attribute of any encoding (a scalar gives one).
fn strings(v: &AttrValue) -> Option<Vec<String>> {
    Some(match v {
        AttrValue::String(s) | AttrValue::AsciiString(s) | AttrValue::VarLenString(s) | AttrValue::VarLenAsciiString(s) => vec![s.clone()],
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => vec![value.clone()],
        AttrValue::StringArray(v) | AttrValue::AsciiStringArray(v) | AttrValue::VarLenStringArray(v) | AttrValue::VarLenAsciiStringArray(v) | AttrValue::VarLenAsciiCharArray(v) => v.clone(),
        AttrValue::StringArraySized { values, .. } | AttrValue::AsciiStringArraySized { values, .. } => values.clone(),
        // An empty list: numpy makes `np.asarray([])` float64, so a layer without weights
        // has `weight_names` = an empty float array in Keras 2 / tf_keras files.
        AttrValue::F64Array(v) if v.is_empty() => Vec::new(),
        AttrValue::F32Array(v) if v.is_empty() => Vec::new(),
        _ => return None,
    })
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5_pure::FileBuilder;

    /// Keras 2 wrote `layer_names` as numpy fixed-length byte strings (Keras's
    /// ImageNet files), h5py 3 writes variable-length ones (tf_keras 2.21, the
    /// fixtures); long lists were split into `name0`, `name1`, ….
    #[test]
    fn string_lists_read_in_every_encoding_keras_used() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut b = FileBuilder::new();
        b.set_attr("fixed", AttrValue::ascii_string_array_sized(names(&["conv2d", "batch_normalization_93"]), 24).unwrap());
        b.set_attr("utf8", AttrValue::string_array_sized(names(&["dense"]), 8).unwrap());
        b.set_attr("vlen", AttrValue::VarLenAsciiStringArray(names(&["a", "bb"])));
        b.set_attr("split0", AttrValue::VarLenStringArray(names(&["x"])));
        b.set_attr("split1", AttrValue::AsciiStringArray(names(&["y", "z"])));
        b.set_attr("version", AttrValue::VarLenString("2.21.0".into()));
        b.set_attr("number", AttrValue::F64(1.0));
        b.set_attr("none", AttrValue::F64Array(Vec::new()));
        let h5 = H5::parse(Path::new("t.h5"), b.finish().unwrap()).unwrap();
        let root = h5.root();
        assert_eq!(root.string_list_attr("fixed").unwrap(), ["conv2d", "batch_normalization_93"]);
        assert_eq!(root.string_list_attr("utf8").unwrap(), ["dense"]);
        assert_eq!(root.string_list_attr("vlen").unwrap(), ["a", "bb"]);
        assert_eq!(root.string_list_attr("split").unwrap(), ["x", "y", "z"]);
        assert!(root.string_list_attr("absent").unwrap().is_empty());
        assert!(root.string_list_attr("none").unwrap().is_empty());
        assert_eq!(root.string_attr("version").unwrap().as_deref(), Some("2.21.0"));
        let e = root.string_attr("number").unwrap_err().to_string();
        assert!(e.contains("t.h5") && e.contains("'number'") && e.contains("expected a string"), "{e}");
    }

    #[test]
    fn a_file_shorter_than_its_superblock_says_is_truncated() {
        let mut b = FileBuilder::new();
        b.create_dataset("w").with_f32_data(&[1.0; 4096]).with_shape(&[64, 64]);
        let bytes = b.finish().unwrap();
        let whole = H5::parse(Path::new("w.h5"), bytes.clone()).unwrap();
        assert_eq!(whole.root().tensor("w").unwrap().shape, [64, 64]);
        let e = H5::parse(Path::new("w.h5"), bytes[..bytes.len() - 100].to_vec()).err().unwrap().to_string();
        assert!(e.contains("w.h5") && (e.contains("truncated") || e.contains("not a readable HDF5")), "{e}");
    }
}
