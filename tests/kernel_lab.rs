//! The kernel lab's check path: every variant of every family that the
//! adapter can run agrees with its oracle on small odd shapes (within its
//! tolerance: f32's, or mixed precision's for the f16 variants, never a
//! looser one), and every oracle with the f64 CPU reference.

use incept::gpu::GpuOptions;
use incept::lab::{self, Family, MIXED_TOLERANCE, TOLERANCE, Variant};
use incept::ops::elementwise;
use incept::{Gpu, Result, Tensor};

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
        // f32's tolerance, or mixed precision's for the f16 variants only: a variant cannot pass by loosening its own.
        let mixed = variant.starts_with("coop");
        let allowed = if mixed { MIXED_TOLERANCE } else { TOLERANCE };
        assert_eq!(*tolerance, allowed, "{family} {variant}: tolerance {tolerance:.0e}, not {allowed:.0e}");
        assert!(*err <= *tolerance, "{family} {variant} on {shape}: relative L2 {err:.2e} > {tolerance:.0e}");
    }
}

#[test]
fn the_lab_rejects_unknown_families_and_variants() {
    let gpu = Gpu::shared().unwrap();
    let opts = lab::LabOptions { batch: 1, image: 75, variant: None, min_time: std::time::Duration::ZERO, shape: None, limit: Some(1) };
    let err = lab::print("convolution", &gpu, &opts).unwrap_err().to_string();
    assert!(err.contains("conv-backward-input"), "{err}");
    let opts = lab::LabOptions { variant: Some("fastest".into()), ..opts };
    let err = lab::print("matmul", &gpu, &opts).unwrap_err().to_string();
    assert!(err.contains("naive"), "{err}");
}

/// A family with a wrong kernel (it doubles what it should copy) whose
/// oracle is its own CPU reference, as the one-kernel families' are.
struct Broken;

impl Family for Broken {
    type Shape = usize;
    const NAME: &'static str = "broken";
    const WHAT: &'static str = "a copy that doubles";
    fn shapes(_: usize, _: usize) -> Result<Vec<usize>> {
        Ok(vec![9])
    }
    fn small_shapes() -> Vec<usize> {
        vec![7]
    }
    fn label(s: &usize) -> String {
        s.to_string()
    }
    fn flops(s: &usize) -> f64 {
        *s as f64
    }
    fn bytes(s: &usize) -> f64 {
        8.0 * *s as f64
    }
    fn inputs(gpu: &Gpu, s: &usize) -> Result<Vec<Tensor>> {
        Ok(vec![Tensor::from_slice(gpu, &[*s], &incept::reference::random(*s, 1, -1.0, 1.0))?])
    }
    fn variants() -> Vec<Variant<usize>> {
        vec![Variant::new("double", |_: &usize, t: &[Tensor]| Ok(vec![elementwise::scale(&t[0], 2.0)?]))]
    }
    fn picked(_: &Gpu, _: &usize) -> &'static str {
        "double"
    }
    fn reference(_: &usize, t: &[Vec<f64>]) -> Vec<Vec<f64>> {
        vec![t[0].clone()]
    }
    fn oracle(s: &usize, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        Ok(Self::reference(s, &lab::read_back(inputs)?))
    }
}

#[test]
fn the_reference_row_runs_the_kernel_even_when_the_oracle_is_the_reference() {
    let rows = lab::check_small::<Broken>(&Gpu::shared().unwrap()).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
    assert_eq!(names, ["reference", "double"]);
    for (_, variant, err, tolerance) in &rows {
        // 2x − x against x: relative L2 error 1.
        assert!((err - 1.0).abs() < 1e-6 && err > tolerance, "{variant}: {err}");
    }
}
