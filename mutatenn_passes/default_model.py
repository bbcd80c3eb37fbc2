"""The embedded default model: ShuffleNet's real architecture with synthetic, seeded weights.

The `onnx` wheel ships ShuffleNet's graph (`light_shufflenet.onnx`) with every weight a
`ConstantOfShape` constant, so every class scores the same. We replace each weight with a
deterministic draw from a fixed seed (He-normal convolutions, a small dense layer) and then
fit every batch norm's running mean and variance to the activations the default images
actually produce, layer by layer in graph order (a data-dependent initialisation in the spirit
of LSUV). Without that step activations vanish or explode through 49 convolutions and all
images collapse to one class. ONNX Runtime evaluates the partial network during fitting: the
reference evaluator in `onnx` takes ~3 s per image here against ~10 ms.

The architecture is real; the weights are not trained. Predictions are meaningful only as a
deterministic function of the input, which is what mutation testing compares.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

DEFAULT_SEED = 20230604  # fixed forever: changing it changes every recorded default result
ARCHITECTURE = "shufflenet"
NAME = f"{ARCHITECTURE}-synthetic"


def architecture_path() -> Path:
    """Path of ShuffleNet's graph inside the installed `onnx` wheel."""
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / \
        f"light_{ARCHITECTURE}.onnx"


def _parameter_roles(graph: onnx.GraphProto) -> dict[str, tuple[str, int, onnx.NodeProto]]:
    """Map each weight tensor name to (consumer op type, input position, consumer node)."""
    roles = {}
    for node in graph.node:
        if node.op_type in ("Conv", "BatchNormalization", "Gemm"):
            for position, name in enumerate(node.input[1:], start=1):
                roles[name] = (node.op_type, position, node)
    return roles


def _constant_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    """Shapes of every float weight, whether a `ConstantOfShape` output or an initializer."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    shapes = {}
    for node in graph.node:
        if node.op_type == "ConstantOfShape":
            shapes[node.output[0]] = tuple(int(d) for d in inits[node.input[0]])
    for name, value in inits.items():
        if value.dtype == np.float32:
            shapes[name] = value.shape
    return shapes


def _draw_weights(graph: onnx.GraphProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded weights for every Conv/Gemm/BatchNorm parameter, in graph order."""
    shapes = _constant_shapes(graph)
    weights = {}
    for name, (op, position, node) in _parameter_roles(graph).items():
        shape = shapes[name]
        if op in ("Conv", "Gemm") and position == 1:
            fan_in = int(np.prod(shape[1:]))
            gain = 2.0 if op == "Conv" else 1.0  # He-normal before ReLU, LeCun for logits
            weights[name] = rng.normal(0.0, np.sqrt(gain / fan_in), shape)
        elif position == 2 and op in ("Conv", "Gemm"):
            # Trained layers have non-zero biases; zero ones would make x + b == x - b.
            weights[name] = rng.normal(0.0, 0.2, shape)
        elif op == "BatchNormalization":
            # scale, bias, mean, var; mean/var are refitted to the data afterwards
            weights[name] = (np.ones(shape), rng.normal(0.0, 0.2, shape),
                             np.zeros(shape), np.ones(shape))[position - 1]
    return {k: v.astype(np.float32) for k, v in weights.items()}


def _graph_with_weights(model: onnx.ModelProto, weights: dict[str, np.ndarray],
                        as_inputs: set[str] = frozenset(),
                        extra_outputs: list[str] = ()) -> onnx.ModelProto:
    """A copy of ``model`` whose weights are initializers (or graph inputs, for fitting)."""
    graph = model.graph
    data_input = graph.input[0]
    kept = [n for n in graph.node
            if not (n.op_type == "ConstantOfShape" and n.output[0] in weights)]
    needed = {i for n in kept for i in n.input}
    inits = [i for i in graph.initializer if i.name in needed and i.name not in weights]
    inits += [numpy_helper.from_array(v, name=k) for k, v in weights.items()
              if k not in as_inputs]
    inputs = [data_input] + [helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT,
                                                           weights[k].shape)
                             for k in sorted(as_inputs)]
    outputs = list(graph.output) + [helper.make_empty_tensor_value_info(o)
                                    for o in extra_outputs]
    new_graph = helper.make_graph(kept, graph.name, inputs, outputs, inits)
    new_model = helper.make_model(new_graph, opset_imports=model.opset_import,
                                  producer_name="mutatenn")
    new_model.ir_version = max(model.ir_version, 4)  # initializers need not be inputs
    return new_model


