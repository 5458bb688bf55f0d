#!/usr/bin/env python3
"""Keras InceptionV3 weights (.h5, .weights.h5, .keras) -> safetensors with Keras 3 names.

    python tools/keras_h5_to_safetensors.py IN OUT.safetensors [--f16]

IN is one of:
- a legacy HDF5 weights file: Keras's own
  `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` (or the file with
  top), `model.save_weights("x.h5")` from Keras 2 / tf.keras, or
  `model.save("x.h5")` (weights under /model_weights);
- a Keras 3 `model.save_weights("x.weights.h5")` file of InceptionV3, alone or
  with the tutorial's head (see "Keras 3" below);
- a Keras 3 `model.save("x.keras")` archive (zip of config.json,
  metadata.json, model.weights.h5), the base alone, the base with a head on
  its output, or the base nested as one layer of a model with a head (the
  keras.io transfer-learning guide's form).
A head on top of the base (GlobalAveragePooling2D, then Dense layers with
optional Dropout between, softmax last) is written too, as dense/kernel,
dense/bias, dense_1/... in layer order; any other layer with weights is an error.

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

Keras 3. A `.weights.h5` file does not name layers: its groups are
`layers/<class>_<i>/vars/<j>`, numbered per class in `model.layers` order
(which is graph-depth order), so `layers/conv2d_5` is the sixth Conv2D of
model.layers, not the layer named conv2d_5. A `.keras` archive's config.json
lists the layers in that same order with their real names, so the mapping
goes by those names (their creation counters, as above). A `.weights.h5`
alone has no config: its convolutions are mapped by position through
KERAS3_LAYER_ORDER, InceptionV3's model.layers order, which
tools/test_keras3_import.py checks against Keras itself.

Writing is atomic (temporary file in the output directory, fsync, rename).
Needs only h5py, numpy and safetensors (not Keras).
"""
import argparse
import io
import json
import os
import re
import sys
import zipfile

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

# Creation index of the k-th Conv2D (and, the same, of the k-th
# BatchNormalization) in Keras 3's model.layers order of InceptionV3
# (include_top=False), which sorts layers by graph depth. Read from Keras
# 3.15.1's model.layers; tools/test_keras3_import.py checks it against Keras.
KERAS3_LAYER_ORDER = (
    0, 1, 2, 3, 4, 8, 6, 9, 5, 7, 10, 11, 15, 13, 16, 12, 14, 17, 18, 22, 20, 23, 19, 21, 24, 25, 27, 28, 26, 29,
    34, 35, 31, 36, 32, 37, 30, 33, 38, 39, 44, 45, 41, 46, 42, 47, 40, 43, 48, 49, 54, 55, 51, 56, 52, 57, 50, 53,
    58, 59, 64, 65, 61, 66, 62, 67, 60, 63, 68, 69, 72, 73, 70, 74, 71, 75, 80, 77, 81, 78, 79, 82, 83, 76, 84, 89,
    86, 90, 87, 88, 91, 92, 85, 93)
assert sorted(KERAS3_LAYER_ORDER) == list(range(len(CONVS)))

# The variables of a Keras 3 layer in `vars/<j>` order (scale=False BatchNormalization, use_bias=False Conv2D).
KERAS3_VARIABLES = {"Conv2D": ("kernel",), "BatchNormalization": BN_VARIABLES, "Dense": ("kernel", "bias")}
# A .keras archive's members are read into memory: refuse anything larger (or a zip bomb).
MAX_MEMBER_BYTES = 4 << 30
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
            raise ConversionError(f"{path}: no 'layer_names' attribute (not a Keras weights file)")
        layers = []
        for name in names:
            group = root[name]
            weight_names = read_list_attr(group, "weight_names")
            if weight_names:
                layers.append((name, {variable_name(w): np.asarray(group[w], dtype=np.float32) for w in weight_names}))
        return layers


