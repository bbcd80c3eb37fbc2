"""The base of mutatenn's CPU schedule rules: a dlight `ScheduleRule` for LLVM CPU targets."""

from __future__ import annotations

from tvm.s_tir import dlight as dl
from tvm.target import Target


class CPURule(dl.ScheduleRule):
    """A schedule rule for LLVM CPU targets; `apply` returns None for any other target."""

    def is_target_available(self, target: Target) -> bool:
        return target.kind.name in ("llvm", "c")
