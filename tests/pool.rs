//! Pooling: GPU against the f64 CPU reference for InceptionV3's windows and
//! general ones at odd sizes, every backward against finite differences of
//! its forward reference, channel-slice output, the forward kernels' f16
//! storage forms (the frozen prefix under `--precision mixed`), and shape errors.
use crate::common;
use common::*;
use incept::ops::pool as pl;
use incept::ops::{Padding, Window2d};
use incept::reference::{self as r, pool as rp};
use half::f16;
use incept::Tensor;
use incept::tensor::DType;

fn windows() -> Vec<Window2d> {
    vec![
        Window2d::new(3, 3, 2, Padding::Valid), // InceptionV3 reductions
        Window2d::new(3, 3, 1, Padding::Same),  // InceptionV3 average-pool branches
        Window2d::new(3, 3, 2, Padding::Same),
        Window2d { kh: 2, kw: 3, stride_h: 1, stride_w: 2, padding: Padding::Same },
        Window2d { kh: 5, kw: 4, stride_h: 3, stride_w: 2, padding: Padding::Same },
        Window2d { kh: 1, kw: 2, stride_h: 2, stride_w: 1, padding: Padding::Valid },
    ]
}

/// (n, h, w, c) covering the required sizes, batches and channel counts.
fn shapes() -> Vec<[usize; 4]> {
    let nc = [(1, 3), (3, 5), (1, 33)];
    let mut shapes = Vec::new();
    for (i, s) in [7, 8, 9, 15, 17].into_iter().enumerate() {
        let (n, c) = nc[i % nc.len()];
        let (n2, c2) = nc[(i + 1) % nc.len()];
        shapes.push([n, s, s, c]);
        shapes.push([n2, s, s + 2, c2]); // and a non-square one
    }
    shapes
}

/// Distinct values (a shuffled ramp, steps of 0.01) so a window's maximum is
/// unique by a wide margin: finite differences across ties are meaningless.
fn distinct_values(len: usize, seed: u64) -> Vec<f64> {
    let keys = r::random(len, seed, 0.0, 1.0);
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let mut v = vec![0.0; len];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = rank as f64 * 0.01 - len as f64 * 0.005;
    }
    v
}

#[test]
fn max_pool_matches_reference() {
    let gpu = gpu();
    for (wi, win) in windows().iter().enumerate() {
        for (si, xs) in shapes().into_iter().enumerate() {
            let seed = (wi * 100 + si) as u64;
            let (x, xh) = rand_tensor(&gpu, &xs, seed);
            let (want, ys) = rp::max_pool2d(&r::to_f64(&xh), xs, win);
            let y = pl::max_pool2d(&x, win).unwrap();
            assert_eq!(y.shape(), ys);
            let what = format!("{win:?} on {xs:?}");
            assert_close(&format!("max forward {what}"), &y.to_vec().unwrap(), &want);
            let (dy, dyh) = rand_tensor(&gpu, &ys, seed + 7);
            let dx = pl::max_pool2d_backward(&x, &dy, win).unwrap();
            let want_dx = rp::max_pool2d_backward(&r::to_f64(&xh), xs, &r::to_f64(&dyh), win);
            assert_close(&format!("max backward {what}"), &dx.to_vec().unwrap(), &want_dx);
        }
    }
}

#[test]
fn max_pool_backward_sends_ties_to_the_first_tap() {
    let gpu = gpu();
    // Values from {0, 1, 2}: most windows hold tied maxima.
    let xs = [2, 9, 8, 3];
    let xh: Vec<f32> = r::random(xs.iter().product(), 5, 0.0, 3.0).iter().map(|v| v.floor()).collect();
    let x = Tensor::from_slice(&gpu, &xs, &xh).unwrap();
    for win in [Window2d::new(3, 3, 1, Padding::Same), Window2d::new(3, 3, 2, Padding::Valid)] {
        let (_, ys) = rp::max_pool2d(&r::to_f64(&xh), xs, &win);
        let (dy, dyh) = rand_tensor(&gpu, &ys, 6);
        let dx = pl::max_pool2d_backward(&x, &dy, &win).unwrap();
        let want = rp::max_pool2d_backward(&r::to_f64(&xh), xs, &r::to_f64(&dyh), &win);
        assert_close(&format!("tied max backward {win:?}"), &dx.to_vec().unwrap(), &want);
    }
}

