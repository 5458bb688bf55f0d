//! The kernel lab, llm.c style (`incept bench kernels --family F`,
//! `cargo bench --bench kernels`): for every variant of a kernel family and
//! every InceptionV3 shape of it, check the output against the family's
//! oracle, then time it, and mark the variant the adapter's selection rule
//! picks. Measurements, not tests: nothing here asserts a speed.
//!
//! One file per family ([`conv`], [`conv_sibling`], [`conv_backward`], [`depthwise`],
//! [`matmul`], [`batchnorm`], [`pool`], [`elementwise`]), each implementing [`Family`]; the families are
//! registered once, in [`families!`] below. A family's variants come from
//! its op's own list (e.g. `ConvAlgo::ALL`), so a new kernel variant is one
//! entry there.

pub mod batchnorm;
pub mod conv;
pub mod conv_backward;
pub mod conv_sibling;
pub mod depthwise;
pub mod elementwise;
pub mod matmul;
pub mod pool;
pub mod roofline;
pub mod tune;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::graph::LayerKind;
use crate::models::Backbone;
use crate::models::graph::Graph;
use crate::tensor::Tensor;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest relative L2 error against the oracle that counts as agreement (f32).
pub const TOLERANCE: f64 = 1e-4;
/// The same for variants with f16 operands and f32 sums (`ConvAlgo::Coop`):
/// rounding each operand to f16 (11-bit significand) errs by up to 2^-12
/// relative, about 3e-4 in a product, and sums of random-signed products
/// keep about that relative error (a few 1e-4 measured on the oracle
/// tests); 1e-2 leaves room for long sums and is the accuracy the mixed
/// precision is held to against Keras, while any indexing error is O(1).
pub const MIXED_TOLERANCE: f64 = 1e-2;

/// Runs a variant on a shape and the family's inputs, returning its outputs.
pub type RunFn<S> = Box<dyn Fn(&S, &[Tensor]) -> Result<Vec<Tensor>>>;

/// One way to compute a family's op.
pub struct Variant<S> {
    pub name: &'static str,
    /// Whether the variant handles this shape (e.g. Winograd: 3×3 stride 1 only).
    pub applies: Box<dyn Fn(&S) -> bool>,
    /// Runs the op on the family's inputs and returns its outputs.
    pub run: RunFn<S>,
    /// Whether the adapter can run the variant at all (e.g. cooperative
    /// matrices); the lab leaves it out elsewhere.
    pub available: Box<dyn Fn(&Gpu) -> bool>,
    /// Largest relative L2 error against the oracle that counts as agreement.
    pub tolerance: f64,
}

impl<S> Variant<S> {
    /// A variant that handles every shape of its family, on every adapter, in f32.
    pub fn new(name: &'static str, run: impl Fn(&S, &[Tensor]) -> Result<Vec<Tensor>> + 'static) -> Self {
        Variant { name, applies: Box::new(|_| true), run: Box::new(run), available: Box::new(|_| true), tolerance: TOLERANCE }
    }

    /// The same variant, restricted to the shapes where `applies` holds.
    pub fn only_if(self, applies: impl Fn(&S) -> bool + 'static) -> Self {
        Variant { applies: Box::new(applies), ..self }
    }

    /// The same variant, restricted to the adapters where `available` holds.
    pub fn only_on(self, available: impl Fn(&Gpu) -> bool + 'static) -> Self {
        Variant { available: Box::new(available), ..self }
    }

    /// The same variant, agreeing with the oracle within `tolerance`.
    pub fn with_tolerance(self, tolerance: f64) -> Self {
        Variant { tolerance, ..self }
    }
}

/// The variants of `F` that the adapter can run.
pub fn available_variants<F: Family>(gpu: &Gpu) -> Vec<Variant<F::Shape>> {
    F::variants().into_iter().filter(|v| (v.available)(gpu)).collect()
}

/// A kernel family: its shapes, inputs, variants, oracle and selection rule.
pub trait Family {
    type Shape: Copy;
    /// The `--family` name.
    const NAME: &'static str;
    /// What one run computes and how its FLOPs are counted, for the header.
    const WHAT: &'static str;

