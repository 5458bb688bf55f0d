//! Sibling convolutions (`ops::conv_sibling`): the merged kernel against the
//! CPU reference on odd shapes (branch widths that straddle its 8-column
//! blocks, shared and separate outputs, windows other than 1×1, both entry
//! points), against the separate register-blocked convolutions bit for bit,
//! and in the executor: InceptionV3 at 75² with merging on equals merging
//! off, in inference, in a fine-tune step and from the frozen boundary (bit
//! for bit: the same summation order), and in batch chunks.
use crate::common;
use common::*;
use incept::autograd as ag;
use incept::models::{Backbone, Base};
use incept::ops::conv::{self, ConvAlgo, ConvSpec};
use incept::ops::conv_sibling::{conv2d_siblings, Destination, SiblingWeights};
use incept::ops::{Act, Padding, Window2d};
use incept::reference::{conv as rc, random, to_f64};
use incept::{Gpu, Tensor};

/// One branch: its width, whether it has a folded BatchNorm (scale, bias) and a ReLU,
/// and where it writes: `Some((tensor, channel offset))` into one of the shared outputs, or its own tensor.
#[derive(Clone, Copy)]
struct BranchCase {
    width: usize,
    bn: bool,
    act: Act,
    shared: Option<(usize, usize)>,
}

const fn branch(width: usize, bn: bool, act: Act, shared: Option<(usize, usize)>) -> BranchCase {
    BranchCase { width, bn, act, shared }
}

struct Case {
    batch: usize,
    h: usize,
    w: usize,
    cin: usize,
    win: Window2d,
    branches: Vec<BranchCase>,
    /// Channels of each shared output tensor.
    shared: Vec<usize>,
}

/// A tensor and its host copy.
type Uploaded = (Tensor, Vec<f32>);

struct Branch {
    filter: Uploaded,
    folded: Option<(Uploaded, Uploaded)>,
}

