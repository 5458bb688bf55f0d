//! The Rust side of every kernel against its WGSL, through naga's reflection
//! of the shader: the parameter struct at @group(0) @binding(0) (size, field
//! names, offsets and types), the workgroup size override, and that
//! `ops::KERNELS` lists every compute entry point in `shaders/`. Then, on the
//! device, that a WGSL struct larger than its Rust twin is a validation error
//! (the uniform binding's `min_binding_size`), not a read of padding.

use incept::gpu::{Kernel, ParamsField, PARAMS_SLOT, WORKGROUP_SIZE_OVERRIDE};
use incept::ops::KERNELS;
use incept::{Gpu, GpuOptions, Tensor};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use std::collections::HashMap;

struct Reflected {
    module: naga::Module,
    info: ModuleInfo,
}

fn reflect(file: &str, source: &str) -> Reflected {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
    Reflected { module, info }
}

/// The Rust spelling of a WGSL member type.
fn rust_type(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => "u32".to_string(),
        (naga::ScalarKind::Sint, 4) => "i32".to_string(),
        (naga::ScalarKind::Float, 4) => "f32".to_string(),
        other => format!("{other:?}"),
    };
    match module.types[ty].inner {
        naga::TypeInner::Scalar(s) => scalar(s),
        naga::TypeInner::Vector { size, scalar: s } => format!("[{}; {}]", scalar(s), size as u8),
        ref other => format!("{other:?}"),
    }
}

/// (name, offset, Rust type) of the members and the size of the uniform struct
/// at @group(0) @binding(0) that entry point `entry` uses.
fn uniform_params(r: &Reflected, file: &str, entry: &str) -> (Vec<(String, usize, String)>, usize) {
    let index = r.module.entry_points.iter().position(|e| e.name == entry).unwrap_or_else(|| panic!("{file}: no entry point {entry}"));
    let uses = r.info.get_entry_point(index);
    let at_zero: Vec<_> = r
        .module
        .global_variables
        .iter()
        .filter(|(_, v)| v.binding == Some(naga::ResourceBinding { group: 0, binding: 0 }))
        .collect();
    let (_, var) = at_zero
        .iter()
        .find(|(h, _)| !uses[*h].is_empty())
        .or(at_zero.first())
        .unwrap_or_else(|| panic!("{file}: nothing at @group(0) @binding(0)"));
    assert_eq!(var.space, naga::AddressSpace::Uniform, "{file}: binding 0 must be var<uniform>");
    let naga::TypeInner::Struct { ref members, span } = r.module.types[var.ty].inner else {
        panic!("{file}: the uniform at binding 0 is not a struct");
    };
    let fields = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize, rust_type(&r.module, m.ty)))
        .collect();
    (fields, span as usize)
}

/// The default of the `WORKGROUP_SIZE` override, and whether `entry`'s
/// `@workgroup_size` x is that override.
fn workgroup_override(r: &Reflected, entry: &str) -> (Option<u32>, bool) {
    let found = r.module.overrides.iter().find(|(_, o)| o.name.as_deref() == Some(WORKGROUP_SIZE_OVERRIDE));
    let default = found.and_then(|(_, o)| match r.module.global_expressions[o.init?] {
        naga::Expression::Literal(naga::Literal::U32(n)) => Some(n),
        _ => None,
    });
    let ep = r.module.entry_points.iter().find(|e| e.name == entry).expect("entry point exists");
    let uses = match (found, ep.workgroup_size_overrides) {
        (Some((handle, _)), Some([Some(x), _, _])) => r.module.global_expressions[x] == naga::Expression::Override(handle),
        _ => false,
    };
    (default, uses)
}

fn reflected_files() -> HashMap<&'static str, Reflected> {
    let mut files = HashMap::new();
    for k in KERNELS {
        files.entry(k.file).or_insert_with(|| reflect(k.file, k.source));
    }
    files
}

#[test]
fn every_params_struct_matches_its_wgsl_twin() {
    let files = reflected_files();
    let mut mismatches = Vec::new();
    for k in KERNELS {
        let (fields, size) = uniform_params(&files[k.file], k.file, k.entry);
        let rust: Vec<(String, usize, String)> =
            k.params.fields.iter().map(|ParamsField { name, offset, ty }| (name.to_string(), *offset, ty.to_string())).collect();
        if fields != rust || size != k.params.size {
            mismatches.push(format!(
                "{} {} vs Rust {}: WGSL {size} bytes {fields:?}, Rust {} bytes {rust:?}",
                k.file, k.entry, k.params.name, k.params.size
            ));
        }
        assert!(k.params.size as u64 <= PARAMS_SLOT, "{} {}: {} bytes of parameters", k.file, k.entry, k.params.size);
    }
    assert!(mismatches.is_empty(), "parameter structs differ:\n{}", mismatches.join("\n"));
}

#[test]
fn workgroup_sizes_come_from_one_rust_constant() {
    let files = reflected_files();
    for k in KERNELS {
        let (default, uses) = workgroup_override(&files[k.file], k.entry);
        match k.workgroup_size {
            Some(n) => {
                assert!(uses, "{} {}: declares workgroup = {n} but @workgroup_size does not use {WORKGROUP_SIZE_OVERRIDE}", k.file, k.entry);
                assert_eq!(default, Some(n), "{} {}: WGSL default of {WORKGROUP_SIZE_OVERRIDE} differs from the Rust constant", k.file, k.entry);
            }
            None => assert!(!uses, "{} {}: uses {WORKGROUP_SIZE_OVERRIDE} but its kernel! declares no workgroup size", k.file, k.entry),
        }
    }
}

#[test]
fn the_kernel_list_covers_every_compute_entry_point() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        for ep in reflect(&file, &source).module.entry_points {
            if ep.stage == naga::ShaderStage::Compute && !KERNELS.iter().any(|k| k.file == file && k.entry == ep.name) {
                missing.push(format!("{file} {}", ep.name));
            }
        }
    }
    assert!(missing.is_empty(), "entry points missing from ops::KERNELS: {missing:?}");
}

incept::kernel_params! {
    /// One field fewer than the shader below declares.
    struct ShortParams {
        n: u32,
    }
}

const LONGER_STRUCT: Kernel = Kernel {
    file: "test_longer_struct.wgsl",
    source: "struct Params { n: u32, scale: f32 }
             @group(0) @binding(0) var<uniform> p: Params;
             @group(0) @binding(1) var<storage, read_write> out: array<f32>;
             @compute @workgroup_size(1) fn main() { out[0] = f32(p.n) * p.scale; }",
    entry: "main",
    reads: 0,
    writes: 1,
    params: &<ShortParams as incept::gpu::KernelParams>::LAYOUT,
    workgroup_size: None,
};

#[test]
fn a_wgsl_struct_longer_than_its_rust_twin_is_a_validation_error() {
    // A device of its own: the validation error must not reach other tests.
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let out = Tensor::zeros(&gpu, &[4]).unwrap();
    let launched = gpu.launch(&LONGER_STRUCT, &[], &ShortParams { n: 3 }, &[], &[&out], [1, 1, 1]);
    let err = launched.and_then(|()| gpu.synchronize()).expect_err("the pipeline must be rejected");
    assert!(err.to_string().contains("min_binding_size") || err.to_string().contains("size"), "{err}");
}
