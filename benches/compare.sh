#!/usr/bin/env bash
# incept against libtorch on whatever device this machine has, in one run:
# the same model (--backbone: InceptionV3 to mixed10 by default, or
# MobileNetV2 to out_relu), split (Keras's last 15 layers), head, batch and
# image size, incept first, then libtorch, for each work item:
#
# - `incept bench model` vs benches/libtorch/model.py: forward (inference)
#   and fine-tune step (GAP -> Dense(4), cross-entropy, backward, Adam);
# - `incept train --epochs 2` vs benches/libtorch/epoch.py: whole fmnist4
#   epochs (training + validation) with the tutorial's head and augmentation.
#
# torchvision's mobilenet_v2 is Keras's MobileNetV2 (alpha 1.0) layer for
# layer (features[0] = Conv1 ... features[18] = Conv_1/out_relu; model.py maps
# Keras's last 15 layers onto it), but it pads its stride-2 convolutions
# symmetrically (padding=1) where Keras pads ((0,1),(0,1)): the same shapes
# and FLOPs, different numbers, irrelevant for speed. EfficientNet-Lite0 has
# no torchvision counterpart (efficientnet_b0 adds squeeze-excite and SiLU)
# and is refused.
#
# CPU only (no nvidia-smi): incept on its adapter (lavapipe) vs libtorch on the
# CPU with THREADS threads (default: one per core), NCHW and channels_last.
# NVIDIA GPU: incept (Vulkan) vs libtorch CUDA with TF32 off and on; builds
# nothing there (INCEPT_BIN).
# The batch and image sizes per backbone and device are the table under
# "Per backbone" below. MobileNetV2 on the CPU: the fine-tune step at its
# native 224² (batch 32) and at 96², epochs at 96² (about a minute each on
# lavapipe with 2 cores, where 224² takes about 5; EPOCH_SIZE=224 for those).
#
# usage: bash benches/compare.sh [--backbone inception_v3|mobilenet_v2] OUTDIR
# --backbone NAME is incept's own flag; the BACKBONE
# environment variable gives its default, as every other setting of this
# script is an environment variable: `BACKBONE=mobilenet_v2 bash
# benches/compare.sh OUTDIR` is the same run. The flag wins.
# env:   INCEPT_BIN (default target/release/incept, built here on a CPU-only
#        machine when missing), INCEPT_DATA (default data/fmnist4, made by
#        `incept data fashion-mnist` when missing), INCEPT_WEIGHTS (pretrained
#        base for `incept train`, default weights/BACKBONE_notop.safetensors
#        (weights/fetch.sh writes it); random initialisation when absent, same
#        speed; a file of another backbone is refused), THREADS, MODEL_RUNS
#        (the `bench model` runs as BATCHxSIZE:ITERS), ITERS
#        (overrides their iterations), EPOCH_SIZE, EPOCHS
#        (default 2), PYTHON (a python with torch and torchvision; default:
#        benches/.venv, else python3, else `pip install torch torchvision`
#        into benches/.venv), OMP_WAIT_POLICY (default PASSIVE on the CPU:
#        libtorch's OpenMP threads spin-wait by default, which on a machine
#        shared with other work makes 2 threads many times slower than 1;
#        ACTIVE gives libtorch's default on a quiet machine).
# Logs, results.tsv and table.md go to OUTDIR; the Markdown table is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "compare.sh: $*" >&2; exit 1; }
usage() { echo "usage: bash benches/compare.sh [--backbone inception_v3|mobilenet_v2] OUTDIR" >&2; exit 2; }
backbone=${BACKBONE:-inception_v3}
out=
while [ $# -gt 0 ]; do
  case $1 in
    --backbone) [ $# -ge 2 ] || usage; backbone=$2; shift 2 ;;
    --backbone=*) backbone=${1#*=}; shift ;;
    -*) usage ;;
    *) [ -z "$out" ] || usage; out=$1; shift ;;
  esac
done
[ -n "$out" ] || usage

