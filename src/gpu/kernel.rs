//! Kernel descriptions and the pipeline cache.
//!
//! Every kernel follows one binding convention, so that a launch needs no
//! per-kernel layout code:
//! - `@group(0) @binding(0)`: `var<uniform>` parameter struct (bound with a
//!   dynamic offset into the per-submit parameter ring, at most 256 bytes);
//! - bindings `1..=reads`: `var<storage, read>` inputs;
//! - the next `writes` bindings: `var<storage, read_write>` outputs.
//!
//! Tile sizes and other compile-time choices are WGSL `override` constants,
//! so each variant is one pipeline, compiled once and cached.

use super::shader_source;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A WGSL entry point and the shape of its bindings.
#[derive(Debug)]
pub struct Kernel {
    /// File name under `shaders/`, for messages and the module cache.
    pub file: &'static str,
    /// The WGSL source (embedded with `include_str!`; `INCEPT_SHADER_DIR`
    /// replaces it at run time, see `shader_source`).
    pub source: &'static str,
    pub entry: &'static str,
    /// Number of read-only storage bindings (1..=reads).
    pub reads: u32,
    /// Number of read-write storage bindings following the reads.
    pub writes: u32,
    /// The Rust layout of the uniform parameter struct at binding 0.
    pub params: &'static ParamsLayout,
    /// For 1-D kernels: the invocations per workgroup, set as the WGSL
    /// override `WORKGROUP_SIZE` when the pipeline is built, so the shader and
    /// the dispatch arithmetic share one Rust constant.
    pub workgroup_size: Option<u32>,
}

/// Name of the WGSL override that [`Kernel::workgroup_size`] sets.
pub const WORKGROUP_SIZE_OVERRIDE: &str = "WORKGROUP_SIZE";

/// Size and field offsets of a `#[repr(C)]` parameter struct, as Rust lays
/// it out; a test compares them with naga's layout of the WGSL twin, and the
/// size is the uniform binding's `min_binding_size`.
#[derive(Debug)]
pub struct ParamsLayout {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [ParamsField],
}

/// One field of a parameter struct: name, byte offset and Rust type (`u32`, `f32`, …).
#[derive(Debug, PartialEq, Eq)]
pub struct ParamsField {
    pub name: &'static str,
    pub offset: usize,
    pub ty: &'static str,
}

/// A kernel parameter struct declared with [`kernel_params!`].
pub trait KernelParams: bytemuck::Pod {
    const LAYOUT: ParamsLayout;
}

/// Declares a `#[repr(C)]` Pod parameter struct and its [`ParamsLayout`].
#[macro_export]
macro_rules! kernel_params {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fmeta])* $field: $ty),*
        }

        impl $crate::gpu::KernelParams for $name {
            const LAYOUT: $crate::gpu::ParamsLayout = $crate::gpu::ParamsLayout {
                name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[$($crate::gpu::ParamsField {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                    ty: stringify!($ty),
                }),*],
            };
        }
    };
}

/// Declares a `Kernel` constant for an entry point of a file in `shaders/`,
/// with its parameter struct and, for 1-D kernels, its workgroup size.
#[macro_export]
macro_rules! kernel {
    ($name:ident, $file:literal, $entry:literal, reads = $r:literal, writes = $w:literal, params = $p:ty $(, workgroup = $wg:expr)?) => {
        pub const $name: $crate::gpu::Kernel = $crate::gpu::Kernel {
            file: $file,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
            entry: $entry,
            reads: $r,
            writes: $w,
            params: &<$p as $crate::gpu::KernelParams>::LAYOUT,
            workgroup_size: $crate::kernel!(@workgroup $($wg)?),
        };
    };
    (@workgroup $wg:expr) => { Some($wg) };
    (@workgroup) => { None };
}

/// Maximum size of one kernel's parameter struct.
pub const PARAMS_SLOT: u64 = 256;

