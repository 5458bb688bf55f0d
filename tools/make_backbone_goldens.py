#!/usr/bin/env python3
"""MobileNetV2 goldens for incept, made by Keras 3 itself (TensorFlow), with synthetic weights.

Not run by CI: the goldens it writes are committed under tests/data/ and read by
the Rust tests. It installs nothing; to regenerate (from the repository root):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu safetensors numpy     # Keras 3 comes with TensorFlow
    /tmp/tfvenv/bin/python tools/make_backbone_goldens.py

Made with Keras 3.15.1 / TensorFlow 2.21.0 (CPU) / numpy 2.4.6 / safetensors 0.8.0;
`--no-f64-check` skips the float64 Keras run (see below). The output is
byte-for-byte reproducible (tensors and metadata in sorted order, no timestamps).

What it writes: tests/data/golden_mobilenet_v2_{96,224}.safetensors, from
keras.applications.MobileNetV2(alpha=1.0, include_top=False, weights=None,
input_shape=(S, S, 3)) with every weight set from the formula below, called with
training=False on the images of tools/make_goldens.py (batch 2 at 96x96, batch 1
at 224x224), holding, all F32 and NHWC:

    input                   the images, as fed (in [0, 1]; no preprocessing)
    Conv1_relu              the stem: 3x3 stride-2 'same' conv, BN, ReLU6
    block_2_add             the first residual Add
    block_6_depthwise_relu  after a stride-2 ZeroPadding2D + 'valid' depthwise conv, BN, ReLU6
    block_13_project_BN     a linear projection's BN (no activation)
    out_relu                the base's output (Conv_1 -> Conv_1_bn -> ReLU6)
    features                GlobalAveragePooling2D(out_relu), [batch, 1280]

Tensors of more than 100,000 elements are stored as flat[0::17] of their row-major
flattening (tools/make_goldens.py's rule, SUBSAMPLE_RULE in the metadata).

Metadata (all strings; JSON where it says so): versions; the formula; the image
formula; the subsampling rule; mean/max |x| of each stored layer and of a few more
(`signal_mean_abs_<layer>`, the check that the signal neither dies nor explodes);
Keras float32's relative L2 distance to float64 Keras per stored tensor;
`keras_layer_count` (len(model.layers)), `keras_count_params` (model.count_params());
`keras_layer_names` (JSON array, model.layers order); `weight_table` (JSON array of
[incept name, shape] in creation order: the formula's k is the index here);
`weight_fingerprints` (JSON array of {"name", "shape", "first": the first 3 values,
"last": the last value, "sum": the f64 sum of all values added one by one in
row-major order}, read back from Keras with layer.get_weights() after assignment,
so in Keras's own layout); `zero_padding` (JSON object: each ZeroPadding2D layer's
((top, bottom), (left, right)) as Keras's imagenet_utils.correct_pad chose it).

Weight names and the table order. The table is Keras's layer creation order
(recorded by wrapping keras Layer.__init__ while MobileNetV2 is built, and checked
to equal model.weights' order), each layer's variables in Keras's order (Conv2D:
kernel; DepthwiseConv2D: its kernel; BatchNormalization: gamma, beta, moving_mean,
moving_variance). Names are incept's (= tf_keras's and TF.js's) LAYER/VARIABLE:
Keras 3 calls a DepthwiseConv2D's variable `kernel`, incept `depthwise_kernel`; this
script renames, and nothing else differs (checked against incept's
src/models/mobilenet_v2_graph.rs when written: the same 154 layers in the same
creation and model.layers order, the same 260 weights and shapes).

The synthetic-weight formula, for any backbone (WEIGHT_FORMULA): for the k-th entry
(0-based) of the backbone's weight table (name, shape) in creation order, its values
over the row-major flattening index i of the tensor in Keras's layout (Conv2D kernel
HWIO [kh, kw, cin, cout], DepthwiseConv2D depthwise_kernel [kh, kw, c, 1], the
BatchNormalization vectors [c], channel c), computed in float64, operations
left to right as written, and rounded once to float32:

    */kernel            sqrt(3 / (kh*kw*cin)) * sin(0.7*i + 1.3*k + 0.1*(i*i))
    */depthwise_kernel  sqrt(3 / (kh*kw))     * sin(0.7*i + 1.3*k + 0.1*(i*i))
    */gamma             1 + 0.2*sin(0.4*c + k)
    */beta              0.1*cos(0.3*c + k)
    */moving_mean       0.05*sin(0.5*c + k)
    */moving_variance   1 + 0.2*sin(0.9*c + k)

sin and cos are the C library's double functions (Rust's f64::sin, Python's
math.sin); the script checks that numpy's agree with math.sin on every kernel
argument, so a Rust twin computing the same gives bit-identical tensors. The
quadratic phase keeps the image's influence alive (see src/io/synthetic.rs).

The kernel scale is 3/4 of He's (InceptionV3's formula, src/io/synthetic.rs, has
He's sqrt(4/fan_in): a sine's mean square is 1/2). With He's scale MobileNetV2's
signal also stays alive, but each block's branch then has gain about 1 and the
residual sums grow every perturbation: float32 Keras was 1.5e-5 (relative L2) from
float64 Keras at out_relu (224x224), too close to the 1e-5 the parity tests hold
incept to. With 3/(kh*kw*cin) it is 1.9e-6 there, the signal neither dies nor
explodes (mean |x| between 0.13 and 2.6 at every monitored depth; the two images'
out_relu differ by 34% relative) and ReLU6's upper clip is still exercised (0.5-4%
of the values at 6 in block_13_expand_relu and out_relu). Measured also on
EfficientNet-Lite0 (the PyPI PyTorch reference with these weights, 224x224):
top_activation mean |x| 1.08, float32 within 1.4e-6 of float64 (7.9e-6 with
He's scale). The metadata records the magnitudes.
"""
import argparse
import json
import math
import os
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

