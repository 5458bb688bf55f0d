//! Reverse-mode automatic differentiation.
//!
//! Every op on [`Var`]s whose inputs require a gradient appends a node to the
//! tape: its inputs and a closure that maps the output's gradient to the
//! inputs' gradients. Nodes are numbered in creation order, so walking them
//! from the newest back to the oldest visits every consumer before its
//! producers; `backward` does exactly that, starting from a scalar loss.
//!
//! - Leaves are parameters (`Var::parameter`, with a trainable flag) or
//!   constants (`Var::constant`). Frozen parameters are constants for the tape.
//! - An op records nothing when none of its inputs requires a gradient, so
//!   gradients are computed only along paths that reach a trainable parameter,
//!   and activations that no path needs are freed at once.
//! - Inside [`no_grad`] nothing is recorded at all (the frozen InceptionV3
//!   prefix runs there, keeping no activations).

mod functions;

pub use functions::*;

use crate::error::{Error, Result};
use crate::ops::elementwise;
use crate::tensor::Tensor;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` without recording any op on this thread (inference, frozen layers).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            RECORDING.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(RECORDING.with(|r| r.replace(false)));
    f()
}

/// Whether ops on this thread are being recorded.
pub fn is_recording() -> bool {
    RECORDING.with(|r| r.get())
}

/// Maps the output gradient to one optional gradient per input; `needed[i]`
/// says whether input i wants one (others may be skipped and left `None`).
pub(crate) type BackwardFn = Box<dyn Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

struct Node {
    id: u64,
    value: Tensor,
    requires_grad: bool,
    record: Option<Record>,
}

struct Record {
    op: &'static str,
    inputs: Vec<Var>,
    backward: BackwardFn,
    /// The profile scope (model layer) the op ran in, so its backward is attributed to it too.
    scope: Option<Arc<str>>,
}

/// A tensor in the autograd graph.
#[derive(Clone)]
pub struct Var(Arc<Node>);

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.0.record.as_ref().map_or("leaf", |r| r.op);
        write!(f, "Var#{}({:?}, {op}, requires_grad={})", self.0.id, self.0.value, self.0.requires_grad)
    }
}

impl Var {
    fn leaf(value: Tensor, requires_grad: bool) -> Var {
        Var(Arc::new(Node { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), value, requires_grad, record: None }))
    }

    /// A parameter leaf; gradients flow to it only when `trainable`.
    pub fn parameter(value: Tensor, trainable: bool) -> Var {
        Var::leaf(value, trainable)
    }

    /// A leaf that never receives a gradient (inputs, labels, frozen weights).
    pub fn constant(value: Tensor) -> Var {
        Var::leaf(value, false)
    }

    /// The result of an op: records it when recording is on and some input
    /// requires a gradient, otherwise returns a plain constant.
    pub(crate) fn from_op(op: &'static str, value: Tensor, inputs: &[&Var], backward: impl Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static) -> Var {
        let requires_grad = is_recording() && inputs.iter().any(|v| v.requires_grad());
        if !requires_grad {
            return Var::constant(value);
        }
        let scope = value.gpu().profile_scope_name();
        Var(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value,
            requires_grad: true,
            record: Some(Record {
                op,
                inputs: inputs.iter().map(|v| (*v).clone()).collect(),
                backward: Box::new(backward),
                scope,
            }),
        }))
    }

    pub fn value(&self) -> &Tensor {
        &self.0.value
    }
    pub fn shape(&self) -> &[usize] {
        self.0.value.shape()
    }
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    pub fn id(&self) -> u64 {
        self.0.id
    }
    /// The recorded op that produced this variable, if any.
    pub fn op(&self) -> Option<&'static str> {
        self.0.record.as_ref().map(|r| r.op)
    }

    /// Gradients of this scalar with respect to every variable on a path to a
    /// trainable leaf.
    pub fn backward(&self) -> Result<Grads> {
        if self.0.value.numel() != 1 {
            return Err(Error::Shape(format!("backward() needs a scalar loss, got shape {:?}", self.shape())));
        }
        if !self.requires_grad() {
            return Err(Error::Invalid("backward(): the loss does not depend on any trainable parameter".into()));
        }
        // Collect the recorded sub-graph, then replay it newest first.
        let mut nodes: HashMap<u64, Var> = HashMap::new();
        let mut stack = vec![self.clone()];
        while let Some(v) = stack.pop() {
            if nodes.insert(v.id(), v.clone()).is_none()
                && let Some(rec) = &v.0.record
            {
                stack.extend(rec.inputs.iter().filter(|i| i.requires_grad()).cloned());
            }
        }
        let mut order: Vec<Var> = nodes.into_values().collect();
        order.sort_by_key(|v| std::cmp::Reverse(v.id()));

        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), Tensor::full(self.0.value.gpu(), self.shape(), 1.0)?);
        for v in &order {
            let Some(rec) = &v.0.record else { continue };
            // Intermediate gradients are released as soon as they are consumed.
            let Some(dy) = grads.remove(&v.id()) else { continue };
            let gpu = v.0.value.gpu();
            let _scope = rec.scope.as_deref().map(|s| gpu.profile_scope(&format!("{s} (backward)")));
            let needed: Vec<bool> = rec.inputs.iter().map(Var::requires_grad).collect();
            let dxs = (rec.backward)(&dy, &needed)?;
            if dxs.len() != rec.inputs.len() {
                return Err(Error::Invalid(format!("{}: backward returned {} gradients for {} inputs", rec.op, dxs.len(), rec.inputs.len())));
            }
            for ((input, dx), need) in rec.inputs.iter().zip(dxs).zip(needed) {
                let (Some(dx), true) = (dx, need) else { continue };
                if dx.shape() != input.shape() {
                    return Err(Error::Shape(format!("{}: gradient of shape {:?} for an input of shape {:?}", rec.op, dx.shape(), input.shape())));
                }
                let summed = match grads.remove(&input.id()) {
                    Some(prev) => elementwise::add(&prev, &dx)?,
                    None => dx,
                };
                grads.insert(input.id(), summed);
            }
        }
        // Keep only the leaves' gradients: those are what optimisers consume.
        let leaves: HashSet<u64> = order.iter().filter(|v| v.0.record.is_none()).map(Var::id).collect();
        grads.retain(|id, _| leaves.contains(id));
        Ok(Grads(grads))
    }
}

/// Gradients of a loss with respect to the trainable leaves it depends on.
#[derive(Debug)]
pub struct Grads(HashMap<u64, Tensor>);

impl Grads {
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.0.get(&v.id())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
