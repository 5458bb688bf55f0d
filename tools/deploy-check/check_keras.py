#!/usr/bin/env python3
"""Proof of the Keras 3 export (tools/keras_export.py) against Keras itself, for every backbone.

    python tools/deploy-check/check_keras.py --incept target/debug/incept \\
        --weights weights/inception_v3_notop.safetensors weights/mobilenet_v2_notop.safetensors \\
                  weights/efficientnet_lite0.safetensors

Needs TensorFlow with Keras 3 (`pip install tensorflow-cpu pillow safetensors`),
too large for CI: tools/deploy-check/run.sh runs it when it finds a Python
that has them ($KERAS_PYTHON, else python3) and says SKIPPED otherwise. For
each pretrained base, builds the same tiny run as check.py (one epoch at
75x75 on tinted Fashion-MNIST images, here with a 16,8 head), then checks that

- keras.saving.load_model opens the .keras export, its metadata.json states the
  run's backbone, preprocessing and classes, and its probabilities equal
  incept predict's within 1e-4 (absolute);
- the .weights.h5 export loads with model.load_weights into the same Keras
  architecture and gives the same probabilities;
- the loaded models hold the checkpoint's tensors bit for bit; for
  InceptionV3 also through tools/keras_h5_to_safetensors.py (the .keras and
  the .weights.h5), which reads InceptionV3 files without Keras.

Prints one line per check and closes with `deploy-check result: N passed; M failed`.
"""
import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import check  # noqa: E402  (dataset, preprocessing, Checks)
import keras_export  # noqa: E402
import keras_h5_to_safetensors  # noqa: E402


def same_tensors(got: dict, checkpoint: dict) -> bool:
    return set(got) == set(checkpoint) and all(np.array_equal(got[k], checkpoint[k]) for k in checkpoint)


def check_backbone(checks, incept, weights: Path, data: Path, paths, tmp: Path):
    import keras
    from safetensors.numpy import load_file

    run_dir = tmp / f"run_{weights.stem}"
    config = check.train_run(incept, weights, data, run_dir, ["--head", "16,8"])
    backbone = keras_export.backbone(config)
    expected = check.predictions(incept, run_dir, paths, config["classes"], tmp / f"predictions_{backbone}.csv")
    checkpoint = {k: v for k, v in load_file(run_dir / "best.safetensors").items() if not k.startswith("optimizer/")}

    archive = tmp / f"{backbone}.keras"
    assert keras_export.main(["--model", str(run_dir), "--out", str(archive)]) == 0
    meta = json.loads(zipfile.ZipFile(archive).read("metadata.json"))["incept"]
    checks.check(f"{backbone} keras metadata",
                 meta["backbone"] == backbone and meta["preprocess"] == config["preprocess"] and meta["classes"] == config["classes"],
                 f"backbone {meta['backbone']}, preprocess {meta['preprocess']}, classes {meta['classes']}")
    x = check.preprocessed(paths, meta["preprocess"])
    loaded = keras.saving.load_model(archive)
    diff = float(np.abs(loaded.predict(x, verbose=0) - expected).max())
    checks.check(f"{backbone} keras load_model .keras vs incept predict", diff <= check.TOLERANCE,
                 f"keras {keras.__version__}, {len(paths)} images at {check.SIZE}x{check.SIZE}, "
                 f"max |keras - incept| = {diff:.3g} (tolerance {check.TOLERANCE})")

    weights_h5 = tmp / f"{backbone}.weights.h5"
    assert keras_export.main(["--model", str(run_dir), "--out", str(weights_h5), "--weights-only"]) == 0
    fresh, _, _ = keras_export.build(config)
    fresh.load_weights(weights_h5)
    diff = float(np.abs(fresh.predict(x, verbose=0) - expected).max())
    checks.check(f"{backbone} keras load_weights .weights.h5 vs incept predict", diff <= check.TOLERANCE,
                 f"max |keras - incept| = {diff:.3g} (tolerance {check.TOLERANCE})")

    for source, model in ((archive, loaded), (weights_h5, fresh)):
        got = keras_export.read_back(backbone, model)
        checks.check(f"{backbone} keras round trip {source.name}", same_tensors(got, checkpoint),
                     f"{len(got)} tensors read back from Keras, {len(checkpoint)} in the checkpoint")
        if backbone == "inception_v3":
            back = tmp / "back.safetensors"
            assert keras_h5_to_safetensors.main([str(source), str(back)]) == 0
            got = load_file(back)
            checks.check(f"{backbone} round trip {source.name} by keras_h5_to_safetensors.py", same_tensors(got, checkpoint),
                         f"{len(got)} tensors, {len(checkpoint)} in the checkpoint")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incept", required=True, type=Path)
    ap.add_argument("--weights", required=True, type=Path, nargs="+", help="pretrained bases (weights/fetch.sh), one run each")
    ap.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()

    checks = check.Checks()
    with tempfile.TemporaryDirectory(prefix="incept-keras-check-") as tmp:
        tmp = Path(tmp)
        paths = check.make_dataset(tmp / "data", args.fashion_mnist)
        for weights in args.weights:
            check_backbone(checks, args.incept, weights, tmp / "data", paths, tmp)
    print(f"deploy-check result: {checks.passed} passed; {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
