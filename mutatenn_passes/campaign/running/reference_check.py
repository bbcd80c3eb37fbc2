"""The campaign's originals held against each model's native reference runtime.

Mutants are compared with TVM's own build of the unmutated model; if that build is already
wrong, the campaign never sees it. So once the builds have run, the engine runs each model
once in the runtime its format was made for (`reference.run_reference`: ONNX -> ONNX Runtime,
TFLite -> LiteRT) on the very batch the workers ran (`WorkerCache.batch`, the workers' code
path), and holds every target's original outputs, as the database stores them, against it
(`reference.compare_outputs`). Each comparison is stored by the original's key with a
fingerprint of the outputs compared, so `mutatenn report` shows it without running anything
and a rerun recomputes only the originals that are new, whose outputs changed, or that had no
reference last time (the runtime may have been installed since).

A missing runtime, a format without one, or any failure of the reference run is stored as the
reason there is no reference; the campaign goes on.
"""

from __future__ import annotations

import numpy as np

from ...errors import MutateNNError, ReferenceUnavailableError
from ...reference import compare_outputs, first_line, run_reference
from ..scoring.reference_rows import fingerprint
from ..scoring.store import Store
from .worker_cache import WorkerCache


def _originals_to_check(store: Store) -> dict[int, list[tuple[str, list[dict], str]]]:
    """Per model index: (key, outputs, fingerprint) of each ``ok`` original of the plan whose
    stored check is missing, stale or without a result."""
    checks = store.reference_checks()
    results = store.results()
    todo: dict[int, list] = {}
    for t in store.tasks(store.meta().get("plan", [])):
        if t["kind"] != "original" or results.get(t["key"], {}).get("status") != "ok":
            continue
        outs = store.outputs(t["key"])
        fp = fingerprint(outs)
        done = checks.get(t["key"])
        if done and done["fingerprint"] == fp and done["result"] is not None:
            continue
        todo.setdefault(t["model_index"], []).append((t["key"], outs, fp))
    return todo


def check_references(store: Store, specs: list, models: list, images, say=None) -> int:
    """Check every original that needs it (see the module docstring); the number checked.

    ``specs`` are the models' `messages.ModelSpec` and ``models`` the models already
    imported, both in ``[[models]]`` order; ``images`` the campaign's image paths.
    """
    todo = _originals_to_check(store)
    if not todo:
        return 0
    cache = WorkerCache({s.cache_key: m for s, m in zip(specs, models) if m is not None})
    for index, originals in todo.items():
        spec = specs[index]
        try:
            model = cache.model(spec)
            if say:
                say(f"running {model.name} in its reference runtime")
            names, batch = cache.batch(spec, images)
            ref = run_reference(model, batch)
        except ReferenceUnavailableError as exc:
            for key, _, fp in originals:
                store.record_reference_check(key, fp, reason=str(exc))
            continue
        except Exception as exc:  # the campaign's results must outlive a broken reference
            reason = f"the reference run failed: {first_line(exc)}"
            for key, _, fp in originals:
                store.record_reference_check(key, fp, reason=reason)
            continue
        for key, outs, fp in originals:
            try:
                result = compare_outputs(np.stack([o["vector"] for o in outs]), ref,
                                         names=names, simplified=bool(model.simplified_by))
            except MutateNNError as exc:  # e.g. outputs of another shape than TVM's
                store.record_reference_check(key, fp, reason=str(exc))
                continue
            store.record_reference_check(key, fp, result=result)
    return sum(len(v) for v in todo.values())
