"""libtorch reference for `incept bench model`: torchvision's InceptionV3
(layer for layer the Keras graph), f32, random initialisation (the speed does
not depend on the weights), the same batch and image size, on the CPU or CUDA:

- forward (inference) up to Mixed_7c (Keras mixed10) + global average pool;
- fine-tune step with Keras's last-15-layer split: trainable are Mixed_7c's
  branch_pool conv (Keras conv2d_93) and the BatchNorm betas of branch1x1,
  branch3x3_2b, branch3x3dbl_3a, branch3x3dbl_3b and branch_pool (Keras
  BN 85, 88, 91, 92, 93; those run in training mode, the rest in eval mode;
  Keras's BatchNorms have no gamma, so torchvision's stays frozen at 1),
  head GAP -> Linear(2048, 4), cross-entropy, backward, Adam.

CPU: `--threads N` (torch.set_num_threads, default one per core), both memory
layouts (NCHW and channels_last) timed with time.perf_counter after a warm-up,
and the faster one reported as `best`. CUDA: channels_last, timed with CUDA
events, TF32 off (pure f32, like-for-like) and on.

Output: `#` lines describe the run; each measurement is one line
    libtorch WORK VARIANT IMAGES_PER_S images/s MS ms/batch [peak MIB MiB]
with WORK `forward` or `step` and VARIANT `nchw`, `channels_last`,
`best:<layout>` (CPU) or `tf32-off`, `tf32-on` (CUDA); on CUDA the peak is
torch.cuda.max_memory_allocated over the timed iterations (incept's `bench
model` prints its own pool's peak the same way).

usage: python3 inception.py --batch 32 --image-size 224 [--device cpu --threads 2]
"""
import argparse
import os
import time

import torch
import torchvision

KERAS_MIXED10 = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]


def features(model):
    """torchvision's InceptionV3 up to Mixed_7c (Keras mixed10), without pooling."""
    return torch.nn.Sequential(*[getattr(model, n) for n in KERAS_MIXED10])


def keras_last15(net):
    """Freezes everything but Keras's `model.layers[-15:]`; returns (trainable tensors, BNs in training mode)."""
    c = net.Mixed_7c
    train_bns = [c.branch1x1.bn, c.branch3x3_2b.bn, c.branch3x3dbl_3a.bn, c.branch3x3dbl_3b.bn, c.branch_pool.bn]
    for p in net.parameters():
        p.requires_grad_(False)
    trainable = [c.branch_pool.conv.weight] + [b.bias for b in train_bns]
    for p in trainable:
        p.requires_grad_(True)
    return trainable, train_bns


def pick_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    return name


def default_threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def describe(dev, threads):
    if dev == "cuda":
        return f"# device: cuda {torch.cuda.get_device_name()}  torch {torch.__version__}"
    wait = os.environ.get("OMP_WAIT_POLICY", "unset (spin-waits; slow on a loaded machine)")
    return f"# device: cpu, {threads} threads, OMP_WAIT_POLICY {wait}  torch {torch.__version__}"


def timer(dev):
    """Returns timed(fn, iters) -> seconds per call after one warm-up call."""
    if dev == "cuda":
        def timed(fn, iters):
            fn()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3 / iters, torch.cuda.max_memory_allocated() / 2**20
    else:
        def timed(fn, iters):
            fn()
            start = time.perf_counter()
            for _ in range(iters):
                fn()
            return (time.perf_counter() - start) / iters, None
    return timed


def report(work, variant, batch, seconds, peak_mib=None):
    peak = "" if peak_mib is None else f" peak {peak_mib:.1f} MiB"
    print(f"libtorch {work} {variant} {batch / seconds:.2f} images/s {seconds * 1e3:.1f} ms/batch{peak}", flush=True)


def measure(dev, layout, batch, size, iters, timed):
    """Times forward and fine-tune step in one memory layout; returns {work: (seconds per batch, peak MiB or None)};
    the peak is torch.cuda.max_memory_allocated over the timed iterations (CUDA only)."""
    torch.manual_seed(0)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    body = features(net).to(dev).to(memory_format=fmt)
    trainable, train_bns = keras_last15(net)
    print(f"# {layout}: {sum(p.numel() for p in trainable):,} trainable parameters in the base "
          f"(Keras's last 15 layers: 394,880)")
    x = torch.rand(batch, 3, size, size, device=dev).to(memory_format=fmt)
    head = torch.nn.Linear(2048, 4).to(dev)
    y = torch.arange(batch, device=dev) % 4
    opt = torch.optim.Adam(trainable + list(head.parameters()), lr=1e-3, eps=1e-7)

    def forward():
        with torch.no_grad():
            body(x).mean(dim=(2, 3))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = head(body(x).mean(dim=(2, 3)))
        torch.nn.functional.cross_entropy(logits, y).backward()
        opt.step()

    body.eval()
    out = {"forward": timed(forward, iters)}
    for b in train_bns:
        b.train()
    out["step"] = timed(step, iters)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=10, help="timed iterations of each, after one warm-up")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=default_threads(), help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--layouts", default="nchw,channels_last", help="CPU memory layouts to try, comma-separated")
    args = ap.parse_args()
    if args.batch < 1 or args.iters < 1 or args.image_size < 75:
        raise SystemExit("--batch and --iters must be at least 1, --image-size at least 75")
    dev = pick_device(args.device)
    timed = timer(dev)
    print(describe(dev, args.threads))
    print(f"# InceptionV3 batch {args.batch}, {args.image_size}x{args.image_size}, last 15 Keras layers trainable, "
          f"{args.iters} timed iterations")
    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            for work, (s, peak) in measure(dev, "channels_last", args.batch, args.image_size, args.iters, timed).items():
                report(work, f"tf32-{'on' if tf32 else 'off'}", args.batch, s, peak)
        return
    torch.set_num_threads(args.threads)
    layouts = [l for l in args.layouts.split(",") if l]
    for l in layouts:
        if l not in ("nchw", "channels_last"):
            raise SystemExit(f"--layouts {args.layouts!r}: expected nchw and/or channels_last")
    best = {}
    for layout in layouts:
        for work, (s, _) in measure(dev, layout, args.batch, args.image_size, args.iters, timed).items():
            report(work, layout, args.batch, s)
            if work not in best or s < best[work][1]:
                best[work] = (layout, s)
    for work, (layout, s) in best.items():
        report(work, f"best:{layout}", args.batch, s)


if __name__ == "__main__":
    main()
