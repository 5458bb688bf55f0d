#!/usr/bin/env python3
"""An incept run -> a Keras 3 model: `.keras` archive, or `.weights.h5` with --weights-only.

    python tools/keras_export.py --model RUN --out model.keras [--checkpoint best|last]
    python tools/keras_export.py --model RUN --out model.weights.h5 --weights-only

Builds the run's network with Keras itself (InceptionV3 include_top=False at
the run's image size, GlobalAveragePooling2D, the run's Dense/Dropout head,
softmax), sets every weight from the run's checkpoint, and saves it with
Keras's own saver, so the file is exactly what Keras writes and reads. The
network takes its input already preprocessed, as incept's does; the
preprocessing (rescale: x/255, inception: x/127.5 - 1), the classes and the
image size are stated in the printed summary, in the .keras archive's
metadata.json (key "incept"), and as root attributes of a .weights.h5 file.

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

FORMULAS = {"rescale": "x / 255", "inception": "x / 127.5 - 1"}


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
    path = os.path.join(run_dir, f"{which}.safetensors")
    try:
        tensors = load_file(path)
    except Exception as e:  # safetensors raises several types for a damaged file
        raise ExportError(f"{path}: cannot read the checkpoint ({e})")
    return config, {k: v for k, v in tensors.items() if not k.startswith("optimizer/")}, path


def build(config):
    import keras

    size = int(config["image_size"])
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    dense = []
    for units in config["head"]:
        dense.append(keras.layers.Dense(int(units), activation="relu"))
        x = keras.layers.Dropout(float(config["dropout"]))(dense[-1](x))
    dense.append(keras.layers.Dense(len(config["classes"]), activation="softmax"))
    model = keras.Model(base.input, dense[-1](x), name="incept_inception_v3")
    return model, base, dense


def assign(base, dense, tensors, source):
    """Sets every variable from incept's names (the k-th created Conv2D is conv2d_k, ...); checks shapes and use."""
    import keras

    def by_creation(kind):
        return sorted((l for l in base.layers if isinstance(l, kind)), key=lambda l: counter(l.name))

    used = set()

    def take(name, variable):
        if name not in tensors:
            raise ExportError(f"{source}: tensor '{name}' is missing")
        value = tensors[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ExportError(f"{source}: tensor '{name}' has shape {value.shape}, Keras expects {tuple(variable.shape)}")
        variable.assign(value)
        used.add(name)

    for k, layer in enumerate(by_creation(keras.layers.Conv2D)):
        take(f"{indexed('conv2d', k)}/kernel", layer.kernel)
    for k, layer in enumerate(by_creation(keras.layers.BatchNormalization)):
        name = indexed("batch_normalization", k)
        for var, variable in (("beta", layer.beta), ("moving_mean", layer.moving_mean), ("moving_variance", layer.moving_variance)):
            take(f"{name}/{var}", variable)
    for k, layer in enumerate(dense):
        take(f"{indexed('dense', k)}/kernel", layer.kernel)
        take(f"{indexed('dense', k)}/bias", layer.bias)
    extra = sorted(set(tensors) - used)
    if extra:
        raise ExportError(f"{source}: tensors not in the Keras model: {', '.join(extra[:5])}")


def incept_metadata(config, source):
    return {
        "preprocess": config["preprocess"],
        "preprocess_formula": FORMULAS[config["preprocess"]],
        "classes": config["classes"],
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
    model, base, dense = build(config)
    assign(base, dense, tensors, source)
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