def _fit_batch_norms(model: onnx.ModelProto, weights: dict[str, np.ndarray],
                     batches: list[np.ndarray]) -> None:
    """Set each batch norm's mean/var to its input's per-channel statistics, in graph order."""
    import onnxruntime as ort

    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    stat_names = {name for n in bns for name in n.input[3:5]}
    probe = _graph_with_weights(model, weights, as_inputs=stat_names,
                                extra_outputs=[n.input[0] for n in bns])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    data_name = model.graph.input[0].name
    n_outputs = len(model.graph.output)
    for k, bn in enumerate(bns):
        feeds = {name: weights[name] for name in stat_names}
        acts = [session.run([probe.graph.output[n_outputs + k].name],
                            {data_name: x, **feeds})[0] for x in batches]
        stacked = np.concatenate(acts, axis=0)
        axes = (0,) + tuple(range(2, stacked.ndim))
        weights[bn.input[3]] = stacked.mean(axis=axes).astype(np.float32)
        weights[bn.input[4]] = (stacked.var(axis=axes) + 1e-3).astype(np.float32)


def _scale_logits(model: onnx.ModelProto, weights: dict[str, np.ndarray],
                  batches: list[np.ndarray]) -> None:
    """Scale the dense layer so the logits have unit standard deviation over the images."""
    import onnxruntime as ort

    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    probe = _graph_with_weights(model, weights, extra_outputs=[gemm.output[0]])
    session = ort.InferenceSession(probe.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    name = model.graph.input[0].name
    logits = np.concatenate([session.run([gemm.output[0]], {name: x})[0] for x in batches])
    weights[gemm.input[1]] = (weights[gemm.input[1]] / max(float(logits.std()), 1e-6)) \
        .astype(np.float32)


#: The user-cache folder (`user_cache`) of generated default models.
CACHE_KIND = "default-model"


def _cache_name(seed: int) -> str:
    """The cache entry of the model ``seed`` gives: named by everything the generation reads
    (the architecture file, this module and the default images' code, the seed) and the
    versions of the libraries that compute it, so no change to any of them can reuse a stale
    model."""
    from importlib.metadata import version

    from . import images

    h = hashlib.sha256()
    for path in (architecture_path(), Path(__file__), Path(images.__file__)):
        h.update(path.read_bytes())
    # ONNX Runtime's version from its metadata: importing it costs a worker 0.08 s for nothing
    h.update(f"{seed} {onnx.__version__} {version('onnxruntime')} {np.__version__}".encode())
    return f"{NAME}-{h.hexdigest()[:24]}.onnx"


@functools.lru_cache(maxsize=2)
def default_onnx_bytes(seed: int = DEFAULT_SEED) -> bytes:
    """The default model as a serialised ONNX model (`generate_onnx_bytes`), kept in the
    user's cache: fitting its batch norms runs ONNX Runtime 250 times (~3.5 s), and every
    process of a campaign (the planner, each worker, the reference check) loads the model."""
    from .user_cache import read_entry, write_entry

    name = _cache_name(seed)
    data = read_entry(CACHE_KIND, name)
    if data is not None and _complete(data):
        return data
    data = generate_onnx_bytes(seed)
    write_entry(CACHE_KIND, name, data)
    return data


def _complete(data: bytes) -> bool:
    """Whether a cached entry is a whole, valid model (a truncated or foreign file is
    regenerated, not imported)."""
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception:  # onnx raises DecodeError, ValidationError, ...
        return False
    return True


def generate_onnx_bytes(seed: int = DEFAULT_SEED) -> bytes:
    """The default model generated afresh: seeded weights, batch norms fitted to the default
    images (see the module doc)."""
    from .images import default_images, preprocess
    from .onnx_import import onnx_preprocess

    model = onnx.load(str(architecture_path()))
    weights = _draw_weights(model.graph, np.random.default_rng(seed))
    spec = onnx_preprocess(model.graph.input[0])
    batches = [preprocess([img], spec) for img in default_images()]
    _fit_batch_norms(model, weights, batches)
    _scale_logits(model, weights, batches)
    final = _graph_with_weights(model, weights)
    onnx.checker.check_model(final)
    return final.SerializeToString()
