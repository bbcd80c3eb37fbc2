"""Models: import ONNX or TFLite files (or the embedded default) into a Relax IRModule.

A `Model` carries everything later stages need without the source file: the IRModule, the
input and output specs, the preprocessing the model expects, and labels when known. Format is
detected from the bytes (a TFLite flatbuffer carries the identifier ``TFL3``; anything else must
parse as an ONNX protobuf), so a misnamed file still loads and a corrupt one fails clearly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .images import Preprocess

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16"}


@dataclass(frozen=True)
class TensorSpec:
    """Name, static shape, dtype (and for inputs the layout) of one model tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"shape": list(self.shape)}


@dataclass
class Model:
    """An imported model, ready to mutate and build.

    ``mod`` is the Relax IRModule straight from the frontend (weights bound as constants);
    ``digest`` identifies the source bytes, so results can name exactly what was tested.
    """

    name: str
    source: str
    format: str
    mod: object
    input: TensorSpec
    output: TensorSpec
    preprocess: Preprocess
    labels: list[str] | None = None
    synthetic_weights: bool = False
    digest: str = ""
    notes: list[str] = field(default_factory=list)

    def label(self, index: int) -> str:
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return ""

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "format": self.format,
                "input": self.input.as_dict(), "output": self.output.as_dict(),
                "preprocess": self.preprocess.as_dict(), "labels": bool(self.labels),
                "synthetic_weights": self.synthetic_weights, "digest": self.digest}


def detect_format(data: bytes) -> str:
    """``"tflite"`` or ``"onnx"`` from the content; raises `ValueError` when it is neither."""
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return "tflite"
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"neither a TFLite flatbuffer nor an ONNX model ({exc})") from None
    if not proto.graph.node:
        raise ValueError("neither a TFLite flatbuffer nor an ONNX model with a graph")
    return "onnx"


def _layout_of(shape: tuple[int, ...]) -> str:
    if len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3):
        return "NCHW"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "NHWC"
    return "NCHW"


def _spatial(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])


def onnx_tensor_spec(value_info) -> TensorSpec:
    """The static spec of an ONNX graph input/output (symbolic dims become 1)."""
    tensor = value_info.type.tensor_type
    shape = tuple(d.dim_value if d.dim_value > 0 else 1 for d in tensor.shape.dim)
    dtype = _ONNX_DTYPES.get(tensor.elem_type, "float32")
    return TensorSpec(value_info.name, shape, dtype, _layout_of(shape) if len(shape) == 4
                      else "")


def onnx_preprocess(value_info) -> Preprocess:
    """What an ONNX image classifier most likely expects: ImageNet mean/std in RGB, or raw
    pixels for an integer input. Users override what a file cannot say."""
    spec = onnx_tensor_spec(value_info)
    height, width = _spatial(spec.shape, spec.layout)
    return Preprocess(height=height, width=width, layout=spec.layout,
                      raw=spec.dtype != "float32", dtype=spec.dtype)


def _graph_inputs(graph) -> list:
    initialized = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in initialized]


def _sanitize_input_name(proto, name: str) -> None:
    """Rename the graph input to a C identifier in place.

    TVM's C backend emits the Relax parameter name verbatim as a C variable, so an ONNX name
    like ``gpu_0/data_0`` breaks the C target's build; LLVM does not care.
    """
    clean = re.sub(r"\W", "_", name)
    if clean == name:
        return
    for value in proto.graph.input:
        if value.name == name:
            value.name = clean
    for node in proto.graph.node:
        for i, used in enumerate(node.input):
            if used == name:
                node.input[i] = clean


def _import_onnx(data: bytes, origin: str):
    import onnx
    from tvm import relax
    import tvm.relax.frontend.onnx  # noqa: F401  (registers the frontend)

    proto = onnx.load_model_from_string(data)
    inputs = _graph_inputs(proto.graph)
    if len(inputs) != 1:
        raise ModelLoadError(f"{origin}: expected one image input, the graph has "
                             f"{len(inputs)} ({', '.join(i.name for i in inputs)})")
    _sanitize_input_name(proto, inputs[0].name)
    try:
        mod = relax.frontend.onnx.from_onnx(proto, keep_params_in_input=False)
    except Exception as exc:  # TVM raises many kinds; all mean "cannot import"
        first = str(exc).strip().splitlines()
        raise ModelLoadError(f"{origin}: TVM cannot import this ONNX graph: "
                             f"{first[-1] if first else type(exc).__name__}") from None
    return mod, onnx_tensor_spec(inputs[0]), onnx_tensor_spec(proto.graph.output[0]), \
        onnx_preprocess(inputs[0])


