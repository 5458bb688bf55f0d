#!/usr/bin/env python3
"""Keras InceptionV3 weights in a legacy .h5 file -> safetensors with Keras 3 names.

    python tools/keras_h5_to_safetensors.py IN.h5 OUT.safetensors [--f16]

IN.h5 is Keras's own `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`
(or the file with top), or any legacy HDF5 weights file of Keras InceptionV3:
`model.save_weights("x.h5")` from Keras 2 / tf.keras, or `model.save("x.h5")`
(weights under /model_weights). Keras 3's `.weights.h5` format is not read.

Output names are Keras 3's: conv2d/kernel, conv2d_1/kernel, ... conv2d_93/kernel,
batch_normalization/{beta,moving_mean,moving_variance}, ... batch_normalization_93/...
(InceptionV3's BatchNormalization has scale=False: no gamma). That is what
`incept` loads (src/io/keras_inception_v3.rs holds the same table as CONVS).

Mapping. Keras loads legacy .h5 files by position, but a file lists its layers
in `model.layers` order, which Keras sorts by graph depth (the four branches
of a mixed block interleave), not in the order the 94 `conv2d_bn` calls
create them. Keras names layers by a per-class counter at creation
(conv2d_1 ... conv2d_94 in Keras 2, conv2d ... conv2d_93 in Keras 3), so this
tool ranks the file's Conv2D layers and BatchNormalization layers by that
counter: the k-th created conv becomes conv2d_k, the k-th created
BatchNormalization batch_normalization_k. Every kernel and vector is checked
against the Keras table below; the first mismatch is reported by name.
Weighted layers that are neither (the Dense top, if present) are dropped and listed.

Writing is atomic (temporary file in the output directory, fsync, rename).
Needs only h5py, numpy and safetensors.
"""
import argparse
import os
import re
import sys

import h5py
import numpy as np
from safetensors.numpy import save

# The 94 conv2d_bn calls of keras/src/applications/inception_v3.py in creation
# order: (kh, kw, cin, cout). Kernels are HWIO [kh, kw, cin, cout]; each conv is
# followed by a BatchNormalization of cout channels.
CONVS = (
    # stem
    [(3, 3, 3, 32), (3, 3, 32, 32), (3, 3, 32, 64), (1, 1, 64, 80), (3, 3, 80, 192)]
    # mixed0, mixed1, mixed2: 1x1 | 1x1,5x5 | 1x1,3x3,3x3 | avg,1x1
    + [(1, 1, 192, 64), (1, 1, 192, 48), (5, 5, 48, 64), (1, 1, 192, 64), (3, 3, 64, 96), (3, 3, 96, 96), (1, 1, 192, 32)]
    + [(1, 1, 256, 64), (1, 1, 256, 48), (5, 5, 48, 64), (1, 1, 256, 64), (3, 3, 64, 96), (3, 3, 96, 96), (1, 1, 256, 64)]
    + [(1, 1, 288, 64), (1, 1, 288, 48), (5, 5, 48, 64), (1, 1, 288, 64), (3, 3, 64, 96), (3, 3, 96, 96), (1, 1, 288, 64)]
    # mixed3: 3x3 s2 | 1x1,3x3,3x3 s2 | max pool
    + [(3, 3, 288, 384), (1, 1, 288, 64), (3, 3, 64, 96), (3, 3, 96, 96)]
    # mixed4 (128), mixed5 and mixed6 (160), mixed7 (192): 1x1 | 1x1,1x7,7x1 | 1x1,7x1,1x7,7x1,1x7 | avg,1x1
    + [(1, 1, 768, 192), (1, 1, 768, 128), (1, 7, 128, 128), (7, 1, 128, 192),
       (1, 1, 768, 128), (7, 1, 128, 128), (1, 7, 128, 128), (7, 1, 128, 128), (1, 7, 128, 192), (1, 1, 768, 192)]
    + [(1, 1, 768, 192), (1, 1, 768, 160), (1, 7, 160, 160), (7, 1, 160, 192),
       (1, 1, 768, 160), (7, 1, 160, 160), (1, 7, 160, 160), (7, 1, 160, 160), (1, 7, 160, 192), (1, 1, 768, 192)] * 2
    + [(1, 1, 768, 192), (1, 1, 768, 192), (1, 7, 192, 192), (7, 1, 192, 192),
       (1, 1, 768, 192), (7, 1, 192, 192), (1, 7, 192, 192), (7, 1, 192, 192), (1, 7, 192, 192), (1, 1, 768, 192)]
    # mixed8: 1x1,3x3 s2 | 1x1,1x7,7x1,3x3 s2 | max pool
    + [(1, 1, 768, 192), (3, 3, 192, 320), (1, 1, 768, 192), (1, 7, 192, 192), (7, 1, 192, 192), (3, 3, 192, 192)]
    # mixed9, mixed10: 1x1 | 1x1,[1x3|3x1] | 1x1,3x3,[1x3|3x1] | avg,1x1
    + [(1, 1, 1280, 320), (1, 1, 1280, 384), (1, 3, 384, 384), (3, 1, 384, 384),
       (1, 1, 1280, 448), (3, 3, 448, 384), (1, 3, 384, 384), (3, 1, 384, 384), (1, 1, 1280, 192)]
    + [(1, 1, 2048, 320), (1, 1, 2048, 384), (1, 3, 384, 384), (3, 1, 384, 384),
       (1, 1, 2048, 448), (3, 3, 448, 384), (1, 3, 384, 384), (3, 1, 384, 384), (1, 1, 2048, 192)]
)
TOTAL_PARAMETERS = 21_802_784  # Keras's count for include_top=False (kernels + beta + moving statistics)
BN_VARIABLES = ("beta", "moving_mean", "moving_variance")

