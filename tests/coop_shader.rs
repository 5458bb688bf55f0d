//! The cooperative-matrix conv kernel (shaders/conv2d_coop.wgsl, with 16×16
//! fragments over f32 activations, and every form the launcher derives from
//! it: 8×8 fragments, f16 input and/or output) through
//! naga, without a GPU: parsed, validated with the capabilities it needs (and
//! refused without them), specialised for every subgroup size the launcher
//! can set, and written to SPIR-V with the capabilities wgpu's Vulkan
//! backend allows a device with cooperative matrices, f16 and subgroups. So a
//! syntax or validation break is caught in CI, where the adapter (lavapipe
//! 25) cannot run the kernel. The Rust constants that describe the shader
//! are checked against it here too.

use incept::gpu::coop::{COOP_SUBGROUP_SIZES, COOP_SUBGROUPS, COOP_TILES, workgroup_bytes};
use incept::ops::conv_coop::{self, CoopVariant, SUBGROUP_SIZE_OVERRIDE};
use incept::DType;
use naga::back::spv;
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

/// The module of a form, and its source.
fn parse(v: CoopVariant) -> (naga::Module, String) {
    let source = v.source().unwrap();
    let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("conv2d_coop.wgsl {v:?}: {}", e.emit_to_string(&source)));
    (module, source)
}

/// The form over f32 activations with fragments of `tile`.
fn f32_form(tile: u32) -> CoopVariant {
    CoopVariant { tile, x: DType::F32, out: DType::F32 }
}

/// What wgpu validates a module with on a device with these features.
fn capabilities() -> Capabilities {
    Capabilities::COOPERATIVE_MATRIX | Capabilities::SHADER_FLOAT16 | Capabilities::SUBGROUP
}

