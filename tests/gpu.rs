//! The device layer: limits give clear errors, buffers are reused, uploads and
//! readbacks keep recorded order.
use crate::common;
use common::*;
use incept::ops::elementwise as ew;
use incept::gpu::{Precision, check_binding};
use incept::{DType, Error, Gpu, GpuOptions, Tensor};

#[test]
fn a_tensor_beyond_max_buffer_size_is_a_limit_error_naming_both_sizes() {
    let gpu = gpu();
    let limit = gpu.limits().max_buffer_size;
    let n = (limit / 4 + 1) as usize;
    match Tensor::empty(&gpu, &[n], DType::F32) {
        Err(e @ Error::Limit { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("max_buffer_size") && msg.contains(&limit.to_string()), "{msg}");
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

/// The binding check against a 1 MiB limit (every adapter), then a launch
/// binding a tensor past the adapter's own limit where the adapter can
/// allocate one (lavapipe: 128 MiB bindings of 2 GiB buffers; an adapter
/// that binds every buffer it allocates cannot reach that error).
#[test]
fn binding_a_tensor_beyond_max_storage_binding_is_a_limit_error() {
    let small = wgpu::Limits { max_storage_buffer_binding_size: 1 << 20, ..wgpu::Limits::default() };
    assert!(check_binding(&small, || "x".into(), 1 << 20).is_ok(), "exactly the limit binds");
    let msg = check_binding(&small, || "relu_forward: a tensor".into(), (1 << 20) + 4).unwrap_err().to_string();
    assert!(msg.contains("relu_forward: a tensor") && msg.contains("max_storage_buffer_binding_size") && msg.contains("1048576") && msg.contains("1048580"), "{msg}");

    let gpu = gpu();
    let limit = gpu.limits().max_storage_buffer_binding_size;
    if limit < gpu.limits().max_buffer_size {
        let x = Tensor::empty(&gpu, &[(limit / 4 + 16) as usize], DType::F32).unwrap();
        let msg = ew::relu(&x).unwrap_err().to_string();
        assert!(msg.contains("max_storage_buffer_binding_size") && msg.contains(&limit.to_string()), "{msg}");
    }
}

#[test]
fn an_unknown_adapter_name_lists_the_available_ones() {
    let msg = Gpu::new(&GpuOptions { adapter: Some("no-such-adapter-xyz".into()), ..GpuOptions::default() }).err().unwrap().to_string();
    assert!(msg.contains("no-such-adapter-xyz") && msg.contains("available"), "{msg}");
}

#[test]
fn mixed_precision_opens_only_an_adapter_that_can_run_it() {
    let f32_gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let mixed = Gpu::new(&GpuOptions { precision: Precision::Mixed, ..GpuOptions::default() });
    match f32_gpu.coop_support() {
        Ok(_) => assert_eq!(mixed.unwrap().precision(), Precision::Mixed),
        Err(why) => {
            let msg = mixed.err().expect("an adapter without cooperative matrices refuses --precision mixed").to_string();
            assert!(msg.contains("--precision mixed") && msg.contains(f32_gpu.name()) && msg.contains(why), "{msg}");
        }
    }
}

#[test]
fn the_pool_counts_the_bytes_of_live_tensors_and_their_peak() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let (x, _) = rand_tensor(&gpu, &[3, 17, 17, 5], 1);
    let bytes = x.byte_size();
    let before = gpu.pool_stats().bytes_in_use;
    assert!(before >= bytes, "{before} bytes in use with a {bytes}-byte tensor alive");
    gpu.reset_peak_memory();
    {
        let y = ew::relu(&x).unwrap();
        let z = ew::add(&y, &x).unwrap();
        drop(y);
        let _w = ew::scale(&z, 0.5).unwrap();
        assert_eq!(gpu.pool_stats().bytes_in_use, before + 2 * bytes);
    }
    let s = gpu.pool_stats();
    assert_eq!((s.bytes_in_use, s.peak_bytes_in_use), (before, before + 2 * bytes));
}

#[test]
fn a_repeated_step_allocates_no_new_buffers_after_warm_up() {
    // A device of its own, so that other tests' allocations do not interfere.
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let (x, _) = rand_tensor(&gpu, &[3, 17, 17, 5], 1);
    let step = || {
        let y = ew::relu(&x).unwrap();
        let z = ew::add(&y, &x).unwrap();
        let g = ew::scale(&z, 0.5).unwrap();
        ew::axpy_inplace(&g, 1.0, &y).unwrap();
        g.to_vec().unwrap()
    };
    let first = step();
    let warm = gpu.pool_stats().allocations;
    for _ in 0..3 {
        assert_eq!(step(), first);
    }
    assert_eq!(gpu.pool_stats().allocations, warm, "steps after the first allocated buffers");
    assert!(gpu.pool_stats().reuses > 0);
}

#[test]
fn uploads_and_readbacks_respect_recorded_order() {
    let gpu = gpu();
    let a = Tensor::from_slice(&gpu, &[4], &[1.0, -2.0, 3.0, -4.0]).unwrap();
    let y = ew::relu(&a).unwrap();
    // Overwriting `a` after the relu was recorded must not change y.
    a.write(&[-9.0, 9.0, -9.0, 9.0]).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![1.0, 0.0, 3.0, 0.0]);
    assert_eq!(a.to_vec().unwrap(), vec![-9.0, 9.0, -9.0, 9.0]);
}

/// f16 tensors (the frozen prefix's storage under `--precision mixed`): half
/// the bytes, each value rounded to the nearest f16 on upload and widened
/// exactly on readback, odd lengths included; copies keep them, and a copy
/// between element types is refused.
#[test]
fn f16_tensors_hold_rounded_values_in_half_the_bytes() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let data: Vec<f32> = incept::reference::random(21, 3, -100.0, 100.0);
    let t = Tensor::from_slice_f16(&gpu, &[3, 7], &data).unwrap();
    assert_eq!((t.dtype(), t.byte_size()), (DType::F16, 42));
    let want: Vec<f32> = data.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    assert!(want.iter().zip(&data).any(|(a, b)| a != b), "the data must need rounding");
    assert_eq!(t.to_vec().unwrap(), want);
    assert_eq!(t.deep_copy().unwrap().to_vec().unwrap(), want);
    let other = Tensor::empty(&gpu, &[3, 7], DType::F16).unwrap();
    other.copy_from(&t).unwrap();
    assert_eq!(other.to_vec().unwrap(), want);
    let f32_copy = Tensor::zeros(&gpu, &[3, 7]).unwrap();
    let msg = f32_copy.copy_from(&t).unwrap_err().to_string();
    assert!(msg.contains("F16") && msg.contains("F32"), "{msg}");
}
