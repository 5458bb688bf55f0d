#!/usr/bin/env python3
"""Writes the Keras fixtures of `incept convert keras` / `incept inspect` (tests/keras_import.rs).

    python tools/make_keras_fixtures.py [OUT_DIR]        # default: tests/data/keras

Needs TensorFlow with Keras 3 and tf_keras (`pip install tensorflow-cpu tf-keras h5py`);
CI only reads the files. Every file is written by Keras itself (tf_keras for the legacy
.h5 forms, Keras 3 for .weights.h5 and .keras). Every weight tensor is filled from a
formula that identifies it and each of its elements (VALUES below; tests/keras_import.rs
recomputes it), so a mapping error, and an element order, transpose or layout error
inside a tensor, shows: every tensor of up to 1009 elements (the first kernel, every
BatchNormalization vector, the head's biases) holds distinct values, larger ones repeat
with a period of 13 elements (a prime that divides no InceptionV3 dimension), so the
files still compress ~100:1: HDF5 files are stored gzipped (`.gz`), .keras archives
as Keras wrote them (re-zipped with deflate when Keras stored them uncompressed). Files:

  inception_v3_tf_keras.h5.gz             tf_keras save_weights("x.h5"), base only
                                          (the format of Keras's ImageNet notop file)
  inception_v3_head_tf_keras_save.h5.gz   tf_keras save("x.h5"): base + the tutorial head,
                                          3 classes, input 75x75 (model_config, /model_weights)
  inception_v3_nested_head_tf_keras_save.h5.gz   tf_keras save("x.h5") of the keras.io guide's
                                          form (the base nested as one layer)
  inception_v3_keras3.weights.h5.gz       Keras 3 save_weights, base only
  inception_v3_head_keras3.weights.h5.gz  Keras 3 save_weights, base + head, with the root
                                          attributes tools/keras_export.py adds (incept.*)
  inception_v3_head.keras                 Keras 3 save, base + head, metadata.json "incept"
                                          entry as tools/keras_export.py writes it
  inception_v3_nested_head.keras          Keras 3 save, the keras.io guide's form (the base
                                          nested as one layer), built second in the process
                                          so its layers are named conv2d_94 ... (no "incept")
  inception_v3_head_no_weights.keras      inception_v3_head.keras without model.weights.h5
  tiny_dense.weights.h5, tiny_dense_tf_keras.h5   another model (Dense 4 -> 3)

VALUES (k: the conv2d_bn call in creation order, j: the head's Dense layer in order),
each a base times the element factor f(i) = 1 + (i mod P) / (2 P), i the element's
row-major index in Keras's layout (HWIO kernels, [fan_in, units] Dense kernels), P = 1009
for tensors of up to 1009 elements (the last Dense kernel: up to 1009 rows), else 13:
  conv2d_k/kernel = (1 + k/1000) / (kh*kw*cin) * f(i)
  batch_normalization_k/beta = (0.01 + k/10^4) * f(c)
  .../moving_mean = (0.02 + k/10^4) * f(c)          .../moving_variance = (1 + k/1000) * f(c)
  dense_j/kernel = (1 + j/10) / fan_in * f(i)       dense_j/bias = 0.001 (j + 1) * f(c)
  except the last Dense layer: kernel[r, c] = (1 + j/10) / fan_in * f(r), the same in every
  column (so every class gets the same logit but for the bias), and bias[c] = 0.1 c
(values computed in float64, operations left to right as written, stored as float32).
"""
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

SIZE = 75
CLASSES = ["cat", "dog", "fox"]
HEAD = (512, 512)
DROPOUT = 0.3


def counter(name):
    m = re.fullmatch(r"[a-z0-9]+(?:_[a-z]+)*(?:_(\d+))?", name)
    return int(m.group(1) or 0)


# VALUES's periods: every element distinct up to DISTINCT_UP_TO elements, else a period of REPEAT.
DISTINCT_UP_TO = 1009
REPEAT = 13


def values(base, shape, index=None):
    """base * f(i) over the row-major indices of `shape` (or over `index`, broadcast), as float32."""
    if index is None:
        index = np.arange(int(np.prod(shape))).reshape(shape)
    period = DISTINCT_UP_TO if index.size <= DISTINCT_UP_TO else REPEAT
    return np.broadcast_to(base * (1 + (index % period) / (2 * period)), shape).astype(np.float32)


def fill(layers, dense, conv_type, bn_type):
    """Sets VALUES into the base's layers (ranked by creation counter) and the head's Dense layers."""
    convs = sorted((l for l in layers if isinstance(l, conv_type)), key=lambda l: counter(l.name))
    bns = sorted((l for l in layers if isinstance(l, bn_type)), key=lambda l: counter(l.name))
    assert len(convs) == len(bns) == 94, (len(convs), len(bns))
    for k, (c, b) in enumerate(zip(convs, bns)):
        kh, kw, cin, cout = c.kernel.shape
        c.kernel.assign(values((1 + k / 1000) / (kh * kw * cin), (kh, kw, cin, cout)))
        b.beta.assign(values(0.01 + k / 1e4, (cout,)))
        b.moving_mean.assign(values(0.02 + k / 1e4, (cout,)))
        b.moving_variance.assign(values(1 + k / 1000, (cout,)))
    for j, d in enumerate(dense):
        fan_in, units = d.kernel.shape
        last = j == len(dense) - 1
        rows = np.arange(fan_in).reshape(fan_in, 1) if last else None
        d.kernel.assign(values((1 + j / 10) / fan_in, (fan_in, units), rows))
        d.bias.assign((0.1 * np.arange(units)).astype(np.float32) if last else values(0.001 * (j + 1), (units,)))


