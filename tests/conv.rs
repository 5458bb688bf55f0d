//! Forward convolution: every variant (Direct, RegisterBlocked, Tiled,
//! TiledLarge) against the CPU reference, over every InceptionV3 kernel shape,
//! both strides and paddings, the fused epilogue and channel-slice outputs.
//!
//! TiledLarge splits K across workgroups whenever its grid is small and K has
//! at least 16 steps of 8, so at these sizes cases with K = kh·kw·cin > 120
//! take its split-K path (partial sums, then the reduction applies the
//! epilogue) and the others its direct path; cin and cout both multiples of 4
//! pick its vec4 loads. Each test below has cases of both paths. The Winograd
//! variants (3×3 stride 1 only) are tested in tests/conv_winograd.rs.
use crate::common;
use common::*;
use common::{ConvCase as Case, ConvOperands as Operands, conv_case as case};
use incept::ops::conv::{self, ConvAlgo, ConvSpec};
use incept::ops::{Act, Padding, Window2d};
use incept::reference::{conv as rc, to_f64};
use incept::{DType, Gpu, Tensor};

/// The variants that compute the case (Winograd: 3×3 stride 1 only, tests/conv_winograd.rs covers it in depth; Stem: small depth).
fn algos(c: &Case) -> impl Iterator<Item = ConvAlgo> {
    let key = c.key();
    ConvAlgo::ALL.into_iter().filter(move |a| a.applies_to(&key))
}

use Padding::{Same, Valid};
/// Keras ZeroPadding2D((0, 1), (0, 1)) before a 'valid' conv (MobileNetV2's stride-2 blocks).
const PAD_0101: Padding = Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 };
/// More rows above than below, a column on the left only.
const PAD_2110: Padding = Padding::Explicit { top: 2, bottom: 1, left: 1, right: 0 };

/// Every kernel shape of InceptionV3 at small odd sizes; cout 70 and the
/// 675-row batch cross the variants' column and row block edges. The last
/// six have cin and cout divisible by 4, as the vec4 register-blocked kernel
/// needs. Then explicit, asymmetric padding (scalar and vec4 loads, strides 1
/// and 2, 3×3 where Winograd applies, K above and below TiledLarge's split).
const CASES: [Case; 30] = [
    case(1, (9, 9), 3, 8, (3, 3), 2, Valid),
    case(3, (8, 8), 5, 7, (1, 1), 1, Same),
    case(1, (7, 11), 17, 13, (3, 3), 1, Same),
    case(3, (15, 15), 5, 6, (5, 5), 1, Same),
    case(1, (9, 9), 33, 20, (1, 3), 1, Same),
    case(3, (7, 11), 17, 9, (3, 1), 1, Same),
    case(1, (9, 9), 17, 11, (1, 7), 1, Same),
    case(1, (9, 9), 17, 11, (7, 1), 1, Same),
    case(3, (15, 15), 3, 5, (3, 3), 2, Valid),
    case(1, (8, 8), 33, 36, (3, 3), 2, Same),
    case(3, (7, 11), 5, 9, (1, 1), 2, Valid),
    case(1, (9, 9), 5, 70, (1, 1), 1, Valid),
    case(1, (8, 8), 17, 4, (5, 5), 2, Valid),
    case(3, (9, 9), 33, 3, (1, 7), 2, Same),
    case(3, (9, 9), 8, 12, (3, 3), 1, Same),
    case(1, (7, 11), 20, 68, (1, 7), 1, Same),
    case(3, (15, 15), 12, 20, (3, 3), 2, Valid),
    case(1, (8, 8), 36, 16, (7, 1), 1, Same),
    case(3, (9, 9), 16, 4, (1, 1), 1, Valid),
    case(1, (9, 9), 4, 8, (5, 5), 2, Same),
    // 288 output rows × 192 channels: RegisterBlocked splits its 64 lanes 8 × 8 (rows × channel blocks).
    case(2, (12, 12), 20, 192, (1, 1), 1, Valid),
    case(2, (12, 12), 21, 192, (3, 3), 1, Same),
    // 675 rows (≥ 512) with cin, cout divisible by 4: the vec4 RegisterBlocked
    // kernel takes two row groups per invocation, the second one partly clamped.
    case(3, (15, 15), 12, 20, (3, 3), 1, Same),
    case(3, (15, 15), 16, 12, (1, 1), 1, Valid),
    // 16 rows, depth 153: Stem's 4 × 2 lanes would need 1224 vec4 of filter
    // block, over its 1024, so it runs 8 × 1.
    case(1, (4, 4), 17, 20, (3, 3), 1, Same),
    case(1, (8, 8), 17, 11, (3, 3), 2, PAD_0101),
    case(3, (7, 9), 8, 12, (3, 3), 1, PAD_2110),
    case(2, (6, 7), 5, 7, (3, 5), 1, PAD_2110),
    case(1, (9, 9), 20, 16, (3, 3), 2, PAD_2110),
    case(2, (7, 7), 4, 8, (1, 1), 2, PAD_0101),
];

