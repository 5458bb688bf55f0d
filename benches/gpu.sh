#!/usr/bin/env bash
# One measurement run on a GPU machine (one prepared run, as GPU time is scarce): the
# kernel tests on the GPU adapter, our conv variants on every InceptionV3 conv
# shape and the whole model, libtorch on the same work (TF32 off and on), and,
# when INCEPT_FINETUNE_DATA and INCEPT_FINETUNE_WEIGHTS are set, the fmnist4
# fine-tune at 224². Logs go to $OUT; the tables are printed.
set -uo pipefail
OUT=${OUT:-/tmp/incept-gpu}
mkdir -p "$OUT"
bin=${INCEPT_BIN:-target/release/incept}
$bin devices 2>&1 | tee "$OUT/devices.txt"
for t in ${INCEPT_TEST_BINS:-}; do
  echo "== test binary $t"
  "$t" --test-threads=4 2>&1 | tail -3
done 2>&1 | tee "$OUT/tests.txt"
$bin bench kernels --list --image-size 224 > "$OUT/shapes.csv"
for algo in tiled tiled-large; do
  $bin bench kernels --batch 8 --image-size 224 --algo $algo --min-time 0.2 --check 2>&1 | tee "$OUT/incept_kernels_$algo.txt"
done
# The other kernel-lab families, every variant checked against its oracle, then timed.
for f in conv-backward-input conv-backward-filter matmul batchnorm batchnorm-backward pool pool-backward; do
  $bin bench kernels --family $f --batch 8 --image-size 224 --min-time 0.2 2>&1 | tee "$OUT/incept_lab_$f.txt"
done
for algo in tiled tiled-large; do
  for s in 224 299; do
    echo "== INCEPT_CONV_ALGO=$algo"
    INCEPT_CONV_ALGO=$algo $bin bench model --batch 32 --image-size $s --iters 5 2>&1
  done
done | tee "$OUT/incept_model.txt"
PYTHONUNBUFFERED=1 python3 benches/libtorch/conv_shapes.py "$OUT/shapes.csv" --batch 8 2>&1 | tee "$OUT/libtorch_conv.txt"
for s in 224 299; do
  PYTHONUNBUFFERED=1 python3 benches/libtorch/inception.py --batch 32 --image-size $s 2>&1
done | tee "$OUT/libtorch_model.txt"
if [ -n "${INCEPT_FINETUNE_DATA:-}" ]; then
  $bin train --data "$INCEPT_FINETUNE_DATA" --weights "$INCEPT_FINETUNE_WEIGHTS" --out /tmp/run224 \
    --image-size 224 --epochs 10 --seed 1 2>&1 | tee "$OUT/finetune224.txt"
  $bin evaluate --model /tmp/run224 --data "$INCEPT_FINETUNE_DATA/test" 2>&1 | tee -a "$OUT/finetune224.txt"
  cp /tmp/run224/history.csv "$OUT/finetune224_history.csv"
fi
