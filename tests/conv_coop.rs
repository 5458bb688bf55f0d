//! The mixed-precision conv kernel (`ConvAlgo::Coop`, shaders/conv2d_coop.wgsl)
//! against the f64 CPU reference at InceptionV3's odd shapes: every window
//! (1×1, 3×3, 5×5, 1×7, 7×1, 1×3, 3×1; strides 1 and 2; both paddings),
//! cin = 3 (scalar loads) and multiples of 4 (vec4 loads), row counts and
//! cout that cross the tile edges (64×64 with 16×16 fragments, 32×32 with
//! 8×8), depths that are not multiples of its K step of 32, the fused
//! epilogue and a channel-slice output.
//!
//! Two references per case: the f64 convolution of the operands rounded to
//! f16, which the kernel must match to f32 accuracy (its products of f16
//! values are exact in f32; only the f32 sums round), so that any indexing
//! error shows; and the f64 convolution of the f32 operands, which it must
//! match within `lab::MIXED_TOLERANCE` (the accuracy mixed precision claims;
//! the error is printed).
//!
//! Only adapters with cooperative matrices (16×16×16 or 8×8×8 f16 × f16 →
//! f32) can run the kernel, so these tests are ignored by default and
//! reported as such; run them there with `cargo test --test suite conv_coop:: --
//! --ignored` (benches/gpu.sh does on the GPU; tools/coop-lavapipe.sh runs
//! them on Mesa 26's lavapipe, which has 8×8×8). Run on an adapter without
//! the feature they fail, saying what it lacks.
use crate::common;
use common::*;
use common::{ConvCase as Case, ConvOperands as Operands, conv_case as case};
use half::f16;
use incept::lab::MIXED_TOLERANCE;
use incept::ops::conv::{self, ConvAlgo, ConvSpec};
use incept::ops::{Act, Padding};
use incept::reference::{conv as rc, random, rel_l2, to_f64};
use incept::{DType, Gpu, Tensor};

const IGNORED: &str = "needs an adapter with f16 cooperative matrices (16x16x16 or 8x8x8)";

use Padding::{Same, Valid};

/// InceptionV3's windows at small odd sizes. The first is its stem (cin 3,
/// 3×3 stride 2 valid); 2 × 17 × 17 = 578 rows and cout 70 or 192 cross the
/// 64- (and 32-) row and column tile edges; depths 27, 35, 153, 320 and 1152 are not
/// multiples of 32; cin % 4 == 0 with cout % 4 == 0 takes the vec4 loads.
const CASES: [Case; 12] = [
    case(2, (17, 17), 3, 32, (3, 3), 2, Valid),
    case(1, (35, 35), 32, 64, (3, 3), 1, Same),
    case(2, (17, 17), 20, 70, (1, 1), 1, Valid),
    case(1, (17, 17), 16, 24, (1, 7), 1, Same),
    case(1, (17, 17), 16, 20, (7, 1), 1, Same),
    case(3, (8, 8), 36, 44, (1, 3), 1, Same),
    case(3, (8, 8), 36, 40, (3, 1), 1, Same),
    case(1, (15, 15), 12, 28, (5, 5), 1, Same),
    case(2, (9, 9), 17, 13, (3, 3), 2, Valid),
    case(1, (8, 8), 35, 7, (1, 1), 1, Valid),
    case(2, (12, 12), 128, 192, (3, 3), 1, Same),
    case(1, (8, 8), 2048, 12, (1, 1), 2, Same),
];

/// The adapter, which must have the kernel's cooperative-matrix configuration.
fn coop_gpu() -> Gpu {
    let gpu = gpu();
    if let Err(why) = gpu.coop_support() {
        panic!("{IGNORED}: {} cannot run conv2d_coop.wgsl: {why}", gpu.name());
    }
    gpu
}

/// The values rounded to f16 and back, as the kernel stages them.
fn as_f16(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f16::from_f32(x).to_f64()).collect()
}

