#!/usr/bin/env python3
"""Proof of `incept export` against the real consumers, for every backbone.

For each pretrained base given (one per backbone: weights/fetch.sh), builds a
tiny run through the incept binary (one epoch at 75x75 on a handful of real
Fashion-MNIST images, tinted so that the three colour channels differ; at
75x75 the stride-2 layers meet odd and even sides, 75 -> 38 -> 19 -> 10 -> 5
-> 3 in EfficientNet-Lite0, so TF 'same' padding is exercised both symmetric
and uneven), classifies a few other images with `incept predict`, exports the
run, and checks that

- onnx.checker.check_model (full check) accepts the ONNX export, NHWC and NCHW,
  with a symbolic batch dimension and the run's preprocessing in metadata_props;
- ONNX Runtime's probabilities equal incept predict's within 1e-4 (absolute);
- TF.js (npm @tensorflow/tfjs, pure JS CPU backend, in Node) loads the TF.js
  export with tf.loadLayersModel and its probabilities equal incept predict's
  within 1e-4;
- the uint8-quantised TF.js export is within its quantisation bound: every
  weight, decoded as TF.js decodes it (q * scale + min), lies within half a
  quantisation step of the checkpoint's, and TF.js's probabilities equal
  incept predict's on a copy of the run whose checkpoint holds exactly those
  decoded weights, within 1e-4 (the difference to the float run is reported).

With --nsfwjs DIR (nsfwjs's own TF.js models, as weights/fetch.sh
--nsfwjs-models writes them), also checks the converted pretrained weights
against the model they came from: TF.js's output of nsfwjs's MobileNetV2 at
`out_relu` (224x224) and InceptionV3 at `mixed10` (150x150), on real photos
(tests/data/photos) and Fashion-MNIST images, preprocessed x/255, against
`incept features --layer` on the same files, within 1e-5 relative L2.
nsfwjs's MobileNetV2 opens with ZeroPadding2D `Conv1_pad` ((0, 1), (0, 1))
and a 'valid' Conv1 where incept (like Keras 3) has a 'same' Conv1: the
same padding at an even side such as 224.

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
ROOT = HERE.parent.parent
TOLERANCE = 1e-4
FEATURE_TOLERANCE = 1e-5  # relative L2, nsfwjs's TF.js model against incept features
CLASSES = {0: "tshirt", 1: "trouser", 8: "bag"}  # Fashion-MNIST labels used
# nsfwjs's TF.js models: the weights file fetch.sh converts from each, the
# layer where incept's base ends, and the input side: MobileNetV2's own 224;
# InceptionV3 at 150 instead of its 299, a quarter of the cost in TF.js's
# pure JS backend (tfjs_layer_output.js cuts the top and resizes the input).
NSFWJS = {
    "mobilenet_v2": ("mobilenet_v2_notop.safetensors", "out_relu", 224),
    "inception_v3": ("inception_v3_notop.safetensors", "mixed10", 150),
}


def fashion_mnist(source: Path):
    with gzip.open(source / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(source / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def write_image(img28: np.ndarray, tint: np.ndarray, path: Path, size: int = SIZE):
    """size x size RGB PNG: the image upscaled, tinted per channel, with a horizontal gradient."""
    gray = np.asarray(Image.fromarray(img28).resize((size, size), Image.BICUBIC), np.float32)
    ramp = np.linspace(0, 40, size, dtype=np.float32)[None, :, None]
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


def pixels(paths) -> np.ndarray:
    """NHWC float32 pixel values 0..255 (the images are already at the network's size)."""
    return np.stack([np.asarray(Image.open(p).convert("RGB"), np.uint8) for p in paths]).astype(np.float32)


def preprocessed(paths, formula_name: str) -> np.ndarray:
    """NHWC float32 batch as incept feeds its network, in its float32 arithmetic (src/data/image_file.rs)."""
    x = pixels(paths)
    if formula_name == "rescale":
        return x * np.float32(1.0 / 255.0)
    if formula_name == "inception":
        return x / np.float32(127.5) - np.float32(1.0)
    if formula_name == "lite":
        return (x - np.float32(127.0)) / np.float32(128.0)
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


def train_run(incept, weights: Path, data: Path, run_dir: Path, extra=()):
    """Trains the tiny run on `weights`' base; returns its run.json."""
    run([incept, "train", "--data", data, "--weights", weights, "--out", run_dir,
         "--image-size", SIZE, "--epochs", 1, "--batch", 3, "--seed", 1, *extra])
    return json.loads((run_dir / "run.json").read_text())


def predictions(incept, run_dir: Path, paths, classes, out_csv: Path) -> np.ndarray:
    """incept predict's probabilities [images, classes] in `classes` order."""
    run([incept, "predict", "--model", run_dir, "--out", out_csv] + list(paths))
    with open(out_csv) as f:
        rows = {Path(r["path"]): r for r in csv.DictReader(f)}
    return np.array([[float(rows[p][f"probability_{c}"]) for c in classes] for p in paths], np.float32)


def check_onnx(checks: Checks, tag: str, incept, run_dir: Path, paths, expected: np.ndarray, config: dict, nchw: bool):
    import onnx
    import onnxruntime as ort

    layout = "nchw" if nchw else "nhwc"
    path = run_dir / f"model_{layout}.onnx"
    print(run([incept, "export", "--model", run_dir, "--format", "onnx", "--out", path] + (["--nchw"] if nchw else [])), end="")
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
        checks.check(f"{tag} onnx {layout} checker", True, "onnx.checker.check_model(full_check=True) clean")
    except onnx.checker.ValidationError as e:
        checks.check(f"{tag} onnx {layout} checker", False, str(e).splitlines()[0])
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    checks.check(
        f"{tag} onnx {layout} model",
        opset >= 17 and meta.get("incept.preprocess") == config["preprocess"] and meta.get("incept.backbone") == config["backbone"]
        and batch_dim.dim_param != "" and json.loads(meta["incept.classes"]) == config["classes"],
        f"opset {opset}, batch dim '{batch_dim.dim_param}', backbone '{meta.get('incept.backbone')}', "
        f"preprocess '{meta.get('incept.preprocess')}', classes {meta.get('incept.classes')}",
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
        f"{tag} onnxruntime {layout} vs incept predict",
        got.shape == expected.shape and max(diff, diff1) <= TOLERANCE,
        f"onnxruntime {ort.__version__}, {len(paths)} images at {SIZE}x{SIZE}, probabilities in [{expected.min():.3f}, {expected.max():.3f}], "
        f"max abs difference {max(diff, diff1):.3g} (tolerance {TOLERANCE})",
    )
    path.unlink()  # up to 90 MB each


def tfjs_predict(out: Path, run_dir: Path, paths, preprocess: str) -> tuple:
    """(probabilities, detail) of the TF.js export in `out`, run by TF.js in Node."""
    inputs = run_dir / "inputs.f32"
    preprocessed(paths, preprocess).astype("<f4").tofile(inputs)
    line = run(["node", HERE / "check_tfjs.js", out, inputs, len(paths), SIZE]).strip().splitlines()[-1]
    result = json.loads(line)
    return np.array(result["probabilities"], np.float32), f"tfjs {result['tfjs']} {result['backend']} backend, {len(paths)} images at {SIZE}x{SIZE}"


def decoded_uint8_weights(out: Path) -> dict:
    """{name: float32 array} of a TF.js export's uint8 weights, decoded as tfjs-core does: q * scale + min."""
    manifest = json.loads((out / "model.json").read_text())["weightsManifest"]
    weights = {}
    for group in manifest:
        data = b"".join((out / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            q = w.get("quantization")
            if not q or q["dtype"] != "uint8":
                sys.exit(f"deploy-check: {out}/model.json: weight {w['name']} is not uint8-quantised")
            n = int(np.prod(w["shape"], dtype=np.int64))
            raw = np.frombuffer(data, np.uint8, count=n, offset=offset)
            offset += n
            weights[w["name"]] = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32).reshape(w["shape"]), q["scale"]
        if offset != len(data):
            sys.exit(f"deploy-check: {out}: the manifest describes {offset} bytes, the shards hold {len(data)}")
    return weights


def dequantised_run(run_dir: Path, weights: dict, into: Path) -> Path:
    """A copy of the run whose best checkpoint holds `weights` (its metadata kept), for incept predict."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    into.mkdir()
    shutil.copy(run_dir / "run.json", into / "run.json")
    with safe_open(str(run_dir / "best.safetensors"), "np") as f:
        metadata = f.metadata()
    save_file({k: v for k, (v, _) in weights.items()}, str(into / "best.safetensors"), metadata=metadata)
    return into


def check_tfjs(checks: Checks, tag: str, incept, run_dir: Path, paths, expected: np.ndarray, quantize: bool):
    from safetensors.numpy import load_file

    kind = "uint8" if quantize else "float32"
    out = run_dir / f"tfjs_{kind}"
    print(run([incept, "export", "--model", run_dir, "--format", "tfjs", "--out", out] + (["--quantize", "uint8"] if quantize else [])), end="")
    meta = json.loads((out / "model.json").read_text())["userDefinedMetadata"]
    got, detail = tfjs_predict(out, run_dir, paths, meta["incept.preprocess"])
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not quantize:
        checks.check(f"{tag} tfjs {kind} vs incept predict", diff <= TOLERANCE, f"{detail}, max abs difference {diff:.3g} (tolerance {TOLERANCE})")
        shutil.rmtree(out)
        return
    # uint8 changes the function: each weight may move by half a step, and
    # TF.js must compute what incept computes with the weights so moved.
    decoded = decoded_uint8_weights(out)
    checkpoint = {k: v for k, v in load_file(run_dir / "best.safetensors").items() if not k.startswith("optimizer/")}
    worst, worst_name = 0.0, ""
    for name, value in checkpoint.items():
        d, scale = decoded.get(name, (None, 1.0))
        excess = float("inf") if d is None or d.shape != value.shape else float(np.abs(d.astype(np.float64) - value).max() / scale)
        if excess > worst:
            worst, worst_name = excess, name
    checks.check(
        f"{tag} tfjs uint8 weights within half a step",
        set(decoded) == set(checkpoint) and worst <= 0.5 + 1e-3,
        f"{len(decoded)} weights decoded as q*scale+min, {len(checkpoint)} in the checkpoint; "
        f"largest |decoded - checkpoint| = {worst:.4f} steps ({worst_name})",
    )
    deq = dequantised_run(run_dir, decoded, run_dir.parent / f"{run_dir.name}_uint8")
    expected_q = predictions(incept, deq, paths, json.loads((run_dir / "run.json").read_text())["classes"], deq / "predictions.csv")
    diff_q = float(np.abs(got - expected_q).max()) if got.shape == expected_q.shape else float("inf")
    checks.check(
        f"{tag} tfjs uint8 vs incept predict on the decoded weights",
        diff_q <= TOLERANCE,
        f"{detail}, max abs difference {diff_q:.3g} (tolerance {TOLERANCE}); to the float32 run: {diff:.3g}",
    )
    shutil.rmtree(out)
    shutil.rmtree(deq)


def check_backbone(checks: Checks, incept, weights: Path, data: Path, paths, tmp: Path):
    run_dir = tmp / f"run_{weights.stem}"
    config = train_run(incept, weights, data, run_dir)
    tag = config["backbone"]
    expected = predictions(incept, run_dir, paths, config["classes"], tmp / f"predictions_{tag}.csv")
    for nchw in (False, True):
        check_onnx(checks, tag, incept, run_dir, paths, expected, config, nchw)
    for quantize in (False, True):
        check_tfjs(checks, tag, incept, run_dir, paths, expected, quantize)
    shutil.rmtree(run_dir)


def nsfwjs_images(root: Path, size: int, photos: Path, fmnist: Path):
    """The photos and two tinted Fashion-MNIST images at size x size (PNG, so incept and TF.js read the same pixels)."""
    paths = []
    for photo in sorted(photos.glob("*.png")):
        path = root / f"{photo.stem}_{size}.png"
        img = Image.open(photo).convert("RGB")
        (img if img.size == (size, size) else img.resize((size, size), Image.BICUBIC)).save(path)
        paths.append(path)
    images, _ = fashion_mnist(fmnist)
    for k, tint in ((0, (1.0, 0.7, 0.4)), (1, (0.5, 0.9, 1.0))):
        paths.append(root / f"fmnist{k}_{size}.png")
        write_image(images[k], np.array(tint, np.float32), paths[-1], size)
    return paths


def check_nsfwjs(checks: Checks, incept, nsfwjs: Path, weights_by_name: dict, photos: Path, fmnist: Path, tmp: Path):
    from safetensors.numpy import load_file

    for model, (file, layer, size) in NSFWJS.items():
        weights = weights_by_name.get(file)
        if weights is None:
            checks.check(f"nsfwjs {model} {layer}", False, f"no --weights named {file} to compare with")
            continue
        paths = nsfwjs_images(tmp, size, photos, fmnist)
        x = pixels(paths) * np.float32(1.0 / 255.0)
        inputs, output = tmp / f"nsfwjs_{model}.f32", tmp / f"nsfwjs_{model}_out.f32"
        x.astype("<f4").tofile(inputs)
        line = run(["node", HERE / "tfjs_layer_output.js", nsfwjs / model, layer, inputs, len(paths), size, output]).strip().splitlines()[-1]
        result = json.loads(line)
        reference = np.fromfile(output, "<f4").reshape(result["shape"])
        features = tmp / f"features_{model}.safetensors"
        run([incept, "features", "--weights", weights, "--layer", layer, "--image-size", size,
             "--preprocess", "rescale", "--out", features] + paths)
        got = load_file(features)["features"]
        if got.shape != reference.shape:
            checks.check(f"nsfwjs {model} {layer} vs incept features", False, f"shape {got.shape}, TF.js {reference.shape}")
            continue
        diff = got.astype(np.float64) - reference
        rel = float(np.linalg.norm(diff) / np.linalg.norm(reference))
        per_image = max(float(np.linalg.norm(d) / np.linalg.norm(r)) for d, r in zip(diff, reference.astype(np.float64)))
        checks.check(
            f"nsfwjs {model} {layer}: TF.js vs incept features",
            rel <= FEATURE_TOLERANCE and per_image <= FEATURE_TOLERANCE,
            f"tfjs {result['tfjs']} on nsfwjs's own model (input {size}x{size}, its own {result['native']}), {len(paths)} images ({', '.join(p.stem for p in paths)}) "
            f"x/255, output {list(reference.shape)}; relative L2 {rel:.3g}, worst image {per_image:.3g} (tolerance {FEATURE_TOLERANCE})",
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incept", required=True, type=Path)
    ap.add_argument("--weights", required=True, type=Path, nargs="+", help="pretrained bases (weights/fetch.sh), one run each")
    ap.add_argument("--nsfwjs", type=Path, help="nsfwjs's TF.js models: DIR/{mobilenet_v2,inception_v3}/{model.json,weights.bin}")
    ap.add_argument("--photos", type=Path, default=ROOT / "tests/data/photos")
    ap.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="incept-deploy-check-") as tmp:
        tmp = Path(tmp)
        paths = make_dataset(tmp / "data", args.fashion_mnist)
        for weights in args.weights:
            check_backbone(checks, args.incept, weights, tmp / "data", paths, tmp)
        if args.nsfwjs:
            check_nsfwjs(checks, args.incept, args.nsfwjs, {w.name: w for w in args.weights}, args.photos, args.fashion_mnist, tmp)
    print(f"deploy-check result: {checks.passed} passed; {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
