#!/usr/bin/env python3
"""Uneven TF 'same' padding goldens for incept, computed by TensorFlow itself.

Not run by CI: it writes tests/data/golden_padding.safetensors, committed and read
by tests/padding_goldens.rs. It installs nothing; to regenerate (from the repository root):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu safetensors numpy
    /tmp/tfvenv/bin/python tools/make_padding_goldens.py

Made with TensorFlow 2.21.0 (CPU) / numpy 2.4.6 / safetensors 0.8.0; the output is
byte-for-byte reproducible (seeded inputs, tensors and metadata in sorted order).

Why: incept's CPU references and its kernels take the 'same' padding split from the
same `Window2d::pad_before`, so a wrong split would agree with itself. Here TF decides.
Every case has an uneven split (odd total padding: the extra row or column goes after,
TF's rule), as stride-2 layers on even inputs in MobileNetV2- and EfficientNet-style
networks have. The ops are the ones Keras's Conv2D, DepthwiseConv2D, MaxPooling2D and
AveragePooling2D call with padding='same': tf.nn.conv2d, tf.nn.depthwise_conv2d,
tf.nn.max_pool2d, tf.nn.avg_pool2d with padding='SAME', run in float64 on float32
inputs (so the goldens are exact to float32 rounding), then stored as float32.

Per case CASE (tensors NHWC; conv filters HWIO [kh, kw, cin, cout], depthwise
[kh, kw, c, 1]):

    CASE/x    the input, uniform in [-1, 1)
    CASE/w    the filter (conv and depthwise cases), uniform in [-0.5, 0.5)
    CASE/y    the 'same' forward
    CASE/dy   an upstream gradient, uniform in [-1, 1)
    CASE/dx   d(sum(y * dy))/dx, by tf.GradientTape
    CASE/dw   d(sum(y * dy))/dw (conv and depthwise cases)

and metadata `case/CASE` (JSON): {"op": conv2d | depthwise_conv2d | max_pool2d |
avg_pool2d, "kernel": [kh, kw], "stride": s, "padding": [top, bottom, left, right]}.
"padding" is the split TF uses, found without any formula for the split: of every
split of the total padding ((o - 1) * s + k - i rows, TF's documented total), the one
whose explicitly padded forward (tf.nn.conv2d / depthwise_conv2d with explicit
paddings, or for pools the input padded with -inf (max) or the window sums and counts
of the real pixels (average)) equals the 'same' forward; the script fails unless
exactly one split does.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import save_sorted  # noqa: E402

# name: (op, x shape, kernel (kh, kw), stride, channels out (conv only))
CASES = {
    "conv_k3s2_even": ("conv2d", (2, 8, 8, 4), (3, 3), 2, 8),
    "conv_k4x3s2": ("conv2d", (2, 9, 8, 3), (4, 3), 2, 5),
    "conv_k5s2": ("conv2d", (1, 10, 7, 8), (5, 5), 2, 4),
    "conv_k2s1": ("conv2d", (1, 5, 6, 4), (2, 2), 1, 4),
    "depthwise_k3s2_even": ("depthwise_conv2d", (2, 8, 8, 4), (3, 3), 2, None),
    "depthwise_k5s2": ("depthwise_conv2d", (1, 9, 10, 3), (5, 5), 2, None),
    "max_pool_k3s2": ("max_pool2d", (2, 8, 7, 3), (3, 3), 2, None),
    "max_pool_k2s2": ("max_pool2d", (1, 7, 5, 2), (2, 2), 2, None),
    "avg_pool_k3s2": ("avg_pool2d", (2, 8, 7, 3), (3, 3), 2, None),
    "avg_pool_k2s2": ("avg_pool2d", (1, 7, 5, 2), (2, 2), 2, None),
}


def forward(op, x, w, k, s, padding):
    """The op in float64; `padding` is 'SAME' or explicit [[top, bottom], [left, right]]."""
    if op == "conv2d":
        pad = padding if padding == "SAME" else [[0, 0], *padding, [0, 0]]
        return tf.nn.conv2d(x, w, strides=s, padding=pad)
    if op == "depthwise_conv2d":
        if padding == "SAME":
            return tf.nn.depthwise_conv2d(x, w, strides=[1, s, s, 1], padding="SAME")
        return tf.nn.depthwise_conv2d(x, w, strides=[1, s, s, 1], padding=[[0, 0], *padding, [0, 0]])
    if padding == "SAME":
        pool = tf.nn.max_pool2d if op == "max_pool2d" else tf.nn.avg_pool2d
        return pool(x, ksize=k, strides=s, padding="SAME")
    paddings = [[0, 0], *padding, [0, 0]]
    if op == "max_pool2d":
        return tf.nn.max_pool2d(tf.pad(x, paddings, constant_values=-np.inf), ksize=k, strides=s, padding="VALID")
    # Average over the real pixels of each window: window sums of x and of ones, padded with zeros.
    sums = tf.nn.avg_pool2d(tf.pad(x, paddings), ksize=k, strides=s, padding="VALID")
    counts = tf.nn.avg_pool2d(tf.pad(tf.ones_like(x), paddings), ksize=k, strides=s, padding="VALID")
    return sums / counts


def total_padding(i, k, s):
    o = -(-i // s)
    return max((o - 1) * s + k - i, 0)


def split_used_by_tf(op, x, w, k, s, y_same):
    (_, h, wd, _), (kh, kw) = x.shape, k
    th, tw = total_padding(h, kh, s), total_padding(wd, kw, s)
    matches = []
    for top in range(th + 1):
        for left in range(tw + 1):
            padding = [[top, th - top], [left, tw - left]]
            y = forward(op, x, w, k, s, padding)
            if y.shape == y_same.shape and np.allclose(y.numpy(), y_same.numpy(), rtol=0, atol=1e-12):
                matches.append([top, th - top, left, tw - left])
    assert len(matches) == 1, (op, x.shape, k, s, matches)
    return matches[0]


def main():
    rng = np.random.default_rng(23)
    tensors, metadata = {}, {}
    for name, (op, xs, k, s, cout) in CASES.items():
        x32 = rng.uniform(-1, 1, xs).astype(np.float32)
        w32 = None
        if op == "conv2d":
            w32 = rng.uniform(-0.5, 0.5, (*k, xs[3], cout)).astype(np.float32)
        elif op == "depthwise_conv2d":
            w32 = rng.uniform(-0.5, 0.5, (*k, xs[3], 1)).astype(np.float32)
        x = tf.Variable(x32.astype(np.float64))
        w = None if w32 is None else tf.Variable(w32.astype(np.float64))
        with tf.GradientTape() as tape:
            y = forward(op, x, w, k, s, "SAME")
            dy = tf.constant(rng.uniform(-1, 1, y.shape).astype(np.float32).astype(np.float64))
            loss = tf.reduce_sum(y * dy)
        grads = tape.gradient(loss, [x] if w is None else [x, w])
        out = {"x": x32, "y": y.numpy(), "dy": dy.numpy(), "dx": grads[0].numpy()}
        if w is not None:
            out["w"], out["dw"] = w32, grads[1].numpy()
        for key, value in out.items():
            tensors[f"{name}/{key}"] = np.ascontiguousarray(value.astype(np.float32))
        padding = split_used_by_tf(op, x, w, k, s, y)
        metadata[f"case/{name}"] = json.dumps({"op": op, "kernel": list(k), "stride": s, "padding": padding})
        print(f"{name}: {op} x {list(xs)} kernel {list(k)} stride {s}: y {list(y.shape)}, TF pads {padding}")
    metadata["versions"] = f"tensorflow {tf.__version__}, numpy {np.__version__}"
    metadata["source"] = "tools/make_padding_goldens.py"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "golden_padding.safetensors")
    save_sorted(tensors, out, metadata)
    print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
