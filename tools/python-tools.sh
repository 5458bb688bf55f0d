#!/usr/bin/env bash
# A Python venv under target/ with what the repository's Python tools need to
# run in the tests (tools/python-tools.txt, from PyPI): tests/keras_import.rs
# runs tools/keras_h5_to_safetensors.py with it and compares its output with
# `incept convert keras`'s; tools/test.sh also runs the converter's own tests
# (tools/test_keras_h5_to_safetensors.py) with it. Fails loudly when the venv cannot be made: a check that cannot run is a
# failure, never a skip. Needs python3 with venv. Reaches only PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-tools/venv
fail() { echo "python-tools: FAILED: $*" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "cannot create a Python venv in $venv (python3 -m venv; Debian: apt-get install python3-venv)"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tools/python-tools.txt \
  || fail "cannot install $(grep -v '^#' tools/python-tools.txt | tr '\n' ' ')from PyPI into $venv"
echo "python-tools: $venv ready"
