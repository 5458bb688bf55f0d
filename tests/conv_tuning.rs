//! `incept tune`'s pieces: the measured choice per shape is a variant that
//! agrees with the oracle and is no slower than the built-in rule's, and the
//! cache file round-trips and rejects garbage with its path in the error.

use incept::Gpu;
use incept::lab::conv::BatchedConv;
use incept::lab::tune::{tune_conv, tune_file};
use incept::ops::conv::ConvAlgo;
use incept::ops::conv_tuning::{cache_identity, load, save};
use std::time::Duration;

#[test]
fn tuning_picks_an_applicable_variant_no_slower_than_the_rule() {
    let gpu = Gpu::shared().unwrap();
    let shapes = BatchedConv::small();
    let tuned = tune_conv(&gpu, &shapes, Duration::ZERO, |_, _| {}).unwrap();
    assert_eq!(tuned.len(), shapes.len());
    for (s, t) in shapes.iter().zip(&tuned) {
        assert_eq!(t.key, s.conv.key());
        let algo = ConvAlgo::from_name(&t.algo).expect("a known variant");
        assert!(algo.applies_to(&s.conv.key()));
        assert!(t.ms <= t.rule_ms, "{}: chose {} at {} ms over the rule's {} ms", s.label(), t.algo, t.ms, t.rule_ms);
    }
}

#[test]
fn the_cache_file_round_trips_and_garbage_is_an_error_naming_it() {
    let gpu = Gpu::shared().unwrap();
    let shapes = BatchedConv::small();
    let tuned = tune_conv(&gpu, &shapes[..1], Duration::ZERO, |_, _| {}).unwrap();
    let file = tune_file(&gpu, shapes[0].n, tuned);
    assert_eq!((file.adapter.clone(), file.driver.clone(), file.incept.clone()), cache_identity(&gpu));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("tune.json");
    save(&path, &file).unwrap();
    assert_eq!(load(&path).unwrap(), file);
    std::fs::write(&path, b"{ not json").unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("tune.json"), "{err}");
}
