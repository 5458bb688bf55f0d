//! Legacy (non-zip) `torch.save` files of a state dict, read without Python or torch.
//!
//! Layout (torch/serialization.py `_legacy_save`, the default before PyTorch 1.6
//! and `_use_new_zipfile_serialization=False` since): five pickles back to back,
//! then the storages' bytes.
//! 1. the magic number 0x1950a86a20f9469cfc6c;
//! 2. the format version, 1001;
//! 3. `sys_info`, a dict that must say `little_endian: True`;
//! 4. the state dict: an `OrderedDict` (or dict) of name →
//!    `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)`,
//!    where `storage` is the persistent id
//!    `('storage', torch.FloatStorage, KEY, LOCATION, NUMEL, None)`;
//! 5. the list of storage keys;
//!
//! then, for each key in that list's order, an 8-byte little-endian element count
//! and the storage's raw little-endian elements. Tensors that are views share a
//! storage and differ in offset; strides need not be row-major (the
//! EfficientNet-Lite0 file keeps its weights in TensorFlow's memory order).
//!
//! The pickles are read by `io::pickle`, which executes nothing and accepts only the
//! names a state dict needs (its header says why). Every declared size is checked
//! against the file before anything of that size is allocated, and every error names
//! the file and, where one is involved, the tensor.

use super::HostTensor;
use super::pickle::{self, Global, StorageType, Value};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// The number a legacy torch file opens with.
const MAGIC: i128 = 0x1950_a86a_20f9_469c_fc6c;
/// The only format version torch writes and reads.
const FORMAT_VERSION: i128 = 1001;

/// The float tensors of a state dict, and the names of the others.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyStateDict {
    /// Float tensors (float32; float16 and bfloat16 widened exactly), in the state dict's order.
    pub tensors: Vec<(String, HostTensor)>,
    /// Integer and bool entries (BatchNorm's int64 `num_batches_tracked`), in order, not read.
    pub skipped: Vec<String>,
}

/// The float tensors of a legacy (non-zip) torch.save file, in the state dict's order;
/// non-float entries (int64 num_batches_tracked) are skipped, and listed.
pub fn read_legacy_state_dict(path: &Path) -> Result<LegacyStateDict> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    parse(&bytes).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), reason: reason.to_string() }
}

/// One state dict entry as the pickle describes it, checked for types but not yet against the file.
struct Record {
    name: String,
    storage: Rc<str>,
    storage_type: StorageType,
    /// Elements the persistent id says the storage holds.
    storage_numel: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl Record {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::Invalid(format!("tensor '{}': {what}", self.name))
    }
}

/// Where a storage's elements lie in the file.
struct StorageSpan {
    start: usize,
    numel: usize,
}

fn parse(bytes: &[u8]) -> Result<LegacyStateDict> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(Error::Invalid(
            "this is a zip-format torch.save file (the default since PyTorch 1.6); only the legacy format is read"
                .into(),
        ));
    }
    let not_legacy = |why: String| Error::Invalid(format!("not a legacy torch.save file: {why}"));
    let (magic, pos) = pickle::load(bytes, 0).map_err(|e| not_legacy(e.to_string()))?;
    if !matches!(magic, Value::Int(MAGIC)) {
        return Err(not_legacy(format!("it opens with a pickled {}, not torch's magic number", magic.kind())));
    }
    let load = |pos, what: &str| pickle::load(bytes, pos).map_err(|e| Error::Invalid(format!("{what}: {e}")));
    let (version, pos) = load(pos, "the format version (second pickle)")?;
    if !matches!(version, Value::Int(FORMAT_VERSION)) {
        return Err(Error::Invalid(format!("format version is not {FORMAT_VERSION} (a {})", version.kind())));
    }
    let (sys_info, pos) = load(pos, "sys_info (third pickle)")?;
    let little_endian = match &sys_info {
        Value::Dict(items) => items.iter().find(|(k, _)| str_of(k) == Some("little_endian")).map(|(_, v)| v),
        _ => None,
    };
    match little_endian {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err(Error::Invalid("saved on a big-endian machine; not supported".into())),
        _ => return Err(Error::Invalid("sys_info (third pickle) does not say little_endian: True".into())),
    }
    let (state_dict, pos) = load(pos, "the state dict (fourth pickle)")?;
    let records = records(state_dict)?;
    let (keys, pos) = load(pos, "the storage key list (fifth pickle)")?;
    let keys = storage_keys(keys)?;
    let spans = storage_spans(bytes, pos, &keys, &records)?;

    let mut out = LegacyStateDict { tensors: Vec::new(), skipped: Vec::new() };
    for r in &records {
        let decode: fn(&[u8]) -> f32 = match r.storage_type {
            StorageType::Float => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            StorageType::Half => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            StorageType::BFloat16 => |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            StorageType::Double => {
                return Err(r.err("is float64; incept reads float32, float16 and bfloat16 tensors only"));
            }
            _ => {
                out.skipped.push(r.name.clone());
                continue;
            }
        };
        let span = &spans[&r.storage];
        let size = r.storage_type.element_size();
        let storage = &bytes[span.start..span.start + span.numel * size];
        let data: Vec<f32> = view_indices(r, span.numel)?.map(|i| decode(&storage[i * size..])).collect();
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(r.err(format!("has a non-finite value {} at index {i}", data[i])));
        }
        out.tensors.push((r.name.clone(), HostTensor { shape: r.shape.clone(), data }));
    }
    Ok(out)
}

