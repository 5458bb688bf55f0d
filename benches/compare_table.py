"""Prints benches/compare.sh's results.tsv as a Markdown ratio table.

One row per work item (in the order measured): incept's images/s, libtorch's
images/s in each variant (CPU: NCHW and channels_last; CUDA: TF32 off and on)
and the ratio libtorch / incept (above 1: libtorch is faster), taken over the
best CPU layout or, on CUDA, TF32 off (pure f32, like-for-like). Epoch rows
also give the epoch's seconds (training + validation).

usage: python3 compare_table.py results.tsv cpu|cuda
"""
import csv
import sys

VARIANTS = {"cpu": [("nchw", "libtorch NCHW"), ("channels_last", "libtorch channels_last")],
            "cuda": [("tf32-off", "libtorch TF32 off"), ("tf32-on", "libtorch TF32 on")]}
RATIO = {"cpu": "libtorch best / incept", "cuda": "libtorch TF32 off / incept"}


def cell(row):
    if row is None:
        return "–"
    rate = f"{float(row['images_per_s']):,.1f}"
    return f"{rate} ({float(row['seconds']):.1f} s)" if row["seconds"] else rate


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in VARIANTS:
        raise SystemExit("usage: python3 compare_table.py results.tsv cpu|cuda")
    path, device = sys.argv[1], sys.argv[2]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    works = list(dict.fromkeys(r["work"] for r in rows))
    variants = VARIANTS[device]
    print("| work | incept img/s | " + " | ".join(label for _, label in variants) + f" | {RATIO[device]} |")
    print("|---|---:|" + "---:|" * len(variants) + "---:|")
    for work in works:
        incept = next((r for r in rows if r["work"] == work and r["side"] == "incept"), None)
        torch = {r["variant"]: r for r in rows if r["work"] == work and r["side"] == "libtorch"}
        refs = [float(torch[v]["images_per_s"]) for v, _ in variants if v in torch]
        ref = (max(refs) if refs else None) if device == "cpu" else (float(torch["tf32-off"]["images_per_s"]) if "tf32-off" in torch else None)
        ratio = f"{ref / float(incept['images_per_s']):.1f}×" if ref and incept and float(incept["images_per_s"]) > 0 else "–"
        print(f"| {work} | {cell(incept)} | " + " | ".join(cell(torch.get(v)) for v, _ in variants) + f" | {ratio} |")


if __name__ == "__main__":
    main()
