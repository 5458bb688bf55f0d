#!/usr/bin/env python3
"""Prints the 1000 ImageNet-1k class names, in class-index order, as a JSON array.

usage: python3 tools/imagenet_classes.py TORCHVISION_WHEEL > imagenet_classes.json

The names come from torchvision's `torchvision/models/_meta.py`
(`_IMAGENET_CATEGORIES`, one short name per class, the list torchvision's
pretrained classifiers report with). The wheel is opened as the zip file it is
and the list is read with `ast.literal_eval`: nothing from the wheel is
imported or executed, and no third-party module is needed.

Exits non-zero, naming the wheel, when the file or the list is missing or is
not 1000 distinct non-empty strings.
"""
import ast
import json
import sys
import zipfile

META = "torchvision/models/_meta.py"
LIST_NAME = "_IMAGENET_CATEGORIES"
NUM_CLASSES = 1000


def fail(message):
    print(f"imagenet_classes: {message}", file=sys.stderr)
    sys.exit(1)


def read_categories(wheel):
    try:
        with zipfile.ZipFile(wheel) as archive:
            source = archive.read(META).decode("utf-8")
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        fail(f"{wheel}: cannot read {META}: {e}")
    # Find the module-level assignment without running the module.
    for node in ast.parse(source, filename=META).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == LIST_NAME for t in node.targets
        ):
            try:
                return ast.literal_eval(node.value)
            except ValueError as e:
                fail(f"{wheel}: {META}: {LIST_NAME} is not a literal: {e}")
    fail(f"{wheel}: {META} has no assignment to {LIST_NAME}")


def main():
    if len(sys.argv) != 2:
        fail("usage: imagenet_classes.py TORCHVISION_WHEEL")
    wheel = sys.argv[1]
    names = read_categories(wheel)
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        fail(f"{wheel}: {LIST_NAME} is not a list of non-empty strings")
    if len(names) != NUM_CLASSES:
        fail(f"{wheel}: {LIST_NAME} has {len(names)} names, expected {NUM_CLASSES}")
    # torchvision disambiguates its two "crane"s and "maillot"s; any other
    # repeat would make a predicted name ambiguous.
    if len(set(names)) != NUM_CLASSES:
        repeated = sorted({n for n in names if names.count(n) > 1})
        fail(f"{wheel}: {LIST_NAME} repeats {repeated}")
    json.dump(names, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
