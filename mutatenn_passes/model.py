"""Models: import ONNX or TFLite files (or the embedded default) into a Relax IRModule.

A `Model` carries everything later stages need without the source file: the IRModule, the
input and output specs, the preprocessing the model expects, and labels when known. Format is
detected from the bytes (a TFLite flatbuffer carries the identifier ``TFL3``; anything else must
parse as an ONNX protobuf), so a misnamed file still loads and a corrupt one fails clearly.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .images import Preprocess
from .native_log import captured_output
from .onnx_import import (TensorSpec, frontend_error, graph_inputs, import_onnx,
                          onnx_tensor_spec, spatial_size)

@dataclass(repr=False)
class Model:
    """An imported model, ready to mutate and build.

    ``mod`` is the Relax IRModule straight from the frontend (weights bound as constants);
    ``digest`` identifies the source bytes, so results can name exactly what was tested. When
    TVM could import an ONNX graph only after simplifying it, ``simplified_by`` names the
    simplifier and ``simplified_digest`` the bytes TVM imported. ``source_bytes`` are kept for
    the reference runtime, which runs the model as the file has it.

    ``labels[n]`` names class n: line ``n + label_offset`` of the file ``labels_source``.
    ``label_mismatch`` is a one-line warning, '' when none, set when the label count differs
    from the class count (a 1001-line ImageNet file on a 1000-class model names every class
    by its neighbour's label); commands warn about it, and campaigns refuse it.
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
    simplified_by: str = ""
    simplified_digest: str = ""
    import_log: str = ""
    source_bytes: bytes = field(default=b"", repr=False)
    labels_source: str = ""
    label_offset: int = 0
    label_mismatch: str = ""

    @property
    def classes(self) -> int:
        """How many classes the output scores (its size beyond the batch axis)."""
        return int(np.prod(self.output.shape[1:]))

    def __repr__(self) -> str:
        def spec(t: TensorSpec) -> str:
            return f"{t.dtype}[{', '.join(map(str, t.shape))}]" + (f" {t.layout}"
                                                                  if t.layout else "")

        extras = [f"{len(self.labels)} labels"] if self.labels else []
        extras += ["synthetic weights"] if self.synthetic_weights else []
        return (f"Model({self.name!r}, {self.format}, input {spec(self.input)}, output "
                f"{spec(self.output)}{''.join(', ' + e for e in extras)})")

    def label(self, index: int) -> str:
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return ""

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "format": self.format,
                "input": self.input.as_dict(), "output": self.output.as_dict(),
                "preprocess": self.preprocess.as_dict(), "labels": bool(self.labels),
                "label_offset": self.label_offset,
                "label_mismatch": self.label_mismatch or None,
                "synthetic_weights": self.synthetic_weights, "digest": self.digest,
                "simplified": {"by": self.simplified_by, "digest": self.simplified_digest}
                if self.simplified_by else None}


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


def _relax_output_spec(mod, name: str) -> TensorSpec | None:
    """The first output's static spec as the imported Relax function returns it, or None."""
    ty = mod["main"].ret_ty
    if getattr(ty, "fields", None):
        ty = ty.fields[0]
    try:
        return TensorSpec(name, tuple(int(v) for v in ty.shape.values), str(ty.dtype))
    except (AttributeError, TypeError):  # not a tensor, or a shape with symbolic dims
        return None


@dataclass
class _Imported:
    """What an importer hands `load_model`: the module, I/O specs, preprocessing, and how."""

    mod: object
    input: TensorSpec
    output: TensorSpec
    preprocess: Preprocess
    notes: list[str] = field(default_factory=list)
    simplified_by: str = ""
    simplified_digest: str = ""
    log: Path | None = None


def _import_onnx(data: bytes, origin: str, log_name: str, height=None, width=None,
                 layout=None) -> _Imported:
    import onnx

    done = import_onnx(onnx.load_model_from_string(data), origin, log_name, height=height,
                       width=width, layout=layout)
    spec = onnx_tensor_spec(graph_inputs(done.proto.graph)[0])
    if len(spec.shape) == 4:
        spec = dataclasses.replace(spec, layout=done.layout)
    graph_output = done.proto.graph.output[0]
    out_spec = _relax_output_spec(done.mod, graph_output.name) or onnx_tensor_spec(graph_output)
    height, width = spatial_size(spec.shape, spec.layout) if len(spec.shape) == 4 else (0, 0)
    pre = Preprocess(height=height, width=width, layout=spec.layout or "NCHW",
                     raw=spec.dtype != "float32", dtype=spec.dtype)
    return _Imported(done.mod, spec, out_spec, pre, done.notes, done.simplified_by,
                     done.simplified_digest, done.log)