def snake_case(class_name):
    """Keras's naming.to_snake_case: 'BatchNormalization' -> 'batch_normalization', 'Conv2D' -> 'conv2d'."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_vars(path, group, class_name, where):
    """{variable: array} of one layer's `vars` group, named by KERAS3_VARIABLES."""
    names = KERAS3_VARIABLES[class_name]
    found = sorted(group["vars"].keys(), key=int) if "vars" in group else []
    if found != [str(j) for j in range(len(names))]:
        raise ConversionError(f"{path}: {where} ({class_name}) has variables {found}, expected {len(names)} ({', '.join(names)})")
    return {v: np.asarray(group["vars"][str(j)], dtype=np.float32) for j, v in enumerate(names)}


def read_keras3_container(path, group, layers, where="layers"):
    """[(class name, real name or None, {variable: array}, where)] for the weighted layers of one
    container, walking nested models. `layers` is the container's config list (class_name, name),
    in model.layers order; Keras numbers the h5 groups per class in that order."""
    out, used = [], {}
    for class_name, real_name, inner in layers:
        snake = snake_case(class_name)
        used[snake] = used.get(snake, -1) + 1
        key = snake if used[snake] == 0 else f"{snake}_{used[snake]}"
        here = f"{where}/{key}"
        member = group["layers"].get(key) if "layers" in group else None
        if inner is not None:
            if member is None:
                raise ConversionError(f"{path}: nested model {real_name} has no weights group {here}")
            out += read_keras3_container(path, member, inner, here + "/layers")
        elif class_name in KERAS3_VARIABLES:
            if member is None:
                raise ConversionError(f"{path}: layer {real_name} ({class_name}) has no weights group {here}")
            out.append((class_name, real_name, keras3_vars(path, member, class_name, here), here))
        elif member is not None and "vars" in member and len(member["vars"]):
            raise ConversionError(f"{path}: layer {real_name} ({class_name}) has weights; an InceptionV3 model with the "
                                  f"tutorial's head has weights only in Conv2D, BatchNormalization and Dense layers")
    return out


def config_layers(config, path):
    """[(class_name, name, nested list or None)] of a Functional/Sequential config, in order."""
    try:
        layers = config["config"]["layers"]
        out = [(l["class_name"], l["config"]["name"],
                config_layers(l, path) if l["class_name"] in ("Functional", "Sequential", "Model") else None)
               for l in layers]
        activations = [l["config"].get("activation") for l in layers if l["class_name"] == "Dense"]
    except (KeyError, TypeError, AttributeError) as e:
        raise ConversionError(f"{path}: config.json is not a Keras model config (missing {e})")
    # The head incept runs (and exports): ReLU after every hidden Dense layer, softmax after the last.
    if activations and activations != ["relu"] * (len(activations) - 1) + ["softmax"]:
        raise ConversionError(f"{path}: Dense activations {activations}; incept's head is Dense(relu)... then Dense(softmax)")
    return out


def weights_only_layers(group):
    """The config a .weights.h5 file implies when it has none: InceptionV3's layers in model.layers order
    (KERAS3_LAYER_ORDER), then the head's Dense layers, named as a fresh model names them."""
    layers = [("Conv2D", keras3_name("conv2d", k), None) for k in KERAS3_LAYER_ORDER]
    layers += [("BatchNormalization", keras3_name("batch_normalization", k), None) for k in KERAS3_LAYER_ORDER]
    dense = sorted((k for k in group.get("layers", {}).keys() if re.fullmatch(r"dense(_\d+)?", k)), key=creation_counter)
    return layers + [("Dense", keras3_name("dense", i), None) for i in range(len(dense))]


