#!/usr/bin/env bash
# Proof of `incept train`'s TensorBoard logs against TensorBoard's own reader
# (tools/tensorboard-check/check_logs.py): installs the `tensorboard` package from
# PyPI into a venv under target/, builds incept, trains and resumes a tiny
# run, and reads its logs back. Fails loudly when TensorBoard cannot be
# installed: a check that cannot run is a failure, never a skip.
#
# Needs: python3 with venv, cargo, weights/mobilenet_v2_notop.safetensors
# (weights/fetch.sh) and Debian's Fashion-MNIST (tools/install-fashion-mnist.sh).
set -euo pipefail
# A command that fails under set -e is named, never a silent exit.
trap 'echo "tensorboard-check: FAILED at line $LINENO: $BASH_COMMAND (status $?)" >&2' ERR
cd "$(dirname "$0")/../.."
here=tools/tensorboard-check
venv=target/tensorboard-check/venv
weights=weights/mobilenet_v2_notop.safetensors
fail() { echo "tensorboard-check: FAILED: $*" >&2; exit 1; }

[ -f "$weights" ] || fail "$weights is missing (run weights/fetch.sh)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "cannot create a Python venv in $venv (python3 -m venv; Debian: apt-get install python3-venv)"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
  || fail "cannot install $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')from PyPI into $venv"
cargo build --quiet --locked --bin incept
"$venv/bin/python" "$here/check_logs.py" --incept target/debug/incept --weights "$weights"
