#!/usr/bin/env python3
"""Writes the Keras fixtures of `incept convert keras` / `incept inspect` (tests/keras_import.rs).

    python tools/make_keras_fixtures.py [OUT_DIR]        # default: tests/data/keras

Needs TensorFlow with Keras 3 and tf_keras (`pip install tensorflow-cpu tf-keras h5py`);
CI only reads the files. Every file is written by Keras itself (tf_keras for the legacy
.h5 forms, Keras 3 for .weights.h5 and .keras). Every weight tensor is filled from a
formula that identifies it (VALUES below; tests/keras_import.rs recomputes it), so a
mapping error shows, and constant tensors compress ~1000:1: HDF5 files are stored
gzipped (`.gz`), .keras archives as Keras wrote them (re-zipped with deflate when Keras
stored them uncompressed). Files:

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

VALUES (k: the conv2d_bn call in creation order, j: the head's Dense layer in order):
  conv2d_k/kernel = (1 + k/1000) / (kh*kw*cin)      batch_normalization_k/beta = 0.01 + k/10^4
  .../moving_mean = 0.02 + k/10^4                   .../moving_variance = 1 + k/1000
  dense_j/kernel = (1 + j/10) / fan_in              dense_j/bias = 0.001 (j + 1), the last
                                                    layer's bias[c] = 0.1 c instead
(values computed in float64, stored as float32).
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


def fill(layers, dense, conv_type, bn_type):
    """Sets VALUES into the base's layers (ranked by creation counter) and the head's Dense layers."""
    convs = sorted((l for l in layers if isinstance(l, conv_type)), key=lambda l: counter(l.name))
    bns = sorted((l for l in layers if isinstance(l, bn_type)), key=lambda l: counter(l.name))
    assert len(convs) == len(bns) == 94, (len(convs), len(bns))
    for k, (c, b) in enumerate(zip(convs, bns)):
        kh, kw, cin, cout = c.kernel.shape
        c.kernel.assign(np.full((kh, kw, cin, cout), (1 + k / 1000) / (kh * kw * cin), dtype=np.float32))
        b.beta.assign(np.full((cout,), 0.01 + k / 1e4, dtype=np.float32))
        b.moving_mean.assign(np.full((cout,), 0.02 + k / 1e4, dtype=np.float32))
        b.moving_variance.assign(np.full((cout,), 1 + k / 1000, dtype=np.float32))
    for j, d in enumerate(dense):
        fan_in, units = d.kernel.shape
        d.kernel.assign(np.full((fan_in, units), (1 + j / 10) / fan_in, dtype=np.float32))
        bias = 0.1 * np.arange(units) if j == len(dense) - 1 else np.full((units,), 0.001 * (j + 1))
        d.bias.assign(bias.astype(np.float32))


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
