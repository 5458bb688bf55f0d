//! Cooperative matrices (tensor cores) through wgpu's experimental feature:
//! whether an adapter can run incept's mixed-precision kernels
//! (`shaders/conv2d_coop.wgsl`), with which fragment size, and, when it
//! cannot, what it lacks.
//!
//! The kernels need, all at once: `Features::EXPERIMENTAL_COOPERATIVE_MATRIX`,
//! `SHADER_F16` and `SUBGROUP`; an N×N×N configuration with f16 A and B and
//! an f32 accumulator for N = 16 (NVIDIA, AMD) or, failing that, N = 8 (e.g.
//! Apple GPUs, Mesa's lavapipe; wgpu lists subgroup-scope configurations
//! only); one fixed subgroup size among [`COOP_SUBGROUP_SIZES`] (a workgroup
//! is [`COOP_SUBGROUPS`] subgroups, and each subgroup owns one quadrant of
//! the output tile, so the size must be known when the pipeline is built);
//! and [`workgroup_bytes`] of workgroup memory.

use wgpu::{CooperativeMatrixProperties, CooperativeScalarType, Features};

/// Fragment sizes of the kernels, the preferred (larger) first.
pub const COOP_TILES: [u32; 2] = [16, 8];
/// Subgroups per workgroup of `conv2d_coop` (`SUBGROUPS` in the shader).
pub const COOP_SUBGROUPS: u32 = 4;
/// Subgroup sizes the kernel is specialised for (its `SUBGROUP_SIZE`
/// override): the staging loops need a workgroup size that is a multiple of 16.
pub const COOP_SUBGROUP_SIZES: [u32; 4] = [8, 16, 32, 64];

/// Workgroup memory of one `conv2d_coop` workgroup with fragments of
/// `tile`: two f16 stages of A (4·tile rows of 40) and of B (32 rows of
/// 4·tile plus 8), the f32 epilogue scratch (4 × tile²) and the per-row
/// pixel table (4·tile × vec4<i32>).
pub const fn workgroup_bytes(tile: u32) -> u32 {
    let (bm, bn, bk) = (4 * tile, 4 * tile, 32);
    2 * bm * (bk + 8) * 2 + 2 * bk * (bn + 8) * 2 + COOP_SUBGROUPS * tile * tile * 4 + bm * 16
}

/// How the kernels run on an adapter that can run them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopConfig {
    /// Fragment side (16 or 8): 16×16×16 or 8×8×8 multiply-adds.
    pub tile: u32,
    /// The adapter's one subgroup size.
    pub subgroup_size: u32,
}

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

/// Whether a configuration is one the kernels use: N×N×N with N = `tile`, f16 × f16 → f32.
pub fn is_kernel_config(p: &CooperativeMatrixProperties, tile: u32) -> bool {
    [p.m_size, p.n_size, p.k_size] == [tile; 3] && p.ab_type == CooperativeScalarType::F16 && p.cr_type == CooperativeScalarType::F32
}

/// How to run the kernels when the adapter can, else a sentence saying
/// everything it lacks.
pub fn mixed_precision_support(caps: &CoopCaps) -> Result<CoopConfig, String> {
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
    let tile = COOP_TILES.into_iter().find(|&t| caps.properties.iter().any(|p| is_kernel_config(p, t)));
    if caps.features.contains(Features::EXPERIMENTAL_COOPERATIVE_MATRIX) && tile.is_none() {
        missing.push(format!("a 16x16x16 or 8x8x8 f16 x f16 -> f32 configuration (it lists {})", list_configs(&caps.properties)));
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
    let bytes = workgroup_bytes(tile.unwrap_or(COOP_TILES[COOP_TILES.len() - 1]));
    if caps.max_workgroup_storage < bytes {
        missing.push(format!("{bytes} bytes of workgroup memory (it has {})", caps.max_workgroup_storage));
    }
    match tile {
        Some(tile) if missing.is_empty() => Ok(CoopConfig { tile, subgroup_size: size }),
        _ => Err(format!("it lacks {}", missing.join("; "))),
    }
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
        Ok(c) => format!("usable for --precision mixed ({0}x{0}x{0} f16 x f16 -> f32, subgroup size {1})", c.tile, c.subgroup_size),
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
        assert_eq!(mixed_precision_support(&nvidia()), Ok(CoopConfig { tile: 16, subgroup_size: 32 }));
        let amd = CoopCaps { subgroup_min_size: 64, subgroup_max_size: 64, ..nvidia() };
        assert_eq!(mixed_precision_support(&amd), Ok(CoopConfig { tile: 16, subgroup_size: 64 }));
    }

    #[test]
    fn sixteen_is_preferred_and_eight_is_the_fallback() {
        let both = CoopCaps { properties: vec![config(8, F16, F32), config(16, F16, F32)], ..nvidia() };
        assert_eq!(mixed_precision_support(&both).map(|c| c.tile), Ok(16));
        // Mesa 26's lavapipe: 8×8×8 only, subgroups of 8 (16 with 512-bit vectors), 32 KiB of workgroup memory.
        let lavapipe = CoopCaps {
            properties: vec![config(8, F16, F16), config(8, F16, F32)],
            subgroup_min_size: 8,
            subgroup_max_size: 8,
            max_workgroup_storage: 32768,
            ..nvidia()
        };
        assert_eq!(mixed_precision_support(&lavapipe), Ok(CoopConfig { tile: 8, subgroup_size: 8 }));
    }

    #[test]
    fn only_square_f16_inputs_with_f32_accumulators_count() {
        for other in [vec![config(16, F16, F16)], vec![config(8, F32, F32), config(8, F16, F16)], vec![config(16, F32, F32)], vec![]] {
            let caps = CoopCaps { properties: other.clone(), ..nvidia() };
            let why = mixed_precision_support(&caps).expect_err("no usable configuration");
            assert!(why.contains("16x16x16 or 8x8x8 f16 x f16 -> f32"), "{other:?}: {why}");
        }
        let rectangular = CooperativeMatrixProperties { k_size: 8, ..config(16, F16, F32) };
        assert!(!is_kernel_config(&rectangular, 16) && !is_kernel_config(&rectangular, 8));
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
        let small = CoopCaps { max_invocations_per_workgroup: 64, subgroup_min_size: 64, subgroup_max_size: 64, ..nvidia() };
        assert!(mixed_precision_support(&small).expect_err("256 invocations").contains("workgroups of 256"));
    }

    #[test]
    fn too_little_workgroup_memory_is_refused() {
        let caps = CoopCaps { max_workgroup_storage: 16384, ..nvidia() };
        let why = mixed_precision_support(&caps).expect_err("16 KiB");
        assert!(why.contains(&format!("{} bytes of workgroup memory (it has 16384)", workgroup_bytes(16))), "{why}");
    }

    #[test]
    fn the_description_lists_the_configs_and_the_verdict() {
        let d = describe(&nvidia());
        assert!(d.contains("16x16x16 F16->F16, 16x16x16 F16->F32") && d.contains("usable for --precision mixed"), "{d}");
        let none = describe(&CoopCaps { features: Features::SHADER_F16, properties: vec![], ..nvidia() });
        assert!(none.starts_with("cooperative matrices: none;") && none.contains("not usable"), "{none}");
    }
}
