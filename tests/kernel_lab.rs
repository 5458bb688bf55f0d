//! The kernel lab's check path: every variant of every family that the
//! adapter can run agrees with its oracle on small odd shapes (within its
//! tolerance: f32's, or mixed precision's), and every oracle with the f64
//! CPU reference.

use incept::gpu::GpuOptions;
use incept::Gpu;
use incept::lab::{self, TOLERANCE};

#[test]
fn every_variant_of_every_family_agrees_with_its_oracle_and_the_reference() {
    check_every_variant(&Gpu::shared().unwrap());
}

/// The same with shader modules built without naga's runtime checks
/// (`INCEPT_SHADER_CHECKS=off`): no kernel relies on them.
#[test]
fn every_variant_agrees_with_its_oracle_with_shader_checks_off() {
    let gpu = Gpu::new(&GpuOptions { shader_checks: Some(false), ..GpuOptions::default() }).unwrap();
    assert!(!gpu.shader_checks());
    check_every_variant(&gpu);
}

fn check_every_variant(gpu: &Gpu) {
    let rows = lab::check_all_small(gpu).unwrap();
    for family in lab::FAMILIES {
        assert!(rows.iter().any(|r| r.0 == *family), "family {family} was not checked");
    }
    for (family, shape, variant, err, tolerance) in &rows {
        assert!(*tolerance >= TOLERANCE, "{family} {variant}: tolerance {tolerance:.0e} below f32's");
        assert!(*err <= *tolerance, "{family} {variant} on {shape}: relative L2 {err:.2e} > {tolerance:.0e}");
    }
}

#[test]
fn the_lab_rejects_unknown_families_and_variants() {
    let gpu = Gpu::shared().unwrap();
    let opts = lab::LabOptions { batch: 1, image: 75, variant: None, min_time: std::time::Duration::ZERO, limit: Some(1) };
    let err = lab::print("convolution", &gpu, &opts).unwrap_err().to_string();
    assert!(err.contains("conv-backward-input"), "{err}");
    let opts = lab::LabOptions { variant: Some("fastest".into()), ..opts };
    let err = lab::print("matmul", &gpu, &opts).unwrap_err().to_string();
    assert!(err.contains("naive"), "{err}");
}