# Per backbone: what it is, the `bench model` runs (BATCHxSIZE:ITERS) and the
# epochs' image size, on the CPU and on CUDA (MODEL_RUNS and EPOCH_SIZE override them).
case $backbone in
  inception_v3)
    model="InceptionV3 to mixed10"
    cpu_runs="32x75:3 8x224:2" cpu_epoch_size=75
    cuda_runs="32x224:10 32x299:10" cuda_epoch_size=224 ;;
  mobilenet_v2)
    model="MobileNetV2 (alpha 1.0) to out_relu"
    cpu_runs="32x224:2 32x96:3" cpu_epoch_size=96
    cuda_runs="32x224:10 128x224:10" cuda_epoch_size=224 ;;
  efficientnet_lite0)
    die "--backbone efficientnet_lite0: torchvision has no EfficientNet-Lite0 (its efficientnet_b0 adds squeeze-excite and SiLU); expected inception_v3 or mobilenet_v2" ;;
  *) die "--backbone $backbone: expected inception_v3 or mobilenet_v2" ;;
esac

mkdir -p "$out"
exec > >(tee "$out/compare.log") 2>&1

if nvidia-smi -L >/dev/null 2>&1; then device=cuda; else device=cpu; fi
threads=${THREADS:-$(nproc)}
epochs=${EPOCHS:-2}
bin=${INCEPT_BIN:-target/release/incept}
if [ ! -x "$bin" ]; then
  [ "$device" = cpu ] || die "$bin is missing; on a GPU machine set INCEPT_BIN to a release binary built elsewhere"
  cargo build --release --locked
fi

# The adapter incept will use, and its type (Cpu for lavapipe).
"$bin" devices > "$out/devices.txt" 2>&1
selected=$(sed -n 's/^selected: //p' "$out/devices.txt")
adapter_type=$(grep -F -A1 "] $selected" "$out/devices.txt" | sed -n 's/.*type: \([A-Za-z]*\).*/\1/p' | head -1)
[ -n "$selected" ] || die "\`$bin devices\` selected no adapter (see $out/devices.txt)"
if [ "$device" = cuda ] && [ "$adapter_type" = Cpu ]; then
  echo "compare.sh: warning: an NVIDIA GPU is here but incept selected $selected ($adapter_type)" >&2
fi

has_torch() { "$1" -c 'import torch, torchvision' >/dev/null 2>&1; }
venv=benches/.venv
if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
elif has_torch "$venv/bin/python"; then
  py=$venv/bin/python
elif has_torch python3; then
  py=python3
else
  echo "compare.sh: installing torch and torchvision into $venv (once; several GB)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install torch torchvision
  py=$venv/bin/python
fi
has_torch "$py" || die "$py cannot import torch and torchvision"
torch_version=$("$py" -c 'import torch; print(torch.__version__)')

data=${INCEPT_DATA:-data/fmnist4}
if [ ! -d "$data/train" ]; then
  [ -z "${INCEPT_DATA:-}" ] || die "INCEPT_DATA=$data has no train/ folder"
  "$bin" data fashion-mnist --out "$data"
fi
weights=${INCEPT_WEIGHTS:-weights/${backbone}_notop.safetensors}
if [ -f "$weights" ]; then init=(--weights "$weights"); else init=(--random-init); fi
init=(--backbone "$backbone" "${init[@]}")
# With --weights, --backbone makes incept refuse a file of another backbone: find out now, not after the model runs.
[ ! -f "$weights" ] || "$bin" summary "${init[@]}" > /dev/null || die "INCEPT_WEIGHTS=$weights does not fit --backbone $backbone"

if [ "$device" = cpu ]; then
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} LP_NUM_THREADS=$threads
  runs=${MODEL_RUNS:-$cpu_runs}
  epoch_size=${EPOCH_SIZE:-$cpu_epoch_size}
  torch_args=(--device cpu --threads "$threads")
else
  runs=${MODEL_RUNS:-$cuda_runs}
  epoch_size=${EPOCH_SIZE:-$cuda_epoch_size}
  torch_args=(--device cuda)
fi
export PYTHONUNBUFFERED=1
results=$out/results.tsv
printf 'work\tside\tvariant\timages_per_s\tseconds\n' > "$results"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "model: $model, Keras's last 15 layers trainable (incept --backbone $backbone, torchvision $backbone)"
  echo "device: $device   incept adapter: $selected ($adapter_type)   libtorch: torch $torch_version via $py"
  if [ "$device" = cpu ]; then
    echo "CPU: $(nproc) cores, libtorch $threads threads (OMP_WAIT_POLICY=$OMP_WAIT_POLICY), LP_NUM_THREADS=$threads"
  else
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  fi
  echo "incept train: ${init[*]}"
} | tee "$out/setup.txt"

