//! Uneven TF 'same' padding against TensorFlow itself
//! (tests/data/golden_padding.safetensors, made by tools/make_padding_goldens.py):
//! for conv, depthwise conv, max and average pooling with an odd total
//! padding (stride 2 on even sides, even kernels), the split TF uses equals
//! `Window2d`'s, and the CPU references and every GPU kernel variant give
//! TF's forward and both backward passes. The references and the kernels
//! share `Window2d::pad_before`, so only an outside oracle can catch a wrong
//! split: this one.
use crate::common;

use common::*;
use incept::io::HostTensor;
use incept::io::safetensors_io::read_safetensors_with_metadata;
use incept::ops::conv::{self, ConvAlgo, ConvSpec};
use incept::ops::conv_backward::{self as cb, FilterGradKernel, InputGradKernel};
use incept::ops::depthwise::{self as dw, DepthwiseAlgo, DepthwiseGradKernel, DepthwiseSpec};
use incept::ops::pool;
use incept::ops::{Padding, Window2d};
use incept::reference::{self as cpu, to_f64};
use incept::{Gpu, Tensor};
use std::collections::BTreeMap;

/// The CPU references against float32-rounded float64 TF: rounding alone is ~6e-8.
const CPU_TOL: f64 = 1e-6;

/// One case of the file: the op, its window, TF's padding and its tensors.
struct Case {
    name: String,
    op: String,
    win: Window2d,
    /// [top, bottom, left, right] as TF pads.
    padding: [usize; 4],
    t: BTreeMap<String, HostTensor>,
}

impl Case {
    fn get(&self, key: &str) -> &HostTensor {
        self.t.get(key).unwrap_or_else(|| panic!("{}: no tensor {key}", self.name))
    }
    fn f64(&self, key: &str) -> Vec<f64> {
        to_f64(&self.get(key).data)
    }
    fn shape4(&self, key: &str) -> [usize; 4] {
        self.get(key).shape.clone().try_into().unwrap_or_else(|s| panic!("{}: {key} is not 4-d: {s:?}", self.name))
    }
    fn upload(&self, gpu: &Gpu, key: &str) -> Tensor {
        let h = self.get(key);
        Tensor::from_slice(gpu, &h.shape, &h.data).unwrap()
    }
    #[track_caller]
    fn check(&self, what: &str, got: &[f32], key: &str) {
        assert_close(&format!("{} {what}", self.name), got, &self.f64(key));
    }
    #[track_caller]
    fn check_cpu(&self, what: &str, got: &[f64], key: &str) {
        assert_close_f64(&format!("{} CPU reference {what}", self.name), got, &self.f64(key), CPU_TOL);
    }
}

fn cases() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden_padding.safetensors");
    let (tensors, meta) = read_safetensors_with_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<Case> = meta
        .iter()
        .filter_map(|(key, json)| Some((key.strip_prefix("case/")?, json)))
        .map(|(name, json)| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let n = |x: &serde_json::Value| x.as_u64().unwrap() as usize;
            let k: Vec<usize> = v["kernel"].as_array().unwrap().iter().map(n).collect();
            let p: Vec<usize> = v["padding"].as_array().unwrap().iter().map(n).collect();
            let stride = n(&v["stride"]);
            let prefix = format!("{name}/");
            Case {
                name: name.to_string(),
                op: v["op"].as_str().unwrap().to_string(),
                win: Window2d { kh: k[0], kw: k[1], stride_h: stride, stride_w: stride, padding: Padding::Same },
                padding: p.try_into().unwrap(),
                t: tensors.iter().filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?.to_string(), t.clone()))).collect(),
            }
        })
        .collect();
    assert_eq!(cases.len(), 10, "the file's cases");
    cases
}

fn of_op<'a>(cases: &'a [Case], op: &str) -> Vec<&'a Case> {
    let out: Vec<&Case> = cases.iter().filter(|c| c.op == op).collect();
    assert!(!out.is_empty(), "no {op} case");
    out
}

#[test]
fn window_pads_as_tensorflow_does() {
    for c in cases() {
        let [n, h, w, _] = c.shape4("x");
        let [top, bottom, left, right] = c.padding;
        assert!((top + bottom) % 2 == 1 || (left + right) % 2 == 1, "{}: an uneven split", c.name);
        assert_eq!(c.win.pad_before(h, w).unwrap(), (top, left), "{}", c.name);
        assert_eq!(c.win.pad_total(h, w).unwrap(), (top + bottom, left + right), "{}", c.name);
        let [yn, oh, ow, _] = c.shape4("y");
        assert_eq!((yn, c.win.output_size(h, w).unwrap()), (n, (oh, ow)), "{}", c.name);
    }
}

