#!/usr/bin/env bash
# Proof of `incept export` against the real consumers, for each built-in
# backbone (tools/deploy-check/check.py): installs ONNX Runtime, onnx and
# safetensors from PyPI into a venv under target/ and @tensorflow/tfjs from
# npm into tools/deploy-check/node_modules, extracts nsfwjs's own TF.js
# models into target/deploy-check/nsfwjs (weights/fetch.sh --nsfwjs-models:
# the pinned, sha256-checked tarball the weights are converted from), builds
# incept, and runs the checks. Fails loudly when a consumer cannot be
# installed: a check that cannot run is a failure, never a skip.
#
# The Keras 3 export (check_keras.py) needs TensorFlow, too large for CI: it
# runs when $KERAS_PYTHON (default python3) imports tensorflow, keras 3,
# h5py, safetensors and PIL, and a SKIPPED line says so otherwise.
#
# Needs: python3 with venv, node and npm, cargo, the three weights files
# (weights/fetch.sh) and Debian's Fashion-MNIST (tools/install-fashion-mnist.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tools/deploy-check
venv=target/deploy-check/venv
nsfwjs=target/deploy-check/nsfwjs
weights=(weights/inception_v3_notop.safetensors weights/mobilenet_v2_notop.safetensors weights/efficientnet_lite0.safetensors)
fail() { echo "deploy-check: FAILED: $*" >&2; exit 1; }

for w in "${weights[@]}"; do
  [ -f "$w" ] || fail "$w is missing (run weights/fetch.sh)"
done
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
bash weights/fetch.sh --nsfwjs-models "$nsfwjs" || fail "cannot extract nsfwjs's TF.js models into $nsfwjs (weights/fetch.sh --nsfwjs-models)"

cargo build --quiet --locked --bin incept
"$venv/bin/python" "$here/check.py" --incept target/debug/incept --weights "${weights[@]}" --nsfwjs "$nsfwjs"

keras_python="${KERAS_PYTHON:-python3}"
if missing="$("$keras_python" -c '
import importlib.util as u, sys
missing = [m for m in ("tensorflow", "keras", "h5py", "safetensors", "PIL") if u.find_spec(m) is None]
if not missing:
    import keras
    if int(keras.__version__.split(".")[0]) < 3:
        missing = [f"keras 3 (found {keras.__version__})"]
print(", ".join(missing))
sys.exit(1 if missing else 0)' 2>&1)"; then
  "$keras_python" "$here/check_keras.py" --incept target/debug/incept --weights "${weights[@]}"
else
  echo "deploy-check: SKIPPED the Keras 3 export check ($here/check_keras.py): $keras_python lacks ${missing:-a working interpreter}; set KERAS_PYTHON to a Python with tensorflow, keras 3, h5py, safetensors and pillow to run it"
fi