fn str_of(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// The state dict's entries, in order, each checked to be a tensor with a sound shape and stride.
fn records(state_dict: Value) -> Result<Vec<Record>> {
    let Value::Dict(entries) = state_dict else {
        return Err(Error::Invalid(format!("the saved object is a {}, not a state dict", state_dict.kind())));
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let name = str_of(&key)
            .ok_or_else(|| Error::Invalid(format!("the state dict has a {} key, not a str", key.kind())))?
            .to_string();
        if !seen.insert(name.clone()) {
            return Err(Error::Invalid(format!("tensor '{name}' appears twice in the state dict")));
        }
        let record = record(&name, &value).map_err(|why| Error::Invalid(format!("tensor '{name}': {why}")))?;
        out.push(record);
    }
    Ok(out)
}

/// Reads `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)`.
fn record(name: &str, value: &Value) -> Result<Record, String> {
    let Value::RebuildTensor(args) = value else {
        return Err(format!("is a Python {}, not a tensor", value.kind()));
    };
    let [pid, offset, size, stride, requires_grad, hooks] = &args[..] else {
        return Err(format!("_rebuild_tensor_v2 has {} arguments, expected 6", args.len()));
    };
    let Value::PersistentId(pid) = pid else {
        return Err(format!("its storage is a {}, not a persistent id", pid.kind()));
    };
    let (storage, storage_type, storage_numel) = storage_id(pid)?;
    if !matches!(requires_grad, Value::Bool(_)) {
        return Err(format!("requires_grad is a {}, not a bool", requires_grad.kind()));
    }
    if !matches!(hooks, Value::Dict(h) if h.is_empty()) {
        return Err("has backward hooks".into());
    }
    let shape = dims(size, "size")?;
    let stride = dims(stride, "stride")?;
    if shape.len() != stride.len() {
        return Err(format!("size {shape:?} and stride {stride:?} differ in rank"));
    }
    Ok(Record {
        name: name.to_string(),
        storage,
        storage_type,
        storage_numel,
        offset: non_negative(offset, "storage_offset")?,
        shape,
        stride,
    })
}

/// `('storage', torch.XStorage, key, location, numel, None)`.
fn storage_id(pid: &Value) -> Result<(Rc<str>, StorageType, usize), String> {
    let Value::Tuple(items) = pid else {
        return Err(format!("its storage id is a {}, not a tuple", pid.kind()));
    };
    match &items[..] {
        [Value::Str(tag), Value::Global(Global::Storage(t)), Value::Str(key), Value::Str(_), numel, view]
            if &**tag == "storage" =>
        {
            if !matches!(view, Value::None) {
                return Err("its storage is a view of another storage; not supported".into());
            }
            Ok((key.clone(), *t, non_negative(numel, "storage size")?))
        }
        _ => Err("its storage id is not ('storage', torch.*Storage, key, location, size, None)".into()),
    }
}

fn non_negative(v: &Value, what: &str) -> Result<usize, String> {
    match v {
        Value::Int(i) => usize::try_from(*i).map_err(|_| format!("{what} {i} is negative or too large")),
        other => Err(format!("{what} is a {}, not an int", other.kind())),
    }
}

fn dims(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) => items.iter().map(|d| non_negative(d, what)).collect(),
        other => Err(format!("{what} is a {}, not a tuple", other.kind())),
    }
}

