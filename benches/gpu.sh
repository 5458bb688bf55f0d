#!/usr/bin/env bash
# One measurement run on a GPU machine (one prepared run, as GPU time is
# scarce; nothing is built there), f32 and mixed precision side by side:
#
#   tests     the GPU modules of the test suite in INCEPT_SUITE (all their
#             tests, then the ignored ones of conv_coop and parity, which
#             need cooperative matrices);
#   lab       the conv kernel lab at b8 224² (every variant checked against the
#             Direct oracle, then timed; `coop` and `coop-f16`, over f32 and f16
#             activations, appear where the adapter has cooperative matrices),
#             the families in LAB_FAMILIES (default
#             none; e.g. "conv-backward-input matmul") and libtorch's convs;
#   model     `incept bench model` b32 at 224² and 299², --precision f32 and
#             mixed, f32 at 224² again with INCEPT_SHADER_CHECKS=off (shader
#             modules without naga's runtime checks), and libtorch on the same
#             work with TF32 off and on;
#   finetune  with INCEPT_FINETUNE_DATA and INCEPT_FINETUNE_WEIGHTS: the fmnist4
#             fine-tune at 224² (10 epochs, seed 1) and its test evaluation,
#             with each precision.
#
# usage: OUT=DIR bash benches/gpu.sh      (STAGES="tests lab model finetune" by default)
# env:   INCEPT_BIN (default target/release/incept), INCEPT_SUITE (the
#        prebuilt `cargo test --release --no-run --test suite` binary; its
#        GPU modules run: conv_coop, parity, coop_shader and gpu, and the
#        ignored tests of conv_coop and parity), INCEPT_FINETUNE_DATA, INCEPT_FINETUNE_WEIGHTS, PYTHON
#        (default python3, with torch + torchvision), LAB_MIN_TIME (default
#        0.1 s per row), MODEL_ITERS (default 10), EPOCHS (default 10).
# Full logs go to $OUT; the summary table is printed last (and saved as
# $OUT/table.md). Sized to stay well under 12 minutes on an H200.
#
# Prepared here (../shared/DEVICE.md: no Rust toolchain there): the loader
# packages in .gl/, then
#   cargo build --release --locked
#   cargo test --release --locked --no-run --test suite
# and the binary it names ("Executable tests/suite.rs (target/release/deps/suite-…)")
# copied to .gpu/ with target/release/incept; the fine-tune also needs data/fmnist4 (copied, not a
# link) and the base weights stored as f16 (`incept convert storage W --out .gpu/w16.safetensors
# --f16`, 44 MB), more than one 64 MiB transfer holds together with the binaries: run STAGES="tests
# lab model" first and STAGES=finetune next on the still-warm machine. tests/parity.rs reads
# weights/inception_v3_notop.safetensors: the f16 file there gives the mixed-precision parity with
# f16-stored BatchNorm parameters on top (its f32 tests then measure f16 storage).
set -uo pipefail
OUT=${OUT:-/tmp/incept-gpu}
mkdir -p "$OUT"
bin=${INCEPT_BIN:-target/release/incept}
py=${PYTHON:-python3}
stages=" ${STAGES:-tests lab model finetune} "
min_time=${LAB_MIN_TIME:-0.1}
iters=${MODEL_ITERS:-10}
epochs=${EPOCHS:-10}
export PYTHONUNBUFFERED=1
want() { [[ "$stages" == *" $1 "* ]]; }
stamp() { echo "== $* ($(date -u +%H:%M:%S))"; }

$bin devices 2>&1 | tee "$OUT/devices.txt"
if ! grep -q "^selected: " "$OUT/devices.txt"; then
  echo "gpu.sh: incept found no adapter; environment:" >&2
  env | grep -E '^(VK_|LD_LIBRARY|NVIDIA)' >&2
  exit 1