#[test]
fn conv_forward_and_backward_match_tensorflow_with_uneven_same_padding() {
    let gpu = gpu();
    for c in of_op(&cases(), "conv2d") {
        let (xs, ws) = (c.shape4("x"), c.shape4("w"));
        let cout = ws[3];
        let (x, w, dy) = (c.f64("x"), c.f64("w"), c.f64("dy"));
        c.check_cpu("forward", &cpu::conv::conv2d(&x, xs, &w, cout, &c.win).0, "y");
        c.check_cpu("dx", &cpu::conv_backward::conv2d_backward_input(&dy, &w, xs, cout, &c.win), "dx");
        c.check_cpu("dw", &cpu::conv_backward::conv2d_backward_filter(&x, xs, &dy, cout, &c.win), "dw");

        let (gx, gw, gdy) = (c.upload(&gpu, "x"), c.upload(&gpu, "w"), c.upload(&gpu, "dy"));
        let key = incept::ops::conv_tuning::ConvKey::new(xs[1], xs[2], xs[3], cout, &c.win);
        let algos: Vec<ConvAlgo> = ConvAlgo::ALL.into_iter().filter(|a| a.applies_to(&key)).collect();
        assert!(algos.len() >= 4, "{}: {algos:?}", c.name);
        for algo in algos {
            let spec = ConvSpec { algo: Some(algo), ..ConvSpec::new(c.win) };
            c.check(&format!("forward ({})", algo.name()), &conv::conv2d_fused(&gx, &gw, &spec).unwrap().to_vec().unwrap(), "y");
        }
        for k in InputGradKernel::ALL {
            let dx = cb::conv2d_backward_input_using(k, &gdy, &gw, &c.win, xs).unwrap();
            c.check(&format!("dx ({})", k.name()), &dx.to_vec().unwrap(), "dx");
        }
        for k in FilterGradKernel::ALL {
            let dw = cb::conv2d_backward_filter_using(k, None, &gx, &gdy, &c.win, ws).unwrap();
            c.check(&format!("dw ({})", k.name()), &dw.to_vec().unwrap(), "dw");
        }
    }
}

#[test]
fn depthwise_forward_and_backward_match_tensorflow_with_uneven_same_padding() {
    let gpu = gpu();
    for c in of_op(&cases(), "depthwise_conv2d") {
        let (xs, ws) = (c.shape4("x"), c.shape4("w"));
        let (x, w, dy) = (c.f64("x"), c.f64("w"), c.f64("dy"));
        c.check_cpu("forward", &cpu::depthwise::depthwise_conv2d(&x, xs, &w, &c.win).0, "y");
        c.check_cpu("dx", &cpu::depthwise::depthwise_conv2d_backward_input(&dy, &w, xs, &c.win), "dx");
        c.check_cpu("dw", &cpu::depthwise::depthwise_conv2d_backward_filter(&x, xs, &dy, &c.win), "dw");

        let (gx, gw, gdy) = (c.upload(&gpu, "x"), c.upload(&gpu, "w"), c.upload(&gpu, "dy"));
        let [n, oh, ow, ch] = c.shape4("y");
        for algo in DepthwiseAlgo::ALL.into_iter().filter(|a| a.applies_to(ch, &c.win)) {
            let out = Tensor::empty(&gpu, &[n, oh, ow, ch], incept::DType::F32).unwrap();
            dw::depthwise_conv2d_into(&gx, &gw, &DepthwiseSpec { algo: Some(algo), ..DepthwiseSpec::new(c.win) }, &out).unwrap();
            c.check(&format!("forward ({})", algo.name()), &out.to_vec().unwrap(), "y");
        }
        for k in DepthwiseGradKernel::ALL.into_iter().filter(|k| k.applies_to(ch)) {
            let dx = dw::depthwise_conv2d_backward_input_using(k, &gdy, &gw, &c.win, xs).unwrap();
            c.check(&format!("dx ({})", k.name()), &dx.to_vec().unwrap(), "dx");
            let dwt = dw::depthwise_conv2d_backward_filter_using(k, None, &gx, &gdy, &c.win, ws).unwrap();
            c.check(&format!("dw ({})", k.name()), &dwt.to_vec().unwrap(), "dw");
        }
    }
}

#[test]
fn pools_forward_and_backward_match_tensorflow_with_uneven_same_padding() {
    let gpu = gpu();
    let all = cases();
    for c in of_op(&all, "max_pool2d") {
        let xs = c.shape4("x");
        let (x, dy) = (c.f64("x"), c.f64("dy"));
        c.check_cpu("forward", &cpu::pool::max_pool2d(&x, xs, &c.win).0, "y");
        c.check_cpu("dx", &cpu::pool::max_pool2d_backward(&x, xs, &dy, &c.win), "dx");
        let (gx, gdy) = (c.upload(&gpu, "x"), c.upload(&gpu, "dy"));
        c.check("forward", &pool::max_pool2d(&gx, &c.win).unwrap().to_vec().unwrap(), "y");
        c.check("dx", &pool::max_pool2d_backward(&gx, &gdy, &c.win).unwrap().to_vec().unwrap(), "dx");
    }
    for c in of_op(&all, "avg_pool2d") {
        let xs = c.shape4("x");
        let (x, dy) = (c.f64("x"), c.f64("dy"));
        c.check_cpu("forward", &cpu::pool::avg_pool2d(&x, xs, &c.win).0, "y");
        c.check_cpu("dx", &cpu::pool::avg_pool2d_backward(&dy, &c.win, xs), "dx");
        let (gx, gdy) = (c.upload(&gpu, "x"), c.upload(&gpu, "dy"));
        c.check("forward", &pool::avg_pool2d(&gx, &c.win).unwrap().to_vec().unwrap(), "y");
        c.check("dx", &pool::avg_pool2d_backward(&gdy, &c.win, xs).unwrap().to_vec().unwrap(), "dx");
    }
}