try:
    import numpy as np
    import safetensors
except ImportError as e:
    sys.exit(f"{e}: run this with a venv that has tensorflow-cpu, safetensors and numpy (see the header)")

from make_goldens import IMAGE_FORMULA, SUBSAMPLE_RULE, images, rel_l2, save_sorted, stored  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

CASES = [(96, 2), (224, 1)]  # (image size, batch)
LAYERS = ["Conv1_relu", "block_2_add", "block_6_depthwise_relu", "block_13_project_BN", "out_relu"]
# Layers whose magnitude the metadata records besides LAYERS (not stored).
MONITORED = ["block_4_add", "block_8_add", "block_12_add", "block_13_expand_relu", "block_15_add", "block_16_project_BN", "Conv_1_bn"]
ALPHA = 1.0
# The kernels' mean square is KERNEL_SCALE / (2 fan_in): 3/4 of He's (see the header).
KERNEL_SCALE = 3.0
THREADS = 2

WEIGHT_FORMULA = (
    "for the k-th entry (0-based) of the backbone's weight table (LAYER/VARIABLE, shape) in creation order, its "
    "values over the row-major flattening index i in Keras's layout (Conv2D kernel HWIO [kh,kw,cin,cout], "
    "DepthwiseConv2D depthwise_kernel [kh,kw,c,1], BatchNormalization vectors [c], channel c); float64, evaluated "
    "left to right, then float32: */kernel = sqrt(3/(kh*kw*cin)) * sin(0.7*i + 1.3*k + 0.1*(i*i)); "
    "*/depthwise_kernel = sqrt(3/(kh*kw)) * sin(0.7*i + 1.3*k + 0.1*(i*i)); */gamma = 1 + 0.2*sin(0.4*c + k); "
    "*/beta = 0.1*cos(0.3*c + k); */moving_mean = 0.05*sin(0.5*c + k); */moving_variance = 1 + 0.2*sin(0.9*c + k)"
)