fn reference(c: &Case, ops: &Operands) -> (Vec<f64>, [usize; 4]) {
    rc::conv2d(&to_f64(&ops.xh), [c.batch, c.h, c.w, c.cin], &to_f64(&ops.wh), c.cout, &c.win())
}

fn spec<'a>(c: &Case, algo: ConvAlgo) -> ConvSpec<'a> {
    ConvSpec { algo: Some(algo), ..ConvSpec::new(c.win()) }
}

#[test]
fn every_variant_matches_reference_for_every_kernel_shape() {
    let gpu = gpu();
    for (i, c) in CASES.iter().enumerate() {
        let ops = c.operands(&gpu, 10 * i as u64);
        let (want, shape) = reference(c, &ops);
        for algo in algos(c) {
            // Random, not pooled, output: an output row a variant skips keeps
            // a wrong value instead of another variant's right one.
            let (y, _) = rand_tensor(&gpu, &shape, 10 * i as u64 + 7);
            conv::conv2d_into(&ops.x, &ops.w, &spec(c, algo), &y, 0).unwrap();
            assert_close(&format!("{algo:?} {c:?}"), &y.to_vec().unwrap(), &want);
        }
    }
}

#[test]
fn default_variant_matches_reference() {
    let gpu = gpu();
    let c = CASES[2];
    let ops = c.operands(&gpu, 3);
    let y = conv::conv2d(&ops.x, &ops.w, &c.win()).unwrap();
    assert_close("conv2d", &y.to_vec().unwrap(), &reference(&c, &ops).0);
}

#[test]
fn long_reduction_matches_reference() {
    let gpu = gpu();
    let cases = [
        case(2, (5, 5), 260, 19, (3, 3), 1, Same),
        case(2, (5, 5), 260, 20, (3, 3), 1, Same),
        case(2, (2, 3), 2048, 10, (1, 1), 1, Valid),
        case(1, (3, 3), 2048, 12, (1, 1), 2, Same),
    ];
    for (i, c) in cases.iter().enumerate() {
        let ops = c.operands(&gpu, 100 + i as u64);
        let (want, _) = reference(c, &ops);
        for algo in algos(c) {
            let y = conv::conv2d_fused(&ops.x, &ops.w, &spec(c, algo)).unwrap();
            assert_close(&format!("{algo:?} {c:?}"), &y.to_vec().unwrap(), &want);
        }
    }
}

#[test]
fn fused_epilogue_matches_reference() {
    let gpu = gpu();
    // K = 153 and 144: split K; K = 36: no split.
    for c in [case(3, (7, 11), 17, 13, (3, 3), 2, Same), case(3, (7, 11), 16, 12, (3, 3), 2, Same), case(3, (7, 11), 4, 12, (3, 3), 2, Same)] {
        fused_epilogue_case(&gpu, c);
    }
}

