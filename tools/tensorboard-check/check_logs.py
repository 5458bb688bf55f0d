"""Proof of `incept train`'s TensorBoard logs against TensorBoard's own reader.

Trains a tiny run for two epochs, resumes it to three, then loads
RUN/logs/train and RUN/logs/validation with tensorboard's EventAccumulator
(the reader behind `tensorboard --logdir`) and checks that:
- every scalar (epoch_loss, epoch_accuracy, epoch_learning_rate in train;
  epoch_loss, epoch_accuracy, epoch_auc in validation) has one value per
  epoch, at step = history.csv's epoch, equal to history.csv's value (as
  float32, the precision of a TensorBoard scalar): the resume appended
  without repeating a step;
- the configuration text of each trainer process is at the epoch it
  started from, and the last one is run.json;
- the last confusion-matrix image is at the best epoch (the monitored
  quantity's best in history.csv) and decodes as a PNG of its stated size.
"""

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "deploy-check"))
from check import Checks, make_dataset  # noqa: E402  (the deploy check's tiny dataset)

TRAIN_SCALARS = {"epoch_loss": "loss", "epoch_accuracy": "accuracy", "epoch_learning_rate": "lr"}
VALIDATION_SCALARS = {"epoch_loss": "val_loss", "epoch_accuracy": "val_accuracy", "epoch_auc": "val_auc"}


def run(cmd):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"tensorboard-check: {' '.join(map(str, cmd))} failed:\n{out.stdout}{out.stderr}")


def load(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def check_scalars(checks: Checks, split: str, acc: EventAccumulator, tags: dict, history: list):
    have = acc.Tags()["scalars"]
    for tag, column in tags.items():
        expected = [(int(r["epoch"]), float(r[column])) for r in history if r[column] != ""]
        found = [(e.step, e.value) for e in acc.Scalars(tag)] if tag in have else []
        same_steps = [s for s, _ in found] == [s for s, _ in expected]
        close = same_steps and all(np.float32(v) == np.float32(x) for (_, v), (_, x) in zip(found, expected))
        checks.check(f"{split}/{tag}", close, f"steps {[s for s, _ in found]}, history.csv epochs {[s for s, _ in expected]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incept", required=True, type=Path)
    ap.add_argument("--weights", required=True, type=Path, help="a pretrained base (weights/fetch.sh)")
    ap.add_argument("--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="incept-tensorboard-check-") as tmp:
        tmp = Path(tmp)
        make_dataset(tmp / "data", args.fashion_mnist)
        run_dir = tmp / "run"
        run([args.incept, "train", "--data", tmp / "data", "--weights", args.weights, "--out", run_dir,
             "--image-size", 75, "--epochs", 2, "--batch", 3, "--seed", 1])
        run([args.incept, "train", "--resume", run_dir, "--epochs", 3])

        with open(run_dir / "history.csv") as f:
            history = list(csv.DictReader(f))
        checks.check("history", [r["epoch"] for r in history] == ["1", "2", "3"], f"epochs {[r['epoch'] for r in history]}")
        logs = run_dir / "logs"
        for split in ("train", "validation"):
            files = sorted(p.name for p in (logs / split).iterdir())
            checks.check(f"{split} files", len(files) == 2, f"one event file per trainer process: {files}")
        train, validation = load(logs / "train"), load(logs / "validation")
        check_scalars(checks, "train", train, TRAIN_SCALARS, history)
        check_scalars(checks, "validation", validation, VALIDATION_SCALARS, history)

        # One text summary per trainer process, at the epoch it started from; the last is run.json now.
        config = train.Tensors("configuration") if "configuration" in train.Tags()["tensors"] else []
        text = config[-1].tensor_proto.string_val[0].decode() if config else ""
        body = text.removeprefix("```\n").removesuffix("\n```")
        same = bool(body) and json.loads(body) == json.loads((run_dir / "run.json").read_text())
        steps = [c.step for c in config]
        checks.check("train/configuration", same and steps == [0, 2], f"text summaries at steps {steps}, the last equal to run.json: {same}")

        run_json = json.loads((run_dir / "run.json").read_text())
        monitor = run_json.get("callbacks", {}).get("monitor", "val_loss")
        values = [float(r[monitor]) for r in history]
        best = 1 + (int(np.argmin(values)) if monitor == "val_loss" else int(np.argmax(values)))
        images = validation.Images("confusion_matrix") if "confusion_matrix" in validation.Tags()["images"] else []
        last = images[-1] if images else None
        decoded = Image.open(io.BytesIO(last.encoded_image_string)) if last else None
        ok = last is not None and last.step == best and decoded.size == (last.width, last.height)
        detail = f"image steps {[i.step for i in images]}, best epoch by {monitor}: {best}"
        checks.check("validation/confusion_matrix", ok, detail + (f", PNG {decoded.size}" if decoded else ""))
    print(f"tensorboard-check result: {checks.passed} passed; {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
