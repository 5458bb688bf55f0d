//! The tape: gradient accumulation, no-grad scopes, trainable flags, error
//! paths, and a composed conv-BN-ReLU-pool-dense graph whose GPU gradients
//! are checked, entry by entry, against f64 finite differences of the same
//! graph built from the CPU references.
use crate::common;
use common::*;
use incept::autograd::{self as ag, Var};
use incept::ops::window::{Padding, Window2d};
use incept::reference::{self as cpu, random, to_f64};
use incept::Tensor;

fn one_hot(gpu: &incept::Gpu, n: usize, c: usize, labels: &[usize]) -> Tensor {
    let mut t = vec![0.0; n * c];
    for (i, &l) in labels.iter().enumerate() {
        t[i * c + l] = 1.0;
    }
    Tensor::from_slice(gpu, &[n, c], &t).unwrap()
}

#[test]
fn a_variable_used_twice_accumulates_its_gradient() {
    let gpu = gpu();
    let ph = random(5, 3, -1.0, 1.0);
    let p = Var::parameter(Tensor::from_slice(&gpu, &[1, 5], &ph).unwrap(), true);
    let a = ag::relu(&p).unwrap();
    let b = ag::add(&a, &a).unwrap();
    let targets = one_hot(&gpu, 1, 5, &[2]);
    let (loss, _) = ag::softmax_cross_entropy(&b, &targets).unwrap();
    let grads = loss.backward().unwrap();
    // d/dp CE(softmax(2·relu(p))) = 2·(softmax − t)·[p > 0]
    let z: Vec<f64> = to_f64(&ph).iter().map(|&v| 2.0 * v.max(0.0)).collect();
    let mx = z.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - mx).exp()).collect();
    let s: f64 = e.iter().sum();
    let want: Vec<f64> = (0..5).map(|i| if ph[i] > 0.0 { 2.0 * (e[i] / s - if i == 2 { 1.0 } else { 0.0 }) } else { 0.0 }).collect();
    assert_close("accumulated gradient", &grads.get(&p).unwrap().to_vec().unwrap(), &want);
}

#[test]
fn no_grad_records_nothing_and_frozen_parameters_get_no_gradient() {
    let gpu = gpu();
    let (t, _) = rand_tensor(&gpu, &[2, 3], 5);
    let trainable = Var::parameter(t.clone(), true);
    let frozen = Var::parameter(t, false);
    let inside = ag::no_grad(|| ag::relu(&trainable).unwrap());
    assert!(!inside.requires_grad() && inside.op().is_none());
    assert!(ag::is_recording(), "no_grad must restore recording");
    let f = ag::relu(&frozen).unwrap();
    assert!(!f.requires_grad(), "an op on frozen inputs only is not recorded");
    let y = ag::add(&ag::relu(&trainable).unwrap(), &f).unwrap();
    let (loss, _) = ag::softmax_cross_entropy(&y, &one_hot(&gpu, 2, 3, &[0, 2])).unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(&trainable).is_some());
    assert!(grads.get(&frozen).is_none());
    assert_eq!(grads.len(), 1);
}

#[test]
fn backward_errors_are_reported() {
    let gpu = gpu();
    let (t, _) = rand_tensor(&gpu, &[2, 3], 6);
    let p = Var::parameter(t, true);
    let y = ag::relu(&p).unwrap();
    assert!(y.backward().unwrap_err().to_string().contains("scalar"));
    let c = Var::constant(Tensor::from_slice(&gpu, &[1], &[0.5]).unwrap());
    assert!(c.backward().is_err());
}