    /// The distinct shapes of InceptionV3 at batch `n` and square images of `image` pixels.
    fn shapes(n: usize, image: usize) -> Result<Vec<Self::Shape>>;
    /// One or two small shapes with odd sizes, for the lab's own test.
    fn small_shapes() -> Vec<Self::Shape>;
    fn label(s: &Self::Shape) -> String;
    fn flops(s: &Self::Shape) -> f64;
    /// Bytes the op must move at minimum: every input read once, every output written once.
    fn bytes(s: &Self::Shape) -> f64;
    /// Random inputs (never zeros), deterministic per shape.
    fn inputs(gpu: &Gpu, s: &Self::Shape) -> Result<Vec<Tensor>>;
    /// Every variant; the first is the oracle unless [`Family::oracle`] is overridden.
    fn variants() -> Vec<Variant<Self::Shape>>;
    /// The name of the variant the op's own selection rule picks on this adapter.
    fn picked(gpu: &Gpu, s: &Self::Shape) -> &'static str;
    /// The plain CPU reference (src/reference, f64) on the inputs read back.
    fn reference(s: &Self::Shape, inputs: &[Vec<f64>]) -> Vec<Vec<f64>>;

    /// The outputs every variant is compared with: by default the first
    /// (simplest) variant's, read back.
    fn oracle(s: &Self::Shape, inputs: &[Tensor]) -> Result<Vec<Vec<f64>>> {
        let oracle = Self::variants().into_iter().next().ok_or_else(|| Error::Invalid(format!("kernel family {} has no variants", Self::NAME)))?;
        read_back(&(oracle.run)(s, inputs)?)
    }
}

/// The distinct (selected kind, input shape) pairs of the InceptionV3 layers
/// that `select` picks, at batch `n` and `image`² pixels, in creation order.
pub fn distinct_layer_inputs<T: PartialEq>(n: usize, image: usize, select: impl Fn(&LayerKind) -> Option<T>) -> Result<Vec<(T, [usize; 4])>> {
    distinct_inputs_of(Backbone::InceptionV3, n, image, select)
}

