//! Winograd F(2×2, 3×3) forward convolution against the f64 CPU reference at
//! odd sizes (channels not multiples of 4, outputs not multiples of the 2×2
//! tile, images smaller than a tile), with the fused epilogue and
//! channel-slice outputs, and against the Direct oracle at InceptionV3 shapes.
use crate::common;
use common::*;
use incept::ops::conv::{self, ConvAlgo, ConvSpec};
use incept::ops::conv_tuning::ConvKey;
use incept::ops::{Act, Padding, Window2d};
use incept::reference::{conv as rc, rel_l2, to_f64};
use incept::{Gpu, Tensor};

use Padding::{Same, Valid};

/// Input [batch, h, w, cin] convolved with a 3×3 stride-1 filter [3, 3, cin, cout].
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    padding: Padding,
}

const fn case(batch: usize, (h, w): (usize, usize), cin: usize, cout: usize, padding: Padding) -> Case {
    Case { batch, h, w, cin, cout, padding }
}

impl Case {
    fn win(&self) -> Window2d {
        Window2d::new(3, 3, 1, self.padding)
    }
}

/// Uploaded operands of a case and their f64 reference output.
struct Operands {
    x: Tensor,
    w: Tensor,
    want: Vec<f64>,
}

fn operands(gpu: &Gpu, c: &Case, seed: u64) -> Operands {
    let (x, xh) = rand_tensor(gpu, &[c.batch, c.h, c.w, c.cin], seed);
    let (w, wh) = rand_tensor(gpu, &[3, 3, c.cin, c.cout], seed + 1);
    let (want, _) = rc::conv2d(&to_f64(&xh), [c.batch, c.h, c.w, c.cin], &to_f64(&wh), c.cout, &c.win());
    Operands { x, w, want }
}

const ALGOS: [ConvAlgo; 2] = [ConvAlgo::Winograd, ConvAlgo::Winograd4];

fn winograd(c: &Case, algo: ConvAlgo) -> ConvSpec<'static> {
    ConvSpec { algo: Some(algo), ..ConvSpec::new(c.win()) }
}

#[test]
fn matches_reference_at_odd_sizes() {
    let gpu = gpu();
    let cases = [
        case(1, (1, 1), 3, 1, Same),
        case(3, (2, 3), 5, 7, Same),
        case(1, (5, 5), 67, 33, Same),
        case(3, (5, 5), 3, 7, Valid),
        case(1, (7, 9), 5, 33, Same),
        case(3, (7, 9), 67, 1, Valid),
        case(1, (17, 17), 3, 33, Valid),
        case(3, (17, 17), 5, 7, Same),
        case(1, (3, 3), 67, 7, Valid),
        case(3, (2, 3), 8, 12, Same),
        case(3, (7, 9), 16, 20, Same),
        // 576 F(4×4) and 2,208 F(2×2) tiles (≥ 512): the GEMM takes two row groups per invocation.
        case(4, (47, 45), 4, 12, Same),
    ];
    for (i, c) in cases.iter().enumerate() {
        let ops = operands(&gpu, c, 10 * i as u64);
        let (oh, ow) = c.win().output_size(c.h, c.w).unwrap();
        for algo in ALGOS {
            // Random, not pooled, output: a tile the GEMM skips keeps a wrong value.
            let (y, _) = rand_tensor(&gpu, &[c.batch, oh, ow, c.cout], 10 * i as u64 + 7);
            conv::conv2d_into(&ops.x, &ops.w, &winograd(c, algo), &y, 0).unwrap();
            assert_close(&format!("{algo:?} {c:?}"), &y.to_vec().unwrap(), &ops.want);
        }
    }
}

