"""Writes the Keras-written architecture fixtures of tests/keras_config.rs.

For each of keras.applications' MobileNetV2, ResNet50, EfficientNetB0 and
DenseNet121 (weights=None, include_top=False, Keras's default input size),
the model's config exactly as Keras 3 writes it into a .keras archive's
config.json (`keras.saving.serialize_keras_object(model)`), gzip-compressed,
to tests/data/keras/<name>_config.json.gz. Configs only: no weights, so each
file is a few tens of KB. The gzip header carries no time stamp, so the
output is byte-for-byte reproducible for a given Keras version.

Needs TensorFlow and Keras 3 (not in CI, which only reads the files):
    python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0 keras==3.15.1
    /tmp/tf/bin/python tools/make_keras_configs.py
"""

import gzip
import json
from pathlib import Path

import keras

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"
MODELS = {
    "mobilenet_v2": lambda: keras.applications.MobileNetV2(weights=None, include_top=False),
    "resnet50": lambda: keras.applications.ResNet50(weights=None, include_top=False),
    "efficientnet_b0": lambda: keras.applications.EfficientNetB0(weights=None, include_top=False),
    "densenet121": lambda: keras.applications.DenseNet121(weights=None, include_top=False),
}


def main():
    for name, build in MODELS.items():
        model = build()
        config = keras.saving.serialize_keras_object(model)
        text = json.dumps(config, sort_keys=True).encode()
        path = OUT / f"{name}_config.json.gz"
        with open(path, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                g.write(text)
        print(f"{path}: {len(model.layers)} layers, keras {keras.__version__}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
