"""Scheduled kernels remembered by the unscheduled body they were scheduled from.

A graph-level mutant changes one or two of a model's fused kernels, yet lowering it runs the
whole Relax pipeline again, and scheduling every kernel was a third of a graph mutant's build.
The rules are deterministic (no tuning, no random choice): the same unscheduled PrimFunc under
the same target always gets the same schedule. `CachedSchedule` therefore looks each kernel up
by the structural hash of its unscheduled PrimFunc and the target (confirmed by structural
equality, so a hash collision costs a schedule, never a wrong kernel) and applies the rules,
through dlight's `ApplyDefaultSchedule`, only to the kernels it has not seen. The cache lives
in the process: a campaign worker fills it when it lowers the original model, and each graph
mutant after that schedules only the kernels whose bodies the mutation changed.

Only `rules.default_rules` are cached; a pipeline given its own rules schedules every kernel
(the tests use that to hold a cached lowering against an uncached one).
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import tirx
from tvm.s_tir import dlight as dl

from .memo import StructuralMemo

#: Kernels remembered per process; past that the least recently used are forgotten.
MAX_KERNELS = 4096

#: (target JSON, structural hash) -> [(unscheduled PrimFunc, scheduled PrimFunc)]
_kernels = StructuralMemo(MAX_KERNELS)


def clear() -> None:
    """Forget every cached schedule."""
    _kernels.clear()


def cached_kernels() -> int:
    """How many scheduled kernels the cache holds."""
    return len(_kernels)


def is_scheduled(func: tirx.PrimFunc) -> bool:
    """Whether ``func`` was scheduled already (dlight marks it so; rules skip it)."""
    return bool(func.attrs and func.attrs.get("tirx.is_scheduled", False))


@tvm.transform.module_pass(opt_level=0, name="mutatenn.CachedSchedule")
class CachedSchedule:
    """dlight's ``ApplyDefaultSchedule(*rules)``, reusing the schedule of every kernel whose
    unscheduled body was scheduled before under the current target (see the module doc).
    ``rules`` must be deterministic and always the same list for one process: the cache key
    does not name them."""

    def __init__(self, rules: list):
        self.rules = list(rules)

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        target = tvm.target.Target.current(allow_none=False)
        target_key = str(target)  # the target's JSON: kind and every attribute
        pending: dict[tvm.ir.GlobalVar, tuple] = {}
        for gv, func in mod.functions_items():
            if not isinstance(func, tirx.PrimFunc) or is_scheduled(func):
                continue
            key = (target_key, tvm_ffi.structural_hash(func))
            scheduled = _kernels.get(key, func)
            if scheduled is None:
                pending[gv] = (key, func)
            else:
                mod[gv] = scheduled
        if pending:
            fresh = dl.ApplyDefaultSchedule(*self.rules)(
                tvm.IRModule({gv: func for gv, (_, func) in pending.items()}))
            for gv, (key, func) in pending.items():
                _kernels.put(key, func, fresh[gv])
                mod[gv] = fresh[gv]
        return mod