/// Runs a case on the GPU and checks every destination against the f64
/// reference, and that channels no branch writes keep their values.
fn check(gpu: &Gpu, c: &Case, seed: u64) -> Vec<Vec<f32>> {
    let (x, xh) = rand_tensor(gpu, &[c.batch, c.h, c.w, c.cin], seed);
    let (oh, ow) = c.win.output_size(c.h, c.w).unwrap();
    let branches: Vec<Branch> = c
        .branches
        .iter()
        .enumerate()
        .map(|(b, bc)| {
            let s = seed + 10 * (b as u64 + 1);
            Branch {
                filter: rand_tensor(gpu, &[c.win.kh, c.win.kw, c.cin, bc.width], s),
                folded: bc.bn.then(|| (rand_tensor(gpu, &[bc.width], s + 1), rand_tensor(gpu, &[bc.width], s + 2))),
            }
        })
        .collect();
    let weights = SiblingWeights::concat(
        &branches.iter().map(|b| (&b.filter.0, b.folded.as_ref().map(|(s, t)| (&s.0, &t.0)))).collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(weights.widths, c.branches.iter().map(|b| b.width).collect::<Vec<_>>());
    // Outputs start as random values, so that unwritten channels are visible.
    let shared: Vec<Uploaded> = c.shared.iter().enumerate().map(|(i, &ch)| rand_tensor(gpu, &[c.batch, oh, ow, ch], seed + 100 + i as u64)).collect();
    let own: Vec<Option<Uploaded>> = c
        .branches
        .iter()
        .enumerate()
        .map(|(b, bc)| bc.shared.is_none().then(|| rand_tensor(gpu, &[c.batch, oh, ow, bc.width], seed + 200 + b as u64)))
        .collect();
    let dests: Vec<Destination> = c
        .branches
        .iter()
        .zip(&own)
        .map(|(bc, own)| match (bc.shared, own) {
            (Some((i, offset)), _) => Destination { out: &shared[i].0, channel_offset: offset, act: bc.act },
            (None, Some((t, _))) => Destination { out: t, channel_offset: 0, act: bc.act },
            (None, None) => unreachable!(),
        })
        .collect();
    conv2d_siblings(&x, &weights, c.win, &dests).unwrap();

    // Expected contents of every output tensor: the initial values, overwritten by each branch's reference.
    let mut want_shared: Vec<Vec<f64>> = shared.iter().map(|(_, h)| to_f64(h)).collect();
    let mut want_own: Vec<Option<Vec<f64>>> = own.iter().map(|o| o.as_ref().map(|(_, h)| to_f64(h))).collect();
    for (b, (bc, br)) in c.branches.iter().zip(&branches).enumerate() {
        let (y, _) = rc::conv2d(&to_f64(&xh), [c.batch, c.h, c.w, c.cin], &to_f64(&br.filter.1), bc.width, &c.win);
        let folded = br.folded.as_ref().map(|(s, t)| (to_f64(&s.1), to_f64(&t.1)));
        let y = rc::epilogue(&y, bc.width, folded.as_ref().map(|f| f.0.as_slice()), folded.as_ref().map(|f| f.1.as_slice()), bc.act);
        let (target, stride, offset) = match bc.shared {
            Some((i, offset)) => (&mut want_shared[i], c.shared[i], offset),
            None => (want_own[b].as_mut().unwrap(), bc.width, 0),
        };
        for (m, row) in y.chunks(bc.width).enumerate() {
            target[m * stride + offset..][..bc.width].copy_from_slice(row);
        }
    }
    let mut got_all = Vec::new();
    for ((t, _), want) in shared.iter().zip(&want_shared) {
        let got = t.to_vec().unwrap();
        assert_close("shared output", &got, want);
        got_all.push(got);
    }
    for (b, (o, want)) in own.iter().zip(&want_own).enumerate() {
        if let (Some((t, _)), Some(want)) = (o, want) {
            let got = t.to_vec().unwrap();
            assert_close(&format!("branch {b}'s own output"), &got, want);
            got_all.push(got);
        }
    }
    got_all
}

use Act::{Linear, Relu, Relu6};
use Padding::{Same, Valid};

#[test]
fn merged_kernel_matches_the_reference_on_odd_shapes() {
    let gpu = gpu();
    let one = Window2d::new(1, 1, 1, Valid);
    let cases = [
        // vec4 entry point; widths 4, 12, 20 straddle the 8-column blocks; one bare branch.
        Case {
            batch: 3,
            h: 7,
            w: 11,
            cin: 12,
            win: one,
            branches: vec![branch(4, true, Relu, None), branch(12, false, Linear, None), branch(20, true, Relu, None)],
            shared: vec![],
        },
        // Scalar entry point (cin 5, widths 7 and 9), a 3×3 'same' window at stride 2.
        Case {
            batch: 1,
            h: 9,
            w: 9,
            cin: 5,
            win: Window2d::new(3, 3, 2, Same),
            branches: vec![branch(7, true, Linear, None), branch(9, true, Relu, None)],
            shared: vec![],
        },
        // Two branches into one concatenation (out of order, a gap between them), one into its own tensor;
        // 288 rows × 192 columns, where the blocked lanes split 8 × 8.
        Case {
            batch: 2,
            h: 12,
            w: 12,
            cin: 20,
            win: Window2d::new(1, 1, 1, Same),
            branches: vec![branch(64, true, Relu, Some((0, 100))), branch(48, true, Relu, None), branch(80, false, Relu, Some((0, 4)))],
            shared: vec![170],
        },
        // Four branches, four outputs (two shared tensors), a 1×3 window, odd widths and cin.
        Case {
            batch: 2,
            h: 5,
            w: 7,
            cin: 3,
            win: Window2d::new(1, 3, 1, Same),
            branches: vec![
                branch(5, true, Relu, Some((0, 0))),
                branch(3, false, Linear, Some((1, 2))),
                branch(11, true, Linear, None),
                branch(1, true, Relu, Some((0, 6))),
            ],
            shared: vec![8, 6],
        },
    ];
    for (k, c) in cases.iter().enumerate() {
        check(&gpu, c, 1000 * (k as u64 + 1));
    }
}

#[test]
fn relu6_branches_and_explicit_padding() {
    // Depth 3·3·36 = 324 of products of values in [-1, 1): outputs spread about ±6 (σ ≈ 6), so the
    // ReLU6 branches without a folded BatchNorm cap many at exactly 6; MobileNetV2's stride-2 padding.
    let gpu = gpu();
    let pad = Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 };
    for (k, (cin, win)) in [(36, Window2d::new(3, 3, 2, pad)), (35, Window2d::new(3, 3, 1, Padding::Explicit { top: 2, bottom: 1, left: 1, right: 0 }))].into_iter().enumerate() {
        let c = Case {
            batch: 2,
            h: 6,
            w: 7,
            cin,
            win,
            branches: vec![branch(8, false, Relu6, None), branch(12, true, Relu6, Some((0, 3))), branch(4, false, Relu, None)],
            shared: vec![16],
        };
        let got = check(&gpu, &c, 7000 + 100 * k as u64);
        assert!(got.iter().flatten().filter(|&&v| v == 6.0).count() > 4, "case {k}: few outputs reach the cap");
    }
}