/// (reference of the f16-rounded operands, reference of the f32 operands), each through `epilogue`.
fn references(c: &Case, ops: &Operands, epilogue: impl Fn(&[f64]) -> Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    let shape = [c.batch, c.h, c.w, c.cin];
    let (rounded, _) = rc::conv2d(&as_f16(&ops.xh), shape, &as_f16(&ops.wh), c.cout, &c.win());
    let (exact, _) = rc::conv2d(&to_f64(&ops.xh), shape, &to_f64(&ops.wh), c.cout, &c.win());
    (epilogue(&rounded), epilogue(&exact))
}

#[track_caller]
fn check(what: &str, got: &[f32], (rounded, exact): &(Vec<f64>, Vec<f64>)) {
    assert_close(&format!("{what} against the f16-rounded operands"), got, rounded);
    let err = rel_l2(got, exact);
    println!("{what}: relative L2 {err:.2e} against the f32 operands");
    assert!(err <= MIXED_TOLERANCE, "{what}: relative L2 error {err:.3e} > {MIXED_TOLERANCE:e} against the f32 operands");
}

fn coop<'a>(c: &Case) -> ConvSpec<'a> {
    ConvSpec { algo: Some(ConvAlgo::Coop), ..ConvSpec::new(c.win()) }
}

#[test]
#[ignore = "needs an adapter with f16 cooperative matrices (16x16x16 or 8x8x8)"]
fn coop_matches_the_reference_at_every_inception_window() {
    let gpu = coop_gpu();
    for (i, c) in CASES.iter().enumerate() {
        let ops = c.operands(&gpu, 20 * i as u64);
        let y = conv::conv2d_fused(&ops.x, &ops.w, &coop(c)).unwrap();
        let want = references(c, &ops, |y| y.to_vec());
        check(&format!("{c:?}"), &y.to_vec().unwrap(), &want);
    }
}

#[test]
#[ignore = "needs an adapter with f16 cooperative matrices (16x16x16 or 8x8x8)"]
fn coop_applies_the_fused_epilogue() {
    let gpu = coop_gpu();
    for c in [CASES[0], CASES[2], CASES[8]] {
        let ops = c.operands(&gpu, 400);
        let (scale, scale_h) = rand_tensor(&gpu, &[c.cout], 401);
        let (bias, bias_h) = rand_tensor(&gpu, &[c.cout], 402);
        let (scale_h, bias_h) = (to_f64(&scale_h), to_f64(&bias_h));
        for (with_scale, with_bias, act) in [(true, true, Act::Relu), (false, true, Act::Linear), (true, false, Act::Relu6)] {
            let s = ConvSpec { scale: with_scale.then_some(&scale), bias: with_bias.then_some(&bias), act, ..coop(&c) };
            let y = conv::conv2d_fused(&ops.x, &ops.w, &s).unwrap();
            let want = references(&c, &ops, |y| rc::epilogue(y, c.cout, with_scale.then_some(&scale_h[..]), with_bias.then_some(&bias_h[..]), act));
            check(&format!("{c:?} scale {with_scale} bias {with_bias} act {}", act.name()), &y.to_vec().unwrap(), &want);
        }
    }
}

#[test]
#[ignore = "needs an adapter with f16 cooperative matrices (16x16x16 or 8x8x8)"]
fn coop_writes_only_its_channel_slice() {
    let gpu = coop_gpu();
    for (c, ctotal, offset) in [(CASES[8], 23, 5), (CASES[2], 100, 12)] {
        let ops = c.operands(&gpu, 500);
        let (bias, bias_h) = rand_tensor(&gpu, &[c.cout], 501);
        let want = references(&c, &ops, |y| rc::epilogue(y, c.cout, None, Some(&to_f64(&bias_h)), Act::Relu));
        let (oh, ow) = c.win().output_size(c.h, c.w).unwrap();
        let (out, before) = rand_tensor(&gpu, &[c.batch, oh, ow, ctotal], 502);
        let s = ConvSpec { bias: Some(&bias), act: Act::Relu, ..coop(&c) };
        conv::conv2d_into(&ops.x, &ops.w, &s, &out, offset).unwrap();
        let after = out.to_vec().unwrap();
        let SliceWrite { slice, others, others_before } = split_channel_slice(&after, &before, ctotal, offset, c.cout);
        check(&format!("{c:?} slice at {offset} of {ctotal}"), &slice, &want);
        assert_eq!(others, others_before, "{c:?}: channels outside the slice changed");
    }
}

