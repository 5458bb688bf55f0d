#!/usr/bin/env bash
# The main job on a fresh machine: a Vulkan driver when there is no GPU
# (Mesa's lavapipe), real pretrained InceptionV3 weights (npm, verified),
# the default fmnist4 dataset (Debian's Fashion-MNIST), then the Keras
# transfer-learning recipe: fine-tune the last 15 layers + a Dense head.
# Defaults fit a 2-core CPU-only machine: 75x75 images, 10 epochs; on a GPU
# use the tutorial's size: IMAGE_SIZE=224 bash tools/quickstart.sh. Extra
# arguments go to `incept train` (e.g. --batch 16 --lr 3e-4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-vulkan.sh
bash weights/fetch.sh
cargo build --release --locked
# Where cargo put the binary: CARGO_TARGET_DIR when set (a shared target folder), else target/.
bin="${CARGO_TARGET_DIR:-target}/release/incept"
"$bin" devices | tail -1
"$bin" data fashion-mnist --out data/fmnist4
run=runs/fmnist4-$(date +%Y%m%d-%H%M%S)
"$bin" train --data data/fmnist4 --weights weights/inception_v3_notop.safetensors --out "$run" \
  --image-size "${IMAGE_SIZE:-75}" --epochs "${EPOCHS:-10}" --seed 1 "$@"
"$bin" evaluate --model "$run" --data data/fmnist4/test
