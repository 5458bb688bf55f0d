//! Cooperative matrices (tensor cores) through wgpu's experimental feature:
//! whether an adapter can run incept's mixed-precision kernels
//! (`shaders/conv2d_coop.wgsl`), and, when it cannot, what it lacks.
//!
//! The kernels need, all at once: `Features::EXPERIMENTAL_COOPERATIVE_MATRIX`,
//! `SHADER_F16` and `SUBGROUP`; a 16×16×16 configuration with f16 A and B and
//! an f32 accumulator (wgpu lists subgroup-scope configurations only); one
//! fixed subgroup size among [`COOP_SUBGROUP_SIZES`] (a workgroup is
//! [`COOP_SUBGROUPS`] subgroups, and each subgroup owns one quadrant of the
//! output tile, so the size must be known when the pipeline is built); and
//! [`COOP_WORKGROUP_BYTES`] of workgroup memory.

use wgpu::{CooperativeMatrixProperties, CooperativeScalarType, Features};

/// Side of the square cooperative matrices the kernels multiply.
pub const COOP_TILE: u32 = 16;
/// Subgroups per workgroup of `conv2d_coop` (`SUBGROUPS` in the shader).
pub const COOP_SUBGROUPS: u32 = 4;
/// Subgroup sizes the kernel is specialised for (its `SUBGROUP_SIZE`
/// override): the staging loops need a workgroup size that is a multiple of 16.
pub const COOP_SUBGROUP_SIZES: [u32; 4] = [8, 16, 32, 64];
/// Workgroup memory of one `conv2d_coop` workgroup: two f16 stages of A
/// (64 rows × 40) and B (32 rows × 72), the f32 epilogue scratch (4 × 16 × 16)
/// and the per-row pixel table (64 × vec4<i32>).
pub const COOP_WORKGROUP_BYTES: u32 = 2 * 64 * 40 * 2 + 2 * 32 * 72 * 2 + 4 * 16 * 16 * 4 + 64 * 16;

/// What an adapter offers, as far as the mixed-precision kernels care.
#[derive(Clone, Debug, PartialEq)]
pub struct CoopCaps {
    pub features: Features,
    pub properties: Vec<CooperativeMatrixProperties>,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    pub max_invocations_per_workgroup: u32,
    pub max_workgroup_size_x: u32,
    pub max_workgroup_storage: u32,
}

impl CoopCaps {
    pub fn of(adapter: &wgpu::Adapter) -> CoopCaps {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features();
        // Only listed by adapters that have the feature; asking others is pointless.
        let properties = if features.contains(Features::EXPERIMENTAL_COOPERATIVE_MATRIX) { adapter.cooperative_matrix_properties() } else { Vec::new() };
        CoopCaps {
            features,
            properties,
            subgroup_min_size: info.subgroup_min_size,
            subgroup_max_size: info.subgroup_max_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_workgroup_size_x: limits.max_compute_workgroup_size_x,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
        }
    }
}

/// Whether a configuration is the one the kernels use: 16×16×16, f16 × f16 → f32.
pub fn is_kernel_config(p: &CooperativeMatrixProperties) -> bool {
    [p.m_size, p.n_size, p.k_size] == [COOP_TILE; 3] && p.ab_type == CooperativeScalarType::F16 && p.cr_type == CooperativeScalarType::F32
}

/// The subgroup size to build the kernels with when the adapter can run
/// them, else a sentence saying everything it lacks.
pub fn mixed_precision_support(caps: &CoopCaps) -> Result<u32, String> {
    let mut missing = Vec::new();
    for (feature, name) in [
        (Features::EXPERIMENTAL_COOPERATIVE_MATRIX, "cooperative matrices (EXPERIMENTAL_COOPERATIVE_MATRIX; on Vulkan VK_KHR_cooperative_matrix)"),
        (Features::SHADER_F16, "f16 in shaders (SHADER_F16)"),
        (Features::SUBGROUP, "subgroup operations (SUBGROUP)"),
    ] {
        if !caps.features.contains(feature) {
            missing.push(name.to_string());
        }
    }
    if caps.features.contains(Features::EXPERIMENTAL_COOPERATIVE_MATRIX) && !caps.properties.iter().any(is_kernel_config) {
        missing.push(format!("a 16x16x16 f16 x f16 -> f32 configuration (it lists {})", list_configs(&caps.properties)));
    }
    let size = caps.subgroup_min_size;
    let group = COOP_SUBGROUPS * size;
    if caps.subgroup_min_size != caps.subgroup_max_size {
        missing.push(format!("one fixed subgroup size (it has {}..{})", caps.subgroup_min_size, caps.subgroup_max_size));
    } else if !COOP_SUBGROUP_SIZES.contains(&size) {
        missing.push(format!("a subgroup size among {COOP_SUBGROUP_SIZES:?} (it has {size})"));
    } else if group > caps.max_invocations_per_workgroup || group > caps.max_workgroup_size_x {
        missing.push(format!("workgroups of {group} invocations (at most {})", caps.max_invocations_per_workgroup.min(caps.max_workgroup_size_x)));
    }
    if caps.max_workgroup_storage < COOP_WORKGROUP_BYTES {
        missing.push(format!("{COOP_WORKGROUP_BYTES} bytes of workgroup memory (it has {})", caps.max_workgroup_storage));
    }
    if missing.is_empty() { Ok(size) } else { Err(format!("it lacks {}", missing.join("; "))) }
}

