#!/usr/bin/env python3
"""An incept run -> a Keras 3 model: `.keras` archive, or `.weights.h5` with --weights-only.

    python tools/keras_export.py --model RUN --out model.keras [--checkpoint best|last]
    python tools/keras_export.py --model RUN --out model.weights.h5 --weights-only

Builds the run's network with Keras itself (its backbone without top at the
run's image size, GlobalAveragePooling2D, the run's Dense/Dropout head,
softmax), sets every weight from the run's checkpoint, and saves it with
Keras's own saver, so the file is exactly what Keras writes and reads. The
network takes its input already preprocessed, as incept's does; the
preprocessing (rescale: x/255, inception: x/127.5 - 1, lite: (x - 127)/128),
the classes and the image size are stated in the printed summary, in the
.keras archive's metadata.json (key "incept"), and as root attributes of a
.weights.h5 file.

The backbones (run.json's "backbone"):
- inception_v3: keras.applications.InceptionV3(include_top=False); its layers
  are auto-named, so weights go by creation counter (the k-th Conv2D created
  is incept's conv2d_k).
- mobilenet_v2: keras.applications.MobileNetV2(alpha=1.0, include_top=False),
  built for any input size and then fixed to the run's: Keras's correct_pad
  pads ((1, 1), (1, 1)) before a stride-2 block on an odd side when the size
  is known, while incept (like nsfwjs's model and Keras's own any-size model)
  always pads ((0, 1), (0, 1)); the any-size model's ZeroPadding2D layers keep
  that at every size. Weights go by layer name.
- efficientnet_lite0: not in keras.applications; built here, layer for layer
  with incept's names (src/models/efficientnet_lite0_graph.rs): Conv2D and
  DepthwiseConv2D without bias and with TF 'same' padding, BatchNormalization
  epsilon 1e-3, ReLU(6), no squeeze-excite. Weights go by layer name.

Why a Python tool: HDF5 is written well only by libhdf5 (h5py, Keras); the
pure-Rust HDF5 writers are young, and a .keras archive's config.json is the
Keras model's own serialisation, which Keras writes best. Needs TensorFlow
with Keras 3 (`pip install tensorflow-cpu`) and safetensors.
Writing is atomic: a temporary file beside OUT, renamed when complete.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FORMULAS = {"rescale": "x / 255", "inception": "x / 127.5 - 1", "lite": "(x - 127) / 128"}
BACKBONES = ("inception_v3", "mobilenet_v2", "efficientnet_lite0")

# EfficientNet-Lite0's stages: (kernel, stride, expansion, filters, repeats),
# width and depth coefficients 1.0; the stem has 32 filters, the head 1280.
LITE0_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
                (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))


class ExportError(Exception):
    pass


def counter(name):
    """Keras's creation counter in an auto-generated layer name: conv2d -> 0, conv2d_12 -> 12."""
    m = re.fullmatch(r"[a-z0-9]+(?:_[a-z]+)*(?:_(\d+))?", name)
    return int(m.group(1) or 0) if m else -1


def indexed(base, k):
    return base if k == 0 else f"{base}_{k}"


def load_run(run_dir, which):
    from safetensors.numpy import load_file

    config_path = os.path.join(run_dir, "run.json")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise ExportError(f"{config_path}: not a run directory's run.json ({e})")
    for key in ("image_size", "head", "dropout", "classes", "preprocess"):
        if key not in config:
            raise ExportError(f"{config_path}: no '{key}' (not written by incept train?)")
    if config["preprocess"] not in FORMULAS:
        raise ExportError(f"{config_path}: unknown preprocess '{config['preprocess']}'")
    if backbone(config) not in BACKBONES:
        raise ExportError(f"{config_path}: unknown backbone '{backbone(config)}' (expected one of {', '.join(BACKBONES)})")
    path = os.path.join(run_dir, f"{which}.safetensors")
    try:
        tensors = load_file(path)
    except Exception as e:  # safetensors raises several types for a damaged file
        raise ExportError(f"{path}: cannot read the checkpoint ({e})")
    return config, {k: v for k, v in tensors.items() if not k.startswith("optimizer/")}, path