def _import_tflite(data: bytes, origin: str):
    import tflite
    import tvm.relax.frontend.tflite as tfl

    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        in_t = graph.Tensors(graph.Inputs(0))
        out_t = graph.Tensors(graph.Outputs(0))
        mod = tfl.from_tflite(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadError(f"{origin}: TVM cannot import this TFLite model: "
                             f"{first[-1] if first else type(exc).__name__}") from None
    types = {0: "float32", 3: "uint8", 9: "int8", 2: "int32"}
    in_spec = TensorSpec(in_t.Name().decode(), tuple(int(d) for d in in_t.ShapeAsNumpy()),
                         types.get(in_t.Type(), "float32"), "NHWC")
    out_spec = TensorSpec(out_t.Name().decode(), tuple(int(d) for d in out_t.ShapeAsNumpy()),
                          types.get(out_t.Type(), "float32"))
    height, width = _spatial(in_spec.shape, "NHWC")
    raw = in_spec.dtype != "float32"
    # Float TFLite image models conventionally take pixels mapped to [-1, 1].
    pre = Preprocess(height=height, width=width, layout="NHWC", raw=raw, dtype=in_spec.dtype,
                     scale=1.0, mean=(127.5,) * 3, std=(127.5,) * 3)
    return mod, in_spec, out_spec, pre


def read_labels(path: str | Path) -> list[str]:
    """One label per line; line N names class N."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read labels ({exc})") from None


_PREPROCESS_FIELDS = {f.name for f in dataclasses.fields(Preprocess)}


def _apply_overrides(model: Model, overrides: dict) -> Model:
    unknown = set(overrides) - _PREPROCESS_FIELDS - {"labels", "name"}
    if unknown:
        raise ModelLoadError(f"unknown model override(s) {', '.join(sorted(unknown))}; "
                             f"known: labels, name, {', '.join(sorted(_PREPROCESS_FIELDS))}")
    pre = {k: v for k, v in overrides.items() if k in _PREPROCESS_FIELDS and v is not None}
    for key in ("mean", "std"):
        if key in pre:
            pre[key] = tuple(float(v) for v in pre[key])
    if pre:
        model.preprocess = dataclasses.replace(model.preprocess, **pre)
    if overrides.get("labels") is not None:
        labels = overrides["labels"]
        model.labels = read_labels(labels) if isinstance(labels, (str, Path)) else list(labels)
    if overrides.get("name"):
        model.name = overrides["name"]
    return model


def _labels_beside(path: Path, classes: int) -> Path | None:
    """A label file next to the model whose line count matches the class count.

    Checked in order: ``<stem>.labels.txt``, ``<stem>_labels.txt``, ``labels.txt``, then any
    ``*labels*.txt``; the count check keeps an unrelated file from being used.
    """
    folder = path.parent
    candidates = [folder / f"{path.stem}.labels.txt", folder / f"{path.stem}_labels.txt",
                  folder / "labels.txt"] + sorted(folder.glob("*labels*.txt"))
    for candidate in candidates:
        try:
            if candidate.is_file() and \
                    len(candidate.read_text(encoding="utf-8").splitlines()) == classes:
                return candidate
        except (OSError, UnicodeDecodeError):
            continue
    return None


def load_model(path: str | Path | None = None, **overrides) -> Model:
    """Import the model at ``path`` (ONNX or TFLite, detected by content) or, with no path,
    the embedded default (ShuffleNet, synthetic weights).

    ``overrides`` replace inferred preprocessing fields (``height``, ``width``, ``layout``,
    ``channel_order``, ``raw``, ``scale``, ``mean``, ``std``, ``resample``), set ``labels`` (a
    file path or a list; by default a matching label file beside the model is used) or rename
    the model (``name``). Failures raise `ModelLoadError` naming the file.
    """
    if path is None:
        from . import default_model

        data = default_model.default_onnx_bytes()
        origin, name = f"embedded:{default_model.NAME}", default_model.NAME
    else:
        p = Path(path)
        if not p.is_file():
            raise ModelLoadError(f"{p}: no such model file")
        data = p.read_bytes()
        origin, name = str(p), p.stem
        if not data:
            raise ModelLoadError(f"{p}: the file is empty")
    try:
        fmt = detect_format(data)
    except ValueError as exc:
        raise ModelLoadError(f"{origin}: unsupported or corrupt model file: {exc}") from None
    importer = _import_tflite if fmt == "tflite" else _import_onnx
    mod, in_spec, out_spec, pre = importer(data, origin)
    model = Model(name=name, source=origin, format=fmt, mod=mod, input=in_spec,
                  output=out_spec, preprocess=pre, synthetic_weights=path is None,
                  digest=hashlib.sha256(data).hexdigest()[:16])
    if path is not None and overrides.get("labels") is None:
        found = _labels_beside(Path(path), int(np.prod(out_spec.shape[1:])))
        if found:
            model.labels = read_labels(found)
            model.notes.append(f"labels read from {found}")
    if path is None:
        model.notes.append("weights are synthetic (ShuffleNet architecture, seeded weights, "
                           "not trained); pass --model to test a trained model")
    return _apply_overrides(model, overrides)


def random_input(model: Model, seed: int = 0) -> np.ndarray:
    """A seeded input of the model's shape and dtype (for smoke tests without images)."""
    rng = np.random.default_rng(seed)
    if model.input.dtype == "float32":
        return rng.standard_normal(model.input.shape).astype(np.float32)
    return rng.integers(0, 256, model.input.shape).astype(model.input.dtype)
