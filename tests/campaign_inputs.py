"""Small, fast inputs for campaign tests and demonstrations (in the checkout, not in the
installed package: import it as ``tests.campaign_inputs`` from the checkout's root).

`tiny_classifier` writes a seeded ONNX image classifier of a few layers (conv, batch norm,
ReLU, a residual add, pooling, a dense layer, softmax) that TVM builds in about a second, so a
whole campaign over it takes seconds instead of minutes. `write_images` writes a few seeded
PNG images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_classifier(path: str | Path, seed: int = 0, size: int = 32,
                    classes: int = 10, ignores_input: bool = False) -> Path:
    """Write the classifier; with ``ignores_input`` its dense layer's weights are zero, so
    that every image gets the same scores (the bias's softmax), as an untrained or broken
    model's would."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    ch = 8

    def const(name, arr):
        return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)

    inits = [
        const("w1", rng.normal(0, 0.4, (ch, 3, 3, 3))),
        const("b1", rng.normal(0, 0.1, (ch,))),
        const("bn_s", rng.uniform(0.5, 1.5, (ch,))),
        const("bn_b", rng.normal(0, 0.1, (ch,))),
        const("bn_m", rng.normal(0, 0.1, (ch,))),
        const("bn_v", rng.uniform(0.5, 1.5, (ch,))),
        const("w2", rng.normal(0, 0.3, (ch, ch, 3, 3))),
        const("b2", rng.normal(0, 0.1, (ch,))),
        const("wd", rng.normal(0, 0.5, (classes, ch)) * (0.0 if ignores_input else 1.0)),
        const("bd", rng.normal(0, 0.1, (classes,))),
    ]
    nodes = [
        helper.make_node("Conv", ["data", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"],
                         ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Add", ["r1", "r2"], ["a1"]),
        helper.make_node("MaxPool", ["a1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p1"], ["g1"]),
        helper.make_node("Flatten", ["g1"], ["f1"]),
        helper.make_node("Gemm", ["f1", "wd", "bd"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, classes])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_images(folder: str | Path, n: int = 3, seed: int = 0, size: int = 48) -> list[Path]:
    """``n`` seeded PNGs of smooth colour patterns (distinct enough to be classified apart)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a, b, c = rng.uniform(0.5, 6.0, 3)
        img = np.stack([np.sin(a * xx * np.pi + i), np.cos(b * yy * np.pi - i),
                        np.sin(c * (xx + yy) * np.pi)], axis=-1)
        img = ((img + 1) * 127.5).clip(0, 255).astype(np.uint8)
        p = folder / f"img{i}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def tiny_campaign(folder: str | Path, *, name: str = "tiny", operators: str = "",
                  workers: int = 2, timeout: float = 120, images: int = 3,
                  extra: str = "", models: str = "") -> Path:
    """Write a tiny model, images and a campaign file over them into ``folder``.

    ``operators`` is the TOML body of the ``[operators]`` table (after its header); ``models``
    replaces the default single ``[[models]]`` table; ``extra`` is appended verbatim.
    """
    folder = Path(folder)
    tiny_classifier(folder / "tiny.onnx")
    write_images(folder / "images", images)
    text = f"""[campaign]
name = "{name}"
output = "out"
seed = 0
workers = {workers}
timeout = {timeout}
targets = ["llvm-x86-64"]

{models or '[[models]]' + chr(10) + 'path = "tiny.onnx"'}

[images]
paths = ["images"]

[operators]
{operators or 'use = ["relu_to_sigmoid"]'}
{extra}
"""
    path = folder / "campaign.toml"
    path.write_text(text)
    return path
