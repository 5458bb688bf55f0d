//! The cooperative-matrix conv kernel (shaders/conv2d_coop.wgsl, with 16×16
//! fragments, and the 8×8 variant the launcher derives from it) through
//! naga, without a GPU: parsed, validated with the capabilities it needs (and
//! refused without them), specialised for every subgroup size the launcher
//! can set, and written to SPIR-V with the capabilities wgpu's Vulkan
//! backend allows a device with cooperative matrices, f16 and subgroups. So a
//! syntax or validation break is caught in CI, where the adapter (lavapipe
//! 25) cannot run the kernel. The Rust constants that describe the shader
//! are checked against it here too.

use incept::gpu::coop::{COOP_SUBGROUP_SIZES, COOP_SUBGROUPS, COOP_TILES, workgroup_bytes};
use incept::ops::conv_coop::{self, SUBGROUP_SIZE_OVERRIDE};
use naga::back::spv;
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

/// The module with fragments of `tile`, and its source.
fn parse(tile: u32) -> (naga::Module, &'static str) {
    let source = conv_coop::source(tile).unwrap();
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("conv2d_coop.wgsl ({tile}x{tile}): {}", e.emit_to_string(source)));
    (module, source)
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
    for tile in COOP_TILES {
        let (module, source) = parse(tile);
        validate(&module, source, capabilities()).unwrap_or_else(|e| panic!("conv2d_coop.wgsl ({tile}x{tile}) does not validate: {e}"));
        for missing in [Capabilities::COOPERATIVE_MATRIX, Capabilities::SHADER_FLOAT16, Capabilities::SUBGROUP] {
            assert!(validate(&module, source, capabilities() - missing).is_err(), "conv2d_coop.wgsl ({tile}x{tile}) validates without {missing:?}");
        }
    }
}

#[test]
fn every_fragment_size_entry_point_and_subgroup_size_writes_spirv() {
    for tile in COOP_TILES {
        writes_spirv(tile);
    }
}

fn writes_spirv(tile: u32) {
    let (module, source) = parse(tile);
    let info = validate(&module, source, capabilities()).unwrap();
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
        for kernel in conv_coop::kernels(tile).unwrap() {
            for size in COOP_SUBGROUP_SIZES {
                let constants: naga::back::PipelineConstants = conv_coop::constants(size).iter().map(|(n, v)| (n.to_string(), *v)).collect();
                let (specialised, specialised_info) =
                    naga::back::pipeline_constants::process_overrides(&module, &info, Some((naga::ShaderStage::Compute, kernel.entry)), &constants)
                        .unwrap_or_else(|e| panic!("{} ({tile}x{tile}) with {SUBGROUP_SIZE_OVERRIDE} = {size}: {e}", kernel.entry));
                let ep = specialised.entry_points.iter().find(|e| e.name == kernel.entry).expect("entry point");
                assert_eq!(ep.workgroup_size, [COOP_SUBGROUPS * size, 1, 1], "{} ({tile}x{tile}) with subgroups of {size}", kernel.entry);
                let pipeline = spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: kernel.entry.to_string() };
                let words = spv::write_vec(&specialised, &specialised_info, &options, Some(&pipeline))
                    .unwrap_or_else(|e| panic!("{} ({tile}x{tile}) with subgroups of {size}: SPIR-V: {e}", kernel.entry));
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
        let (module, _) = parse(tile);
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
