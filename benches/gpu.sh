#!/usr/bin/env bash
# One measurement run on a lent GPU machine (see ../shared/DEVICE.md): our
# conv kernels on every InceptionV3 conv shape (tiled and register-blocked
# variants) and libtorch on the same shapes, TF32 off and on. Full logs go
# to $OUT; the tables are printed.
set -uo pipefail
OUT=${OUT:-/tmp/incept-gpu}
mkdir -p "$OUT"
bin=${INCEPT_BIN:-target/release/incept}
$bin devices 2>&1 | tee "$OUT/devices.txt"
$bin bench kernels --list --image-size 224 > "$OUT/shapes.csv"
$bin bench kernels --batch 8 --image-size 224 --algo tiled --min-time 0.3 2>&1 | tee "$OUT/incept_tiled.txt"
$bin bench kernels --batch 8 --image-size 224 --algo blocked --min-time 0.3 2>&1 | tee "$OUT/incept_blocked.txt"
PYTHONUNBUFFERED=1 python3 benches/libtorch/conv_shapes.py "$OUT/shapes.csv" --batch 8 2>&1 | tee "$OUT/libtorch.txt"
