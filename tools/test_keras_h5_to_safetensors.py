#!/usr/bin/env python3
"""Tests tools/keras_h5_to_safetensors.py on synthetic Keras .h5 files (no Keras needed).

    python tools/test_keras_h5_to_safetensors.py

Needs h5py, numpy, safetensors. The files mimic Keras's legacy HDF5 weights
layout: root attribute layer_names (all layers, in model.layers order, i.e. NOT
creation order), one group per layer with attribute weight_names and the
datasets at those names (e.g. conv2d_1/kernel:0). If weights/inception_v3_notop.safetensors
(made by weights/fetch.sh) exists, the Python table is also checked against its shapes.
"""
import os
import random
import sys
import tempfile

import h5py
import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_h5_to_safetensors as tool  # noqa: E402

CONVS = tool.CONVS


def name(base, k, first):
    """Keras 2 numbers from 1 (first=1); Keras 3 drops the suffix for the first layer (first=0)."""
    n = k + first
    return base if n == 0 else f"{base}_{n}"


def synthetic_layers(first=1, offset=0, seed=0):
    """[(layer, {var: array})] for all weighted layers, plus the expected Keras 3 tensors."""
    rng = np.random.default_rng(seed)
    layers, want = [], {}
    for k, (kh, kw, cin, cout) in enumerate(CONVS):
        conv, bn = name("conv2d", k + offset, first), name("batch_normalization", k + offset, first)
        kernel = rng.standard_normal((kh, kw, cin, cout), dtype=np.float32) * 0.1
        bnw = {"beta": rng.standard_normal(cout, dtype=np.float32),
               "moving_mean": rng.standard_normal(cout, dtype=np.float32),
               "moving_variance": rng.random(cout, dtype=np.float32) + 0.01}
        layers += [(conv, {"kernel": kernel}), (bn, bnw)]
        want[f"{tool.keras3_name('conv2d', k)}/kernel"] = kernel
        for v, a in bnw.items():
            want[f"{tool.keras3_name('batch_normalization', k)}/{v}"] = a
    return layers, want


def write_h5(path, layers, extra=(), full_model=False, chunk_names=False, seed=0):
    """Writes Keras's legacy layout; layers are shuffled (file order is never creation order)."""
    order = list(layers) + [(n, {}) for n in ("input_1", "activation_1", "mixed0", "mixed10")] + list(extra)
    random.Random(seed).shuffle(order)
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        names = [n.encode() for n, _ in order]
        if chunk_names:
            half = len(names) // 2
            root.attrs["layer_names0"], root.attrs["layer_names1"] = names[:half], names[half:]
        else:
            root.attrs["layer_names"] = names
        root.attrs["backend"] = b"tensorflow"
        for layer, weights in order:
            g = root.create_group(layer)
            g.attrs["weight_names"] = [f"{layer}/{v}:0".encode() for v in weights]
            for v, a in weights.items():
                g.create_dataset(f"{layer}/{v}:0", data=a)


def run(tmp, h5, f16=False):
    out = os.path.join(tmp, "out.safetensors")
    rc = tool.main([h5, out] + (["--f16"] if f16 else []))
    return rc, out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        h5 = os.path.join(tmp, "in.h5")

        # Keras 2 numbering, a Dense top, layers in shuffled order.
        layers, want = synthetic_layers(first=1)
        head = [("predictions", {"kernel": np.ones((2048, 1000), np.float32), "bias": np.zeros(1000, np.float32)})]
        write_h5(h5, layers, extra=head)
        rc, out = run(tmp, h5)
        assert rc == 0
        got = load_file(out)
        assert sorted(got) == sorted(want) and len(got) == 376
        assert all(np.array_equal(got[n], want[n]) for n in want)
        assert sum(t.size for t in got.values()) == tool.TOTAL_PARAMETERS
        assert sorted(os.listdir(tmp)) == ["in.h5", "out.safetensors"], os.listdir(tmp)

        # Full-model file (/model_weights), chunked layer_names, Keras 3 numbering from a non-fresh session.
        layers, want = synthetic_layers(first=0, offset=94, seed=1)
        write_h5(h5, layers, full_model=True, chunk_names=True, seed=1)
        rc, out = run(tmp, h5, f16=True)
        assert rc == 0
        got = load_file(out)
        for n, w in want.items():
            assert got[n].dtype == np.float16
            err = np.abs(got[n].astype(np.float32) - w)
            assert np.all(err <= np.maximum(np.abs(w) * 2.0**-11, 2.0**-25)), n

        # Errors name the first mismatch and write nothing.
        os.remove(out)
        layers, _ = synthetic_layers(first=1)
        bad = [(n, dict(w)) for n, w in layers]
        bad[2 * 32] = ("conv2d_33", {"kernel": np.zeros((7, 1, 128, 128), np.float32)})
        write_h5(h5, bad)
        try:
            tool.convert(tool.read_layers(h5))
            raise AssertionError("wrong kernel shape accepted")
        except tool.ConversionError as e:
            assert "conv2d_33/kernel (Keras 3 conv2d_32/kernel)" in str(e) and "(1, 7, 128, 128)" in str(e), e
        assert run(tmp, h5)[0] == 1 and not os.path.exists(out)

        write_h5(h5, [l for l in layers if l[0] != "batch_normalization_50"])
        try:
            tool.convert(tool.read_layers(h5))
            raise AssertionError("missing BatchNormalization accepted")
        except tool.ConversionError as e:
            assert "found 93 BatchNormalization" in str(e), e

        gamma = [(n, dict(w, gamma=np.ones(w["beta"].shape, np.float32)) if "beta" in w else w) for n, w in layers]
        write_h5(h5, gamma)
        try:
            tool.convert(tool.read_layers(h5))
            raise AssertionError("gamma accepted")
        except tool.ConversionError as e:
            assert "gamma" in str(e) and "scale=False" in str(e), e
        assert sorted(os.listdir(tmp)) == ["in.h5"], os.listdir(tmp)

    # The Python table against the Rust one, through the file the Rust converter wrote.
    real = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weights", "inception_v3_notop.safetensors")
    if os.path.exists(real):
        shapes = {n: t.shape for n, t in load_file(real).items()}
        for k, spec in enumerate(CONVS):
            assert shapes[f"{tool.keras3_name('conv2d', k)}/kernel"] == spec, k
            assert shapes[f"{tool.keras3_name('batch_normalization', k)}/beta"] == (spec[3],), k
        assert len(shapes) == 376
        print("table matches", real)
    print("ok")


if __name__ == "__main__":
    main()