/// The configurations as `16x16x16 F16->F32, …` (or `none`).
pub fn list_configs(properties: &[CooperativeMatrixProperties]) -> String {
    if properties.is_empty() {
        return "none".into();
    }
    let one = |p: &CooperativeMatrixProperties| {
        format!("{}x{}x{} {:?}->{:?}{}", p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type, if p.saturating_accumulation { " (saturating)" } else { "" })
    };
    properties.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// The line `incept devices` prints about cooperative matrices.
pub fn describe(caps: &CoopCaps) -> String {
    let support = match mixed_precision_support(caps) {
        Ok(size) => format!("usable for --precision mixed (16x16x16 f16 x f16 -> f32, subgroup size {size})"),
        Err(why) => format!("not usable for --precision mixed: {why}"),
    };
    format!("cooperative matrices: {}; {support}", list_configs(&caps.properties))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CooperativeScalarType::{F16, F32};

    fn config(size: u32, ab: CooperativeScalarType, cr: CooperativeScalarType) -> CooperativeMatrixProperties {
        CooperativeMatrixProperties { m_size: size, n_size: size, k_size: size, ab_type: ab, cr_type: cr, saturating_accumulation: false }
    }

    /// An NVIDIA-like adapter: 16×16×16 f16 with f16 or f32 accumulators, subgroups of 32.
    fn nvidia() -> CoopCaps {
        CoopCaps {
            features: Features::EXPERIMENTAL_COOPERATIVE_MATRIX | Features::SHADER_F16 | Features::SUBGROUP,
            properties: vec![config(16, F16, F16), config(16, F16, F32)],
            subgroup_min_size: 32,
            subgroup_max_size: 32,
            max_invocations_per_workgroup: 1024,
            max_workgroup_size_x: 1024,
            max_workgroup_storage: 49152,
        }
    }

    #[test]
    fn an_adapter_with_the_f16_f32_config_is_usable_with_its_subgroup_size() {
        assert_eq!(mixed_precision_support(&nvidia()), Ok(32));
        let amd = CoopCaps { subgroup_min_size: 64, subgroup_max_size: 64, ..nvidia() };
        assert_eq!(mixed_precision_support(&amd), Ok(64));
    }

    #[test]
    fn only_16x16x16_f16_inputs_with_f32_accumulators_count() {
        for other in [vec![config(16, F16, F16)], vec![config(8, F32, F32), config(8, F16, F32)], vec![config(16, F32, F32)], vec![]] {
            let caps = CoopCaps { properties: other.clone(), ..nvidia() };
            let why = mixed_precision_support(&caps).expect_err("no usable configuration");
            assert!(why.contains("16x16x16 f16 x f16 -> f32"), "{other:?}: {why}");
        }
        let rectangular = CooperativeMatrixProperties { k_size: 8, ..config(16, F16, F32) };
        assert!(!is_kernel_config(&rectangular));
    }

    #[test]
    fn every_missing_feature_is_named() {
        let caps = CoopCaps { features: Features::empty(), properties: vec![], ..nvidia() };
        let why = mixed_precision_support(&caps).expect_err("no features");
        for name in ["EXPERIMENTAL_COOPERATIVE_MATRIX", "SHADER_F16", "SUBGROUP"] {
            assert!(why.contains(name), "{why}");
        }
        // Without the feature the configurations are not asked for, so not reported missing twice.
        assert!(!why.contains("16x16x16"), "{why}");
    }

    #[test]
    fn a_variable_or_unsupported_subgroup_size_is_refused() {
        let variable = CoopCaps { subgroup_min_size: 8, subgroup_max_size: 32, ..nvidia() };
        assert!(mixed_precision_support(&variable).expect_err("variable size").contains("fixed subgroup size (it has 8..32)"));
        let odd = CoopCaps { subgroup_min_size: 4, subgroup_max_size: 4, ..nvidia() };
        assert!(mixed_precision_support(&odd).expect_err("size 4").contains("subgroup size among"));
        let small = CoopCaps { max_invocations_per_workgroup: 64, ..CoopCaps { subgroup_min_size: 64, subgroup_max_size: 64, ..nvidia() } };
        assert!(mixed_precision_support(&small).expect_err("256 invocations").contains("workgroups of 256"));
    }

    #[test]
    fn too_little_workgroup_memory_is_refused() {
        let caps = CoopCaps { max_workgroup_storage: 16384, ..nvidia() };
        let why = mixed_precision_support(&caps).expect_err("16 KiB");
        assert!(why.contains(&format!("{COOP_WORKGROUP_BYTES} bytes of workgroup memory (it has 16384)")), "{why}");
    }

    #[test]
    fn the_description_lists_the_configs_and_the_verdict() {
        let d = describe(&nvidia());
        assert!(d.contains("16x16x16 F16->F16, 16x16x16 F16->F32") && d.contains("usable for --precision mixed"), "{d}");
        let none = describe(&CoopCaps { features: Features::SHADER_F16, properties: vec![], ..nvidia() });
        assert!(none.starts_with("cooperative matrices: none;") && none.contains("not usable"), "{none}");
    }
}