/// The f16 storage forms (the frozen prefix under `--precision mixed`): x
/// read from f16, the result written to f16 (into a channel slice), or both.
/// An f16 input is already rounded, so the f16-rounded reference is the same;
/// an f16 output rounds each element to nearest, at most 2^-11 of it, so its
/// relative L2 against the rounded reference is at most 2^-11 (plus the f32 sums').
#[test]
#[ignore = "needs an adapter with f16 cooperative matrices (16x16x16 or 8x8x8)"]
fn coop_reads_and_writes_f16_storage() {
    let gpu = coop_gpu();
    let half_ulp = 2f64.powi(-11);
    for (i, c) in [CASES[0], CASES[2], CASES[3], CASES[8], CASES[9], CASES[10]].into_iter().enumerate() {
        let ops = c.operands(&gpu, 700 + 10 * i as u64);
        let x16 = Tensor::from_slice_f16(&gpu, &[c.batch, c.h, c.w, c.cin], &ops.xh).unwrap();
        let (bias, bias_h) = rand_tensor(&gpu, &[c.cout], 701 + 10 * i as u64);
        let (rounded, exact) = references(&c, &ops, |y| rc::epilogue(y, c.cout, None, Some(&to_f64(&bias_h)), Act::Relu));
        let (oh, ow) = c.win().output_size(c.h, c.w).unwrap();
        let (ctotal, offset) = (c.cout + 9, 5);
        let s = ConvSpec { bias: Some(&bias), act: Act::Relu, ..coop(&c) };
        for (x, x_name) in [(&ops.x, "f32"), (&x16, "f16")] {
            for out_f16 in [false, true] {
                if x_name == "f32" && !out_f16 {
                    continue; // the f32 form, tested above
                }
                let what = format!("{c:?} {x_name} in, {} out", if out_f16 { "f16" } else { "f32" });
                let before = random(c.batch * oh * ow * ctotal, 702 + i as u64, -1.0, 1.0);
                let (out, before) = stored_tensor(&gpu, &[c.batch, oh, ow, ctotal], &before, if out_f16 { DType::F16 } else { DType::F32 });
                conv::conv2d_into(x, &ops.w, &s, &out, offset).unwrap();
                let after = out.to_vec().unwrap();
                let SliceWrite { slice, others, others_before } = split_channel_slice(&after, &before, ctotal, offset, c.cout);
                assert_eq!(others, others_before, "{what}: channels outside the slice changed");
                if out_f16 {
                    let err = rel_l2(&slice, &rounded);
                    assert!(err <= half_ulp + 1e-6, "{what}: relative L2 {err:.3e} > 2^-11 against the f16-rounded operands");
                    let err = rel_l2(&slice, &exact);
                    println!("{what}: relative L2 {err:.2e} against the f32 operands");
                    assert!(err <= MIXED_TOLERANCE, "{what}: relative L2 error {err:.3e} > {MIXED_TOLERANCE:e} against the f32 operands");
                } else {
                    check(&what, &slice, &(rounded.clone(), exact.clone()));
                }
            }
        }
    }
}

/// Runs everywhere: the kernel runs exactly where the adapter reports the
/// configuration, and elsewhere is refused with an error that names the
/// adapter and what it lacks.
#[test]
fn coop_runs_only_where_the_adapter_has_cooperative_matrices() {
    let gpu = gpu();
    let c = CASES[9];
    let ops = c.operands(&gpu, 600);
    let launched = conv::conv2d_fused(&ops.x, &ops.w, &coop(&c)).and_then(|y| y.to_vec());
    match gpu.coop_support() {
        Ok(_) => assert_eq!(launched.unwrap().len(), c.batch * c.h * c.w * c.cout),
        Err(why) => {
            let err = launched.unwrap_err().to_string();
            assert!(err.contains(gpu.name()) && err.contains(why) && err.contains("--precision f32"), "{err}");
        }
    }
}