#[test]
fn fused_epilogue_matches_reference() {
    let gpu = gpu();
    for c in [case(3, (7, 9), 5, 7, Same), case(1, (5, 5), 8, 12, Valid)] {
        let ops = operands(&gpu, &c, 200);
        let (scale, scale_h) = rand_tensor(&gpu, &[c.cout], 201);
        let (bias, bias_h) = rand_tensor(&gpu, &[c.cout], 202);
        let (scale_h, bias_h) = (to_f64(&scale_h), to_f64(&bias_h));
        for (with_scale, with_bias, act) in [(true, true, Act::Relu), (true, true, Act::Linear), (false, true, Act::Relu6), (true, false, Act::Relu6), (false, false, Act::Relu)] {
            let want = rc::epilogue(&ops.want, c.cout, with_scale.then_some(&scale_h[..]), with_bias.then_some(&bias_h[..]), act);
            for algo in ALGOS {
                let s = ConvSpec { scale: with_scale.then_some(&scale), bias: with_bias.then_some(&bias), act, ..winograd(&c, algo) };
                let y = conv::conv2d_fused(&ops.x, &ops.w, &s).unwrap();
                assert_close(&format!("{algo:?} {c:?} scale {with_scale} bias {with_bias} act {}", act.name()), &y.to_vec().unwrap(), &want);
            }
        }
    }
}

#[test]
fn writes_only_its_channel_slice() {
    let gpu = gpu();
    for (c, ctotal, offset) in [(case(3, (7, 9), 5, 7, Same), 19, 5), (case(1, (5, 5), 8, 12, Valid), 28, 8), (case(3, (2, 3), 3, 1, Same), 6, 3)] {
        let ops = operands(&gpu, &c, 300);
        let (bias, bias_h) = rand_tensor(&gpu, &[c.cout], 301);
        let want = rc::epilogue(&ops.want, c.cout, None, Some(&to_f64(&bias_h)), Act::Relu);
        let (oh, ow) = c.win().output_size(c.h, c.w).unwrap();
        for algo in ALGOS {
            let (out, before) = rand_tensor(&gpu, &[c.batch, oh, ow, ctotal], 302);
            let s = ConvSpec { bias: Some(&bias), act: Act::Relu, ..winograd(&c, algo) };
            conv::conv2d_into(&ops.x, &ops.w, &s, &out, offset).unwrap();
            let after = out.to_vec().unwrap();
            let SliceWrite { slice, others, others_before } = split_channel_slice(&after, &before, ctotal, offset, c.cout);
            assert_close(&format!("{algo:?} {c:?} slice at {offset} of {ctotal}"), &slice, &want);
            assert_eq!(others, others_before, "{algo:?} {c:?} changed channels outside its slice");
        }
    }
}

/// InceptionV3's 3×3 stride-1 convolutions (299² input: 147², 35², 8×8
/// stages) at batch 1, against the Direct kernel.
#[test]
fn matches_direct_oracle_at_inception_shapes() {
    let gpu = gpu();
    for (i, c) in [case(1, (35, 35), 64, 96, Same), case(1, (8, 8), 448, 384, Same), case(1, (37, 37), 32, 32, Valid)].iter().enumerate() {
        let (x, _) = rand_tensor(&gpu, &[c.batch, c.h, c.w, c.cin], 400 + i as u64);
        let (w, _) = rand_tensor(&gpu, &[3, 3, c.cin, c.cout], 500 + i as u64);
        let (bias, _) = rand_tensor(&gpu, &[c.cout], 600 + i as u64);
        let spec = |algo| ConvSpec { bias: Some(&bias), act: Act::Relu, algo: Some(algo), ..ConvSpec::new(c.win()) };
        let oracle = to_f64(&conv::conv2d_fused(&x, &w, &spec(ConvAlgo::Direct)).unwrap().to_vec().unwrap());
        for algo in ALGOS {
            let got = conv::conv2d_fused(&x, &w, &spec(algo)).unwrap().to_vec().unwrap();
            let err = rel_l2(&got, &oracle);
            assert!(err <= TOL, "{algo:?} {c:?}: relative L2 error {err:.3e} against Direct > {TOL:e}");
        }
    }
}

