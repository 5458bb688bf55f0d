"""Prints, with pydicom, the facts tests/dicom.rs asserts about the real DICOM
files that tools/fetch-dicom-samples.sh extracts from the pydicom 3.0.2 wheel.
Not run by CI; to check the test's numbers independently of incept:

    python3 -m venv /tmp/dicom-venv
    /tmp/dicom-venv/bin/pip install pydicom==3.0.2 numpy pillow
    /tmp/dicom-venv/bin/python tools/dicom_facts.py

Modality values are pixel_array * RescaleSlope + RescaleIntercept (fastai's
`scaled_px`); grey levels are floor(255 * (clip(v, lo, lo + W) - lo) / W)
with lo = L - W/2, as incept's `Window::grey`.
"""

import os

import numpy as np
import pydicom

FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "dicom", "pydicom-3.0.2")
WINDOWS = {"lungs": (1500, -600), "mediastinum": (350, 50), "brain": (80, 40)}
POINTS = [(0, 0), (5, 7), (10, 3), (15, 15)]


def modality(ds):
    a = ds.pixel_array.astype(np.float64)
    if "RescaleSlope" in ds:
        a = a * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return a


def grey_sum(a, w, l):
    lo = l - w / 2
    return int(np.floor(255 * (np.clip(a, lo, lo + w) - lo) / w).sum())


def first(v):
    return float(v[0] if isinstance(v, pydicom.multival.MultiValue) else v)


def monochrome(name, points=POINTS):
    path = os.path.join(FILES, name)
    ds = pydicom.dcmread(path)
    a = modality(ds)
    print(f"{name}: {os.path.getsize(path)} bytes, {ds.file_meta.TransferSyntaxUID.name}, rows x cols {a.shape}, "
          f"slope {ds.get('RescaleSlope')} intercept {ds.get('RescaleIntercept')}")
    print(f"  values at {points}: {[a[r, c] for r, c in points]}; min {a.min()} max {a.max()} sum {a.sum()}")
    for n, (w, l) in WINDOWS.items():
        print(f"  grey sum, {n}: {grey_sum(a, w, l)}")
    if "WindowCenter" in ds:
        w, l = first(ds.WindowWidth), first(ds.WindowCenter)
        print(f"  grey sum, its own window W {w} L {l}: {grey_sum(a, w, l)}")
    else:
        lo, hi = a.min(), a.max()
        print(f"  grey sum, the frame's range: {grey_sum(a, hi - lo, lo + (hi - lo) / 2)}")


def colour(name, frame=None):
    ds = pydicom.dcmread(os.path.join(FILES, name))
    a = ds.pixel_array  # pydicom 3 converts YBR to RGB
    if frame is not None:
        a = a[frame]
    print(f"{name} frame {frame}: {ds.file_meta.TransferSyntaxUID.name} {ds.PhotometricInterpretation}, "
          f"column 50 at rows 5, 15, ..., 95: {[tuple(int(v) for v in a[r, 50]) for r in range(5, 100, 10)]}, "
          f"sum {int(a.astype(np.int64).sum())}")


monochrome("CT_small.dcm")
monochrome("dicomdirtests/77654033/CT2/17106")
for n in ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"]:
    monochrome(n)
monochrome("JPEG2000.dcm", [(500, 100), (600, 128), (300, 200), (464, 254), (423, 143)])
colour("SC_rgb_rle.dcm")
colour("SC_rgb_jpeg_dcmtk.dcm")
colour("SC_ybr_full_422_uncompressed.dcm")
colour("SC_rgb_rle_2frame.dcm", 1)