def backbone(config):
    """The run's backbone (runs from before the choice existed are InceptionV3's)."""
    return config.get("backbone", "inception_v3")


def mobilenet_v2(keras, size):
    """MobileNetV2 (alpha 1.0, no top) with incept's ((0, 1), (0, 1)) padding at every size (see the header)."""
    anysize = keras.applications.MobileNetV2(alpha=1.0, include_top=False, weights=None, input_shape=(None, None, 3))
    config = anysize.get_config()
    config["layers"][0]["config"]["batch_shape"] = [None, size, size, 3]
    return keras.Model.from_config(config)


def efficientnet_lite0(keras, size):
    """EfficientNet-Lite0 up to top_activation (1280 channels), with incept's layer names."""
    from keras import layers

    def conv_bn(x, filters, kernel, stride, conv, bn):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=conv)(x)
        return layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=bn)(x)

    inputs = keras.Input((size, size, 3))
    x = conv_bn(inputs, 32, 3, 2, "stem_conv", "stem_bn")
    x = layers.ReLU(6.0, name="stem_activation")(x)
    channels = 32
    for s, (kernel, stride, expansion, filters, repeats) in enumerate(LITE0_STAGES):
        for r in range(repeats):
            p = f"block{s + 1}{chr(ord('a') + r)}_"
            block_input, block_stride = x, stride if r == 0 else 1
            if expansion != 1:
                x = conv_bn(x, channels * expansion, 1, 1, f"{p}expand_conv", f"{p}expand_bn")
                x = layers.ReLU(6.0, name=f"{p}expand_activation")(x)
            x = layers.DepthwiseConv2D(kernel, strides=block_stride, padding="same", use_bias=False, name=f"{p}dwconv")(x)
            x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=f"{p}bn")(x)
            x = layers.ReLU(6.0, name=f"{p}activation")(x)
            x = conv_bn(x, filters, 1, 1, f"{p}project_conv", f"{p}project_bn")
            if block_stride == 1 and channels == filters:
                x = layers.Add(name=f"{p}add")([block_input, x])
            channels = filters
    x = conv_bn(x, 1280, 1, 1, "top_conv", "top_bn")
    x = layers.ReLU(6.0, name="top_activation")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def build(config):
    import keras

    size = int(config["image_size"])
    name = backbone(config)
    if name == "inception_v3":
        base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(size, size, 3))
    elif name == "mobilenet_v2":
        base = mobilenet_v2(keras, size)
    else:
        base = efficientnet_lite0(keras, size)
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    dense = []
    for units in config["head"]:
        dense.append(keras.layers.Dense(int(units), activation="relu"))
        x = keras.layers.Dropout(float(config["dropout"]))(dense[-1](x))
    dense.append(keras.layers.Dense(len(config["classes"]), activation="softmax"))
    model = keras.Model(base.input, dense[-1](x), name=f"incept_{name}")
    return model, base, dense


def variables(name, model):
    """[(incept's tensor name, Keras variable)] of every weight of `model` (built by build(), or loaded).

    InceptionV3's layers are auto-named: the k-th created Conv2D is conv2d_k,
    and so on; the other backbones' layers carry incept's names. The head's
    Dense layers are dense, dense_1, ... in the order they are chained."""
    import keras

    def by_creation(kind):
        return sorted((l for l in model.layers if isinstance(l, kind)), key=lambda l: counter(l.name))

    found = []
    if name == "inception_v3":
        for k, layer in enumerate(by_creation(keras.layers.Conv2D)):
            found.append((f"{indexed('conv2d', k)}/kernel", layer.kernel))
        for k, layer in enumerate(by_creation(keras.layers.BatchNormalization)):
            bn = indexed("batch_normalization", k)
            found += [(f"{bn}/{v}", getattr(layer, v)) for v in ("beta", "moving_mean", "moving_variance")]
    else:
        for layer in model.layers:
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                found.append((f"{layer.name}/depthwise_kernel", layer.kernel))
            elif isinstance(layer, keras.layers.Conv2D):
                found.append((f"{layer.name}/kernel", layer.kernel))
            elif isinstance(layer, keras.layers.BatchNormalization):
                found += [(f"{layer.name}/{v}", getattr(layer, v)) for v in ("gamma", "beta", "moving_mean", "moving_variance")]
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    for k, layer in enumerate(dense):
        found += [(f"{indexed('dense', k)}/kernel", layer.kernel), (f"{indexed('dense', k)}/bias", layer.bias)]
    return found