def formula_tensor(k, name, shape):
    """The synthetic value of weight-table entry k, `name` (incept's LAYER/VARIABLE), `shape`, as float32."""
    variable = name.rsplit("/", 1)[1]
    if variable in ("kernel", "depthwise_kernel"):
        kh, kw, cin, _ = shape
        fan_in = kh * kw * (cin if variable == "kernel" else 1)
        i = np.arange(math.prod(shape), dtype=np.float64)
        phase = 0.7 * i + 1.3 * k + 0.1 * (i * i)
        values = np.sqrt(KERNEL_SCALE / fan_in) * np.sin(phase)
        # A Rust twin uses libm's sin: numpy's vectorised sin must give the same doubles.
        libm = np.fromiter((math.sin(p) for p in phase), dtype=np.float64, count=phase.size)
        if not np.array_equal(np.sin(phase), libm):
            sys.exit(f"numpy's sin differs from math.sin for {name}: the formula would not be portable")
        return values.astype(np.float32).reshape(shape)
    (channels,) = shape
    c = np.arange(channels, dtype=np.float64)
    channel_formulas = {
        "gamma": lambda: 1 + 0.2 * np.sin(0.4 * c + k),
        "beta": lambda: 0.1 * np.cos(0.3 * c + k),
        "moving_mean": lambda: 0.05 * np.sin(0.5 * c + k),
        "moving_variance": lambda: 1 + 0.2 * np.sin(0.9 * c + k),
    }
    if variable not in channel_formulas:
        sys.exit(f"no formula for weight '{name}'")
    return channel_formulas[variable]().astype(np.float32)


def synthetic_weights(table):
    """{name: float32 tensor} for a weight table [(name, shape)] in creation order."""
    return {name: formula_tensor(k, name, shape) for k, (name, shape) in enumerate(table)}


def build(keras, size, dtype):
    """MobileNetV2 in a fresh Keras session: (model, the weight table [(incept name, shape, variable)] in creation order)."""
    from keras.src.layers.layer import Layer

    keras.utils.clear_session()
    keras.config.set_dtype_policy(dtype)
    created = []
    original_init = Layer.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        created.append(self)

    Layer.__init__ = recording_init
    try:
        model = keras.applications.MobileNetV2(alpha=ALPHA, include_top=False, weights=None, input_shape=(size, size, 3))
    finally:
        Layer.__init__ = original_init
        keras.config.set_dtype_policy("float32")
    in_model = [layer for layer in created if layer in model.layers]
    if {id(layer) for layer in in_model} != {id(layer) for layer in model.layers}:
        sys.exit("MobileNetV2's layers were not all created while it was built")
    table = []
    for layer in in_model:
        for var in layer.weights:
            name = var.name
            if isinstance(layer, keras.layers.DepthwiseConv2D) and name == "kernel":
                name = "depthwise_kernel"  # Keras 3's name for it is `kernel`; tf_keras, TF.js and incept say depthwise_kernel
            table.append((f"{layer.name}/{name}", tuple(var.shape), var))
    if [v.path for _, _, v in table] != [v.path for v in model.weights]:
        sys.exit("model.weights is not in layer creation order")
    return model, table, [layer.name for layer in in_model]


def assign(table, weights, dtype):
    for name, shape, var in table:
        value = weights[name]
        if value.shape != shape:
            sys.exit(f"weight '{name}': formula shape {value.shape}, Keras's {shape}")
        var.assign(value.astype(dtype))


def fingerprints(model, table):
    """Per weight, in table order: shape, first 3 and last values and the sequential f64 sum, as Keras gives them back."""
    by_layer = {layer.name: layer.get_weights() for layer in model.layers}
    position = {}
    out = []
    for name, shape, var in table:
        layer = name.split("/")[0]
        j = position.get(layer, 0)
        position[layer] = j + 1
        value = by_layer[layer][j]
        assert value.shape == shape and value.dtype == np.float32, (name, value.shape, value.dtype)
        flat = value.reshape(-1)
        total = float(np.cumsum(flat.astype(np.float64))[-1])  # one by one, in row-major order
        out.append({"name": name, "shape": list(shape), "first": [float(v) for v in flat[:3]], "last": float(flat[-1]), "sum": total})
    return out


def run(keras, model, x, names):
    """Outputs of `names` and GlobalAveragePooling2D of the last, inference mode, as numpy."""
    outputs = [model.get_layer(name).output for name in names]
    features = keras.layers.GlobalAveragePooling2D(name="features")(model.output)
    extractor = keras.Model(model.inputs, outputs + [features])
    values = extractor([x], training=False)
    return dict(zip(names + ["features"], (np.asarray(v) for v in values)))