fi
# "usable for --precision mixed" appears in the selected adapter's description when it has the configuration.
selected=$(sed -n 's/^selected: //p' "$OUT/devices.txt")
if grep -F -A5 "] $selected" "$OUT/devices.txt" | grep -q "usable for --precision mixed"; then
  precisions="f32 mixed"
else
  precisions="f32"
  echo "gpu.sh: $selected has no usable cooperative-matrix configuration: f32 only" | tee -a "$OUT/devices.txt"
fi

if want tests; then
  {
    if [ -n "${INCEPT_SUITE:-}" ]; then
      stamp "test suite: conv_coop parity coop_shader gpu"
      "$INCEPT_SUITE" conv_coop:: parity:: coop_shader:: gpu:: --test-threads=4 2>&1 | tail -3
      stamp "test suite: conv_coop parity --ignored"
      "$INCEPT_SUITE" conv_coop:: parity:: --ignored --test-threads=1 --nocapture 2>&1 | tail -40
    fi
  } 2>&1 | tee "$OUT/tests.txt"
fi

if want lab; then
  $bin bench kernels --conv-shapes-csv --image-size 224 > "$OUT/shapes.csv"
  stamp "conv kernel lab"
  $bin bench kernels --family conv --batch 8 --image-size 224 --min-time "$min_time" 2>&1 | tee "$OUT/incept_lab_conv.txt"
  for f in ${LAB_FAMILIES:-}; do
    $bin bench kernels --family $f --batch 8 --image-size 224 --min-time "$min_time" 2>&1 | tee "$OUT/incept_lab_$f.txt"
  done
  stamp "libtorch conv shapes"
  $py benches/libtorch/conv_shapes.py "$OUT/shapes.csv" --batch 8 2>&1 | tee "$OUT/libtorch_conv.txt"
fi

if want model; then
  for s in 224 299; do
    for p in $precisions; do
      stamp "incept bench model b32 ${s}² --precision $p"
      $bin bench model --batch 32 --image-size $s --iters "$iters" --precision $p 2>&1 | tee "$OUT/incept_model_${s}_$p.txt"
    done
    if [ $s = 224 ]; then
      stamp "incept bench model b32 ${s}² --precision f32, shader checks off"
      INCEPT_SHADER_CHECKS=off $bin bench model --batch 32 --image-size $s --iters "$iters" 2>&1 | tee "$OUT/incept_model_${s}_f32_unchecked.txt"
    fi
    stamp "libtorch model.py b32 ${s}²"
    $py benches/libtorch/model.py --batch 32 --image-size $s --iters "$iters" --device cuda 2>&1 | tee "$OUT/libtorch_model_$s.txt"
  done
fi

if want finetune && [ -n "${INCEPT_FINETUNE_DATA:-}" ]; then
  for p in $precisions; do
    run=/tmp/incept-run224-$p
    rm -rf "$run"
    stamp "incept train 224² --precision $p"
    $bin train --data "$INCEPT_FINETUNE_DATA" --weights "$INCEPT_FINETUNE_WEIGHTS" --out "$run" \
      --image-size 224 --epochs "$epochs" --seed 1 --precision $p 2>&1 | tee "$OUT/finetune224_$p.txt"
    $bin evaluate --model "$run" --data "$INCEPT_FINETUNE_DATA/test" --precision $p 2>&1 | tee -a "$OUT/finetune224_$p.txt"
    cp "$run/history.csv" "$OUT/finetune224_${p}_history.csv"
  done
fi