fn validate(module: &naga::Module, source: &str, caps: Capabilities) -> Result<ModuleInfo, String> {
    Validator::new(ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(module)
        .map_err(|e| e.emit_to_string(source))
}

/// The SPIR-V capabilities wgpu-hal's Vulkan backend allows with
/// EXPERIMENTAL_COOPERATIVE_MATRIX, SHADER_F16 and SUBGROUP (those it always
/// allows, plus the ones these features add).
fn vulkan_capabilities() -> naga::FastHashSet<spv::Capability> {
    use spv::Capability as C;
    [
        C::Shader,
        C::Matrix,
        C::Sampled1D,
        C::Image1D,
        C::ImageQuery,
        C::DerivativeControl,
        C::StorageImageExtendedFormats,
        C::GroupNonUniform,
        C::GroupNonUniformVote,
        C::GroupNonUniformArithmetic,
        C::GroupNonUniformBallot,
        C::GroupNonUniformShuffle,
        C::GroupNonUniformShuffleRelative,
        C::GroupNonUniformQuad,
        C::Float16,
        C::CooperativeMatrixKHR,
        C::VulkanMemoryModel,
    ]
    .into_iter()
    .collect()
}

/// Descriptor set 0, bindings as declared: the one bind group layout of
/// incept's binding convention (src/gpu/kernel.rs), as wgpu maps it.
fn binding_map() -> spv::BindingMap {
    (0..=5).map(|binding| (naga::ResourceBinding { group: 0, binding }, spv::BindingInfo { descriptor_set: 0, binding, binding_array_size: None })).collect()
}

#[test]
fn the_kernel_validates_with_cooperative_matrices_f16_and_subgroups_only() {
    let forms = CoopVariant::all();
    assert_eq!(forms.len(), 2 * COOP_TILES.len() * 2, "both element types in and out per fragment size");
    for v in forms {
        let (module, source) = parse(v);
        validate(&module, &source, capabilities()).unwrap_or_else(|e| panic!("conv2d_coop.wgsl {v:?} does not validate: {e}"));
        for missing in [Capabilities::COOPERATIVE_MATRIX, Capabilities::SHADER_FLOAT16, Capabilities::SUBGROUP] {
            assert!(validate(&module, &source, capabilities() - missing).is_err(), "conv2d_coop.wgsl {v:?} validates without {missing:?}");
        }
    }
}

#[test]
fn every_form_entry_point_and_subgroup_size_writes_spirv() {
    for v in CoopVariant::all() {
        writes_spirv(v);
    }
}

fn writes_spirv(v: CoopVariant) {
    let (module, source) = parse(v);
    let info = validate(&module, &source, capabilities()).unwrap();
    // Both buffer policies wgpu uses on Vulkan (with and without robustBufferAccess2).
    for buffer in [naga::proc::BoundsCheckPolicy::Restrict, naga::proc::BoundsCheckPolicy::Unchecked] {
        let options = spv::Options {
            lang_version: (1, 6),
            flags: spv::WriterFlags::empty(),
            capabilities: Some(vulkan_capabilities()),
            bounds_check_policies: naga::proc::BoundsCheckPolicies {
                index: naga::proc::BoundsCheckPolicy::Restrict,
                buffer,
                image_load: naga::proc::BoundsCheckPolicy::Restrict,
                binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
            },
            fake_missing_bindings: false,
            binding_map: binding_map(),
            ..spv::Options::default()
        };
        for kernel in v.kernels().unwrap() {
            for size in COOP_SUBGROUP_SIZES {
                let constants: naga::back::PipelineConstants = conv_coop::constants(size).iter().map(|(n, v)| (n.to_string(), *v)).collect();
                let (specialised, specialised_info) =
                    naga::back::pipeline_constants::process_overrides(&module, &info, Some((naga::ShaderStage::Compute, kernel.entry)), &constants)
                        .unwrap_or_else(|e| panic!("{} {v:?} with {SUBGROUP_SIZE_OVERRIDE} = {size}: {e}", kernel.entry));
                let ep = specialised.entry_points.iter().find(|e| e.name == kernel.entry).expect("entry point");
                assert_eq!(ep.workgroup_size, [COOP_SUBGROUPS * size, 1, 1], "{} {v:?} with subgroups of {size}", kernel.entry);
                let pipeline = spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: kernel.entry.to_string() };
                let words = spv::write_vec(&specialised, &specialised_info, &options, Some(&pipeline))
                    .unwrap_or_else(|e| panic!("{} {v:?} with subgroups of {size}: SPIR-V: {e}", kernel.entry));
                assert_eq!(words.first(), Some(&0x0723_0203), "{}: not a SPIR-V module", kernel.entry);
                // The cooperative-matrix capability is declared (OpCapability = 17, CooperativeMatrixKHR = 6022).
                assert!(words.windows(2).any(|w| w == [(2 << 16) | 17, 6022]), "{}: no OpCapability CooperativeMatrixKHR", kernel.entry);
            }
        }
    }
}

/// A `const` of the shader as u32.
fn shader_const(module: &naga::Module, name: &str) -> u32 {
    let (_, c) = module.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no const {name}"));
    match module.global_expressions[c.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => v,
        ref other => panic!("const {name} is {other:?}"),
    }
}

#[test]
fn the_rust_constants_describe_the_shader() {
    for tile in COOP_TILES {
        let (module, _) = parse(f32_form(tile));
        assert_eq!(shader_const(&module, "FRAG"), tile);
        assert_eq!(shader_const(&module, "BM") as usize, conv_coop::tile_size(tile));
        assert_eq!(shader_const(&module, "BN") as usize, conv_coop::tile_size(tile));
        assert_eq!(shader_const(&module, "SUBGROUPS"), COOP_SUBGROUPS);
        let workgroup: u32 = module
            .global_variables
            .iter()
            .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
            .map(|(_, v)| module.types[v.ty].inner.size(module.to_ctx()))
            .sum();
        assert_eq!(workgroup, workgroup_bytes(tile), "workgroup memory of conv2d_coop.wgsl ({tile}x{tile})");
        let fragments = module.types.iter().filter(|(_, t)| matches!(t.inner, naga::TypeInner::CooperativeMatrix { .. }));
        for (_, t) in fragments {
            let naga::TypeInner::CooperativeMatrix { columns, rows, .. } = t.inner else { continue };
            assert_eq!([columns as u32, rows as u32], [tile, tile], "conv2d_coop.wgsl ({tile}x{tile}) declares {:?}", t.inner);
        }
    }
}