def main():
    repo = os.path.dirname(TOOLS)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(repo, "tests/data"))
    ap.add_argument("--no-f64-check", action="store_true", help="skip the float64 Keras comparison")
    args = ap.parse_args()
    try:
        import keras  # after the environment is set
        import tensorflow as tf
    except (ImportError, OSError) as e:
        sys.exit(f"{e}: this needs TensorFlow (pip install tensorflow-cpu); see the header")
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    os.makedirs(args.out, exist_ok=True)

    for size, batch in CASES:
        model, table, layer_names = build(keras, size, "float32")
        weights = synthetic_weights([(name, shape) for name, shape, _ in table])
        assign(table, weights, np.float32)
        x = images(batch, size)
        outputs = run(keras, model, x, LAYERS + MONITORED)
        stored_names = LAYERS + ["features"]
        f64_error = {}
        if not args.no_f64_check:
            model64, table64, _ = build(keras, size, "float64")
            assign(table64, weights, np.float64)
            exact = run(keras, model64, x.astype(np.float64), LAYERS)
            f64_error = {k: rel_l2(outputs[k], exact[k]) for k in stored_names}
        paddings = {layer.name: [list(p) for p in layer.padding] for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)}

        tensors = {"input": stored(x)} | {k: stored(outputs[k]) for k in stored_names}
        meta = {
            "generator": "tools/make_backbone_goldens.py",
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
            "model": f"keras.applications.MobileNetV2(alpha={ALPHA}, include_top=False, weights=None, input_shape=({size}, {size}, 3)), "
                     "float32, called with training=False",
            "weights": "synthetic: " + WEIGHT_FORMULA,
            "weight_names": "incept's LAYER/VARIABLE (tf_keras's); Keras 3 calls a DepthwiseConv2D's variable 'kernel', "
                            "here 'depthwise_kernel'",
            "images": IMAGE_FORMULA,
            "batch": str(batch),
            "image_size": str(size),
            "shapes": "; ".join(f"{k} {list(v.shape)}" for k, v in [("input", x)] + [(k, outputs[k]) for k in stored_names]),
            "subsample": SUBSAMPLE_RULE,
            "features": "GlobalAveragePooling2D of out_relu",
            "keras_layer_count": str(len(model.layers)),
            "keras_count_params": str(model.count_params()),
            "keras_layer_names": json.dumps([layer.name for layer in model.layers]),
            "keras_creation_order_equals_layers_order": str(layer_names == [layer.name for layer in model.layers]),
            "weight_table": json.dumps([[name, list(shape)] for name, shape, _ in table]),
            "weight_fingerprints": json.dumps(fingerprints(model, table)),
            "zero_padding": json.dumps(paddings),
        }
        for k in LAYERS + MONITORED + ["features"]:
            v = outputs[k]
            prefix = "" if k in stored_names else "signal_"
            meta[f"{prefix}mean_abs_{k}"] = f"{np.abs(v).mean():.6g}"
            meta[f"{prefix}max_abs_{k}"] = f"{np.abs(v).max():.6g}"
        for k, err in f64_error.items():
            meta[f"rel_l2_vs_float64_keras_{k}"] = f"{err:.3e}"
        path = os.path.join(args.out, f"golden_mobilenet_v2_{size}.safetensors")
        save_sorted(tensors, path, meta)
        print(f"{path}: {os.path.getsize(path)} bytes; {len(model.layers)} layers, {model.count_params()} parameters; "
              f"ZeroPadding2D {sorted({json.dumps(p) for p in paddings.values()})}")
        for k in LAYERS + MONITORED + ["features"]:
            v, err = outputs[k], f64_error.get(k)
            print(f"  {k:24s} {str(list(v.shape)):20s} mean|x| {np.abs(v).mean():.4g}  max|x| {np.abs(v).max():.4g}"
                  + ("" if err is None else f"  float32 vs float64 Keras rel L2 {err:.2e}"))


if __name__ == "__main__":
    main()
