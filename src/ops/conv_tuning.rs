//! Measured conv variant choices per (adapter, shape). `incept tune` times
//! every `ConvAlgo` at every InceptionV3 conv shape and writes the fastest
//! per shape to a cache file keyed by adapter name, driver version and incept
//! version; [`tuned`] reads that file once per process, and
//! `ConvAlgo::for_conv` falls back to the rule (`ConvAlgo::for_gpu`) for
//! shapes it does not list or when there is no file.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::conv::ConvAlgo;
use crate::ops::window::{Padding, Window2d};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Directory of the tuning cache (else `$XDG_CACHE_HOME/incept`, else `~/.cache/incept`).
pub const CACHE_DIR_ENV: &str = "INCEPT_CACHE_DIR";

/// A convolution as the tuning cache keys it (the batch is the file's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvKey {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub same_padding: bool,
    /// Explicit padding [top, bottom, left, right] (`Padding::Explicit`,
    /// `same_padding` false); absent from the file for 'valid' and 'same'
    /// windows, so files written before it existed read unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_padding: Option<[usize; 4]>,
}

impl ConvKey {
    pub fn new(h: usize, w: usize, cin: usize, cout: usize, win: &Window2d) -> ConvKey {
        let explicit_padding = match win.padding {
            Padding::Explicit { top, bottom, left, right } => Some([top, bottom, left, right]),
            Padding::Valid | Padding::Same => None,
        };
        ConvKey {
            h,
            w,
            cin,
            cout,
            kh: win.kh,
            kw: win.kw,
            stride_h: win.stride_h,
            stride_w: win.stride_w,
            same_padding: win.padding == Padding::Same,
            explicit_padding,
        }
    }

    /// The convolution's window.
    pub fn window(&self) -> Window2d {
        let padding = match (self.explicit_padding, self.same_padding) {
            (Some([top, bottom, left, right]), _) => Padding::Explicit { top, bottom, left, right },
            (None, true) => Padding::Same,
            (None, false) => Padding::Valid,
        };
        Window2d { kh: self.kh, kw: self.kw, stride_h: self.stride_h, stride_w: self.stride_w, padding }
    }
}

/// One measured choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedConv {
    #[serde(flatten)]
    pub key: ConvKey,
    /// A `ConvAlgo::name`.
    pub algo: String,
    /// Its time per run when tuned, and the rule's choice's (for the record).
    pub ms: f64,
    pub rule_ms: f64,
}

/// The cache file of one (adapter, driver, incept version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneFile {
    pub adapter: String,
    pub driver: String,
    pub incept: String,
    /// Batch size the shapes were timed at.
    pub batch: usize,
    pub conv: Vec<TunedConv>,
}

/// (adapter name, driver and driver version, incept version): what a cache file is valid for.
pub fn cache_identity(gpu: &Gpu) -> (String, String, String) {
    let info = gpu.info();
    (info.name.clone(), format!("{} {}", info.driver, info.driver_info).trim().to_string(), env!("CARGO_PKG_VERSION").to_string())
}

/// Where the cache file of this adapter lives, if a cache directory can be found.
pub fn cache_path(gpu: &Gpu) -> Option<PathBuf> {
    let dir = match std::env::var_os(CACHE_DIR_ENV) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("XDG_CACHE_HOME") {
            Some(d) => PathBuf::from(d).join("incept"),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache").join("incept"),
        },
    };
    let (adapter, driver, version) = cache_identity(gpu);
    let safe: String = format!("{adapter}-{driver}-{version}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    Some(dir.join(format!("tune-{safe}.json")))
}

pub fn save(path: &Path, file: &TuneFile) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.display().to_string(), reason: format!("creating the tuning cache directory: {e}") })?;
    }
    let json = serde_json::to_vec_pretty(file).map_err(|e| Error::Invalid(format!("{}: encoding the tuning cache: {e}", path.display())))?;
    crate::io::atomic::write_atomic(path, &json)
}

pub fn load(path: &Path) -> Result<TuneFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: e.to_string() })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("{}: not a tuning cache file: {e}", path.display())))
}

/// The choices of a file that matches this adapter, driver and incept version.
fn choices(gpu: &Gpu, file: &TuneFile, path: &Path) -> HashMap<ConvKey, ConvAlgo> {
    let (adapter, driver, version) = cache_identity(gpu);
    if (file.adapter.as_str(), file.driver.as_str(), file.incept.as_str()) != (adapter.as_str(), driver.as_str(), version.as_str()) {
        eprintln!("warning: {} was tuned for another adapter, driver or incept version; ignored", path.display());
        return HashMap::new();
    }
    let mut out = HashMap::new();
    for t in &file.conv {
        match ConvAlgo::from_name(&t.algo) {
            Some(algo) => {
                out.insert(t.key, algo);
            }
            None => eprintln!("warning: {}: unknown conv variant {:?} ignored (expected one of {})", path.display(), t.algo, ConvAlgo::names()),
        }
    }
    out
}

/// The measured choice for a conv on this adapter, from the cache file read
/// on first use (an unreadable file is reported once and ignored).
pub fn tuned(gpu: &Gpu, key: &ConvKey) -> Option<ConvAlgo> {
    type Tables = Mutex<HashMap<String, HashMap<ConvKey, ConvAlgo>>>;
    static TABLES: OnceLock<Tables> = OnceLock::new();
    let tables = TABLES.get_or_init(Tables::default);
    let mut tables = tables.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(table) = tables.get(gpu.name()) {
        return table.get(key).copied();
    }
    let table = tables.entry(gpu.name().to_string()).or_insert_with(|| match cache_path(gpu) {
        Some(path) if path.exists() => match load(&path) {
            Ok(file) => choices(gpu, &file, &path),
            Err(e) => {
                eprintln!("warning: {e}; using the built-in conv variant rule");
                HashMap::new()
            }
        },
        _ => HashMap::new(),
    });
    table.get(key).copied()
}

#[cfg(test)]
mod tests {
    use super::{ConvKey, TuneFile};
    use crate::ops::window::{Padding, Window2d};

    /// Explicit windows key apart from 'valid' and 'same' ones and round-trip
    /// through the file; an entry written before explicit padding existed
    /// (no `explicit_padding` field) still reads as its window.
    #[test]
    fn explicit_padding_keys_apart_and_old_files_read() {
        let explicit = Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 };
        let keys = [Padding::Valid, Padding::Same, explicit, Padding::Explicit { top: 1, bottom: 0, left: 0, right: 1 }]
            .map(|p| ConvKey::new(8, 8, 4, 4, &Window2d::new(3, 3, 2, p)));
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(keys.iter().filter(|b| *b == a).count(), 1, "{a:?}");
            assert_eq!(ConvKey::new(8, 8, 4, 4, &a.window()), *a, "key {i}");
        }
        let entry = |key: &str| format!(r#"{{"adapter":"a","driver":"d","incept":"v","batch":8,"conv":[{{"h":8,"w":8,"cin":4,"cout":4,"kh":3,"kw":3,"stride_h":2,"stride_w":2,"same_padding":false,{key}"algo":"direct","ms":1.0,"rule_ms":2.0}}]}}"#);
        let old: TuneFile = serde_json::from_str(&entry("")).unwrap();
        assert_eq!(old.conv[0].key, keys[0]);
        let new: TuneFile = serde_json::from_str(&entry(r#""explicit_padding":[0,1,0,1],"#)).unwrap();
        assert_eq!(new.conv[0].key, keys[2]);
        let written = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<TuneFile>(&written).unwrap(), new);
        assert!(!serde_json::to_string(&old).unwrap().contains("explicit_padding"));
    }
}