#[test]
fn merged_kernel_equals_the_separate_blocked_convolutions_bit_for_bit() {
    // cin and every width divisible by 4: the vec4 entry points of both kernels, same summation order.
    let gpu = gpu();
    let (batch, h, w, cin) = (2, 7, 7, 24);
    let widths = [16, 12, 20];
    let win = Window2d::new(1, 1, 1, Valid);
    let (x, _) = rand_tensor(&gpu, &[batch, h, w, cin], 7);
    let filters: Vec<Tensor> = widths.iter().enumerate().map(|(b, &c)| rand_tensor(&gpu, &[1, 1, cin, c], 20 + b as u64).0).collect();
    let folded: Vec<(Tensor, Tensor)> = widths.iter().enumerate().map(|(b, &c)| (rand_tensor(&gpu, &[c], 30 + b as u64).0, rand_tensor(&gpu, &[c], 40 + b as u64).0)).collect();
    let weights = SiblingWeights::concat(&filters.iter().zip(&folded).map(|(f, (s, b))| (f, Some((s, b)))).collect::<Vec<_>>()).unwrap();
    let outs: Vec<Tensor> = widths.iter().map(|&c| Tensor::zeros(&gpu, &[batch, h, w, c]).unwrap()).collect();
    let dests: Vec<Destination> = outs.iter().map(|out| Destination { out, channel_offset: 0, act: Act::Relu }).collect();
    conv2d_siblings(&x, &weights, win, &dests).unwrap();
    for (b, ((f, (s, t)), out)) in filters.iter().zip(&folded).zip(&outs).enumerate() {
        let spec = ConvSpec { scale: Some(s), bias: Some(t), act: Act::Relu, algo: Some(ConvAlgo::RegisterBlocked), ..ConvSpec::new(win) };
        let separate = conv::conv2d_fused(&x, f, &spec).unwrap().to_vec().unwrap();
        let merged = out.to_vec().unwrap();
        assert!(separate.iter().any(|&v| v > 0.0));
        assert_eq!(merged, separate, "branch {b}");
    }
}

#[test]
fn bad_destinations_are_clear_errors() {
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[1, 3, 3, 4], 1);
    let f = [rand_tensor(&gpu, &[1, 1, 4, 4], 2).0, rand_tensor(&gpu, &[1, 1, 4, 8], 3).0];
    let weights = SiblingWeights::concat(&[(&f[0], None), (&f[1], None)]).unwrap();
    let win = Window2d::new(1, 1, 1, Valid);
    let cat = Tensor::zeros(&gpu, &[1, 3, 3, 12]).unwrap();
    let at = |channel_offset| Destination { out: &cat, channel_offset, act: Act::Linear };
    let msg = conv2d_siblings(&x, &weights, win, &[at(0)]).err().unwrap().to_string();
    assert!(msg.contains("1 destinations for 2 branches"), "{msg}");
    let msg = conv2d_siblings(&x, &weights, win, &[at(0), at(2)]).err().unwrap().to_string();
    assert!(msg.contains("overlaps"), "{msg}");
    let msg = conv2d_siblings(&x, &weights, win, &[at(0), at(5)]).err().unwrap().to_string();
    assert!(msg.contains("branch 1") && msg.contains("offset 5"), "{msg}");
    conv2d_siblings(&x, &weights, win, &[at(8), at(0)]).unwrap();
    let other = rand_tensor(&gpu, &[1, 1, 3, 4], 4).0;
    let msg = SiblingWeights::concat(&[(&f[0], None), (&other, None)]).err().unwrap().to_string();
    assert!(msg.contains("does not match"), "{msg}");
}