#[test]
fn avg_pool_matches_reference() {
    let gpu = gpu();
    for (wi, win) in windows().iter().enumerate() {
        for (si, xs) in shapes().into_iter().enumerate() {
            let seed = (wi * 100 + si) as u64 + 5000;
            let (x, xh) = rand_tensor(&gpu, &xs, seed);
            let (want, ys) = rp::avg_pool2d(&r::to_f64(&xh), xs, win);
            let y = pl::avg_pool2d(&x, win).unwrap();
            assert_eq!(y.shape(), ys);
            let what = format!("{win:?} on {xs:?}");
            assert_close(&format!("avg forward {what}"), &y.to_vec().unwrap(), &want);
            let (dy, dyh) = rand_tensor(&gpu, &ys, seed + 7);
            let dx = pl::avg_pool2d_backward(&dy, win, xs).unwrap();
            assert_eq!(dx.shape(), xs);
            let want_dx = rp::avg_pool2d_backward(&r::to_f64(&dyh), win, xs);
            assert_close(&format!("avg backward {what}"), &dx.to_vec().unwrap(), &want_dx);
        }
    }
}

#[test]
fn avg_pool_same_padding_divides_by_in_bounds_count() {
    let gpu = gpu();
    // All ones: Keras averages only real pixels, so every output is exactly 1.
    let x = Tensor::full(&gpu, &[1, 5, 4, 2], 1.0).unwrap();
    let y = pl::avg_pool2d(&x, &Window2d::new(3, 3, 1, Padding::Same)).unwrap().to_vec().unwrap();
    assert!(y.iter().all(|&v| (v - 1.0).abs() < 1e-6), "{y:?}");
}

#[test]
fn explicit_padding_is_refused_by_every_pool() {
    // Keras's ZeroPadding2D feeds zeros that a max pool would take for values: not foldable into the window.
    let gpu = gpu();
    let (x, _) = rand_tensor(&gpu, &[1, 6, 6, 3], 1);
    let win = Window2d::new(3, 3, 2, Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 });
    let (dy, _) = rand_tensor(&gpu, &[1, 3, 3, 3], 2);
    let errors = [
        pl::max_pool2d(&x, &win).map(drop),
        pl::avg_pool2d(&x, &win).map(drop),
        pl::max_pool2d_backward(&x, &dy, &win).map(drop),
        pl::avg_pool2d_backward(&dy, &win, [1, 6, 6, 3]).map(drop),
    ];
    for e in errors {
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("explicit padding pad(0,1,0,1) is for convolutions only"), "{msg}");
    }
}

#[test]
fn global_avg_pool_matches_reference() {
    let gpu = gpu();
    for (i, xs) in [[1, 7, 7, 3], [3, 8, 8, 33], [2, 1, 1, 5], [2, 8, 8, 2048], [3, 17, 15, 5]].into_iter().enumerate() {
        let (x, xh) = rand_tensor(&gpu, &xs, i as u64);
        let y = pl::global_avg_pool(&x).unwrap();
        assert_eq!(y.shape(), [xs[0], xs[3]]);
        assert_close(&format!("global avg {xs:?}"), &y.to_vec().unwrap(), &rp::global_avg_pool(&r::to_f64(&xh), xs));
        let (dy, dyh) = rand_tensor(&gpu, &[xs[0], xs[3]], i as u64 + 50);
        let dx = pl::global_avg_pool_backward(&dy, xs).unwrap();
        assert_close(&format!("global avg backward {xs:?}"), &dx.to_vec().unwrap(), &rp::global_avg_pool_backward(&r::to_f64(&dyh), xs));
    }
}