/// (reads, writes, parameter bytes): what a bind group layout depends on.
type LayoutKey = (u32, u32, u64);
type PipelineKey = (&'static str, &'static str, Vec<(&'static str, u64)>);

pub(crate) struct PipelineCache {
    /// Whether modules keep naga's runtime checks (see `Gpu::shader_checks`).
    checked: bool,
    /// The folder the WGSL is read from instead of the embedded text
    /// (`INCEPT_SHADER_DIR` when the device was opened).
    shader_dir: Option<PathBuf>,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<LayoutKey, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<CachedPipeline>>>,
}

pub(crate) struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

fn key(k: &Kernel, constants: &[(&'static str, f64)]) -> PipelineKey {
    (k.file, k.entry, constants.iter().map(|(n, v)| (*n, v.to_bits())).collect())
}

impl PipelineCache {
    pub(crate) fn new(checked: bool) -> PipelineCache {
        let shader_dir = shader_source::shader_dir();
        PipelineCache { checked, shader_dir, modules: Mutex::default(), layouts: Mutex::default(), pipelines: Mutex::default() }
    }

    pub(crate) fn checked(&self) -> bool {
        self.checked
    }

    /// The pipeline of a variant compiled before, if any.
    pub(crate) fn cached(&self, k: &Kernel, constants: &[(&'static str, f64)]) -> Option<Arc<CachedPipeline>> {
        self.pipelines.lock().unwrap().get(&key(k, constants)).cloned()
    }

    /// The pipeline of a variant, compiled on first use. Fails only for a
    /// shader read from `INCEPT_SHADER_DIR` that naga or wgpu rejects.
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        k: &Kernel,
        constants: &[(&'static str, f64)],
    ) -> Result<Arc<CachedPipeline>> {
        let key = key(k, constants);
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        // A shader from the folder may still disagree with the Rust side (an
        // entry point or binding renamed): wgpu's own errors are caught here
        // and named with the file, not reported later as a device error.
        let scope = self.shader_dir.as_ref().map(|_| device.push_error_scope(wgpu::ErrorFilter::Validation));
        let cached = self.modules.lock().unwrap().get(k.file).cloned();
        let module = match cached {
            Some(module) => module,
            None => {
                let source = shader_source::wgsl(k, self.shader_dir.as_deref())?;
                let module = self.create_module(device, k.file, source);
                self.modules.lock().unwrap().insert(k.file, module.clone());
                module
            }
        };
        let (bgl, pl) = self
            .layouts
            .lock()
            .unwrap()
            .entry((k.reads, k.writes, k.params.size as u64))
            .or_insert_with(|| layouts(device, k))
            .clone();
        let mut constants = constants.to_vec();
        if let Some(n) = k.workgroup_size {
            constants.push((WORKGROUP_SIZE_OVERRIDE, n as f64));
        }
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(k.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let (Some(scope), Some(dir)) = (scope, &self.shader_dir)
            && let Some(e) = pollster::block_on(scope.pop())
        {
            self.modules.lock().unwrap().remove(k.file);
            return Err(Error::Invalid(format!("{}: entry point {}: {e}", dir.join(k.file).display(), k.entry)));
        }
        let p = Arc::new(CachedPipeline { pipeline, layout: bgl });
        self.pipelines.lock().unwrap().insert(key, p.clone());
        Ok(p)
    }

    fn create_module(&self, device: &wgpu::Device, file: &'static str, source: std::borrow::Cow<'static, str>) -> wgpu::ShaderModule {
        let desc = wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(source) };
        if self.checked {
            device.create_shader_module(desc)
        } else {
            // SAFETY: asked for by the user (`INCEPT_SHADER_CHECKS=off`).
            // Every kernel indexes only inside its bindings (launchers
            // check that flat indices fit, kernels clamp or skip rows
            // and columns past the end), bounds its loops by its
            // parameters and divides by sizes the launchers never pass
            // as 0 (they return before dispatching empty work); the
            // kernel lab's check of every variant runs both ways
            // (tests/kernel_lab.rs).
            unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        }
    }
}

/// The bind group layout of the binding convention. The uniform binding
/// declares the Rust parameter struct's size as its minimum, so a WGSL
/// struct larger than its Rust twin fails pipeline creation instead of
/// reading the zero padding of the 256-byte slot. Storage bindings leave it
/// to wgpu, which checks each bound buffer against the shader's element size
/// at dispatch (a larger fixed minimum would reject one-element tensors).
fn layouts(device: &wgpu::Device, k: &Kernel) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let (reads, writes) = (k.reads, k.writes);
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: std::num::NonZeroU64::new(k.params.size as u64),
        },
        count: None,
    }];
    for i in 0..reads + writes {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: 1 + i,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: i < reads },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: None, entries: &entries });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    (bgl, pl)
}
