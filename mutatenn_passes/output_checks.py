"""Checks on a model's outputs that say whether its predictions can mean anything.

A model whose outputs do not depend on its input (the `onnx` wheel's ``light_*.onnx`` zoo
models, whose weights are ``ConstantOfShape`` fills, score every class 0.001 for every image)
still yields top-K tables, and a campaign on it would report mutants killed or surviving as if
that were evidence. Run on the *original* model's outputs, `ignores_input` says so before
anyone reads the numbers; `predict` warns with it, and a campaign can refuse or flag a model
with the same call.
"""

from __future__ import annotations

import numpy as np

#: Scores closer than this, relative to the largest score magnitude, count as equal: float
#: kernels on different inputs rarely agree to the last bit even when the weights make the
#: input irrelevant.
RELATIVE_TOLERANCE = 1e-6


def _tolerance(outputs: np.ndarray) -> float:
    if np.issubdtype(outputs.dtype, np.integer):
        return 0.0
    scale = float(np.max(np.abs(outputs))) if outputs.size else 0.0
    return RELATIVE_TOLERANCE * scale


def ignores_input(outputs: np.ndarray, inputs: np.ndarray | None = None) -> str:
    """Why ``outputs`` look independent of the input, or '' when nothing says so.

    ``outputs`` holds one row of class scores per image (``Predictions.outputs``); ``inputs``
    the preprocessed batch they came from (``Predictions.inputs``), used to count only images
    whose inputs differ. Two signs are checked:

    * every class has the same score on every image (nothing is ranked at all);
    * two or more distinct inputs got the same scores for every class.

    One image, or several with identical inputs, can only show the first sign.
    """
    outputs = np.asarray(outputs)
    if outputs.size == 0:
        return ""
    rows = outputs.reshape(len(outputs), -1).astype(np.float64)
    tol = _tolerance(outputs)
    flat = np.ptp(rows, axis=1) <= tol
    if flat.all():
        value = f"{rows[0, 0]:.4g}"
        same = "" if len(rows) == 1 else " on every image"
        return (f"every class scores the same ({value}){same}: the model ranks nothing "
                "(untrained or constant weights?)")
    if inputs is not None:
        batch = np.asarray(inputs).reshape(len(inputs), -1)
        distinct = sorted({row.tobytes(): i for i, row in enumerate(batch)}.values())
    else:
        distinct = list(range(len(rows)))
    if len(distinct) < 2:
        return ""
    chosen = rows[distinct]
    if (np.ptp(chosen, axis=0) <= tol).all():
        what = "different inputs" if inputs is not None else "images"
        return (f"all {len(distinct)} {what} got identical scores: the outputs do not depend "
                "on the input (constant or disconnected weights?)")
    return ""
