"""The schedule step of ``schedule = "tuned"`` profiles: each kernel's tuned schedule from the
tuning cache, the rules for every other kernel.

`ApplyTuned` runs just before the rules' step (`schedule.cache.CachedSchedule`) in the
scheduled CPU pipeline. It replaces each kernel that has a record with a sampled winner by
that schedule and marks it scheduled (``tirx.is_scheduled``, as dlight does), so the rules'
step, which skips scheduled kernels, schedules only the rest — with its in-process cache
intact, shared with ``schedule = "default"`` builds, since the rules' schedules are the same.
Kernel-level mutations then see the tuned kernels like any other scheduled kernel.
"""

from __future__ import annotations

import warnings

import tvm
from tvm import tirx

from ...errors import MutateNNWarning
from ..cache import is_scheduled
from .store import TuningStore, kernel_key

#: (record path, its mtime in ns) -> the parsed winning PrimFunc, or None (no usable one)
_parsed: dict[tuple[str, int], tirx.PrimFunc | None] = {}


def tuned_kernel(store: TuningStore, func: tirx.PrimFunc,
                 target: tvm.target.Target) -> tirx.PrimFunc | None:
    """``func`` as its tuning record schedules it (named as ``func`` is, marked scheduled), or
    None when the kernel has no record or the rules' schedule won. A record written by
    another TVM whose text no longer parses to what was measured is warned about once and
    ignored."""
    key = kernel_key(func, target)
    path = store.path(key)
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return None
    if stamp not in _parsed:
        record = store.get(key)
        scheduled = record.scheduled() if record is not None else None
        if record is not None and record.tuned and scheduled is None:
            warnings.warn(f"{path}: the tuned schedule of {record.kernel} does not parse back "
                          f"to what was measured (tuned with TVM {record.tvm_version}, this "
                          f"is {tvm.__version__}); using the rules' schedule",
                          MutateNNWarning, stacklevel=2)
        _parsed[stamp] = scheduled
    scheduled = _parsed[stamp]
    if scheduled is None:
        return None
    scheduled = scheduled.without_attr("global_symbol").with_attr("tirx.is_scheduled", True)
    name = func.attrs.get("global_symbol") if func.attrs else None  # none before finalization
    return scheduled if name is None else scheduled.with_attr("global_symbol", name)


@tvm.transform.module_pass(opt_level=0, name="mutatenn.ApplyTuned")
class ApplyTuned:
    """Replace every unscheduled kernel that has a tuned schedule in ``store`` for ``target``
    (see the module doc)."""

    def __init__(self, store: TuningStore, target: tvm.target.Target):
        self.store = store
        self.target = target

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        for gv, func in mod.functions_items():
            if isinstance(func, tirx.PrimFunc) and not is_scheduled(func):
                scheduled = tuned_kernel(self.store, func, self.target)
                if scheduled is not None:
                    mod[gv] = scheduled
        return mod