# The summary: one table of images/s (model), TFLOP/s over the conv shapes (lab) and test accuracy (fine-tune).
{
  echo "adapter: $selected   date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
  echo
  echo "| work | ours f32 | ours mixed | libtorch TF32 off | libtorch TF32 on |"
  echo "|---|---:|---:|---:|---:|"
  rate() { [ -f "$2" ] && awk -v w="$1" 'index($0, w) == 1 { for (i = 2; i <= NF; i++) if ($i == "images/s") print $(i - 1) }' "$2" | head -1; }
  torch() { [ -f "$3" ] && awk -v w="$1" -v v="$2" '$1 == "libtorch" && $2 == w && $3 == v { print $4 }' "$3" | head -1; }
  for s in 224 299; do
    for work in forward fine-tune; do
      twork=$([ $work = forward ] && echo forward || echo step)
      echo "| $work b32 ${s}² (images/s) | $(rate $work "$OUT/incept_model_${s}_f32.txt") | $(rate $work "$OUT/incept_model_${s}_mixed.txt") | $(torch $twork tf32-off "$OUT/libtorch_model_$s.txt") | $(torch $twork tf32-on "$OUT/libtorch_model_$s.txt") |"
    done
    # Peak memory of the step: incept's pool ("… images/s   peak N MiB"), torch.cuda.max_memory_allocated ("… ms/batch peak N MiB").
    peak() { [ -f "$2" ] && awk -v w="$1" 'index($0, w) == 1 { for (i = 2; i <= NF; i++) if ($i == "peak") print $(i + 1) }' "$2" | head -1; }
    tpeak() { [ -f "$3" ] && awk -v w="$1" -v v="$2" '$1 == "libtorch" && $2 == w && $3 == v { for (i = 4; i <= NF; i++) if ($i == "peak") print $(i + 1) }' "$3" | head -1; }
    echo "| fine-tune step b32 ${s}² peak memory (MiB) | $(peak fine-tune "$OUT/incept_model_${s}_f32.txt") | $(peak fine-tune "$OUT/incept_model_${s}_mixed.txt") | $(tpeak step tf32-off "$OUT/libtorch_model_$s.txt") | $(tpeak step tf32-on "$OUT/libtorch_model_$s.txt") |"
  done
  for work in forward fine-tune; do
    echo "| $work b32 224², shader checks off (images/s) | $(rate $work "$OUT/incept_model_224_f32_unchecked.txt") | | | |"
  done
  if [ -f "$OUT/incept_lab_conv.txt" ]; then
    # The lab's totals ("  NAME  N shapes  T ms  G GFLOP/s …") and conv_shapes.py's ("total: … = G GFLOP/s", TF32 off then on), as TFLOP/s.
    lab() { awk -v v="$1" '$1 == v && $3 == "shapes" { printf "%.2f", $6 / 1000 }' "$OUT/incept_lab_conv.txt"; }
    ltotal() { [ -f "$OUT/libtorch_conv.txt" ] && awk -v k="$1" '$1 == "total:" { n++; if (n == k) printf "%.2f", $(NF - 1) / 1000 }' "$OUT/libtorch_conv.txt"; }
    echo "| conv, InceptionV3 shapes b8 224² (TFLOP/s; f32 = the adapter's picks, mixed = coop-f16, the model's form) | $(lab picked) | $(lab coop-f16) | $(ltotal 1) | $(ltotal 2) |"
    echo "| the same, tiled-large alone on every shape; coop over f32 activations | $(lab tiled-large) | $(lab coop) | | |"
  fi
  acc() { [ -f "$1" ] && sed -n 's/^accuracy: //p' "$1" | tail -1; }
  sec() { [ -f "$1" ] && awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } { s += $c["seconds"]; n++ } END { if (n) printf "%.2f", s / n }' "$1"; }
  if [ -n "${INCEPT_FINETUNE_DATA:-}" ] && want finetune; then
    echo "| fmnist4 224² fine-tune, $epochs epochs seed 1: test accuracy | $(acc "$OUT/finetune224_f32.txt") | $(acc "$OUT/finetune224_mixed.txt") | | |"
    echo "| the same: seconds per epoch | $(sec "$OUT/finetune224_f32_history.csv") | $(sec "$OUT/finetune224_mixed_history.csv") | | |"
  fi
  if [ -f "$OUT/tests.txt" ]; then
    echo
    grep -E "^test result|^== test binary" "$OUT/tests.txt"
  fi
} | tee "$OUT/table.md"