#[test]
fn backward_references_match_finite_differences() {
    for win in windows() {
        for xs in [[1, 7, 7, 2], [2, 8, 9, 3]] {
            let x = distinct_values(xs.iter().product(), 11);
            let (_, ys) = rp::max_pool2d(&x, xs, &win);
            let g = r::to_f64(&r::random(ys.iter().product(), 12, -1.0, 1.0));
            let fd = r::finite_difference(&x, 1e-4, |x| r::dot(&g, &rp::max_pool2d(x, xs, &win).0));
            assert_close_f64(&format!("max fd {win:?} {xs:?}"), &rp::max_pool2d_backward(&x, xs, &g, &win), &fd, FD_TOL);
            let fd = r::finite_difference(&x, 1e-4, |x| r::dot(&g, &rp::avg_pool2d(x, xs, &win).0));
            assert_close_f64(&format!("avg fd {win:?} {xs:?}"), &rp::avg_pool2d_backward(&g, &win, xs), &fd, FD_TOL);
        }
    }
    let xs = [2, 3, 4, 5];
    let x = r::to_f64(&r::random(xs.iter().product(), 13, -1.0, 1.0));
    let g = r::to_f64(&r::random(10, 14, -1.0, 1.0));
    let fd = r::finite_difference(&x, 1e-4, |x| r::dot(&g, &rp::global_avg_pool(x, xs)));
    assert_close_f64("global avg fd", &rp::global_avg_pool_backward(&g, xs), &fd, FD_TOL);
}

#[test]
fn max_pool_into_writes_only_its_channel_slice() {
    let gpu = gpu();
    let win = Window2d::new(3, 3, 2, Padding::Valid);
    for (xs, offset, total) in [([3, 9, 9, 5], 3, 12), ([1, 17, 17, 33], 0, 33), ([2, 8, 8, 3], 7, 10)] {
        let (x, xh) = rand_tensor(&gpu, &xs, 21);
        let (want, [n, oh, ow, c]) = rp::max_pool2d(&r::to_f64(&xh), xs, &win);
        let (out, before) = rand_tensor(&gpu, &[n, oh, ow, total], 22);
        pl::max_pool2d_into(&x, &win, &out, offset).unwrap();
        let after = out.to_vec().unwrap();
        let mut slice = Vec::new();
        for (i, (&a, &b)) in after.iter().zip(&before).enumerate() {
            let ch = i % total;
            if (offset..offset + c).contains(&ch) {
                slice.push(a);
            } else {
                assert_eq!(a, b, "channel {ch} outside [{offset}, {}) changed", offset + c);
            }
        }
        assert_close(&format!("max into {xs:?} at {offset} of {total}"), &slice, &want);
    }
}

