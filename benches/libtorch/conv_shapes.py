"""libtorch reference for `incept bench kernels`: the same InceptionV3 conv
shapes (read from `incept bench kernels --conv-shapes-csv`), NHWC (channels_last), f32,
conv + ReLU, timed with CUDA events. Prints GFLOP/s per shape with TF32 off
(pure f32, like-for-like) and on (PyTorch's default for convolutions).

usage: python3 conv_shapes.py SHAPES.csv --batch 8
"""
import argparse
import csv
import torch


def bench(shape, batch, reps, device):
    h, w, cin, cout, kh, kw, stride, padding = shape
    x = torch.randn(batch, cin, h, w, device=device).to(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(cin, cout, (kh, kw), stride=stride, bias=False,
                           padding="same" if padding == "same" else 0).to(device)
    conv = conv.to(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(3):
            torch.relu(conv(x))
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            torch.relu(conv(x))
        end.record()
        torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1e3 / reps
    oh = -(-h // stride) if padding == "same" else (h - kh) // stride + 1
    ow = -(-w // stride) if padding == "same" else (w - kw) // stride + 1
    flops = 2.0 * batch * oh * ow * cout * kh * kw * cin
    return seconds, flops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    rows = []
    with open(args.shapes) as f:
        for r in csv.reader(f):
            if r and r[0] != "h":
                rows.append([int(v) for v in r[:7]] + [r[7]])
    device = "cuda"
    torch.backends.cudnn.benchmark = True
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  batch {args.batch}")
    totals = {}
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        total_f, total_s = 0.0, 0.0
        print(f"--- TF32 {'on' if tf32 else 'off'}")
        for i, s in enumerate(rows):
            sec, fl = bench(s, args.batch, args.reps, device)
            total_f += fl
            total_s += sec
            print(f"{i + 1:<3} {s[0]}x{s[1]}x{s[2]:<4} {s[4]}x{s[5]} s{s[6]} {s[7]:<5} -> {s[3]:<5} {sec * 1e3:9.3f} ms {fl / sec / 1e9:9.1f} GFLOP/s")
        totals[tf32] = (total_f, total_s)
        print(f"total: {total_f / 1e9:.2f} GFLOP in {total_s * 1e3:.2f} ms = {total_f / total_s / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
