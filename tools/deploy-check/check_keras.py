#!/usr/bin/env python3
"""Proof of the Keras 3 export (tools/keras_export.py) against Keras itself.

    python tools/deploy-check/check_keras.py --incept target/debug/incept --weights weights/inception_v3_notop.safetensors

Needs TensorFlow with Keras 3 (`pip install tensorflow-cpu pillow safetensors`),
too large for CI, so it is run by hand and its figures recorded. Builds the
same tiny run as check.py (real pretrained base, one epoch at 75x75 on
tinted Fashion-MNIST images), then checks that

- keras.saving.load_model opens the .keras export, its metadata.json states the
  run's preprocessing and classes, and its probabilities equal incept
  predict's within 1e-4 (absolute);
- the .weights.h5 export loads with model.load_weights into the same Keras
  architecture and gives the same probabilities;
- the round trip export -> tools/keras_h5_to_safetensors.py gives back the
  checkpoint's tensors bit for bit, from the .keras and the .weights.h5.

Prints one line per check and closes with `deploy-check result: N passed; M failed`.
"""
import argparse
import csv
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incept", required=True, type=Path)
    ap.add_argument("--weights", required=True, type=Path)
    ap.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    import keras
    from safetensors.numpy import load_file

    checks = check.Checks()
    with tempfile.TemporaryDirectory(prefix="incept-keras-check-") as tmp:
        tmp = Path(tmp)
        paths = check.make_dataset(tmp / "data", args.fashion_mnist)
        run_dir = tmp / "run"
        check.run([args.incept, "train", "--data", tmp / "data", "--weights", args.weights, "--out", run_dir,
                   "--image-size", check.SIZE, "--epochs", 1, "--batch", 3, "--seed", 1, "--head", "16,8"])
        config = json.loads((run_dir / "run.json").read_text())
        csv_path = tmp / "predictions.csv"
        check.run([args.incept, "predict", "--model", run_dir, "--out", csv_path] + paths)
        with open(csv_path) as f:
            rows = {Path(r["path"]): r for r in csv.DictReader(f)}
        expected = np.array([[float(rows[p][f"probability_{c}"]) for c in config["classes"]] for p in paths], np.float32)
        checkpoint = {k: v for k, v in load_file(run_dir / "best.safetensors").items() if not k.startswith("optimizer/")}

        archive = tmp / "model.keras"
        assert keras_export.main(["--model", str(run_dir), "--out", str(archive)]) == 0
        meta = json.loads(zipfile.ZipFile(archive).read("metadata.json"))["incept"]
        checks.check("keras metadata", meta["preprocess"] == config["preprocess"] and meta["classes"] == config["classes"],
                     f"preprocess {meta['preprocess']}, classes {meta['classes']}")
        x = check.preprocessed(paths, meta["preprocess"])
        loaded = keras.saving.load_model(archive)
        diff = float(np.abs(loaded.predict(x, verbose=0) - expected).max())
        checks.check("keras load_model .keras", diff <= check.TOLERANCE, f"max |keras - incept| = {diff:.3g}")

        weights = tmp / "model.weights.h5"
        assert keras_export.main(["--model", str(run_dir), "--out", str(weights), "--weights-only"]) == 0
        fresh, _, _ = keras_export.build(config)
        fresh.load_weights(weights)
        diff = float(np.abs(fresh.predict(x, verbose=0) - expected).max())
        checks.check("keras load_weights .weights.h5", diff <= check.TOLERANCE, f"max |keras - incept| = {diff:.3g}")

        for source in (archive, weights):
            back = tmp / "back.safetensors"
            assert keras_h5_to_safetensors.main([str(source), str(back)]) == 0
            got = load_file(back)
            same = set(got) == set(checkpoint) and all(np.array_equal(got[k], checkpoint[k]) for k in checkpoint)
            checks.check(f"round trip {source.name}", same, f"{len(got)} tensors, {len(checkpoint)} in the checkpoint")
    print(f"deploy-check result: {checks.passed} passed; {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
