"""Shared helpers and fixtures: hand-written TVMScript cases, the embedded default model
(imported once per session), the real third-party fixtures in ../shared/fixtures, and
`missing`, the one way a test skips for a missing piece.

A piece CI must have (the fixtures, Chromium) is skipped when absent only outside CI: with
``MUTATENN_REQUIRE_ALL=1`` (set by ``.ci/run``) its absence fails the test instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"

#: When set to 1, a missing piece CI must have is a failure, not a skip.
REQUIRE_ALL_ENV = "MUTATENN_REQUIRE_ALL"


def missing(what: str) -> None:
    """Skip the test because ``what`` is absent here, or fail it under
    ``MUTATENN_REQUIRE_ALL=1``."""
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"{what} ({REQUIRE_ALL_ENV}=1: CI must have it)", pytrace=False)
    pytest.skip(what)


def load_cases(folder: str, name: str):
    """Import ``tests/<folder>/<name>.py``, registered in sys.modules as ``<folder>_<name>``
    (TVMScript reads the source of the functions it parses, so the module must be real)."""
    return _load(Path(__file__).parent / folder / f"{name}.py", f"{folder}_{name}")


def load_bench(name: str):
    """Import ``bench/<name>.py`` by its path (the benches are scripts, not a package on
    sys.path), registered in sys.modules as ``bench_<name>``."""
    return _load(Path(__file__).resolve().parent.parent / "bench" / f"{name}.py",
                 f"bench_{name}")


def _load(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not (FIXTURES / "mobilenet_v1_0.25_128_quant.tflite").is_file():
        missing(f"real test fixtures not found at {FIXTURES} (they live in ../shared)")
    return FIXTURES


@pytest.fixture(scope="session")
def default_model():
    import mutatenn_passes as mn

    return mn.load_model()


@pytest.fixture(scope="session")
def default_images():
    import mutatenn_passes as mn

    return mn.default_images()


def _shape_chain_model(batch="N", width: int | str = 32, data_dependent: bool = False):
    """A small conv net the way PyTorch exports ``x.reshape(x.shape[0], -1)``.

    Conv -> ReLU -> Reshape, whose target is computed by Shape -> Gather -> Concat, then a
    dense layer to 10 classes. ``data_dependent`` adds a target dim computed from the input's
    values, which no simplifier can fold (one unknown dim would follow from the element count).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    init = [numpy_helper.from_array(a, n) for n, a in [
        ("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32)),
        ("b", rng.standard_normal(8).astype(np.float32)),
        ("fc", (rng.standard_normal((8 * 16 * 16, 10)) * 0.05).astype(np.float32)),
        ("index0", np.array([0], np.int64)), ("minus1", np.array([-1], np.int64)),
        ("one", np.array(1, np.float32)), ("f128", np.array(128, np.float32)),
        ("fc16", (rng.standard_normal((16, 10)) * 0.05).astype(np.float32)),
        ("axis0", np.array([0], np.int64)), ("axis1", np.array([1], np.int64))]]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "index0"], ["n"], axis=0)]
    target = ["n", "minus1"]
    if data_dependent:  # a middle dim of 128 * sign(|max(x)| + 1) == 128, known only at run time
        nodes += [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
                  helper.make_node("Abs", ["m"], ["a"]),
                  helper.make_node("Add", ["a", "one"], ["p"]),
                  helper.make_node("Sign", ["p"], ["sg"]),
                  helper.make_node("Mul", ["sg", "f128"], ["d"]),
                  helper.make_node("Cast", ["d"], ["di"], to=TensorProto.INT64),
                  helper.make_node("Unsqueeze", ["di", "axis0"], ["middle"])]
        target = ["n", "middle", "minus1"]  # (1, 128, 16), summed over the middle
    nodes += [helper.make_node("Concat", target, ["target"], axis=0),
              helper.make_node("Reshape", ["r", "target"], ["flat"])]
    if data_dependent:
        nodes += [helper.make_node("ReduceSum", ["flat", "axis1"], ["summed"], keepdims=0),
                  helper.make_node("MatMul", ["summed", "fc16"], ["logits"])]
    else:
        nodes.append(helper.make_node("MatMul", ["flat", "fc"], ["logits"]))
    graph = helper.make_graph(
        nodes, "shape_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])],
        initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="session")
def shape_chain_model():
    """Builds small ONNX conv nets with exporter-style Shape -> Gather -> Concat reshapes."""
    return _shape_chain_model


def _tiny_classifier(classes: int = 10, constant_weights: bool = False):
    """A small float classifier, input [1, 3, 16, 16] NCHW, output softmax [1, classes].

    Conv -> GlobalAveragePool -> Flatten -> MatMul -> Softmax. With ``constant_weights`` the
    weights are ``ConstantOfShape`` fills, as in the `onnx` wheel's ``light_*.onnx`` models:
    every class gets the same logit, so every image scores every class 1/classes.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    nodes, init = [], []
    if constant_weights:
        for name, shape in (("w", [4, 3, 3, 3]), ("fc", [4, classes])):
            init.append(numpy_helper.from_array(np.array(shape, np.int64), f"{name}_shape"))
            nodes.append(helper.make_node(
                "ConstantOfShape", [f"{name}_shape"], [name],
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.02])))
    else:
        init += [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                                         "w"),
                 numpy_helper.from_array(rng.standard_normal((4, classes)).astype(np.float32),
                                         "fc")]
    nodes += [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("GlobalAveragePool", ["c"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("MatMul", ["f", "fc"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, classes])],
        initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="session")
def tiny_classifier():
    """Builds small ONNX classifiers (any class count; optionally input-independent)."""
    return _tiny_classifier
