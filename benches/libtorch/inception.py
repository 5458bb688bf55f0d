"""libtorch reference for `incept bench model`: torchvision's InceptionV3
(layer for layer the Keras graph), NHWC (channels_last), f32, the same batch
and image size, timed with CUDA events:

- forward (inference) up to Mixed_7c (Keras mixed10) + global average pool;
- fine-tune step with Keras's last-15-layer split: trainable are Mixed_7c's
  branch_pool conv (Keras conv2d_93) and the BatchNorms of branch1x1,
  branch3x3_2b, branch3x3dbl_3a, branch3x3dbl_3b and branch_pool (Keras
  BN 85, 88, 91, 92, 93; those run in training mode, the rest in eval mode),
  head GAP -> Linear(2048, 4), cross-entropy, backward, Adam.

Prints images/s with TF32 off (pure f32, like-for-like) and on.
usage: python3 inception.py --batch 32 --image-size 224
"""
import argparse
import torch
import torchvision


def features(model):
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
    return torch.nn.Sequential(*[getattr(model, n) for n in names])


def timed(fn, iters):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    dev = "cuda"
    torch.backends.cudnn.benchmark = True
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    body = features(net).to(dev).to(memory_format=torch.channels_last)
    x = torch.rand(args.batch, 3, args.image_size, args.image_size, device=dev).to(memory_format=torch.channels_last)
    head = torch.nn.Linear(2048, 4).to(dev)
    y = torch.arange(args.batch, device=dev) % 4
    c = net.Mixed_7c
    train_bns = [c.branch1x1.bn, c.branch3x3_2b.bn, c.branch3x3dbl_3a.bn, c.branch3x3dbl_3b.bn, c.branch_pool.bn]
    for p in body.parameters():
        p.requires_grad_(False)
    trainable = [c.branch_pool.conv.weight] + [b.weight for b in train_bns] + [b.bias for b in train_bns]
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.Adam(trainable + list(head.parameters()), lr=1e-3, eps=1e-7)
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    print(f"InceptionV3 batch {args.batch}, {args.image_size}x{args.image_size}, last 15 Keras layers trainable")

    def forward():
        with torch.no_grad():
            body(x).mean(dim=(2, 3))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = head(body(x).mean(dim=(2, 3)))
        torch.nn.functional.cross_entropy(logits, y).backward()
        opt.step()

    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        body.eval()
        t = timed(forward, args.iters)
        print(f"libtorch TF32 {'on ' if tf32 else 'off'} forward (inference)   {t * 1e3:9.1f} ms/batch {args.batch / t:9.1f} images/s")
        for b in train_bns:
            b.train()
        t = timed(step, args.iters)
        print(f"libtorch TF32 {'on ' if tf32 else 'off'} fine-tune step         {t * 1e3:9.1f} ms/batch {args.batch / t:9.1f} images/s")


if __name__ == "__main__":
    main()