/// The storage index of each element of the view, in row-major order. Views may be offset
/// and strided (the EfficientNet-Lite0 file stores its convolution weights channels-last,
/// HWIO in memory under OIHW shapes) but must lie inside their storage and may not hold more
/// elements than it (no broadcasting), so what is read is bounded by the file's size.
fn view_indices(r: &Record, storage_numel: usize) -> Result<impl Iterator<Item = usize> + '_> {
    let numel =
        r.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= storage_numel).ok_or_else(|| {
            r.err(format!("shape {:?} has more elements than its storage '{}' ({storage_numel})", r.shape, r.storage))
        })?;
    if numel > 0 {
        // The last element's index: offset + Σ (extent − 1) · stride.
        let last = r
            .shape
            .iter()
            .zip(&r.stride)
            .try_fold(r.offset, |acc, (&n, &s)| (n - 1).checked_mul(s).and_then(|step| acc.checked_add(step)));
        if last.is_none_or(|last| last >= storage_numel) {
            return Err(r.err(format!(
                "shape {:?} with stride {:?} from offset {} reaches outside its storage '{}' of {storage_numel} elements",
                r.shape, r.stride, r.offset, r.storage
            )));
        }
    }
    // An odometer over the shape, last dimension fastest. Extent-1 dimensions never step,
    // so their strides (unchecked above, and arbitrary in torch files) are set to 0.
    let stride: Vec<usize> = r.shape.iter().zip(&r.stride).map(|(&n, &s)| if n == 1 { 0 } else { s }).collect();
    let mut index = vec![0usize; r.shape.len()];
    let mut at = r.offset;
    Ok((0..numel).map(move |k| {
        if k > 0 {
            for d in (0..index.len()).rev() {
                index[d] += 1;
                at += stride[d];
                if index[d] < r.shape[d] {
                    break;
                }
                at -= stride[d] * r.shape[d];
                index[d] = 0;
            }
        }
        at
    }))
}

fn storage_keys(keys: Value) -> Result<Vec<Rc<str>>> {
    let Value::List(keys) = keys else {
        return Err(Error::Invalid(format!("the storage key list (fifth pickle) is a {}", keys.kind())));
    };
    keys.into_iter()
        .map(|k| match k {
            Value::Str(s) => Ok(s),
            other => Err(Error::Invalid(format!("a storage key is a {}, not a str", other.kind()))),
        })
        .collect()
}

/// Locates each storage's elements, from byte `pos` on, checking every count against the
/// pickle and the file's length before anything is read.
fn storage_spans(
    bytes: &[u8],
    mut pos: usize,
    keys: &[Rc<str>],
    records: &[Record],
) -> Result<HashMap<Rc<str>, StorageSpan>> {
    // The first tensor that uses each storage names it in errors.
    let mut user: HashMap<&str, &Record> = HashMap::new();
    for r in records {
        let first = *user.entry(&r.storage).or_insert(r);
        if (first.storage_type, first.storage_numel) != (r.storage_type, r.storage_numel) {
            return Err(r.err(format!(
                "its storage '{}' is {} {} elements, but for tensor '{}' it is {} {} elements",
                r.storage,
                r.storage_numel,
                r.storage_type.dtype(),
                first.name,
                first.storage_numel,
                first.storage_type.dtype()
            )));
        }
    }
    let mut spans = HashMap::new();
    for key in keys {
        let r = user.get(&**key).ok_or_else(|| {
            Error::Invalid(format!("storage '{key}' is listed but no tensor of the state dict uses it"))
        })?;
        let count_bytes = bytes.get(pos..pos + 8).ok_or_else(|| {
            r.err(format!(
                "the element count of its storage '{key}' at byte {pos} is cut off: the file ends at byte {} (truncated)",
                bytes.len()
            ))
        })?;
        let count = i64::from_le_bytes(count_bytes.try_into().expect("8 bytes"));
        if usize::try_from(count).ok() != Some(r.storage_numel) {
            return Err(r.err(format!(
                "its storage '{key}' at byte {pos} counts {count} elements, but the state dict says {}",
                r.storage_numel
            )));
        }
        let start = pos + 8;
        let len = r.storage_numel.checked_mul(r.storage_type.element_size());
        let end = len.and_then(|len| start.checked_add(len)).filter(|&end| end <= bytes.len());
        let Some(end) = end else {
            return Err(r.err(format!(
                "its storage '{key}' of {} {} elements from byte {start} runs past the end of the file at byte {} \
                 (truncated, or a corrupt size)",
                r.storage_numel,
                r.storage_type.dtype(),
                bytes.len()
            )));
        };
        if spans.insert(key.clone(), StorageSpan { start, numel: r.storage_numel }).is_some() {
            return Err(r.err(format!("its storage '{key}' is listed twice")));
        }
        pos = end;
    }
    if let Some(r) = records.iter().find(|r| !spans.contains_key(&r.storage)) {
        return Err(r.err(format!("its storage '{}' is not in the file's storage list", r.storage)));
    }
    if pos != bytes.len() {
        return Err(Error::Invalid(format!(
            "{} bytes follow the last storage (which ends at byte {pos})",
            bytes.len() - pos
        )));
    }
    Ok(spans)
}
