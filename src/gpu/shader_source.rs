//! Where a kernel's WGSL comes from: the text embedded in the binary, or,
//! when `INCEPT_SHADER_DIR` names a folder, that folder's file of the same
//! name, read when the kernel is first compiled. The second is the kernel
//! student's loop: edit `shaders/x.wgsl`, rerun `incept bench kernels`, and
//! the lab checks and times the edit without rebuilding the Rust.
//!
//! A file from the folder is parsed and validated with naga (the WGSL front
//! end wgpu itself uses) before wgpu sees it, so a mistake is reported as
//! `PATH:LINE:COLUMN: message` with naga's annotated excerpt, as an error of
//! the command rather than a device error after the fact.

use super::kernel::Kernel;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use wgpu::naga;

/// The variable that names a folder of WGSL files to use instead of the embedded ones.
pub const SHADER_DIR_ENV: &str = "INCEPT_SHADER_DIR";

/// The folder named by [`SHADER_DIR_ENV`], if set and not empty.
pub fn shader_dir() -> Option<PathBuf> {
    std::env::var_os(SHADER_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The kernel's WGSL: `dir/FILE` when a folder is given (checked by naga),
/// otherwise the embedded text.
pub fn wgsl(kernel: &Kernel, dir: Option<&Path>) -> Result<Cow<'static, str>> {
    let Some(dir) = dir else { return Ok(Cow::Borrowed(kernel.source)) };
    let path = dir.join(kernel.file);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        reason: format!("cannot read the shader ({SHADER_DIR_ENV} is set): {e}"),
    })?;
    check(&path, &text)?;
    Ok(Cow::Owned(text))
}

/// Parses and validates `text` as WGSL; the error names `path`, the line and
/// the column, then gives naga's own report.
pub fn check(path: &Path, text: &str) -> Result<()> {
    let shown = path.display().to_string();
    let module = naga::front::wgsl::parse_str(text).map_err(|e| {
        let at = e.location(text).map_or(String::new(), |l| format!("{}:{}:", l.line_number, l.line_position));
        Error::Invalid(format!("{shown}:{at} {}\n{}", e.message(), e.emit_to_string_with_path(text, &shown)))
    })?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all()).validate(&module).map_err(|e| {
        let at = e.location(text).map_or(String::new(), |l| format!("{}:{}:", l.line_number, l.line_position));
        Error::Invalid(format!("{shown}:{at} {}\n{}", e.as_inner(), e.emit_to_string_with_path(text, &shown)))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistake_is_reported_with_file_line_and_column() {
        let good = "@compute @workgroup_size(1)\nfn main() {\n    let x = 1.0;\n}\n";
        check(Path::new("ok.wgsl"), good).unwrap();
        let bad = "@compute @workgroup_size(1)\nfn main() {\n    let x = 1.0 +;\n}\n";
        let message = check(Path::new("dir/bad.wgsl"), bad).unwrap_err().to_string();
        assert!(message.contains("dir/bad.wgsl:3:"), "{message}");
        // A validation error (a type mismatch), not a parse error.
        let wrong = "@compute @workgroup_size(1)\nfn main() {\n    var x: u32 = 1u;\n    x = 2.0;\n}\n";
        let message = check(Path::new("wrong.wgsl"), wrong).unwrap_err().to_string();
        assert!(message.contains("wrong.wgsl:4:"), "{message}");
    }
}