assert len(CONVS) == 94
assert sum(kh * kw * ci * co + 3 * co for kh, kw, ci, co in CONVS) == TOTAL_PARAMETERS


class ConversionError(Exception):
    pass


def keras3_name(base, k):
    return base if k == 0 else f"{base}_{k}"


def read_list_attr(group, name):
    """A string-list attribute, also when Keras split it into name0, name1, ... chunks."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def creation_counter(layer):
    """Keras's per-class creation counter in an auto-generated name: conv2d -> 0, conv2d_12 -> 12."""
    m = re.fullmatch(r"[a-z0-9]+(?:_[a-z]+)*(?:_(\d+))?", layer)
    if not m:
        raise ConversionError(f"layer '{layer}' is not auto-named, so its creation order is unknown")
    return int(m.group(1) or 0)


def variable_name(weight_name):
    """'conv2d_1/kernel:0' -> 'kernel'."""
    return weight_name.split("/")[-1].split(":")[0]


def read_layers(path):
    """[(layer name, {variable: array})] for every layer with weights, in file order."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(f"{path}: not an HDF5 file ({e})")
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        names = read_list_attr(root, "layer_names")
        if not names:
            if "layers" in root:
                raise ConversionError(f"{path}: Keras 3 .weights.h5 format; save it with Keras 2/tf.keras or as a legacy .h5")
            raise ConversionError(f"{path}: no 'layer_names' attribute (not a Keras weights file)")
        layers = []
        for name in names:
            group = root[name]
            weight_names = read_list_attr(group, "weight_names")
            if weight_names:
                layers.append((name, {variable_name(w): np.asarray(group[w], dtype=np.float32) for w in weight_names}))
        return layers


def convert(layers):
    """Maps the file's layers to Keras 3 names. Returns (tensors, dropped layer names)."""
    convs, bns, dropped = [], [], []
    for name, weights in layers:
        if set(weights) == {"kernel"} and weights["kernel"].ndim == 4:
            convs.append((creation_counter(name), name, weights))
        elif "moving_mean" in weights or "moving_variance" in weights:
            if set(weights) != set(BN_VARIABLES):
                raise ConversionError(
                    f"BatchNormalization {name} has weights {sorted(weights)}, expected {list(BN_VARIABLES)} (scale=False)")
            bns.append((creation_counter(name), name, weights))
        else:
            dropped.append(name)
    for kind, found in (("Conv2D", convs), ("BatchNormalization", bns)):
        if len(found) != len(CONVS):
            raise ConversionError(f"found {len(found)} {kind} layers with weights, Keras InceptionV3 has {len(CONVS)}")
    convs.sort(key=lambda c: c[0])
    bns.sort(key=lambda b: b[0])

    tensors = {}
    for k, ((kh, kw, cin, cout), (_, conv, cw), (_, bn, bw)) in enumerate(zip(CONVS, convs, bns)):
        want = (kh, kw, cin, cout)
        if cw["kernel"].shape != want:
            raise ConversionError(
                f"{conv}/kernel (Keras 3 {keras3_name('conv2d', k)}/kernel) has shape {cw['kernel'].shape}, expected {want}")
        tensors[f"{keras3_name('conv2d', k)}/kernel"] = cw["kernel"]
        for var in BN_VARIABLES:
            if bw[var].shape != (cout,):
                raise ConversionError(
                    f"{bn}/{var} (Keras 3 {keras3_name('batch_normalization', k)}/{var}) has shape {bw[var].shape}, "
                    f"expected ({cout},)")
            tensors[f"{keras3_name('batch_normalization', k)}/{var}"] = bw[var]
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise ConversionError(f"{name} has non-finite values")
    return tensors, dropped


def write_atomic(path, tensors, f16, source):
    if f16:
        for name, t in tensors.items():
            if np.any(np.abs(t) > np.finfo(np.float16).max):
                raise ConversionError(f"{name} overflows float16; store float32 instead")
        tensors = {n: t.astype(np.float16) for n, t in tensors.items()}
    metadata = {"model": "keras InceptionV3 include_top=False", "names": "keras3", "source": source}
    data = save({n: np.ascontiguousarray(t) for n, t in tensors.items()}, metadata=metadata)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return len(data)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="Keras InceptionV3 weights, legacy .h5")
    p.add_argument("output", help="safetensors file to write")
    p.add_argument("--f16", action="store_true", help="store float16 instead of float32")
    args = p.parse_args(argv)
    try:
        tensors, dropped = convert(read_layers(args.input))
        size = write_atomic(args.output, tensors, args.f16, f"keras legacy h5: {os.path.basename(args.input)}")
    except ConversionError as e:
        print(f"keras_h5_to_safetensors: {e}", file=sys.stderr)
        return 1
    params = sum(t.size for t in tensors.values())
    print(f"wrote {args.output}: {len(tensors)} tensors, {params} parameters, {size} bytes"
          + (f"; dropped weighted layers that are not Conv2D/BatchNormalization: {', '.join(dropped)}" if dropped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
