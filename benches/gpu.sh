#!/usr/bin/env bash
# One measurement run on a lent GPU machine (see ../shared/DEVICE.md): the
# kernel tests on the GPU adapter, our conv kernels on every InceptionV3 conv
# shape and the whole model, then libtorch on the same work (TF32 off and
# on). Logs go to $OUT; the tables are printed.
set -uo pipefail
OUT=${OUT:-/tmp/incept-gpu}
mkdir -p "$OUT"
bin=${INCEPT_BIN:-target/release/incept}
tests=${INCEPT_TEST_BINS:-}
$bin devices 2>&1 | tee "$OUT/devices.txt"
for t in $tests; do
  echo "== test binary $t"
  "$t" --test-threads=4 2>&1 | tail -3
done 2>&1 | tee "$OUT/tests.txt"
$bin bench kernels --list --image-size 224 > "$OUT/shapes.csv"
$bin bench kernels --batch 8 --image-size 224 --algo tiled --min-time 0.2 2>&1 | tee "$OUT/incept_tiled.txt"
$bin bench kernels --batch 8 --image-size 224 --algo tiled-large --min-time 0.2 2>&1 | tee "$OUT/incept_tiled_large.txt"
$bin bench kernels --batch 8 --image-size 224 --algo blocked --min-time 0.2 2>&1 | tail -1 | tee "$OUT/incept_blocked.txt"
for s in 224 299; do
  $bin bench model --batch 32 --image-size $s --iters 5 2>&1 | tee -a "$OUT/incept_model.txt"
done
PYTHONUNBUFFERED=1 python3 benches/libtorch/conv_shapes.py "$OUT/shapes.csv" --batch 8 2>&1 | tee "$OUT/libtorch_conv.txt"
for s in 224 299; do
  PYTHONUNBUFFERED=1 python3 benches/libtorch/inception.py --batch 32 --image-size $s 2>&1 | tee -a "$OUT/libtorch_model.txt"
done
