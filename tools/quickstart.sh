#!/usr/bin/env bash
# The main job until the training command lands: make sure a Vulkan driver
# exists (lavapipe on a CPU-only machine), list the adapters, and benchmark
# the convolution kernels on every InceptionV3 conv shape.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-vulkan.sh
cargo build --release --locked
target/release/incept devices
target/release/incept bench kernels "$@"
