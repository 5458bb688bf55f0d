#!/usr/bin/env bash
# Proof of `incept export` against the real consumers (tools/deploy-check/check.py):
# installs ONNX Runtime and onnx from PyPI into a venv under target/ and
# @tensorflow/tfjs from npm into tools/deploy-check/node_modules, builds
# incept, and runs the checks. Fails loudly when a consumer cannot be
# installed: a check that cannot run is a failure, never a skip.
# Needs: python3 with venv, node and npm, cargo, weights/inception_v3_notop.safetensors
# (weights/fetch.sh) and Debian's Fashion-MNIST (tools/install-fashion-mnist.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tools/deploy-check
venv=target/deploy-check/venv
fail() { echo "deploy-check: FAILED: $*" >&2; exit 1; }

[ -f weights/inception_v3_notop.safetensors ] || fail "weights/inception_v3_notop.safetensors is missing (run weights/fetch.sh)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "cannot create a Python venv in $venv (python3 -m venv; Debian: apt-get install python3-venv)"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
  || fail "cannot install $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')from PyPI into $venv"

command -v node >/dev/null || fail "node is not installed (TF.js check)"
if [ ! -f "$here/node_modules/@tensorflow/tfjs/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --silent) \
    || fail "cannot install @tensorflow/tfjs from npm into $here/node_modules (npm ci)"
fi

cargo build --quiet --locked --bin incept
"$venv/bin/python" "$here/check.py" --incept target/debug/incept --weights weights/inception_v3_notop.safetensors
