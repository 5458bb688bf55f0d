"""Checks the page headless Chromium rendered from `incept report` against the run's own files.

The DOM Chromium dumped must hold every section, the run's configuration,
class names, per-epoch validation losses (history.csv), the test accuracy
and each class's precision (metrics.json) and the profile's top kernel
(profile.json); every picture must be an embedded PNG that decodes; the
page must load nothing from outside itself and need no script; and the
screenshot must not be blank.
"""

import argparse
import base64
import csv
import json
import re
import struct
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

SECTIONS = ["summary", "dataset", "training", "evaluation", "gradcam", "profile", "configuration"]


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text = []
        self.sections = []
        self.images = []
        self.scripts = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith("data:") and not value.startswith("#"):
                self.external.append(f"<{tag} {key}={value[:60]}>")

    def handle_data(self, data):
        self.text.append(data)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail):
        print(f"check {name} ... {'ok' if ok else 'FAILED'} ({detail})", flush=True)
        self.passed += bool(ok)
        self.failed += not ok


def png_ok(data: bytes) -> bool:
    """A PNG whose IHDR chunk's CRC holds: the bytes survived the embedding."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 33:
        return False
    length, kind = struct.unpack(">I4s", data[8:16])
    return kind == b"IHDR" and zlib.crc32(data[12:16 + length]) == struct.unpack(">I", data[16 + length:20 + length])[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--dom", type=Path, required=True, help="chromium --dump-dom of the report")
    ap.add_argument("--html", type=Path, required=True, help="the report file itself")
    ap.add_argument("--screenshot", type=Path, required=True)
    args = ap.parse_args()
    checks = Checks()

    page = Page()
    page.feed(args.dom.read_text())
    text = re.sub(r"\s+", " ", " ".join(page.text))
    checks.check("sections", page.sections == SECTIONS, f"{page.sections}")

    config = json.loads((args.run / "run.json").read_text())
    wanted = [config["backbone"], str(config["image_size"]), *config["classes"]]
    missing = [w for w in wanted if w not in text]
    checks.check("configuration and classes", not missing, f"missing: {missing}" if missing else f"{len(wanted)} values shown")

    with open(args.run / "history.csv") as f:
        history = list(csv.DictReader(f))
    losses = [f"{float(r['val_loss']):.4f}" for r in history]
    checks.check("per-epoch validation loss", all(v in text for v in losses), f"history.csv val_loss {losses}")

    metrics = json.loads((args.run / "metrics.json").read_text())
    numbers = [f"{metrics['accuracy']:.4f}", *(f"{c['precision']:.4f}" for c in metrics["per_class"])]
    checks.check("test metrics", all(n in text for n in numbers), f"metrics.json accuracy and precisions {numbers}")

    profile = json.loads((args.run / "profile.json").read_text())
    top = profile["variants"][0]["name"]
    checks.check("profile", top in text, f"top kernel {top}")

    embedded = [src for src in page.images if src.startswith("data:image/png;base64,")]
    decoded = [png_ok(base64.b64decode(src.split(",", 1)[1])) for src in embedded]
    gradcams = len(list((args.run / "gradcam").glob("*.gradcam.png")))
    # loss, accuracy, AUC, 4 from evaluate, the Grad-CAM pictures, the profile chart.
    expected = 3 + 4 + gradcams + 1
    checks.check("pictures", len(page.images) == expected and all(decoded),
                 f"{len(page.images)} <img>, {len(embedded)} embedded PNGs, {sum(decoded)} decode, expected {expected}")
    checks.check("self-contained", not page.external and page.scripts == 0,
                 f"external references {page.external}, {page.scripts} scripts")
    raw = args.html.read_text()
    checks.check("no network in the file", re.search(r"(src|href)=\"(https?:)?//", raw) is None, "no src/href to another host")

    shot = args.screenshot.read_bytes()
    size = struct.unpack(">II", shot[16:24]) if png_ok(shot) else (0, 0)
    body = zlib.decompress(b"".join(shot[i + 8:i + 8 + struct.unpack(">I", shot[i:i + 4])[0]]
                                    for i in chunk_offsets(shot, b"IDAT"))) if size != (0, 0) else b""
    distinct = len(set(body[::97]))
    checks.check("screenshot", size[0] > 0 and distinct > 8, f"{size[0]}x{size[1]}, {distinct} distinct sampled bytes")
    print(f"report-check result: {checks.passed} passed; {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


def chunk_offsets(png: bytes, kind: bytes):
    """Offsets of the chunks of one kind (at their length field)."""
    at = 8
    while at + 8 <= len(png):
        length, k = struct.unpack(">I4s", png[at:at + 8])
        if k == kind:
            yield at
        at += 12 + length


if __name__ == "__main__":
    main()