def _import_tflite(data: bytes, origin: str, log_name: str, **_size) -> _Imported:
    """TFLite shapes are static in the flatbuffer, so there is nothing to pin."""
    import tflite
    import tvm.relax.frontend.tflite as tfl

    why = ""
    with captured_output(log_name) as log:
        try:
            model = tflite.Model.GetRootAsModel(data, 0)
            graph = model.Subgraphs(0)
            in_t = graph.Tensors(graph.Inputs(0))
            out_t = graph.Tensors(graph.Outputs(0))
            mod = tfl.from_tflite(model)
        except Exception as exc:
            why = frontend_error(exc)
    if why:
        where = f" (TVM's log: {log.path})" if log.path else ""
        raise ModelLoadError(f"{origin}: TVM cannot import this TFLite model: {why}{where}")
    types = {0: "float32", 3: "uint8", 9: "int8", 2: "int32"}
    in_spec = TensorSpec(in_t.Name().decode(), tuple(int(d) for d in in_t.ShapeAsNumpy()),
                         types.get(in_t.Type(), "float32"), "NHWC")
    out_spec = TensorSpec(out_t.Name().decode(), tuple(int(d) for d in out_t.ShapeAsNumpy()),
                          types.get(out_t.Type(), "float32"))
    height, width = spatial_size(in_spec.shape, "NHWC")
    raw = in_spec.dtype != "float32"
    # Float TFLite image models conventionally take pixels mapped to [-1, 1].
    pre = Preprocess(height=height, width=width, layout="NHWC", raw=raw, dtype=in_spec.dtype,
                     scale=1.0, mean=(127.5,) * 3, std=(127.5,) * 3)
    notes = [f"TVM printed messages while importing; see {log.path}"] if log.path else []
    return _Imported(mod, in_spec, out_spec, pre, notes, log=log.path)


def read_labels(path: str | Path) -> list[str]:
    """One label per line, in file order (see `load_model`'s ``label_offset``)."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read labels ({exc})") from None


_PREPROCESS_FIELDS = {f.name for f in dataclasses.fields(Preprocess)}


def _check_overrides(overrides: dict) -> None:
    unknown = set(overrides) - _PREPROCESS_FIELDS - {"labels", "label_offset", "name"}
    if unknown:
        raise ModelLoadError(f"unknown model override(s) {', '.join(sorted(unknown))}; known: "
                             f"labels, label_offset, name, "
                             f"{', '.join(sorted(_PREPROCESS_FIELDS))}")
    offset = overrides.get("label_offset")
    if offset is not None and (not isinstance(offset, int) or isinstance(offset, bool)):
        raise ModelLoadError(f"label_offset must be an integer, not {offset!r}")


def _apply_overrides(model: Model, overrides: dict) -> Model:
    pre = {k: v for k, v in overrides.items() if k in _PREPROCESS_FIELDS and v is not None}
    for key in ("mean", "std"):
        if key in pre:
            pre[key] = tuple(float(v) for v in pre[key])
    if pre:
        model.preprocess = dataclasses.replace(model.preprocess, **pre)
    if overrides.get("labels") is not None:
        labels = overrides["labels"]
        if isinstance(labels, (str, Path)):
            _attach_labels(model, read_labels(labels), str(labels), model.label_offset)
        else:
            _attach_labels(model, list(labels), "the labels given", model.label_offset)
    if overrides.get("name"):
        model.name = overrides["name"]
    return model


def _attach_labels(model: Model, lines: list[str], source: str, offset: int) -> None:
    """Set ``model.labels`` so that line ``n + offset`` names class n, and record a count
    mismatch (after the offset) in ``model.label_mismatch``."""
    if offset >= len(lines) or -offset >= model.classes:
        raise ModelLoadError(f"label_offset {offset} leaves no class named by {source} "
                             f"({len(lines)} lines, {model.classes} classes)")
    model.labels = lines[offset:] if offset >= 0 else [""] * -offset + lines
    model.labels_source, model.label_offset, model.label_mismatch = source, offset, ""
    if len(model.labels) != model.classes:
        shifted = f" after label offset {offset}" if offset else ""
        extra, hint = len(lines) - model.classes, ""
        if not offset and extra > 0:
            first = "line is" if extra == 1 else f"{extra} lines are"
            hint = ("; pass label_offset (--label-offset N: line n+N names class n), e.g. "
                    f"{extra} if the first {first} not a class")
        model.label_mismatch = (f"{source} has {len(model.labels)} labels{shifted} for "
                                f"{model.classes} classes, so the labels may be shifted{hint}")


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
    file path or a list; by default a label file beside the model with one line per class is
    used), ``label_offset`` (line n+offset names class n: 1 for a 1001-line ImageNet file
    whose first line is "background" on a 1000-class model; default 0), or rename the model
    (``name``). A label count that still differs from the class count is kept, and recorded
    in ``Model.label_mismatch``. For ONNX, ``height``/``width``/``layout`` also pin the
    graph's input shape (required where the input's height or width is dynamic). Failures
    raise `ModelLoadError` naming the file.
    """
    _check_overrides(overrides)
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
    digest = hashlib.sha256(data).hexdigest()[:16]
    importer = _import_tflite if fmt == "tflite" else _import_onnx
    done = importer(data, origin, f"import-{name}-{digest}", height=overrides.get("height"),
                    width=overrides.get("width"), layout=overrides.get("layout"))
    model = Model(name=name, source=origin, format=fmt, mod=done.mod, input=done.input,
                  output=done.output, preprocess=done.preprocess,
                  synthetic_weights=path is None, digest=digest, notes=list(done.notes),
                  simplified_by=done.simplified_by, simplified_digest=done.simplified_digest,
                  import_log=str(done.log or ""), source_bytes=data)
    model.label_offset = overrides.get("label_offset") or 0
    if path is not None and overrides.get("labels") is None:
        found = _labels_beside(Path(path), model.classes + model.label_offset)
        if found:
            _attach_labels(model, read_labels(found), str(found), model.label_offset)
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
