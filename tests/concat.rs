//! Channel concatenation and slicing against their CPU references.
use crate::common;
use common::*;
use incept::ops::concat;
use incept::reference::{concat as rc, to_f64};

#[test]
fn concat_then_slice_round_trips_at_inception_widths() {
    let gpu = gpu();
    // mixed9-like branch widths on a tiny 3x5 map, batch 2.
    let widths = [7usize, 3, 5, 1];
    let parts: Vec<_> = widths.iter().enumerate().map(|(i, &c)| rand_tensor(&gpu, &[2, 3, 5, c], 40 + i as u64)).collect();
    let refs: Vec<&incept::Tensor> = parts.iter().map(|(t, _)| t).collect();
    let y = concat::concat_channels(&refs).unwrap();
    assert_eq!(y.shape(), &[2, 3, 5, 16]);
    let hosts: Vec<Vec<f64>> = parts.iter().map(|(_, h)| to_f64(h)).collect();
    let want = rc::concat_channels(&hosts.iter().zip(widths).map(|(h, c)| (h.as_slice(), c)).collect::<Vec<_>>());
    assert_close("concat", &y.to_vec().unwrap(), &want);
    let mut offset = 0;
    for (i, &c) in widths.iter().enumerate() {
        let s = concat::slice_channels(&y, offset, c).unwrap();
        assert_close("slice", &s.to_vec().unwrap(), &rc::slice_channels(&want, 16, offset, c));
        assert_close("round trip", &s.to_vec().unwrap(), &hosts[i]);
        offset += c;
    }
}

#[test]
fn mismatched_parts_and_bad_slices_are_errors() {
    let gpu = gpu();
    let (a, _) = rand_tensor(&gpu, &[1, 3, 3, 4], 1);
    let (b, _) = rand_tensor(&gpu, &[1, 3, 4, 4], 2);
    assert!(concat::concat_channels(&[&a, &b]).unwrap_err().to_string().contains("[1, 3, 4, 4]"));
    assert!(concat::slice_channels(&a, 2, 3).is_err());
}