#[test]
fn other_windows_are_errors_when_forced() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[1, 9, 9, 4], 1);
    for (kh, kw, stride) in [(3, 3, 2), (1, 7, 1), (1, 1, 1), (5, 5, 1)] {
        let win = Window2d::new(kh, kw, stride, Same);
        assert!(!ConvAlgo::winograd_applies(&win));
        let (w, _) = rand_tensor(&gpu, &[kh, kw, 4, 4], 2);
        for algo in ALGOS {
            let err = conv::conv2d_fused(&x, &w, &ConvSpec { algo: Some(algo), ..ConvSpec::new(win) }).unwrap_err();
            assert!(err.to_string().contains(&format!("{algo:?} cannot compute window")), "{kh}x{kw} s{stride}: {err}");
        }
    }
    assert!(ConvAlgo::winograd_applies(&Window2d::new(3, 3, 1, Valid)));
}

#[test]
fn cpu_adapters_pick_winograd_by_output_size_and_every_adapter_stem_for_cin_3() {
    // `ConvAlgo::rule` is the built-in rule: INCEPT_CONV_ALGO and the tuning cache do not reach it.
    let gpu = gpu();
    let same3 = Window2d::new(3, 3, 1, Same);
    // Input size = output size with 'same' padding; cin 32 allows vec4 loads.
    let key = |h, w, win: &Window2d| ConvKey::new(h, w, 32, 32, win);
    let on_cpu = |algo| if gpu.is_cpu() { algo } else { ConvAlgo::TiledLarge };
    assert_eq!(ConvAlgo::rule(&gpu, &key(35, 35, &same3)), on_cpu(ConvAlgo::Winograd4));
    assert_eq!(ConvAlgo::rule(&gpu, &key(3, 5, &same3)), on_cpu(ConvAlgo::Winograd4));
    assert_eq!(ConvAlgo::rule(&gpu, &key(2, 2, &same3)), on_cpu(ConvAlgo::Winograd));
    assert_eq!(ConvAlgo::rule(&gpu, &key(1, 1, &same3)), on_cpu(ConvAlgo::RegisterBlocked));
    assert_eq!(ConvAlgo::rule(&gpu, &key(35, 35, &Window2d::new(3, 3, 2, Valid))), on_cpu(ConvAlgo::RegisterBlocked));
    assert_eq!(ConvAlgo::rule(&gpu, &key(17, 17, &Window2d::new(1, 7, 1, Same))), on_cpu(ConvAlgo::RegisterBlocked));
    // The first layer (cin 3): Stem on every adapter.
    let stem = ConvKey::new(299, 299, 3, 32, &Window2d::new(3, 3, 2, Valid));
    assert_eq!(ConvAlgo::rule(&gpu, &stem), ConvAlgo::Stem);
}

/// 1024 → 1024 channels: the F(4×4) transformed filter (36·1024² floats,
/// 144 MiB) exceeds lavapipe's 128 MiB binding though the filter itself fits.
#[test]
fn a_transformed_filter_too_large_for_a_binding_falls_back_or_is_an_error() {
    let gpu = gpu();
    let c = case(1, (3, 3), 1024, 1024, Same);
    let ops = operands(&gpu, &c, 700);
    let y = conv::conv2d(&ops.x, &ops.w, &c.win()).unwrap();
    assert_close("automatic variant", &y.to_vec().unwrap(), &ops.want);
    let forced = conv::conv2d_fused(&ops.x, &ops.w, &winograd(&c, ConvAlgo::Winograd4));
    if 36 * 1024 * 1024 * 4 > gpu.limits().max_storage_buffer_binding_size {
        let err = forced.unwrap_err().to_string();
        assert!(err.contains("max_storage_buffer_binding_size"), "{err}");
    } else {
        assert_close("forced Winograd F(4×4)", &forced.unwrap().to_vec().unwrap(), &ops.want);
    }
}
