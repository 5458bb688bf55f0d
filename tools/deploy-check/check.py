#!/usr/bin/env python3
"""Proof of `incept export` against the real consumers.

Builds a tiny run through the incept binary (real pretrained base weights,
one epoch at 75x75 on a handful of real Fashion-MNIST images, tinted so that
the three colour channels differ), classifies a few other images with
`incept predict`, exports the run, and checks that

- onnx.checker.check_model (full check) accepts the ONNX export, NHWC and NCHW,
  with a symbolic batch dimension and the run's preprocessing in metadata_props;
- ONNX Runtime's probabilities equal incept predict's within 1e-4 (absolute);
- TF.js (npm @tensorflow/tfjs, pure JS CPU backend, in Node) loads the TF.js
  export with tf.loadLayersModel and its probabilities equal incept predict's
  within 1e-4; the uint8-quantised export loads and runs (difference reported).

Prints one line per check and closes with `deploy-check result: N passed; M failed`.
"""
import argparse
import csv
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 75
HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-4
CLASSES = {0: "tshirt", 1: "trouser", 8: "bag"}  # Fashion-MNIST labels used


def fashion_mnist(source: Path):
    with gzip.open(source / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(source / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def write_image(img28: np.ndarray, tint: np.ndarray, path: Path):
    """75x75 RGB PNG: the image upscaled, tinted per channel, with a horizontal gradient."""
    gray = np.asarray(Image.fromarray(img28).resize((SIZE, SIZE), Image.BICUBIC), np.float32)
    ramp = np.linspace(0, 40, SIZE, dtype=np.float32)[None, :, None]
    rgb = np.clip(gray[:, :, None] * tint[None, None, :] + ramp, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path)


def make_dataset(root: Path, source: Path):
    """train 3 / valid 2 per class, and 6 images to predict; returns their paths."""
    images, labels = fashion_mnist(source)
    rng = np.random.default_rng(7)
    predict = []
    for label, name in CLASSES.items():
        idx = np.flatnonzero(labels == label)
        for i, k in enumerate(idx[:7]):
            split, j = ("train", i) if i < 3 else ("valid", i - 3) if i < 5 else ("predict", i - 5)
            path = root / split / name / f"{j}.png"
            write_image(images[k], rng.uniform(0.3, 1.0, 3).astype(np.float32), path)
            if split == "predict":
                predict.append(path)
    return predict


def run(cmd):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"deploy-check: {' '.join(map(str, cmd))} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def preprocessed(paths, formula_name: str) -> np.ndarray:
    """NHWC float32 batch as incept feeds its network (images are already SIZE x SIZE)."""
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), np.uint8) for p in paths]).astype(np.float32)
    if formula_name == "rescale":
        return x * np.float32(1.0 / 255.0)
    if formula_name == "inception":
        return x / np.float32(127.5) - np.float32(1.0)
    sys.exit(f"deploy-check: unknown preprocessing '{formula_name}' in the export's metadata")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str):
        print(f"check {name} ... {'ok' if ok else 'FAILED'} ({detail})", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def check_onnx(checks: Checks, incept, run_dir: Path, paths, expected: np.ndarray, config: dict, nchw: bool):
    import onnx
    import onnxruntime as ort

    layout = "nchw" if nchw else "nhwc"
    path = run_dir / f"model_{layout}.onnx"
    print(run([incept, "export", "--model", run_dir, "--format", "onnx", "--out", path] + (["--nchw"] if nchw else [])), end="")
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
        checks.check(f"onnx {layout} checker", True, "onnx.checker.check_model(full_check=True) clean")
    except onnx.checker.ValidationError as e:
        checks.check(f"onnx {layout} checker", False, str(e).splitlines()[0])
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    checks.check(
        f"onnx {layout} model",
        opset >= 17 and meta.get("incept.preprocess") == config["preprocess"] and batch_dim.dim_param != "" and json.loads(meta["incept.classes"]) == config["classes"],
        f"opset {opset}, batch dim '{batch_dim.dim_param}', preprocess '{meta.get('incept.preprocess')}', classes {meta.get('incept.classes')}",
    )
    x = preprocessed(paths, meta["incept.preprocess"])
    if nchw:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: x})[0]
    # Batch 1 too: the batch dimension is dynamic.
    single = session.run(None, {name: x[:1]})[0]
    diff = float(np.abs(got - expected).max())
    diff1 = float(np.abs(single - expected[:1]).max())
    checks.check(
        f"onnxruntime {layout} vs incept predict",
        got.shape == expected.shape and max(diff, diff1) <= TOLERANCE,
        f"onnxruntime {ort.__version__}, {len(paths)} images at {SIZE}x{SIZE}, probabilities in [{expected.min():.3f}, {expected.max():.3f}], "
        f"max abs difference {max(diff, diff1):.3g} (tolerance {TOLERANCE})",
    )
    path.unlink()  # 90 MB each


def check_tfjs(checks: Checks, incept, run_dir: Path, paths, expected: np.ndarray, config: dict, quantize: bool):
    kind = "uint8" if quantize else "float32"
    out = run_dir / f"tfjs_{kind}"
    print(run([incept, "export", "--model", run_dir, "--format", "tfjs", "--out", out] + (["--quantize", "uint8"] if quantize else [])), end="")
    meta = json.loads((out / "model.json").read_text())["userDefinedMetadata"]
    x = preprocessed(paths, meta["incept.preprocess"])
    inputs = run_dir / "inputs.f32"
    x.astype("<f4").tofile(inputs)
    line = run(["node", HERE / "check_tfjs.js", out, inputs, len(paths), SIZE]).strip().splitlines()[-1]
    result = json.loads(line)
    got = np.array(result["probabilities"], np.float32)
    diff = float(np.abs(got - expected).max())
    detail = f"tfjs {result['tfjs']} {result['backend']} backend, {len(paths)} images at {SIZE}x{SIZE}, max abs difference {diff:.3g}"
    if quantize:
        # uint8 weights change the function: the check is that TF.js loads and runs it, the figure is reported.
        checks.check(f"tfjs {kind} loads and predicts", got.shape == expected.shape and np.allclose(got.sum(axis=1), 1, atol=1e-5), detail)
    else:
        checks.check(f"tfjs {kind} vs incept predict", got.shape == expected.shape and diff <= TOLERANCE, f"{detail} (tolerance {TOLERANCE})")
    shutil.rmtree(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incept", required=True, type=Path)
    ap.add_argument("--weights", required=True, type=Path, help="pretrained base (weights/fetch.sh)")
    ap.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="incept-deploy-check-") as tmp:
        tmp = Path(tmp)
        paths = make_dataset(tmp / "data", args.fashion_mnist)
        run_dir = tmp / "run"
        run([args.incept, "train", "--data", tmp / "data", "--weights", args.weights, "--out", run_dir,
             "--image-size", SIZE, "--epochs", 1, "--batch", 3, "--seed", 1])
        config = json.loads((run_dir / "run.json").read_text())
        csv_path = tmp / "predictions.csv"
        run([args.incept, "predict", "--model", run_dir, "--out", csv_path] + paths)
        with open(csv_path) as f:
            rows = {Path(r["path"]): r for r in csv.DictReader(f)}
        expected = np.array([[float(rows[p][f"probability_{c}"]) for c in config["classes"]] for p in paths], np.float32)
        for nchw in (False, True):
            check_onnx(checks, args.incept, run_dir, paths, expected, config, nchw)
        for quantize in (False, True):
            check_tfjs(checks, args.incept, run_dir, paths, expected, config, quantize)
    print(f"deploy-check result: {checks.passed} passed; {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