load() { echo "(load average $(cut -d' ' -f1 /proc/loadavg))"; }
# incept's `bench model` lines: "forward (inference, fused)  … ms/batch  N images/s".
incept_rate() { awk -v w="$1" 'index($0, w) == 1 { for (i = 2; i <= NF; i++) if ($i == "images/s") print $(i - 1) }' "$2"; }

for run in $runs; do
  IFS='x:' read -r batch size iters <<< "$run"
  iters=${ITERS:-$iters}
  tag="b$batch ${size}²"
  log=$out/incept_model_b${batch}_$size.txt
  echo "== incept bench model --backbone $backbone --batch $batch --image-size $size --iters $iters $(load)"
  "$bin" bench model --backbone "$backbone" --batch "$batch" --image-size "$size" --iters "$iters" 2>&1 | tee "$log"
  printf 'forward %s\tincept\t%s\t%s\t\n' "$tag" "$selected" "$(incept_rate forward "$log")" >> "$results"
  printf 'fine-tune step %s\tincept\t%s\t%s\t\n' "$tag" "$selected" "$(incept_rate fine-tune "$log")" >> "$results"
  log=$out/libtorch_model_b${batch}_$size.txt
  echo "== libtorch model.py --model $backbone --batch $batch --image-size $size --iters $iters ${torch_args[*]} $(load)"
  "$py" benches/libtorch/model.py --model "$backbone" --batch "$batch" --image-size "$size" --iters "$iters" "${torch_args[@]}" 2>&1 | tee "$log"
  awk -v tag="$tag" '$1 == "libtorch" && $3 !~ /^best:/ {
      printf "%s %s\tlibtorch\t%s\t%s\t\n", ($2 == "step" ? "fine-tune step" : $2), tag, $3, $4 }' "$log" >> "$results"
done

train_dir=$out/incept_train
rm -rf "$train_dir"
echo "== incept train --data $data --image-size $epoch_size --epochs $epochs $(load)"
"$bin" train --data "$data" "${init[@]}" --out "$train_dir" --image-size "$epoch_size" --epochs "$epochs" --seed 1 2>&1 \
  | tee "$out/incept_train.txt"
cp "$train_dir/history.csv" "$out/incept_train_history.csv"
awk -F, -v s="$epoch_size" -v adapter="$selected" '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { printf "epoch %d b32 %s²\tincept\t%s\t%s\t%s\n", $col["epoch"], s, adapter, $col["images_per_second"], $col["seconds"] }' \
  "$train_dir/history.csv" >> "$results"

if [ "$device" = cpu ]; then
  # libtorch's epochs in its faster layout for the fine-tune step at this size (or channels_last).
  layout=$(awk -v s="fine-tune step b32 ${epoch_size}²" -F'\t' '$1 == s && $2 == "libtorch" && $4 > best { best = $4; l = $3 }
                END { print (l == "" ? "channels_last" : l) }' "$results")
  variants=("--layout $layout")
else
  variants=("--tf32 off" "--tf32 on")
fi
for v in "${variants[@]}"; do
  name=${v#--}
  log=$out/libtorch_epoch_${name// /-}.txt
  echo "== libtorch epoch.py --model $backbone --data $data --image-size $epoch_size --epochs $epochs $v $(load)"
  # shellcheck disable=SC2086 # $v is a flag and its value
  "$py" benches/libtorch/epoch.py --model "$backbone" --data "$data" --image-size "$epoch_size" --epochs "$epochs" "${torch_args[@]}" $v 2>&1 | tee "$log"
  awk -v s="$epoch_size" '$1 == "libtorch" && $2 ~ /^epoch/ {
      printf "epoch %s b32 %s²\tlibtorch\t%s\t%s\t%s\n", substr($2, 6), s, $3, $4, $6 }' "$log" >> "$results"
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/setup.txt"
"$py" benches/compare_table.py "$results" "$device" | tee "$out/table.md"