/// [`distinct_layer_inputs`] of another backbone's layers.
pub fn distinct_inputs_of<T: PartialEq>(backbone: Backbone, n: usize, image: usize, select: impl Fn(&LayerKind) -> Option<T>) -> Result<Vec<(T, [usize; 4])>> {
    let (graph, shapes) = layer_shapes(backbone, n, image)?;
    let mut out: Vec<(T, [usize; 4])> = Vec::new();
    for layer in &graph.layers {
        if let Some(kind) = select(&layer.kind) {
            let entry = (kind, shapes[layer.inputs[0]]);
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// `backbone`'s graph and its layers' output shapes at batch `n` and `image`² pixels.
pub fn layer_shapes(backbone: Backbone, n: usize, image: usize) -> Result<(Graph, Vec<[usize; 4]>)> {
    backbone.check_size(image, image)?;
    let graph = backbone.graph();
    let shapes = graph.output_shapes(n, image, image, 3)?;
    Ok((graph, shapes))
}

/// Reads tensors back as f64.
pub fn read_back(ts: &[Tensor]) -> Result<Vec<Vec<f64>>> {
    ts.iter().map(|t| Ok(crate::reference::to_f64(&t.to_vec()?))).collect()
}

/// Relative L2 error of all outputs together against the oracle's.
pub fn error(got: &[Tensor], want: &[Vec<f64>]) -> Result<f64> {
    let got: Vec<f64> = read_back(got)?.concat();
    let want = want.concat();
    if got.len() != want.len() {
        return Err(Error::Shape(format!("kernel lab: {} output values against the oracle's {}", got.len(), want.len())));
    }
    Ok(crate::reference::rel_l2_f64(&got, &want))
}

/// How timings are taken, for the header.
pub const TIMING: &str = "device time per run (GPU timestamp queries around each dispatch, summed over the run's dispatches; \
     per-submit wall clock where the adapter lacks them), mean after one warm-up";

/// Seconds of device time per run of `f`: one warm-up run (it compiles the
/// pipelines), then repetitions until `min_time` of wall clock has passed (at
/// least one), each timed as one profiling session, so submit latency and
/// host work between dispatches are not counted.
pub fn time_runs(gpu: &Gpu, min_time: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    // A device has one profiling session at a time: threads sharing one
    // (tests do) time their runs in turn.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f()?;
    gpu.synchronize()?;
    let start = Instant::now();
    let (mut reps, mut device_ns) = (0u32, 0.0);
    while reps == 0 || start.elapsed() < min_time {
        gpu.start_profile()?;
        let run = f();
        let profile = gpu.finish_profile()?;
        run?;
        device_ns += profile.kernel_ns();
        reps += 1;
    }
    Ok(device_ns / 1e9 / f64::from(reps))
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LabOptions {
    pub batch: usize,
    pub image: usize,
    /// Only this variant (by name; `auto` = the adapter's pick); the oracle still runs.
    pub variant: Option<String>,
    pub min_time: Duration,
    /// Only the shapes whose label contains this text.
    pub shape: Option<String>,
    /// Only the first N shapes (after `shape`).
    pub limit: Option<usize>,
}

/// One (shape, variant) measurement.
#[derive(Clone, Debug)]
pub struct Row {
    pub shape: String,
    pub variant: &'static str,
    /// Relative L2 error against the oracle.
    pub error: f64,
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
    /// The adapter's selection rule picks this variant for this shape.
    pub picked: bool,
    /// The variant's [`Variant::tolerance`].
    pub tolerance: f64,
}

/// Checks and times every selected variant on every shape of family `F`,
/// calling `report` after each row.
pub fn run_family<F: Family>(gpu: &Gpu, opts: &LabOptions, mut report: impl FnMut(&Row)) -> Result<Vec<Row>> {
    let variants = available_variants::<F>(gpu);
    if let Some(v) = opts.variant.as_deref()
        && v != "auto"
        && !variants.iter().any(|x| x.name == v)
    {
        let names: Vec<&str> = variants.iter().map(|x| x.name).collect();
        let absent = if F::variants().iter().any(|x| x.name == v) { format!(" on {}", gpu.name()) } else { String::new() };
        return Err(Error::Invalid(format!("--variant {v:?}: family {} has auto, {}{absent}", F::NAME, names.join(", "))));
    }
    let mut shapes = F::shapes(opts.batch, opts.image)?;
    if let Some(text) = opts.shape.as_deref() {
        let labels: Vec<String> = shapes.iter().map(|s| F::label(s).trim().to_string()).collect();
        shapes.retain(|s| F::label(s).contains(text));
        if shapes.is_empty() {
            return Err(Error::Invalid(format!("--shape {text:?}: no shape of family {} contains it; its shapes: {}", F::NAME, labels.join("; "))));
        }
    }
    shapes.truncate(opts.limit.unwrap_or(shapes.len()));
    let mut rows = Vec::new();
    for s in &shapes {
        let inputs = F::inputs(gpu, s)?;
        let oracle = F::oracle(s, &inputs)?;
        let picked = F::picked(gpu, s);
        for v in variants.iter().filter(|v| (v.applies)(s)) {
            let wanted = match opts.variant.as_deref() {
                None => true,
                Some("auto") => v.name == picked,
                Some(name) => v.name == name,
            };
            if !wanted {
                continue;
            }
            let error = error(&(v.run)(s, &inputs)?, &oracle)?;
            let seconds = time_runs(gpu, opts.min_time, || (v.run)(s, &inputs).map(drop))?;
            let row = Row {
                shape: F::label(s),
                variant: v.name,
                error,
                seconds,
                flops: F::flops(s),
                bytes: F::bytes(s),
                picked: v.name == picked,
                tolerance: v.tolerance,
            };
            report(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Compares every variant of `F` with its oracle on the family's small
/// shapes, and the first variant that runs the shape (the default oracle)
/// with the f64 CPU reference: (label, variant, error, the variant's
/// tolerance), the latter row named `reference`. The `reference` row runs a
/// kernel even where the family's oracle is the CPU reference itself, so it
/// can always fail.
pub fn check_small<F: Family>(gpu: &Gpu) -> Result<Vec<(String, &'static str, f64, f64)>> {
    let variants = available_variants::<F>(gpu);
    let mut out = Vec::new();
    for s in F::small_shapes() {
        let inputs = F::inputs(gpu, &s)?;
        let oracle = F::oracle(&s, &inputs)?;
        let reference = F::reference(&s, &read_back(&inputs)?);
        let mut runs = variants.iter().filter(|v| (v.applies)(&s)).peekable();
        let first = runs.peek().ok_or_else(|| Error::Invalid(format!("kernel family {}: no variant runs {}", F::NAME, F::label(&s))))?;
        out.push((F::label(&s), "reference", error(&(first.run)(&s, &inputs)?, &reference)?, first.tolerance));
        for v in runs {
            out.push((F::label(&s), v.name, error(&(v.run)(&s, &inputs)?, &oracle)?, v.tolerance));
        }
    }
    Ok(out)
}

/// Runs family `F` and prints its table: one row per (shape, variant), `*`
/// on the adapter's pick, then a total per variant; returns the rows. Fails
/// after the table when some variant disagrees with the oracle.
pub fn print_family<F: Family>(gpu: &Gpu, opts: &LabOptions) -> Result<Vec<Row>> {
    println!("adapter: {}", gpu.heading());
    println!("family {}: {}; batch {}, {}x{} images", F::NAME, F::WHAT, opts.batch, opts.image, opts.image);
    println!("time: {TIMING}, at least {:.2} s per row", opts.min_time.as_secs_f64());
    println!("GB/s: minimum bytes moved (inputs read once, outputs written once) / time; error: relative L2 against the oracle; * = the adapter's pick");
    println!("{:<44} {:<14} {:>9} {:>10} {:>9} {:>8}", "shape", "variant", "error", "ms", "GFLOP/s", "GB/s");
    let rows = run_family::<F>(gpu, opts, |r| {
        let name = format!("{}{}", r.variant, if r.picked { " *" } else { "" });
        println!(
            "{:<44} {:<14} {:>9.1e} {:>10.3} {:>9.2} {:>8.2}",
            r.shape,
            name,
            r.error,
            r.seconds * 1e3,
            r.flops / r.seconds / 1e9,
            r.bytes / r.seconds / 1e9
        );
    })?;
    println!("totals per variant (over the shapes it ran), and over the adapter's picks (what a model runs):");
    let total = |name: &str, mine: &[&Row]| {
        let (flops, bytes, secs) = mine.iter().fold((0.0, 0.0, 0.0), |(f, b, t), r| (f + r.flops, b + r.bytes, t + r.seconds));
        let worst = mine.iter().map(|r| r.error).fold(0.0, f64::max);
        let picked = mine.iter().filter(|r| r.picked).count();
        println!(
            "  {name:<14} {:>3} shapes {:>10.2} ms {:>9.2} GFLOP/s {:>8.2} GB/s  worst error {worst:.1e}  picked on {picked}",
            mine.len(),
            secs * 1e3,
            flops / secs / 1e9,
            bytes / secs / 1e9
        );
    };
    for name in available_variants::<F>(gpu).iter().map(|v| v.name) {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.variant == name).collect();
        if !mine.is_empty() {
            total(name, &mine);
        }
    }
    let picks: Vec<&Row> = rows.iter().filter(|r| r.picked).collect();
    if !picks.is_empty() {
        total("picked", &picks);
    }
    match rows.iter().filter(|r| r.error.is_nan() || r.error > r.tolerance).max_by(|a, b| (a.error / a.tolerance).total_cmp(&(b.error / b.tolerance))) {
        Some(r) => Err(Error::Invalid(format!(
            "{} variant {} disagrees with the oracle on {} (relative L2 {:.2e} > {:.0e})",
            F::NAME,
            r.variant,
            r.shape.trim(),
            r.error,
            r.tolerance
        ))),
        None => Ok(rows),
    }
}

/// The family registry: the `--family` names and how each is run and checked.
macro_rules! families {
    ($($family:ty),* $(,)?) => {
        /// The `--family` names, in registration order.
        pub const FAMILIES: &[&str] = &[$(<$family as Family>::NAME),*];

        /// Prints the table of the family called `name` and returns its rows.
        pub fn print(name: &str, gpu: &Gpu, opts: &LabOptions) -> Result<Vec<Row>> {
            $(if name == <$family as Family>::NAME {
                return print_family::<$family>(gpu, opts);
            })*
            Err(Error::Invalid(format!("--family {name:?}: expected one of {}", FAMILIES.join(", "))))
        }

        /// Every family: its name, what it computes and all its variant
        /// names (the oracle first), whether or not this adapter runs them.
        pub fn list() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
            vec![$((<$family as Family>::NAME, <$family as Family>::WHAT, <$family as Family>::variants().iter().map(|v| v.name).collect())),*]
        }

        /// [`check_small`] of every family: (family, shape, variant, error, tolerance).
        pub fn check_all_small(gpu: &Gpu) -> Result<Vec<(&'static str, String, &'static str, f64, f64)>> {
            let mut out = Vec::new();
            $(for (shape, variant, err, tolerance) in check_small::<$family>(gpu)? {
                out.push((<$family as Family>::NAME, shape, variant, err, tolerance));
            })*
            Ok(out)
        }
    };
}

families!(
    conv::ConvForward,
    conv_backward::BackwardInput,
    conv_backward::BackwardFilter,
    conv_sibling::ConvSiblings,
    depthwise::DepthwiseForward,
    depthwise::DepthwiseBackward,
    matmul::Matmul,
    batchnorm::BatchNormTrain,
    batchnorm::BatchNormBackward,
    pool::PoolForward,
    pool::PoolBackward,
    elementwise::Elementwise,
);