def read_keras3(path, h5_bytes, config):
    """Layers of a Keras 3 weights file as read_layers returns them, plus the head's Dense layers."""
    try:
        f = h5py.File(io.BytesIO(h5_bytes), "r")
    except OSError as e:
        raise ConversionError(f"{path}: model weights are not HDF5 ({e})")
    with f:
        if "layers" not in f:
            raise ConversionError(f"{path}: no 'layers' group (not a Keras 3 weights file)")
        layers = config_layers(config, path) if config is not None else weights_only_layers(f)
        found = read_keras3_container(path, f, layers)
    convs = [(n, v) for c, n, v, _ in found if c == "Conv2D"]
    bns = [(n, v) for c, n, v, _ in found if c == "BatchNormalization"]
    dense = [(n, v) for c, n, v, _ in found if c == "Dense"]
    return convs + bns, dense


def read_keras_archive(path):
    """(config, model.weights.h5 bytes) of a .keras zip, every member's size checked before it is read."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConversionError(f"{path}: not a zip archive ({e})")
    with z:
        members = {i.filename: i for i in z.infolist()}
        for need in ("config.json", "model.weights.h5"):
            if need not in members:
                raise ConversionError(f"{path}: .keras archive without {need} (members: {', '.join(sorted(members)) or 'none'})")
            if members[need].file_size > MAX_MEMBER_BYTES:
                raise ConversionError(f"{path}: {need} unpacks to {members[need].file_size} bytes (at most {MAX_MEMBER_BYTES})")
        try:
            config = json.loads(z.read("config.json"))
            weights = z.read("model.weights.h5")
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            raise ConversionError(f"{path}: damaged .keras archive ({e})")
    return config, weights


def read_any(path):
    """(base layers as read_layers returns them, head Dense layers [(name, vars)]) of any supported file."""
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError as e:
        raise ConversionError(f"{path}: cannot read ({e})")
    if magic.startswith(b"PK\x03\x04"):
        config, weights = read_keras_archive(path)
        return read_keras3(path, weights, config)
    try:
        with h5py.File(path, "r") as f:
            keras3 = "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f
    except OSError as e:
        raise ConversionError(f"{path}: not an HDF5 file or a .keras archive ({e})")
    if keras3:
        with open(path, "rb") as f:
            return read_keras3(path, f.read(), None)
    return read_layers(path), []


def head_tensors(dense):
    """Keras 3 names of the head's Dense layers (creation order = layer order in a sequential head)."""
    tensors, fan_in = {}, 2048
    for k, (name, weights) in enumerate(dense):
        kernel, bias = weights["kernel"], weights["bias"]
        if kernel.ndim != 2 or kernel.shape[0] != fan_in or bias.shape != (kernel.shape[1],):
            raise ConversionError(f"Dense layer {name}: kernel {kernel.shape} and bias {bias.shape} do not follow "
                                  f"a {fan_in}-feature input (expected kernel ({fan_in}, units), bias (units,))")
        tensors[f"{keras3_name('dense', k)}/kernel"], tensors[f"{keras3_name('dense', k)}/bias"] = kernel, bias
        fan_in = kernel.shape[1]
    return tensors


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
    model = "keras InceptionV3 include_top=False" + (" + Dense head" if any(n.startswith("dense") for n in tensors) else "")
    metadata = {"model": model, "names": "keras3", "source": source}
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
    p.add_argument("input", help="Keras InceptionV3 weights: legacy .h5, Keras 3 .weights.h5 or .keras")
    p.add_argument("output", help="safetensors file to write")
    p.add_argument("--f16", action="store_true", help="store float16 instead of float32")
    args = p.parse_args(argv)
    try:
        layers, dense = read_any(args.input)
        tensors, dropped = convert(layers)
        tensors.update(head_tensors(dense))
        size = write_atomic(args.output, tensors, args.f16, f"keras: {os.path.basename(args.input)}")
    except ConversionError as e:
        print(f"keras_h5_to_safetensors: {e}", file=sys.stderr)
        return 1
    params = sum(t.size for t in tensors.values())
    print(f"wrote {args.output}: {len(tensors)} tensors, {params} parameters, {size} bytes"
          + (f"; dropped weighted layers that are not Conv2D/BatchNormalization: {', '.join(dropped)}" if dropped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
