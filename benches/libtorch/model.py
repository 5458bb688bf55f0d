"""libtorch reference for `incept bench model`: torchvision's InceptionV3 or
MobileNetV2 (`--model`; each layer for layer the Keras graph incept builds),
f32, random initialisation (the speed does not depend on the weights), the
same batch and image size, on the CPU or CUDA:

- forward (inference) up to the Keras base's output (InceptionV3: Mixed_7c =
  Keras mixed10; MobileNetV2: features[18] = Keras Conv_1/Conv_1_bn/out_relu)
  + global average pool;
- fine-tune step with Keras's last-15-layer split (KERAS_LAST15: each Keras
  layer of `model.layers[-15:]` that holds weights, its torchvision module and
  the tensors Keras trains there; those BatchNorms run in training mode, the
  rest of the base in eval mode), head GAP -> Linear(channels, 4),
  cross-entropy, backward, Adam.

torchvision's MobileNetV2 is Keras's MobileNetV2(alpha=1.0) layer for layer
(features[0] = Conv1/bn_Conv1/Conv1_relu, features[1] = expanded_conv,
features[k] = block_{k-1} for k = 2..17, features[18] = Conv_1/Conv_1_bn/
out_relu), except that it pads stride-2 convolutions symmetrically
(padding=1) where Keras pads ((0,1),(0,1)) (ZeroPadding2D, or "same" for
Conv1), and its BatchNorm epsilon is 1e-5 (Keras 1e-3): the same shapes and
FLOPs, different numbers, irrelevant for speed.

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

usage: python3 model.py [--model mobilenet_v2] --batch 32 --image-size 224 [--device cpu --threads 2]
"""
import argparse
import os
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torchvision

KERAS_MIXED10 = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]


@dataclass(frozen=True)
class Model:
    """A torchvision network as incept builds its Keras counterpart."""
    title: str
    build: Callable[[], torch.nn.Module]
    # The base up to Keras's `include_top=False` output, without pooling.
    body: Callable[[torch.nn.Module], torch.nn.Module]
    channels: int
    min_size: int
    # Keras's `model.layers[-15:]` that hold weights: (Keras layer, torchvision module, the tensors Keras trains).
    last15: tuple
    # Trainable parameters of those layers as Keras counts them (`incept summary --unfreeze-last 15`).
    keras_trainable: int


MODELS = {
    "inception_v3": Model(
        title="InceptionV3",
        build=lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False),
        body=lambda net: torch.nn.Sequential(*[getattr(net, n) for n in KERAS_MIXED10]),
        channels=2048,
        min_size=75,
        # Keras's InceptionV3 BatchNorms have no gamma (scale=False): only the beta trains, torchvision's
        # gamma stays frozen at 1.
        last15=(("conv2d_93", "Mixed_7c.branch_pool.conv", ("weight",)),
                ("batch_normalization_85", "Mixed_7c.branch1x1.bn", ("bias",)),
                ("batch_normalization_88", "Mixed_7c.branch3x3_2b.bn", ("bias",)),
                ("batch_normalization_91", "Mixed_7c.branch3x3dbl_3a.bn", ("bias",)),
                ("batch_normalization_92", "Mixed_7c.branch3x3dbl_3b.bn", ("bias",)),
                ("batch_normalization_93", "Mixed_7c.branch_pool.bn", ("bias",))),
        keras_trainable=394_880),
    "mobilenet_v2": Model(
        title="MobileNetV2",
        build=lambda: torchvision.models.mobilenet_v2(weights=None),
        body=lambda net: net.features,
        channels=1280,
        min_size=32,
        # features[16] = block_15, features[17] = block_16, features[18] = Conv_1; MobileNetV2's BatchNorms
        # have a gamma (scale=True): gamma and beta train. The last 15 layers also hold block_15_depthwise_relu,
        # block_15_add, the ReLUs and out_relu, which have no weights.
        last15=(("block_15_project", "features.16.conv.2", ("weight",)),
                ("block_15_project_BN", "features.16.conv.3", ("weight", "bias")),
                ("block_16_expand", "features.17.conv.0.0", ("weight",)),
                ("block_16_expand_BN", "features.17.conv.0.1", ("weight", "bias")),
                ("block_16_depthwise", "features.17.conv.1.0", ("weight",)),
                ("block_16_depthwise_BN", "features.17.conv.1.1", ("weight", "bias")),
                ("block_16_project", "features.17.conv.2", ("weight",)),
                ("block_16_project_BN", "features.17.conv.3", ("weight", "bias")),
                ("Conv_1", "features.18.0", ("weight",)),
                ("Conv_1_bn", "features.18.1", ("weight", "bias"))),
        keras_trainable=1_040_000),
}


