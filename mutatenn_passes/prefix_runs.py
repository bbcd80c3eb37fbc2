"""Runs from the first changed cut (prefix reuse): a mutant that computes what its original
computes up to one of the original's cuts runs its images from there.

Segmented lowering (`segmented_lowering`) cuts a model's ``main`` where one tensor alone is
live. A mutant whose segments before the k-th equal the original's — a graph mutant that
rewrote a later binding, a kernel mutant whose kernel the first k segments never call —
computes the original's activation at cut k for every image, so its run can start there:
built with ``from_cut`` (`build.build_incremental`, `schemata.build_schema`), its program is
its segments from k on (``artifact.cut`` = k), fed the original's activations, which
`cut_activations` computes once per image through the original's segments.
The kernels a run executes are the ones a whole run executes from there on, so the outputs
are bit-identical (tested) for mutants that read and write only what they should; one that
reads outside its buffers sees other memory there than in a whole run (memory is planned for
the program it runs). ``latency_ms`` then times the run from the cut.
"""

from __future__ import annotations

import numpy as np

from .build import OriginalBuild, _linked_artifact
from .tir_pipeline import BuildRecord


def cut_activations(original: OriginalBuild, batch: np.ndarray) -> list[np.ndarray] | None:
    """The original's activations at its cuts for each image of the preprocessed ``batch``:
    item k - 1 holds cut k's, one row per image (without the batch axis, as ``batch`` holds
    the images); None when the original cannot be cut (``segmented_lowering().why`` says
    why) or has no library to call. They are computed through the original's segments, each
    a function of its own calling the original's compiled kernels (`SegmentedLowering.chain`).
    Runs generated code: in a campaign's worker, call it in a forked child (`sandbox`)."""
    import tvm

    segmented = original.segmented_lowering()
    if segmented.why or not original.libraries:
        return None
    chain = _linked_artifact(original.model, original.profile, segmented.chain(), {},
                             original.libraries, BuildRecord(mode="the original's segments"))
    vm, dev = chain._machine(), chain.device()
    cuts: list[list[np.ndarray]] = [[] for _ in range(segmented.segment_count - 1)]
    for x in batch:
        value = tvm.runtime.tensor(np.ascontiguousarray(x[None]), dev)
        for k, rows in enumerate(cuts):
            value = vm[f"segment_{k}"](value)
            rows.append(value.numpy()[0])
    return [np.stack(rows) for rows in cuts]


def run_from_cut(art, batch: np.ndarray, activations) -> tuple[np.ndarray, list[float]]:
    """``art.run_array`` on what its program takes: the images of ``batch``, or the
    original's activations at ``art.cut`` (``activations[art.cut - 1]``, as
    `cut_activations` gives them)."""
    return art.run_array(batch if not art.cut else activations[art.cut - 1])