/// Every mix of f32 and f16 input and output: a maximum is exact (then
/// rounded once if the output is f16), a mean is summed in f32 and rounded
/// once (at most 2^-11 of each element), and a pooled slice leaves the other
/// channels of an f16 tensor as they were.
#[test]
fn forward_kernels_read_and_write_f16() {
    let gpu = gpu();
    let half_ulp = 2f64.powi(-11);
    for (src, dst) in [(DType::F16, DType::F32), (DType::F32, DType::F16), (DType::F16, DType::F16)] {
        for (wi, win) in windows().iter().enumerate() {
            for (si, xs) in shapes().into_iter().enumerate().step_by(3) {
                let what = format!("{win:?} on {src:?} {xs:?} into {dst:?}");
                let data = r::random(xs.iter().product(), (wi * 100 + si) as u64, -3.0, 3.0);
                let (x, held) = stored_tensor(&gpu, &xs, &data, src);
                let (max_want, ys) = rp::max_pool2d(&r::to_f64(&held), xs, win);
                let (avg_want, _) = rp::avg_pool2d(&r::to_f64(&held), xs, win);
                let total = ys[3] + 4;
                let before = r::random(ys[0] * ys[1] * ys[2] * total, 9, -1.0, 1.0);
                let (out, before) = stored_tensor(&gpu, &[ys[0], ys[1], ys[2], total], &before, dst);
                pl::max_pool2d_into(&x, win, &out, 3).unwrap();
                let after = out.to_vec().unwrap();
                for (i, (&a, &b)) in after.iter().zip(&before).enumerate() {
                    let (ch, o) = (i % total, i / total);
                    if (3..3 + ys[3]).contains(&ch) {
                        let want = max_want[o * ys[3] + ch - 3] as f32;
                        let want = if dst == DType::F16 { f16::from_f32(want).to_f32() } else { want };
                        assert_eq!(a, want, "max {what}: element {i}");
                    } else {
                        assert_eq!(a, b, "max {what}: channel {ch} outside the slice changed");
                    }
                }
                let avg = Tensor::empty(&gpu, &ys, dst).unwrap();
                pl::avg_pool2d_into(&x, win, &avg).unwrap();
                let got = avg.to_vec().unwrap();
                if dst == DType::F16 {
                    let err = r::rel_l2(&got, &avg_want);
                    assert!(err <= half_ulp + 1e-6, "avg {what}: relative L2 {err:.3e} > 2^-11");
                } else {
                    assert_close(&format!("avg {what}"), &got, &avg_want);
                }
            }
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let gpu = gpu();
    let win = Window2d::new(3, 3, 2, Padding::Valid);
    let (x3, _) = rand_tensor(&gpu, &[9, 9, 5], 1);
    let err = pl::max_pool2d(&x3, &win).unwrap_err().to_string();
    assert!(err.contains("[9, 9, 5]"), "{err}");
    assert!(pl::avg_pool2d(&x3, &win).is_err());
    assert!(pl::global_avg_pool(&x3).is_err());
    let (x, _) = rand_tensor(&gpu, &[2, 9, 9, 5], 2);
    let (tiny, _) = rand_tensor(&gpu, &[1, 2, 2, 1], 3);
    assert!(pl::max_pool2d(&tiny, &win).is_err(), "'valid' window larger than the input");
    // Output of the 9×9 reduction is [2, 4, 4, 5].
    let (wrong_dy, _) = rand_tensor(&gpu, &[2, 4, 4, 6], 4);
    let err = pl::max_pool2d_backward(&x, &wrong_dy, &win).unwrap_err().to_string();
    assert!(err.contains("[2, 4, 4, 6]") && err.contains("[2, 4, 4, 5]"), "{err}");
    assert!(pl::avg_pool2d_backward(&wrong_dy, &win, [2, 9, 9, 5]).is_err());
    assert!(pl::global_avg_pool_backward(&wrong_dy, [2, 9, 9, 5]).is_err());
    let out = Tensor::zeros(&gpu, &[2, 4, 4, 8]).unwrap();
    let err = pl::max_pool2d_into(&x, &win, &out, 4).unwrap_err().to_string();
    assert!(err.contains("offset 4") && err.contains("[2, 4, 4, 8]"), "{err}");
    assert!(pl::max_pool2d_into(&x, &win, &Tensor::zeros(&gpu, &[2, 5, 4, 8]).unwrap(), 0).is_err(), "spatial mismatch");
    assert!(pl::max_pool2d_into(&x, &win, &Tensor::zeros(&gpu, &[2, 4, 4, 8]).unwrap(), 3).is_ok());
    let err = pl::avg_pool2d_into(&x, &win, &Tensor::zeros(&gpu, &[2, 4, 4, 6]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("[2, 4, 4, 6]") && err.contains("[2, 4, 4, 5]"), "{err}");
    let labels = Tensor::zeros_u32(&gpu, &[2, 9, 9, 5]).unwrap();
    let err = pl::avg_pool2d_into(&labels, &win, &Tensor::zeros(&gpu, &[2, 4, 4, 5]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("f32 or f16") && err.contains("U32"), "{err}");
}

/// More than 65535 workgroups of 256: the grid folds into y and every element is still written once.
#[test]
fn large_backward_folds_the_workgroup_grid() {
    let gpu = gpu();
    let xs = [1, 2049, 64, 128]; // 16_785_408 elements > 65535 · 256
    let (dy, dyh) = rand_tensor(&gpu, &[1, 128], 31);
    let dx = pl::global_avg_pool_backward(&dy, xs).unwrap().to_vec().unwrap();
    assert_close("folded global avg backward", &dx, &rp::global_avg_pool_backward(&r::to_f64(&dyh), xs));
}
