#!/usr/bin/env python3
"""Checks tools/keras_h5_to_safetensors.py against files Keras 3 itself writes.

    python tools/test_keras3_import.py

Needs TensorFlow/Keras 3 (`pip install tensorflow-cpu`; too large for CI, so
this is run by hand and its result recorded). For each form it builds a
Keras model with random weights, saves it, converts the file, and compares
every converted tensor bit for bit with the layer Keras holds under that
name: InceptionV3 `save_weights` (.weights.h5) and `save` (.keras), the same
with the tutorial's head on the base's output, and the keras.io guide's form
(the base nested as one layer) built second in the process, so that its
layers' names do not start at conv2d. It also checks KERAS3_LAYER_ORDER
against Keras's model.layers, and that hostile archives are refused.
"""
import os
import re
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_h5_to_safetensors as tool  # noqa: E402

SIZE = 75


def counter(name):
    m = re.fullmatch(r"[a-z0-9]+(?:_[a-z]+)*(?:_(\d+))?", name)
    return int(m.group(1) or 0)


def expected(base, dense_layers):
    """{incept name: array} from the live Keras layers: the k-th created Conv2D/BN is conv2d_k/..."""
    convs = sorted((l for l in base.layers if isinstance(l, keras.layers.Conv2D)), key=lambda l: counter(l.name))
    bns = sorted((l for l in base.layers if isinstance(l, keras.layers.BatchNormalization)), key=lambda l: counter(l.name))
    want = {}
    for k, (c, b) in enumerate(zip(convs, bns)):
        want[f"{tool.keras3_name('conv2d', k)}/kernel"] = c.kernel.numpy()
        for v, w in zip(tool.BN_VARIABLES, (b.beta, b.moving_mean, b.moving_variance)):
            want[f"{tool.keras3_name('batch_normalization', k)}/{v}"] = w.numpy()
    for k, d in enumerate(dense_layers):
        want[f"{tool.keras3_name('dense', k)}/kernel"] = d.kernel.numpy()
        want[f"{tool.keras3_name('dense', k)}/bias"] = d.bias.numpy()
    return want


def randomise(model, seed):
    """Distinct random values in every variable (BN moving statistics too), so a mix-up cannot pass."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        value = rng.standard_normal(v.shape).astype(np.float32)
        v.assign(np.abs(value) + 0.5 if "variance" in v.path else value)


def check(tmp, path, want, label):
    out = os.path.join(tmp, "out.safetensors")
    assert tool.main([path, out]) == 0, f"{label}: conversion failed"
    got = load_file(out)
    assert set(got) == set(want), f"{label}: names differ: {sorted(set(got) ^ set(want))[:6]}"
    bad = [n for n in want if not np.array_equal(got[n], want[n])]
    assert not bad, f"{label}: {len(bad)} tensors differ, e.g. {bad[:4]}"
    print(f"ok   {label}: {len(got)} tensors bit-identical")


def refuses(tmp, path, fragment, label):
    out = os.path.join(tmp, "refused.safetensors")
    assert tool.main([path, out]) == 1 and not os.path.exists(out), f"{label}: not refused"
    print(f"ok   {label}: refused")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
        randomise(base, 1)
        order = [counter(l.name) for l in base.layers if isinstance(l, keras.layers.Conv2D)]
        assert tuple(order) == tool.KERAS3_LAYER_ORDER, "KERAS3_LAYER_ORDER differs from this Keras's model.layers"
        print(f"ok   KERAS3_LAYER_ORDER matches Keras {keras.__version__}")
        for name in ("base.weights.h5", "base.keras"):
            path = os.path.join(tmp, name)
            base.save_weights(path) if name.endswith(".weights.h5") else base.save(path)
            check(tmp, path, expected(base, []), name)

        x = keras.layers.GlobalAveragePooling2D()(base.output)
        d1 = keras.layers.Dense(16, activation="relu")
        d2 = keras.layers.Dense(3, activation="softmax")
        full = keras.Model(base.input, d2(keras.layers.Dropout(0.3)(d1(x))))
        randomise(full, 2)
        for name in ("head.weights.h5", "head.keras"):
            path = os.path.join(tmp, name)
            full.save_weights(path) if name.endswith(".weights.h5") else full.save(path)
            check(tmp, path, expected(base, [d1, d2]), name)

        # keras.io's guide: the base as one layer, built second (layer names conv2d_94, ...).
        inner = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
        inp = keras.Input((SIZE, SIZE, 3))
        d = keras.layers.Dense(4, activation="softmax")
        nested = keras.Model(inp, d(keras.layers.GlobalAveragePooling2D()(inner(inp, training=False))))
        randomise(nested, 3)
        path = os.path.join(tmp, "nested.keras")
        nested.save(path)
        check(tmp, path, expected(inner, [d]), "nested.keras (second model in the process)")

        # Hostile or mismatched inputs.
        broken = os.path.join(tmp, "missing.keras")
        with zipfile.ZipFile(path) as z, zipfile.ZipFile(broken, "w") as w:
            w.writestr("config.json", z.read("config.json"))
        refuses(tmp, broken, "model.weights.h5", ".keras without model.weights.h5")
        truncated = os.path.join(tmp, "truncated.weights.h5")
        with open(os.path.join(tmp, "base.weights.h5"), "rb") as f, open(truncated, "wb") as g:
            g.write(f.read()[: 1 << 20])
        refuses(tmp, truncated, "", "truncated .weights.h5")
        other = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
        path = os.path.join(tmp, "mobilenet.keras")
        other.save(path)
        refuses(tmp, path, "", "a .keras of another model")
    print("all Keras 3 import checks passed")


if __name__ == "__main__":
    main()
