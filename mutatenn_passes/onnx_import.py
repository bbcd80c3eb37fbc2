"""ONNX graphs as exporters write them, into Relax: pin the input, import, simplify on failure.

Exporters (PyTorch's above all) leave symbolic dims (batch, width) in the input and compute
Reshape/Expand/Resize targets through ``Shape -> Gather -> Concat`` subgraphs. TVM 0.27's Relax
frontend rejects many of those ("Reshape requires the input new shape to be Shape") even when
every dim is static, because it converts node by node and never folds the subgraph into a
constant shape. So the import goes in three steps:

1. pin the input to one static shape: batch 1, the inferred static dims, the user's
   ``height``/``width`` where given (required for dynamic spatial dims), 3 channels;
2. import with `tvm.relax.frontend.onnx.from_onnx`;
3. when the frontend fails, simplify the pinned graph with onnxslim (constant folding and
   shape inference fold the shape subgraphs away) and import that instead, recording that the
   model was simplified and the simplified bytes' digest.

Everything TVM prints on the way goes to a log file (`native_log`), never to the terminal.

Also here, because `model` and `default_model` both read them from an ONNX graph: a tensor's
static spec (`TensorSpec`, `onnx_tensor_spec`) and the preprocessing an input implies
(`onnx_preprocess`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelLoadError
from .images import Preprocess
from .native_log import captured_output


@dataclass
class OnnxImport:
    """The outcome of importing one ONNX graph.

    ``proto`` is the graph TVM imported (input pinned, and simplified when ``simplified_by`` is
    set); ``simplified_digest`` identifies the simplified bytes; ``log`` is the file holding
    what TVM printed, if it printed anything.
    """

    mod: object
    proto: object
    layout: str
    notes: list[str] = field(default_factory=list)
    simplified_by: str = ""
    simplified_digest: str = ""
    log: Path | None = None


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


def graph_inputs(graph) -> list:
    """The graph's real inputs (initializers listed as inputs by old exporters excluded)."""
    initialized = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in initialized]


def static_dims(value_info) -> list[int | None]:
    """The dims of a tensor's declared shape; None where the dim is symbolic or unknown."""
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in value_info.type.tensor_type.shape.dim]


def guess_layout(dims: list[int | None]) -> str:
    """NCHW or NHWC for a 4-D image input, from where a 1- or 3-channel dim sits."""
    if len(dims) == 4 and dims[1] in (1, 3) and dims[3] not in (1, 3):
        return "NCHW"
    if len(dims) == 4 and dims[3] in (1, 3):
        return "NHWC"
    return "NCHW"


def _dims_text(value_info) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else
                           (d.dim_param or "?") for d in dims) + "]"


def pin_input_shape(proto, origin: str, height: int | None = None, width: int | None = None,
                    layout: str | None = None) -> tuple[str, list[str]]:
    """Give the single graph input one static shape, in place; returns (layout, notes).

    Batch becomes 1 (mutatenn runs one image at a time), a dynamic channel dim 3, height and
    width the given values or else the declared static ones. A dim that stays unknown, or a
    fixed batch other than 1, is a `ModelLoadError` saying what to pass.
    """
    value_info = graph_inputs(proto.graph)[0]
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        raise ModelLoadError(f"{origin}: input {value_info.name} declares no shape; mutatenn "
                             "needs an image input of known rank")
    before = _dims_text(value_info)
    dims = static_dims(value_info)
    layout = layout or guess_layout(dims)
    wanted: dict[int, tuple[str, int | None]] = {0: ("batch", 1)}
    if len(dims) == 4:
        h, w, c = (2, 3, 1) if layout == "NCHW" else (1, 2, 3)
        wanted[c] = ("channels", dims[c] or 3)
        wanted[h] = ("height", height or dims[h])
        wanted[w] = ("width", width or dims[w])
    if dims and dims[0] not in (None, 1):
        raise ModelLoadError(f"{origin}: input {value_info.name} {before} has a fixed batch of "
                             f"{dims[0]}; mutatenn runs one image at a time and needs batch 1 "
                             "or a dynamic batch")
    changed_static = False
    for index, dim in enumerate(tensor.shape.dim):
        what, value = wanted.get(index, (f"dim {index}", dims[index]))
        if value is None:
            raise ModelLoadError(
                f"{origin}: input {value_info.name} {before} has a dynamic {what}; give the "
                "input size with --size HxW (height=, width= in the API)")
        changed_static |= dims[index] is not None and dims[index] != value
        dim.dim_value = value  # a oneof with dim_param: setting one clears the other
    if changed_static:
        # Shapes inferred for the old size would contradict the new one downstream.
        del proto.graph.value_info[:]
    after = _dims_text(value_info)
    return layout, ([f"input {value_info.name} pinned from {before} to {after} ({layout})"]
                    if after != before else [])


