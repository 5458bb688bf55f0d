//! Variants of a kernel that WGSL's `override` constants cannot express (an
//! element type in memory, a cooperative-matrix fragment size): the kernel's
//! file with some of its lines rewritten. Each rewritable line is written out
//! once in the file (e.g. `alias SrcElem = f32;`), and a variant replaces it
//! whole; a line that is missing or repeated is an error naming the file, so
//! an edit of the shader cannot silently detach a variant from it.
//!
//! A variant is built on first use and kept for the life of the process, its
//! shader module cached under its own label (`Kernel::file`).

use super::Kernel;
use crate::error::{Error, Result};
use crate::tensor::DType;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Built variants by (label, entry point).
static VARIANTS: LazyLock<Mutex<HashMap<(String, &'static str), &'static Kernel>>> = LazyLock::new(Mutex::default);
/// Rewritten sources by label, shared by the entry points of one variant.
static SOURCES: LazyLock<Mutex<HashMap<String, &'static str>>> = LazyLock::new(Mutex::default);

/// `base` with each `(line, replacement)` of `rewrites` applied, under
/// `label`, which must name the variant uniquely (the caller derives it from
/// the same choices as the rewrites). A variant whose replacements mention
/// `f16` gets `enable f16;` in front when the file lacks it.
pub fn variant(base: &Kernel, label: &str, rewrites: &[(&str, String)]) -> Result<&'static Kernel> {
    let key = (label.to_string(), base.entry);
    if let Some(k) = VARIANTS.lock().unwrap().get(&key) {
        return Ok(k);
    }
    let source = {
        let mut sources = SOURCES.lock().unwrap();
        match sources.get(label) {
            Some(s) => *s,
            None => {
                let s: &'static str = Box::leak(rewrite(base, rewrites)?.into_boxed_str());
                sources.insert(label.to_string(), s);
                s
            }
        }
    };
    let file: &'static str = Box::leak(label.to_string().into_boxed_str());
    let kernel: &'static Kernel = Box::leak(Box::new(Kernel { file, source, ..*base }));
    VARIANTS.lock().unwrap().insert(key, kernel);
    Ok(kernel)
}

/// The source of `base` with `rewrites` applied.
pub fn rewrite(base: &Kernel, rewrites: &[(&str, String)]) -> Result<String> {
    let mut s = base.source.to_string();
    for (line, with) in rewrites {
        if s.matches(line).count() != 1 {
            return Err(Error::Invalid(format!("{}: expected the line {line:?} exactly once", base.file)));
        }
        s = s.replacen(line, with, 1);
    }
    if rewrites.iter().any(|(_, with)| with.contains("f16")) && !s.contains("enable f16;") {
        s = format!("enable f16;\n{s}");
    }
    Ok(s)
}

/// The WGSL scalar type of an element type.
pub fn wgsl_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::U32 => "u32",
    }
}