fn fused_epilogue_case(gpu: &Gpu, c: Case) {
    let ops = c.operands(gpu, 200);
    let (conv_ref, _) = reference(&c, &ops);
    let (scale, scale_h) = rand_tensor(gpu, &[c.cout], 201);
    let (bias, bias_h) = rand_tensor(gpu, &[c.cout], 202);
    let (scale_h, bias_h) = (to_f64(&scale_h), to_f64(&bias_h));
    for (with_scale, with_bias, act) in [(true, true, Act::Relu), (true, true, Act::Linear), (false, true, Act::Relu6), (true, false, Act::Relu6), (false, false, Act::Relu)] {
        let want = rc::epilogue(&conv_ref, c.cout, with_scale.then_some(&scale_h[..]), with_bias.then_some(&bias_h[..]), act);
        for algo in algos(&c) {
            let s = ConvSpec {
                scale: with_scale.then_some(&scale),
                bias: with_bias.then_some(&bias),
                act,
                ..spec(&c, algo)
            };
            let y = conv::conv2d_fused(&ops.x, &ops.w, &s).unwrap();
            let what = format!("{algo:?} {c:?} scale {with_scale} bias {with_bias} act {}", act.name());
            assert_close(&what, &y.to_vec().unwrap(), &want);
        }
    }
}

/// ReLU6 in every variant's epilogue, on inputs scaled so that the
/// convolution spans about [-10, 10]: both ends are clipped (at 0 and 6).
#[test]
fn relu6_clips_at_zero_and_six_in_every_variant() {
    let gpu = gpu();
    // Scalar and vec4 loads; TiledLarge's direct path (K = 27) and split K (K = 189, 324); explicit padding.
    let cases = [CASES[0], CASES[21], CASES[26], case(2, (6, 6), 36, 12, (3, 3), 2, PAD_0101), case(2, (5, 5), 36, 8, (3, 3), 1, Same)];
    for (i, c) in cases.iter().enumerate() {
        let ops = c.operands(&gpu, 700 + 10 * i as u64);
        let (y, shape) = reference(c, &ops);
        let k = 10.0 / y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let xh: Vec<f32> = ops.xh.iter().map(|&v| (v as f64 * k) as f32).collect();
        let x = Tensor::from_slice(&gpu, &[c.batch, c.h, c.w, c.cin], &xh).unwrap();
        let (y, _) = rc::conv2d(&to_f64(&xh), [c.batch, c.h, c.w, c.cin], &to_f64(&ops.wh), c.cout, &c.win());
        let want = rc::epilogue(&y, c.cout, None, None, Act::Relu6);
        let capped = want.iter().filter(|&&v| v == 6.0).count();
        assert!(capped > 0 && want.contains(&0.0), "{c:?}: the case must reach both ends");
        for algo in algos(c) {
            let (out, _) = rand_tensor(&gpu, &shape, 701);
            conv::conv2d_into(&x, &ops.w, &ConvSpec { act: Act::Relu6, ..spec(c, algo) }, &out, 0).unwrap();
            let got = out.to_vec().unwrap();
            assert_close(&format!("{algo:?} {c:?} relu6"), &got, &want);
            assert_eq!(got.iter().filter(|&&v| v == 6.0).count(), capped, "{algo:?} {c:?}: outputs capped at 6");
        }
    }
}

#[test]
fn writes_only_its_channel_slice() {
    let gpu = gpu();
    writes_only_its_channel_slice_case(&gpu, case(3, (9, 9), 5, 7, (3, 3), 1, Same), 19, 5);
    writes_only_its_channel_slice_case(&gpu, case(3, (9, 9), 8, 12, (3, 3), 1, Same), 28, 8);
    // K = 324: TiledLarge splits K, and its reduction writes the slice.
    writes_only_its_channel_slice_case(&gpu, case(2, (5, 5), 36, 10, (3, 3), 1, Same), 23, 9);
    writes_only_its_channel_slice_case(&gpu, case(2, (5, 5), 36, 12, (3, 3), 1, Same), 28, 8);
}

