"""The unmutated model in its native runtime, held against TVM's build of it.

A DNN compiler can already be wrong on the *unmutated* model, and a campaign that compares
mutants only with TVM's own original never sees that. So the original also runs in the runtime
its format was made for (ONNX -> ONNX Runtime, TFLite -> LiteRT, the maintained TFLite
interpreter) on exactly the preprocessed batch TVM got, one image at a time as TVM runs it, and
`compare` reports how close the two are: per image top-1 agreement, top-5 overlap and max |Δ|
(for integer outputs in quantization steps), and a one-line verdict.

The runtimes are optional (the ``reference`` extra): when one is missing, or cannot run the
model, `ReferenceUnavailableError` says so in one line and callers go on without the column.
The result of `compare` is a plain JSON-safe dict, so a campaign can store it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .artifact import top_k
from .errors import MutateNNError, ReferenceUnavailableError
from .native_log import captured_output

#: How many classes the overlap metric compares (the issue's and the campaign's top-5).
OVERLAP_K = 5


@dataclass
class ReferenceRun:
    """The reference runtime's outputs (N, classes) and, for integer outputs, the output's
    quantization (scale, zero point), which makes one integer step one quantization step."""

    runtime: str
    outputs: np.ndarray
    quantization: tuple[float, int] | None = None


def _run_onnxruntime(model, batch: np.ndarray) -> ReferenceRun:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ReferenceUnavailableError("the ONNX reference needs onnxruntime "
                                        "(pip install onnxruntime)") from None
    runtime = f"ONNX Runtime {ort.__version__}"
    try:
        session = ort.InferenceSession(model.source_bytes, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        outputs = [session.run(None, {name: x[None]})[0].reshape(-1) for x in batch]
    except Exception as exc:  # onnxruntime raises its own exception types, unexported
        raise ReferenceUnavailableError(
            f"{runtime} cannot run {model.name}: {first_line(exc)}") from None
    return ReferenceRun(runtime, np.stack(outputs))


def _run_litert(model, batch: np.ndarray) -> ReferenceRun:
    try:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ReferenceUnavailableError(
            "the TFLite reference needs LiteRT (pip install ai-edge-litert, or "
            "pip install 'mutatenn[reference]')") from None
    runtime = f"LiteRT {ai_edge_litert.__version__}"
    try:
        interpreter = Interpreter(model_content=model.source_bytes)
        interpreter.allocate_tensors()
        source = interpreter.get_input_details()[0]
        sink = interpreter.get_output_details()[0]
        outputs = []
        for x in batch:
            interpreter.set_tensor(source["index"], x[None])
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(sink["index"]).reshape(-1).copy())
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError from its C++ core
        raise ReferenceUnavailableError(
            f"{runtime} cannot run {model.name}: {first_line(exc)}") from None
    scale, zero_point = sink["quantization"]
    quantized = np.issubdtype(sink["dtype"], np.integer) and scale > 0
    return ReferenceRun(runtime, np.stack(outputs),
                        (float(scale), int(zero_point)) if quantized else None)


#: Model format -> the runtime that format was made for.
RUNTIMES = {"onnx": _run_onnxruntime, "tflite": _run_litert}


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s message (its type's name when it has none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def run_reference(model, batch: np.ndarray) -> ReferenceRun:
    """Run the unmutated ``model`` in its native runtime on the preprocessed ``batch``.

    What the runtime prints (LiteRT announces its XNNPACK delegate on stderr) goes to a log
    file, like TVM's import messages.
    """
    if model.format not in RUNTIMES:
        raise ReferenceUnavailableError(f"no reference runtime for {model.format} models")
    if not model.source_bytes:
        raise ReferenceUnavailableError(f"{model.name}: the model's source bytes were not "
                                        "kept, so there is nothing to run")
    with captured_output(f"reference-{model.name}-{model.digest}"):
        return RUNTIMES[model.format](model, batch)


def compare_outputs(tvm_outputs: np.ndarray, ref: ReferenceRun, names=None, top: int = 5,
                    simplified: bool = False) -> dict:
    """Hold TVM's outputs (N, classes) against the reference's; a JSON-safe dict.

    Per image: both top-``top`` lists, the reference's scores, top-1 agreement, top-5
    overlap (0..5), max |Δ| (integer outputs: in quantization steps) and, where top-1
    differs, the reference's margin between its top-1 and TVM's (small margins are near ties).
    """
    tvm_outputs = np.asarray(tvm_outputs).reshape(len(ref.outputs), -1)
    if tvm_outputs.shape != ref.outputs.shape:
        raise MutateNNError(f"TVM's outputs {tvm_outputs.shape} and the reference's "
                         f"{ref.outputs.shape} differ in shape")
    names = list(names) if names is not None else [str(i) for i in range(len(ref.outputs))]
    steps = ref.quantization is not None
    images = []
    for name, ours, theirs in zip(names, tvm_outputs, ref.outputs):
        ours64, theirs64 = ours.astype(np.float64), theirs.astype(np.float64)
        ours_top = top_k(ours64, max(top, OVERLAP_K))
        theirs_top = top_k(theirs64, max(top, OVERLAP_K))
        diff = float(np.abs(ours64 - theirs64).max())
        images.append({
            "image": name,
            "tvm_classes": ours_top[:top],
            "reference_classes": theirs_top[:top],
            "reference_scores": [float(theirs64[c]) for c in theirs_top[:top]],
            "top1_agree": ours_top[0] == theirs_top[0],
            "top5_overlap": len(set(ours_top[:OVERLAP_K]) & set(theirs_top[:OVERLAP_K])),
            "max_abs_diff": int(diff) if steps else diff,
            "reference_margin": float(theirs64[theirs_top[0]] - theirs64[ours_top[0]]),
        })
    peak = float(np.abs(ref.outputs.astype(np.float64)).max()) or 1.0
    worst = max(i["max_abs_diff"] for i in images)
    disagree = [i for i in images if not i["top1_agree"]]
    summary = {
        "images": len(images),
        "top1_agree": len(images) - len(disagree),
        "top5_overlap_mean": float(np.mean([i["top5_overlap"] for i in images])),
        "max_abs_diff": worst,
        "max_rel_diff": None if steps else worst / peak,
        "agree": not disagree,
    }
    return {"runtime": ref.runtime, "unit": "quantization steps" if steps else "output units",
            "quantization": list(ref.quantization) if steps else None,
            "simplified": simplified, "images": images,
            "summary": summary | {"verdict": _verdict(ref.runtime, summary, disagree, steps,
                                                       simplified)}}


def _verdict(runtime: str, summary: dict, disagree: list[dict], steps: bool,
             simplified: bool) -> str:
    n = summary["images"]
    delta = (f"max |Δ| {summary['max_abs_diff']} quantization steps" if steps else
             f"max |Δ| {summary['max_abs_diff']:.3g} ({summary['max_rel_diff']:.2e} of the "
             "largest output)")
    close = f"top-5 overlap {summary['top5_overlap_mean']:.2f}/{OVERLAP_K}, {delta}"
    built = "; TVM built the onnxslim-simplified graph" if simplified else ""
    if not disagree:
        return f"TVM agrees with {runtime}: top-1 on {n}/{n} images, {close}{built}"
    which = ", ".join(f"{i['image']} (reference margin {i['reference_margin']:.3g})"
                      for i in disagree)
    return (f"TVM DISAGREES with {runtime} on the unmutated model: top-1 differs on "
            f"{len(disagree)}/{n} images ({which}), a possible compiler fault in the "
            f"unmutated build; {close}{built}")


def compare(model, batch: np.ndarray, tvm_outputs: np.ndarray, names=None,
            top: int = 5) -> dict:
    """Run ``model``'s reference on ``batch`` and hold TVM's ``tvm_outputs`` against it.

    ``batch`` must be the preprocessed array TVM ran (`Predictions.inputs`, or what a caller
    passed to `Artifact.run_array`). Returns `compare_outputs`' JSON-safe dict; raises
    `ReferenceUnavailableError` when the runtime is missing or cannot run the model.
    """
    ref = run_reference(model, batch)
    return compare_outputs(tvm_outputs, ref, names=names, top=top,
                           simplified=bool(model.simplified_by))