def sanitize_input_name(proto, name: str) -> str:
    """Rename the graph input to a C identifier in place; returns the new name.

    TVM's C backend emits the Relax parameter name verbatim as a C variable, so an ONNX name
    like ``gpu_0/data_0`` breaks the C target's build; LLVM does not care.
    """
    clean = re.sub(r"\W", "_", name)
    if clean == name:
        return name
    for value in proto.graph.input:
        if value.name == name:
            value.name = clean
    for node in proto.graph.node:
        for i, used in enumerate(node.input):
            if used == name:
                node.input[i] = clean
    return clean


def frontend_error(exc: BaseException) -> str:
    """The last line of a frontend exception, which is where TVM says what it rejected."""
    lines = str(exc).strip().splitlines()
    return lines[-1].strip() if lines else type(exc).__name__


def _from_onnx(proto):
    from tvm import relax
    import tvm.relax.frontend.onnx  # noqa: F401  (registers the frontend)

    return relax.frontend.onnx.from_onnx(proto, keep_params_in_input=False)


def _try_import(proto) -> tuple[object, str]:
    """(module, "") or (None, why); the exception and the builder it holds die here."""
    try:
        return _from_onnx(proto), ""
    except Exception as exc:  # TVM raises many kinds; all mean "cannot import"
        why = frontend_error(exc)
    print(f"mutatenn: TVM's ONNX frontend failed: {why}")  # into the log, beside TVM's lines
    return None, why


def simplify(proto):
    """The graph simplified by onnxslim (constant folding, shape inference, dead nodes)."""
    import onnxslim

    return onnxslim.slim(proto), f"onnxslim {onnxslim.__version__}"


def import_onnx(proto, origin: str, log_name: str, height: int | None = None,
                width: int | None = None, layout: str | None = None) -> OnnxImport:
    """Pin ``proto``'s input, import it, and simplify then re-import when the frontend fails.

    ``proto`` is modified in place (pinned input, C-identifier input name). Raises
    `ModelLoadError` naming ``origin``, both failures and the log file when neither the graph
    as exported nor its simplified form imports.
    """
    inputs = graph_inputs(proto.graph)
    if len(inputs) != 1:
        raise ModelLoadError(f"{origin}: expected one image input, the graph has "
                             f"{len(inputs)} ({', '.join(i.name for i in inputs)})")
    layout, notes = pin_input_shape(proto, origin, height, width, layout)
    sanitize_input_name(proto, inputs[0].name)
    result = OnnxImport(mod=None, proto=proto, layout=layout, notes=notes)
    simplify_failed = ""
    with captured_output(log_name) as log:
        mod, why = _try_import(proto)
        if mod is None:
            try:
                slim, result.simplified_by = simplify(proto)
            except ImportError:
                simplify_failed = "onnxslim is not installed (pip install onnxslim)"
            except Exception as exc:  # onnxslim raises what onnx and its passes raise
                simplify_failed = f"onnxslim failed: {frontend_error(exc)}"
            else:
                mod, again = _try_import(slim)
                result.proto = slim
                result.simplified_digest = \
                    hashlib.sha256(slim.SerializeToString()).hexdigest()[:16]
                if mod is None:
                    simplify_failed = f"also after simplifying with {result.simplified_by}" \
                        + (f": {again}" if again != why else "")
            if simplify_failed:
                print(f"mutatenn: {simplify_failed}")
    result.log = log.path
    where = f"; TVM's log: {log.path}" if log.path else ""
    if mod is None:
        raise ModelLoadError(f"{origin}: TVM cannot import this ONNX graph: {why} "
                             f"({simplify_failed}{where})")
    result.mod = mod
    if result.simplified_by:
        result.notes.append(f"TVM could not import the graph as exported ({why}); imported it "
                            f"after simplifying it with {result.simplified_by} (simplified "
                            f"digest {result.simplified_digest}{where})")
    elif log.path:
        result.notes.append(f"TVM printed messages while importing; see {log.path}")
    return result


def spatial_size(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(height, width) of an image tensor's ``shape`` in ``layout``."""
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])


def onnx_tensor_spec(value_info) -> TensorSpec:
    """The static spec of an ONNX graph input/output (symbolic dims become 1)."""
    dims = static_dims(value_info)
    shape = tuple(d or 1 for d in dims)
    dtype = _ONNX_DTYPES.get(value_info.type.tensor_type.elem_type, "float32")
    return TensorSpec(value_info.name, shape, dtype, guess_layout(dims) if len(shape) == 4
                      else "")


def onnx_preprocess(value_info) -> Preprocess:
    """What an ONNX image classifier most likely expects: ImageNet mean/std in RGB, or raw
    pixels for an integer input. Users override what a file cannot say."""
    spec = onnx_tensor_spec(value_info)
    height, width = spatial_size(spec.shape, spec.layout)
    return Preprocess(height=height, width=width, layout=spec.layout,
                      raw=spec.dtype != "float32", dtype=spec.dtype)