fn writes_only_its_channel_slice_case(gpu: &Gpu, c: Case, ctotal: usize, offset: usize) {
    let ops = c.operands(gpu, 300);
    let (conv_ref, [n, oh, ow, _]) = reference(&c, &ops);
    let (bias, bias_h) = rand_tensor(gpu, &[c.cout], 301);
    let want = rc::epilogue(&conv_ref, c.cout, None, Some(&to_f64(&bias_h)), Act::Relu);
    for algo in algos(&c) {
        let (out, before) = rand_tensor(gpu, &[n, oh, ow, ctotal], 302);
        let s = ConvSpec { bias: Some(&bias), act: Act::Relu, ..spec(&c, algo) };
        conv::conv2d_into(&ops.x, &ops.w, &s, &out, offset).unwrap();
        let after = out.to_vec().unwrap();
        let SliceWrite { slice, others, others_before } = split_channel_slice(&after, &before, ctotal, offset, c.cout);
        assert_close(&format!("{algo:?} slice"), &slice, &want);
        assert_eq!(others, others_before, "{algo:?} changed channels outside its slice");
    }
}

#[test]
fn bad_shapes_are_errors() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[1, 5, 5, 3], 1);
    let (w, _) = rand_tensor(&gpu, &[3, 3, 3, 4], 2);
    let (x3, _) = rand_tensor(&gpu, &[5, 5, 3], 3);
    let (w_cin, _) = rand_tensor(&gpu, &[3, 3, 2, 4], 4);
    let (w3, _) = rand_tensor(&gpu, &[9, 3, 4], 5);
    let (v5, _) = rand_tensor(&gpu, &[5], 6);
    let (big_w, _) = rand_tensor(&gpu, &[7, 7, 3, 4], 7);
    let win = Window2d::new(3, 3, 1, Valid);
    let err = |r: incept::Result<Tensor>| r.unwrap_err().to_string();

    assert!(err(conv::conv2d(&x3, &w, &win)).contains("[5, 5, 3]"));
    assert!(err(conv::conv2d(&x, &w3, &win)).contains("[9, 3, 4]"));
    assert!(err(conv::conv2d(&x, &w_cin, &win)).contains("[3, 3, 2, 4]"));
    assert!(err(conv::conv2d(&x, &w, &Window2d::new(1, 1, 1, Valid))).contains("[3, 3, 3, 4]"));
    assert!(err(conv::conv2d(&x, &big_w, &Window2d::new(7, 7, 1, Valid))).contains("smaller"));
    let scaled = ConvSpec { scale: Some(&v5), ..ConvSpec::new(win) };
    assert!(err(conv::conv2d_fused(&x, &w, &scaled)).contains("[5]"));
    let biased = ConvSpec { bias: Some(&v5), ..ConvSpec::new(win) };
    assert!(err(conv::conv2d_fused(&x, &w, &biased)).contains("[5]"));

    let into = |out: &Tensor, offset: usize| conv::conv2d_into(&x, &w, &ConvSpec::new(win), out, offset).unwrap_err().to_string();
    let wide = Tensor::zeros(&gpu, &[1, 3, 3, 10]).unwrap();
    assert!(into(&wide, 7).contains("[1, 3, 3, 10]"));
    let wrong_size = Tensor::zeros(&gpu, &[1, 4, 3, 10]).unwrap();
    assert!(into(&wrong_size, 0).contains("[1, 4, 3, 10]"));
    assert!(into(&x, 0).contains("[1, 5, 5, 3]"));
    conv::conv2d_into(&x, &w, &ConvSpec::new(win), &wide, 6).unwrap();

    // f16 activations are for the cooperative-matrix kernel alone: every f32 variant refuses them, naming the type.
    let x16 = Tensor::from_slice_f16(&gpu, &[1, 5, 5, 3], &x.to_vec().unwrap()).unwrap();
    let out16 = Tensor::empty(&gpu, &[1, 3, 3, 4], DType::F16).unwrap();
    let out32 = Tensor::zeros(&gpu, &[1, 3, 3, 4]).unwrap();
    for algo in [None].into_iter().chain(ConvAlgo::ALL.map(Some)) {
        let spec = ConvSpec { algo, ..ConvSpec::new(win) };
        let msg = conv::conv2d_into(&x16, &w, &spec, &out32, 0).unwrap_err().to_string();
        assert!(msg.contains("f16 only with the cooperative-matrix kernel"), "{algo:?}: {msg}");
        let msg = conv::conv2d_into(&x, &w, &spec, &out16, 0).unwrap_err().to_string();
        assert!(msg.contains("F16 output"), "{algo:?}: {msg}");
    }
}