def head(keras, x):
    dense = []
    for units in HEAD:
        dense.append(keras.layers.Dense(units, activation="relu"))
        x = keras.layers.Dropout(DROPOUT)(dense[-1](x))
    dense.append(keras.layers.Dense(len(CLASSES), activation="softmax"))
    return dense[-1](x), dense


def incept_metadata(preprocess):
    """What tools/keras_export.py records (its incept_metadata)."""
    formulas = {"rescale": "x / 255", "inception": "x / 127.5 - 1"}
    return {"preprocess": preprocess, "preprocess_formula": formulas[preprocess], "classes": CLASSES,
            "image_size": SIZE, "input_layout": "NHWC", "source": "tools/make_keras_fixtures.py"}


def gzip_file(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as out:
        # mtime=0: the same weights give the same bytes.
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as g:
            shutil.copyfileobj(f, g)


def rezip(src, dst, drop=(), metadata=None):
    """A copy of a .keras archive, deflated, members in order, `drop` left out, metadata.json's
    "incept" key set as tools/keras_export.py sets it."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in z.infolist():
            if info.filename in drop:
                continue
            data = z.read(info.filename)
            if metadata is not None and info.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "incept": metadata}).encode()
            member = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(member, data, compresslevel=9)


def tf_keras_files(out, tmp):
    import tf_keras

    tf_keras.backend.clear_session()
    base = tf_keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    fill(base.layers, [], tf_keras.layers.Conv2D, tf_keras.layers.BatchNormalization)
    base.save_weights(f"{tmp}/a.h5")
    gzip_file(f"{tmp}/a.h5", f"{out}/inception_v3_tf_keras.h5.gz")

    tf_keras.backend.clear_session()
    base = tf_keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(base.output)
    y, dense = head(tf_keras, tf_keras.layers.Flatten()(x))
    model = tf_keras.Model(base.input, y)
    fill(base.layers, dense, tf_keras.layers.Conv2D, tf_keras.layers.BatchNormalization)
    model.save(f"{tmp}/b.h5")
    gzip_file(f"{tmp}/b.h5", f"{out}/inception_v3_head_tf_keras_save.h5.gz")

    # The keras.io guide's form: the base nested as one layer, whose group lists every
    # trainable variable of the base first and the moving statistics after them.
    tf_keras.backend.clear_session()
    base = tf_keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    y, dense = head(tf_keras, tf_keras.layers.GlobalAveragePooling2D()(base(inputs, training=False)))
    nested = tf_keras.Model(inputs, y)
    fill(base.layers, dense, tf_keras.layers.Conv2D, tf_keras.layers.BatchNormalization)
    nested.save(f"{tmp}/g.h5")
    gzip_file(f"{tmp}/g.h5", f"{out}/inception_v3_nested_head_tf_keras_save.h5.gz")

    tf_keras.backend.clear_session()
    tiny = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3)])
    tiny.save_weights(f"{out}/tiny_dense_tf_keras.h5")


def keras3_files(out, tmp):
    import h5py
    import keras

    keras.backend.clear_session()
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    fill(base.layers, [], keras.layers.Conv2D, keras.layers.BatchNormalization)
    base.save_weights(f"{tmp}/c.weights.h5")
    gzip_file(f"{tmp}/c.weights.h5", f"{out}/inception_v3_keras3.weights.h5.gz")

    keras.backend.clear_session()
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    y, dense = head(keras, keras.layers.GlobalAveragePooling2D()(base.output))
    model = keras.Model(base.input, y, name="incept_inception_v3")
    fill(base.layers, dense, keras.layers.Conv2D, keras.layers.BatchNormalization)
    model.save_weights(f"{tmp}/d.weights.h5")
    with h5py.File(f"{tmp}/d.weights.h5", "a") as f:  # as tools/keras_export.py --weights-only does
        for k, v in incept_metadata("inception").items():
            f.attrs[f"incept.{k}"] = json.dumps(v) if isinstance(v, list) else v
    gzip_file(f"{tmp}/d.weights.h5", f"{out}/inception_v3_head_keras3.weights.h5.gz")
    model.save(f"{tmp}/e.keras")
    rezip(f"{tmp}/e.keras", f"{out}/inception_v3_head.keras", metadata=incept_metadata("inception"))
    rezip(f"{tmp}/e.keras", f"{out}/inception_v3_head_no_weights.keras", drop=("model.weights.h5",))

    # The keras.io guide's form, built without clearing the session: names continue from conv2d_94.
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    inputs = keras.Input((SIZE, SIZE, 3))
    y, dense = head(keras, keras.layers.GlobalAveragePooling2D()(base(inputs, training=False)))
    nested = keras.Model(inputs, y)
    fill(base.layers, dense, keras.layers.Conv2D, keras.layers.BatchNormalization)
    assert min(counter(l.name) for l in base.layers if isinstance(l, keras.layers.Conv2D)) == 94
    nested.save(f"{tmp}/f.keras")
    rezip(f"{tmp}/f.keras", f"{out}/inception_v3_nested_head.keras")

    keras.backend.clear_session()
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    tiny.save_weights(f"{out}/tiny_dense.weights.h5")


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "keras")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tf_keras_files(out, tmp)
        keras3_files(out, tmp)
    for name in sorted(os.listdir(out)):
        print(f"{os.path.getsize(os.path.join(out, name)):>9}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
