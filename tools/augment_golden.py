#!/usr/bin/env python3
"""Golden values for tests/data.rs (augment_matches_keras_golden): runs Keras's
own legacy `apply_affine_transform` and `flip_axis` (scipy.ndimage underneath)
on small float32 test images and prints the results as Rust arrays.

Needs `pip install numpy scipy keras`. The functions are taken from Keras's
source file (keras/src/legacy/preprocessing/image.py) without importing the
keras package, which would need a backend such as TensorFlow or JAX.
"""
import ast
import importlib.util
import os

import numpy as np
import scipy
import scipy.ndimage  # noqa: F401  (Keras calls scipy.ndimage.interpolation.affine_transform)


def keras_functions():
    spec = importlib.util.find_spec("keras")
    path = os.path.join(os.path.dirname(spec.origin), "src", "legacy", "preprocessing", "image.py")
    tree = ast.parse(open(path).read())
    wanted = {"transform_matrix_offset_center", "apply_affine_transform", "flip_axis"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    for n in body:
        n.decorator_list = []
    scope = {"np": np, "scipy": scipy}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), scope)
    return scope


def test_image(h, w, c):
    x = np.zeros((h, w, c), dtype=np.float32)
    for r in range(h):
        for col in range(w):
            for ch in range(c):
                x[r, col, ch] = ((r * 37 + col * 11 + ch * 5) % 29) * 8.0
    return x


def rust(name, a):
    vals = ", ".join(np.format_float_positional(v, unique=True, trim="0") for v in a.astype(np.float32).ravel())
    print(f"const {name}: [f32; {a.size}] = [{vals}];")


def main():
    k = keras_functions()
    cases = [("GOLDEN_NONSQUARE", (5, 4, 2), 17.0, 1.3, 0.7, False),
             ("GOLDEN_TUTORIAL", (7, 7, 3), 0.2, 1.17, 0.83, True)]
    for name, shape, shear, zx, zy, flip in cases:
        x = test_image(*shape)
        y = k["apply_affine_transform"](x, shear=shear, zx=zx, zy=zy, row_axis=0, col_axis=1,
                                        channel_axis=2, fill_mode="nearest", cval=0.0, order=1)
        if flip:
            y = k["flip_axis"](y, 1)
        print(f"// {shape} shear={shear} zx={zx} zy={zy} flip={flip}")
        rust(name, y)


if __name__ == "__main__":
    main()
