#!/usr/bin/env bash
# Fetches real DICOM files for tests/dicom.rs: test files that the PyPI wheel
# pydicom==3.0.2 (MIT) ships under pydicom/data/test_files (their provenance
# is in its README.txt, copied alongside), into tests/data/dicom/pydicom-3.0.2/.
#
# Needs: python3 with pip, sha256sum. Reaches only PyPI.
#   1. pip download the wheel (no dependencies, nothing installed) and check
#      its sha256;
#   2. extract the files the test reads (a CT slice, the same MR slice in six
#      transfer syntaxes, JPEG 2000, JPEG baseline, RLE and uncompressed
#      colour images, a CT file without an extension).
# Does nothing when the files are there from a wheel with that sha256.
set -euo pipefail

VERSION=3.0.2
WHEEL_SHA256=abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b
FILES=(
  README.txt
  CT_small.dcm
  MR_small.dcm MR_small_implicit.dcm MR_small_bigendian.dcm MR_small_expb.dcm MR_small_RLE.dcm MR_small_jp2klossless.dcm
  JPEG2000.dcm
  SC_rgb_rle.dcm SC_rgb_rle_2frame.dcm SC_rgb_jpeg_dcmtk.dcm SC_ybr_full_422_uncompressed.dcm
  dicomdirtests/77654033/CT2/17106
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$root/tests/data/dicom/pydicom-$VERSION"
stamp="$out/.wheel-sha256"

present=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$WHEEL_SHA256" ] || present=0
for f in "${FILES[@]}"; do [ -f "$out/$f" ] || present=0; done
if [ "$present" = 1 ]; then
  echo "fetch-dicom-samples: $out is present and verified"
  exit 0
fi

for tool in python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch-dicom-samples: '$tool' is needed but not installed" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-dicom-samples: pip download pydicom==$VERSION"
python3 -m pip download --quiet --no-deps --only-binary=:all: "pydicom==$VERSION" -d "$tmp"
wheel="$tmp/pydicom-$VERSION-py3-none-any.whl"
got="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [ "$got" != "$WHEEL_SHA256" ]; then
  echo "fetch-dicom-samples: $(basename "$wheel") has sha256 $got, expected $WHEEL_SHA256; not using it" >&2
  exit 1
fi

python3 - "$wheel" "$tmp/files" "${FILES[@]}" <<'EOF'
import os, sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open("pydicom/data/test_files/" + name) as src, open(target, "wb") as dst:
            dst.write(src.read())
EOF
mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$tmp/files" "$out"
echo "$WHEEL_SHA256" > "$stamp"
echo "fetch-dicom-samples: wrote ${#FILES[@]} files to $out (from a wheel with sha256 $WHEEL_SHA256)"