/// conv(3×3 same) → BN(train) → ReLU → max pool 3×3/2 → GAP → Dense(relu) → Dense → CE.
struct Tiny {
    conv_w: Var,
    beta: Var,
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Tiny {
    fn new(gpu: &incept::Gpu) -> Tiny {
        let p = |shape: &[usize], seed: u64, scale: f32| {
            let n = shape.iter().product();
            Var::parameter(Tensor::from_slice(gpu, shape, &random(n, seed, -scale, scale)).unwrap(), true)
        };
        Tiny { conv_w: p(&[3, 3, 3, 6], 1, 0.4), beta: p(&[6], 2, 0.1), w1: p(&[6, 16], 3, 0.5), b1: p(&[16], 4, 0.1), w2: p(&[16, 3], 5, 0.5), b2: p(&[3], 6, 0.1) }
    }

    fn params(&self) -> [&Var; 6] {
        [&self.conv_w, &self.beta, &self.w1, &self.b1, &self.w2, &self.b2]
    }

    fn loss(&self, x: &Var, targets: &Tensor, dropout_seed: Option<u64>) -> Var {
        let y = ag::conv2d(x, &self.conv_w, Window2d::new(3, 3, 1, Padding::Same)).unwrap();
        let (y, _) = ag::batch_norm_train(&y, None, &self.beta, 1e-3).unwrap();
        let y = ag::relu(&y).unwrap();
        let y = ag::max_pool2d(&y, Window2d::new(3, 3, 2, Padding::Valid)).unwrap();
        let y = ag::global_avg_pool(&y).unwrap();
        let mut y = ag::dense(&y, &self.w1, &self.b1, true).unwrap();
        if let Some(seed) = dropout_seed {
            y = ag::dropout(&y, 0.3, seed).unwrap();
        }
        let y = ag::dense(&y, &self.w2, &self.b2, false).unwrap();
        ag::softmax_cross_entropy(&y, targets).unwrap().0
    }
}

fn tiny_batch(gpu: &incept::Gpu) -> (Var, Tensor) {
    let x = Tensor::from_slice(gpu, &[4, 9, 9, 3], &random(4 * 81 * 3, 9, -1.0, 1.0)).unwrap();
    (Var::constant(x), one_hot(gpu, 4, 3, &[0, 2, 1, 2]))
}

/// `Tiny::loss` in f64 from the CPU references, on the parameters `p` (in
/// `Tiny::params` order), the input `x` [4, 9, 9, 3] and one-hot `t` [4, 3].
fn tiny_loss_f64(p: &[Vec<f64>], x: &[f64], t: &[f64]) -> f64 {
    let (y, ys) = cpu::conv::conv2d(x, [4, 9, 9, 3], &p[0], 6, &Window2d::new(3, 3, 1, Padding::Same));
    let (y, _, _) = cpu::batchnorm::batchnorm_train(&y, None, &p[1], 1e-3);
    let y = cpu::elementwise::relu(&y);
    let (y, ys) = cpu::pool::max_pool2d(&y, ys, &Window2d::new(3, 3, 2, Padding::Valid));
    let y = cpu::pool::global_avg_pool(&y, ys);
    let y = cpu::matmul::dense(&y, &p[2], &p[3], 4, 6, 16, true);
    let y = cpu::matmul::dense(&y, &p[4], &p[5], 4, 16, 3, false);
    cpu::loss::softmax_cross_entropy(&y, t, 3).0
}

/// Every entry of every parameter's GPU gradient against central
/// differences (step 1e-6) of the f64 CPU graph, and a guard that the
/// gradients checked are not zero: every conv channel and most hidden units
/// of the first Dense layer (a ReLU) get one, so `0 == 0` cannot pass.
#[test]
fn composed_graph_gradients_match_f64_finite_differences_of_the_cpu_graph() {
    let gpu = gpu();
    let model = Tiny::new(&gpu);
    let (x, targets) = tiny_batch(&gpu);
    let grads = model.loss(&x, &targets, None).backward().unwrap();
    let xs = to_f64(&x.value().to_vec().unwrap());
    let t = to_f64(&targets.to_vec().unwrap());
    let params: Vec<Vec<f64>> = model.params().iter().map(|p| to_f64(&p.value().to_vec().unwrap())).collect();
    let gpu_loss = ag::no_grad(|| model.loss(&x, &targets, None)).value().scalar().unwrap() as f64;
    let cpu_loss = tiny_loss_f64(&params, &xs, &t);
    assert!((gpu_loss - cpu_loss).abs() <= 1e-5 * cpu_loss.abs(), "loss: GPU {gpu_loss} vs f64 CPU {cpu_loss}");
    let names = ["conv kernel", "BN beta", "dense 1 kernel", "dense 1 bias", "dense 2 kernel", "dense 2 bias"];
    let mut fd = Vec::new();
    for (pi, p) in model.params().iter().enumerate() {
        let want = cpu::finite_difference(&params[pi], 1e-6, |v| {
            let mut all = params.clone();
            all[pi] = v.to_vec();
            tiny_loss_f64(&all, &xs, &t)
        });
        let got = grads.get(p).unwrap_or_else(|| panic!("{} got no gradient", names[pi])).to_vec().unwrap();
        assert_close(names[pi], &got, &want);
        fd.push(want);
    }
    // Nonzero guard. Conv kernel [3, 3, 3, 6]: every output channel; dense 1 bias: its hidden units.
    let alive = |g: &[f64], units: usize| (0..units).filter(|&u| g.iter().skip(u).step_by(units).any(|v| v.abs() > 1e-8)).count();
    assert_eq!(alive(&fd[0], 6), 6, "every conv channel gets a gradient: {:?}", fd[0]);
    let hidden = alive(&fd[3], 16);
    assert!(hidden >= 8, "only {hidden} of 16 hidden units get a gradient (dead ReLUs): {:?}", fd[3]);
    assert_eq!(alive(&fd[2], 16), hidden, "a hidden unit's kernel column has a gradient exactly when its bias has");
    for (name, g) in names.iter().zip(&fd) {
        assert!(g.iter().map(|v| v * v).sum::<f64>().sqrt() > 1e-4, "{name}: gradient {g:?}");
    }
}

#[test]
fn tiny_model_trains_with_adam_and_the_loss_falls() {
    use incept::ops::optim::{adam_step, AdamConfig};
    let gpu = gpu();
    let model = Tiny::new(&gpu);
    let (x, targets) = tiny_batch(&gpu);
    let state: Vec<(Tensor, Tensor)> = model
        .params()
        .iter()
        .map(|p| (Tensor::zeros(&gpu, p.shape()).unwrap(), Tensor::zeros(&gpu, p.shape()).unwrap()))
        .collect();
    let cfg = AdamConfig { lr: 0.02, ..AdamConfig::default() };
    let mut losses = Vec::new();
    for step in 1..=40u32 {
        let loss = model.loss(&x, &targets, Some(step as u64));
        losses.push(loss.value().scalar().unwrap());
        let grads = loss.backward().unwrap();
        for (p, (m, v)) in model.params().iter().zip(&state) {
            adam_step(p.value(), grads.get(p).unwrap(), m, v, &cfg, step).unwrap();
        }
    }
    // Dropout makes single steps noisy: compare the mean of the last five.
    let last: f32 = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(last < 0.5 * losses[0], "loss did not fall enough: {losses:?}");
}
