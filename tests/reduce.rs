//! Reductions against their f64 CPU references, from single elements to
//! 100k-row matrices (several tree levels).
use crate::common;
use common::*;
use incept::Tensor;
use incept::ops::reduce;
use incept::reference::{self as r, reduce as rr};

#[test]
fn sum_rows_matches_reference() {
    let gpu = gpu();
    for (shape, seed) in [
        (vec![1usize, 1usize], 1u64),
        (vec![3, 10], 2),
        (vec![32, 1001], 3),
        (vec![257, 4], 4),
        (vec![100_000, 3], 5),
        (vec![70_001, 1], 6),
        (vec![2, 5, 7, 33], 7),
        (vec![255], 8),
    ] {
        let (x, xh) = rand_tensor(&gpu, &shape, seed);
        let cols = *shape.last().unwrap();
        let got = reduce::sum_rows(&x).unwrap();
        assert_eq!(got.shape(), &[cols]);
        assert_close(&format!("sum_rows {shape:?}"), &got.to_vec().unwrap(), &rr::sum_rows(&r::to_f64(&xh), cols));
    }
}

#[test]
fn sum_all_and_mean_all_match_reference() {
    let gpu = gpu();
    for (n, seed) in [(1usize, 11u64), (255, 12), (257, 13), (70_001, 14), (300_000, 15)] {
        // Positive data keeps the exact sum away from zero, so the relative error is meaningful.
        let xh = r::random(n, seed, 0.0, 1.0);
        let x = Tensor::from_slice(&gpu, &[n], &xh).unwrap();
        let want = rr::sum_all(&r::to_f64(&xh));
        let got = reduce::sum_all(&x).unwrap();
        assert_eq!(got.shape(), &[1]);
        assert_close(&format!("sum_all {n}"), &got.to_vec().unwrap(), &[want]);
        assert_close(&format!("mean_all {n}"), &reduce::mean_all(&x).unwrap().to_vec().unwrap(), &[want / n as f64]);
    }
    // Mixed signs over a multi-dimensional shape.
    let (x, xh) = rand_tensor(&gpu, &[4, 17, 17, 19], 16);
    assert_close("sum_all 4-D", &reduce::sum_all(&x).unwrap().to_vec().unwrap(), &[rr::sum_all(&r::to_f64(&xh))]);
}

#[test]
fn empty_and_scalar_shapes_are_errors() {
    let gpu = gpu();
    let empty = Tensor::zeros(&gpu, &[4, 0]).unwrap();
    let err = reduce::sum_rows(&empty).unwrap_err().to_string();
    assert!(err.contains("[4, 0]"), "{err}");
    assert!(reduce::sum_all(&empty).is_err());
    assert!(reduce::mean_all(&empty).is_err());
    let scalar = Tensor::from_slice(&gpu, &[], &[2.0]).unwrap();
    assert!(reduce::sum_rows(&scalar).is_err());
    assert_eq!(reduce::sum_all(&scalar).unwrap().to_vec().unwrap(), vec![2.0]);
    let labels = Tensor::from_u32(&gpu, &[3], &[1, 2, 3]).unwrap();
    assert!(reduce::sum_all(&labels).is_err());
}

#[test]
fn dispatch_past_65535_workgroups_is_folded() {
    // 4.2M columns: more than 65535 · 64 invocations, so the grid folds into y.
    let gpu = gpu();
    let (x, xh) = rand_tensor(&gpu, &[2, 4_200_000], 17);
    assert_close(
        "sum_rows folded",
        &reduce::sum_rows(&x).unwrap().to_vec().unwrap(),
        &rr::sum_rows(&r::to_f64(&xh), 4_200_000),
    );
}