def keras_last15(model, net):
    """Freezes everything but Keras's `model.layers[-15:]`; returns (trainable tensors, BNs in training mode).
    Fails unless they hold as many parameters as Keras trains there."""
    for p in net.parameters():
        p.requires_grad_(False)
    trainable, train_bns = [], []
    for _keras, path, tensors in model.last15:
        module = net.get_submodule(path)
        if isinstance(module, torch.nn.BatchNorm2d):
            train_bns.append(module)
        trainable += [getattr(module, name).requires_grad_(True) for name in tensors]
    count = sum(p.numel() for p in trainable)
    if count != model.keras_trainable:
        raise SystemExit(f"{model.title}: {count:,} trainable parameters in torchvision's counterparts of Keras's "
                         f"last 15 layers, expected {model.keras_trainable:,}")
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


def build(model):
    """(the base up to Keras's output, trainable tensors, BNs in training mode) at torchvision's random
    initialisation (seed torch first)."""
    net = model.build()
    trainable, train_bns = keras_last15(model, net)
    return model.body(net), trainable, train_bns


def measure(model, dev, layout, batch, size, iters, timed):
    """Times forward and fine-tune step in one memory layout; returns {work: (seconds per batch, peak MiB or None)};
    the peak is torch.cuda.max_memory_allocated over the timed iterations (CUDA only)."""
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    body, trainable, train_bns = build(model)
    body = body.to(dev).to(memory_format=fmt)
    print(f"# {layout}: {sum(p.numel() for p in trainable):,} trainable parameters in the base "
          f"(Keras's last 15 layers: {model.keras_trainable:,})")
    x = torch.rand(batch, 3, size, size, device=dev).to(memory_format=fmt)
    head = torch.nn.Linear(model.channels, 4).to(dev)
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
    ap.add_argument("--model", choices=sorted(MODELS), default="inception_v3", help="the network (incept's --backbone)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=10, help="timed iterations of each, after one warm-up")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=default_threads(), help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--layouts", default="nchw,channels_last", help="CPU memory layouts to try, comma-separated")
    args = ap.parse_args()
    model = MODELS[args.model]
    if args.batch < 1 or args.iters < 1 or args.image_size < model.min_size:
        raise SystemExit(f"--batch and --iters must be at least 1, --image-size at least {model.min_size} ({model.title})")
    dev = pick_device(args.device)
    timed = timer(dev)
    print(describe(dev, args.threads))
    print(f"# {model.title} batch {args.batch}, {args.image_size}x{args.image_size}, last 15 Keras layers trainable, "
          f"{args.iters} timed iterations")
    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            for work, (s, peak) in measure(model, dev, "channels_last", args.batch, args.image_size, args.iters, timed).items():
                report(work, f"tf32-{'on' if tf32 else 'off'}", args.batch, s, peak)
        return
    torch.set_num_threads(args.threads)
    layouts = [l for l in args.layouts.split(",") if l]
    for l in layouts:
        if l not in ("nchw", "channels_last"):
            raise SystemExit(f"--layouts {args.layouts!r}: expected nchw and/or channels_last")
    best = {}
    for layout in layouts:
        for work, (s, _) in measure(model, dev, layout, args.batch, args.image_size, args.iters, timed).items():
            report(work, layout, args.batch, s)
            if work not in best or s < best[work][1]:
                best[work] = (layout, s)
    for work, (layout, s) in best.items():
        report(work, f"best:{layout}", args.batch, s)


if __name__ == "__main__":
    main()
