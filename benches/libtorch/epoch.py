"""libtorch reference for whole `incept train` epochs: the Keras tutorial's
fine-tune of InceptionV3 or MobileNetV2 (`--model`) on a class-per-folder
dataset (fmnist4), f32, random initialisation (the speed does not depend on
the weights).

- data: DATA/train (shuffled, augmented) and DATA/valid read with
  torchvision's ImageFolder, converted to RGB, nearest-resized to
  --image-size, rescaled by 1/255 (ToTensor). The tutorial's augmentation
  (Keras ImageDataGenerator shear_range=0.2 degrees, zoom_range=0.2,
  horizontal_flip) is approximated by RandomAffine(shear=0.2 degrees,
  scale=(0.8, 1.2)) + RandomHorizontalFlip: close enough for timing, but not
  the same transform (torchvision zooms isotropically and fills with 0 where
  Keras draws x and y zoom apart and repeats the edge pixels);
- model: torchvision's InceptionV3 up to Mixed_7c (Keras mixed10) or
  MobileNetV2's features (Keras out_relu) with Keras's last-15-layer split
  (see model.py), head GAP -> Dense 512 relu -> Dropout 0.3 -> Dense 512 relu
  -> Dropout 0.3 -> Dense classes,
  cross-entropy, Adam (lr 1e-3, eps 1e-7), batch 32;
- each epoch: the training pass, then the validation pass (eval mode).

Output: `#` lines describe the run; each epoch is one line
    libtorch epochN VARIANT IMAGES_PER_S images/s SECONDS s/epoch ...
where images/s counts training images over the training pass and SECONDS is
training plus validation (as incept's history.csv `images_per_second` and
`seconds`). VARIANT is the CPU memory layout or `tf32-off`/`tf32-on` on CUDA.

usage: python3 epoch.py [--model mobilenet_v2] --data data/fmnist4 --image-size 75 --epochs 2 [--device cpu --threads 2]
"""
import argparse
import os
import time

import torch
import torchvision
from torchvision import transforms

from model import MODELS, build, default_threads, describe, pick_device


def loaders(root, size, batch, workers, pin):
    resize = transforms.Resize((size, size), interpolation=transforms.InterpolationMode.NEAREST)
    train_tf = transforms.Compose([
        resize,
        transforms.RandomAffine(degrees=0, shear=0.2, scale=(0.8, 1.2),
                                interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
    ])
    valid_tf = transforms.Compose([resize, transforms.ToTensor()])
    # ImageFolder's default loader converts every image to RGB (fmnist4 is grayscale).
    train = torchvision.datasets.ImageFolder(os.path.join(root, "train"), transform=train_tf)
    valid = torchvision.datasets.ImageFolder(os.path.join(root, "valid"), transform=valid_tf)
    if train.classes != valid.classes:
        raise SystemExit(f"{root}: train classes {train.classes} differ from valid classes {valid.classes}")
    kw = dict(batch_size=batch, num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    return (torch.utils.data.DataLoader(train, shuffle=True, drop_last=False, **kw),
            torch.utils.data.DataLoader(valid, shuffle=False, **kw), len(train.classes))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="inception_v3", help="the network (incept's --backbone)")
    ap.add_argument("--data", required=True, help="dataset root with train/ and valid/, one subfolder per class")
    ap.add_argument("--image-size", type=int, default=75)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=default_threads(), help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--workers", type=int, default=min(8, default_threads()), help="DataLoader worker processes")
    ap.add_argument("--layout", choices=["nchw", "channels_last"], default="channels_last", help="CPU memory layout")
    ap.add_argument("--tf32", choices=["off", "on"], default="off", help="CUDA: TF32 convolutions and matmuls")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    model = MODELS[args.model]
    if args.batch < 1 or args.epochs < 1 or args.image_size < model.min_size:
        raise SystemExit(f"--batch and --epochs must be at least 1, --image-size at least {model.min_size} ({model.title})")
    dev = pick_device(args.device)
    torch.manual_seed(args.seed)
    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
        torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
        layout, variant = "channels_last", f"tf32-{args.tf32}"
    else:
        torch.set_num_threads(args.threads)
        layout = variant = args.layout
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    train, valid, classes = loaders(args.data, args.image_size, args.batch, args.workers, dev == "cuda")

    body, trainable, train_bns = build(model)
    head = torch.nn.Sequential(
        torch.nn.Linear(model.channels, 512), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(512, classes))
    body, head = body.to(dev).to(memory_format=fmt), head.to(dev)
    opt = torch.optim.Adam(trainable + list(head.parameters()), lr=1e-3, eps=1e-7)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    print(describe(dev, args.threads))
    print(f"# {model.title}, {args.data}: {len(train.dataset)} train / {len(valid.dataset)} valid images, {classes} classes, "
          f"{args.image_size}x{args.image_size}, batch {args.batch}, {args.workers} loader workers, {variant}")

    def logits(x):
        return head(body(x.to(dev, non_blocking=True).to(memory_format=fmt)).mean(dim=(2, 3)))

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        body.eval()
        for b in train_bns:
            b.train()
        head.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in train:
            y = y.to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            out = logits(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
        sync()
        train_s = time.perf_counter() - start
        body.eval()
        head.eval()
        v_loss, v_correct, v_seen = 0.0, 0, 0
        with torch.no_grad():
            for x, y in valid:
                y = y.to(dev, non_blocking=True)
                out = logits(x)
                v_loss += torch.nn.functional.cross_entropy(out, y, reduction="sum").item()
                v_correct += (out.argmax(1) == y).sum().item()
                v_seen += len(y)
        sync()
        total = time.perf_counter() - start
        print(f"libtorch epoch{epoch} {variant} {seen / train_s:.2f} images/s {total:.2f} s/epoch "
              f"(train {train_s:.2f} s, valid {total - train_s:.2f} s) loss {loss_sum / seen:.4f} acc {correct / seen:.4f} "
              f"val_loss {v_loss / v_seen:.4f} val_acc {v_correct / v_seen:.4f}", flush=True)


if __name__ == "__main__":
    main()