def assign(name, model, tensors, source):
    """Sets every variable from the checkpoint's tensors; checks shapes and that every tensor is used."""
    used = set()
    for key, variable in variables(name, model):
        if key not in tensors:
            raise ExportError(f"{source}: tensor '{key}' is missing")
        value = tensors[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise ExportError(f"{source}: tensor '{key}' has shape {value.shape}, Keras expects {tuple(variable.shape)}")
        variable.assign(value)
        used.add(key)
    extra = sorted(set(tensors) - used)
    if extra:
        raise ExportError(f"{source}: tensors not in the Keras model: {', '.join(extra[:5])}")


def read_back(name, model):
    """{incept's tensor name: array} of `model`'s weights (the inverse of assign)."""
    return {key: variable.numpy() for key, variable in variables(name, model)}


def incept_metadata(config, source):
    return {
        "preprocess": config["preprocess"],
        "preprocess_formula": FORMULAS[config["preprocess"]],
        "classes": config["classes"],
        "backbone": backbone(config),
        "image_size": int(config["image_size"]),
        "input_layout": "NHWC",
        "source": source,
    }


def with_metadata(archive, meta):
    """Rewrites a .keras archive with meta under metadata.json's "incept" key (Keras ignores unknown keys)."""
    rewritten = archive + ".meta"
    with zipfile.ZipFile(archive) as z, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_STORED) as out:
        for info in z.infolist():
            data = z.read(info.filename)
            if info.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "incept": meta}).encode()
            out.writestr(info, data)
    os.replace(rewritten, archive)


def export(run_dir, out, weights_only, which):
    import h5py

    if weights_only != out.endswith(".weights.h5") or (not weights_only and not out.endswith(".keras")):
        raise ExportError(f"--out {out}: expected a name ending in .keras, or .weights.h5 with --weights-only (Keras requires these)")
    config, tensors, source = load_run(run_dir, which)
    model, _, _ = build(config)
    assign(backbone(config), model, tensors, source)
    meta = incept_metadata(config, source)
    directory = os.path.dirname(os.path.abspath(out))
    suffix = ".weights.h5" if weights_only else ".keras"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(out)}.", suffix=suffix)
    os.close(fd)
    try:
        if weights_only:
            model.save_weights(tmp, overwrite=True)
            with h5py.File(tmp, "a") as f:
                for k, v in meta.items():
                    f.attrs[f"incept.{k}"] = json.dumps(v) if isinstance(v, list) else v
        else:
            model.save(tmp, overwrite=True)
            with_metadata(tmp, meta)
        os.replace(tmp, out)
    except BaseException:
        for leftover in (tmp, tmp + ".meta"):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise
    return model, meta


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="run directory written by incept train")
    p.add_argument("--out", required=True, help="model.keras, or model.weights.h5 with --weights-only")
    p.add_argument("--weights-only", action="store_true", help="write Keras 3 save_weights format")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    args = p.parse_args(argv)
    try:
        model, meta = export(args.model, args.out, args.weights_only, args.checkpoint)
    except ExportError as e:
        print(f"keras_export: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: Keras {model.name}, {model.count_params()} parameters")
    print(f"  input  float32 [batch, {meta['image_size']}, {meta['image_size']}, 3] NHWC, preprocessed: "
          f"{meta['preprocess']} ({meta['preprocess_formula']})")
    print(f"  output softmax over {len(meta['classes'])} classes: {', '.join(meta['classes'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