fn images(gpu: &Gpu, n: usize, seed: u64) -> Tensor {
    Tensor::from_slice(gpu, &[n, 75, 75, 3], &random(n * 75 * 75 * 3, seed, 0.0, 1.0)).unwrap()
}

/// InceptionV3 (last 15 layers trainable) with sibling merging on or off.
fn model(gpu: &Gpu, seed: u64, merge: bool) -> Base {
    let mut m = Base::from_tensor_map(gpu, Backbone::InceptionV3, &Backbone::InceptionV3.random_weights(seed), 15).unwrap();
    m.set_sibling_merge(merge);
    m
}

#[test]
fn inception_v3_with_merged_siblings_equals_the_separate_convolutions() {
    let gpu = gpu();
    let x = images(&gpu, 2, 3);
    let (merged, separate) = (model(&gpu, 2, true), model(&gpu, 2, false));
    let groups = merged.merged_siblings(2, 75, 75).unwrap();
    assert!(separate.merged_siblings(2, 75, 75).unwrap().is_empty());
    if ConvAlgo::for_gpu(&gpu) == ConvAlgo::RegisterBlocked {
        // mixed0..mixed10 but the reduction block mixed3: three 1×1 siblings each, two in mixed8.
        assert_eq!(groups.len(), 10, "{groups:?}");
        assert!(groups.contains(&vec!["conv2d_5".to_string(), "conv2d_6".into(), "conv2d_8".into()]), "{groups:?}");
        assert!(groups.iter().all(|g| g.len() == 3 || g.len() == 2), "{groups:?}");
    }
    let infer = |m: &Base| ag::no_grad(|| m.forward(&x, false)).unwrap().value().to_vec().unwrap();
    let (a, b) = (infer(&merged), infer(&separate));
    assert!(b.iter().any(|&v| v != 0.0));
    // Same kernels' summation order (every InceptionV3 1×1 has cin and cout divisible by 4).
    assert_close("inference, merged vs separate", &a, &to_f64(&b));
    assert_eq!(a, b, "inference, bit for bit");

    let targets = Tensor::from_slice(&gpu, &[2, 2048], &random(2 * 2048, 4, 0.0, 1.0)).unwrap();
    let step = |m: &Base, from_boundary: bool| {
        let y = if from_boundary { m.forward_from_boundary(&m.frozen_boundary(&x).unwrap(), true) } else { m.forward(&x, true) }.unwrap();
        let (loss, _) = ag::softmax_cross_entropy(&ag::global_avg_pool(&y).unwrap(), &targets).unwrap();
        let grads = loss.backward().unwrap();
        let mut all = y.value().to_vec().unwrap();
        for (_, p) in m.trainable_params() {
            all.extend(grads.get(&p).unwrap().to_vec().unwrap());
        }
        all
    };
    let want = step(&separate, false);
    let got = step(&merged, false);
    assert_close("fine-tune step, merged vs separate", &got, &to_f64(&want));
    assert_eq!(got, want, "fine-tune step outputs and gradients, bit for bit");
    // Fresh models: the steps above moved the trainable BatchNorms' statistics.
    let (merged, separate) = (model(&gpu, 2, true), model(&gpu, 2, false));
    assert_eq!(step(&merged, true), step(&separate, false), "from the frozen boundary, merged, vs the separate whole pass");
    // The batch-chunked frozen part (one image per chunk at 75²), merged, against the whole batch separate.
    let (mut chunked, separate) = (model(&gpu, 2, true), model(&gpu, 2, false));
    chunked.set_binding_limit(37 * 37 * 64 * 4 + 16);
    assert_close("batch-chunked and merged vs the whole batch separate", &step(&chunked, false), &to_f64(&step(&separate, false)));
}
