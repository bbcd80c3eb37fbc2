"""Reduction fallback: any other kernel with reductions (sums, means, norms) that no rule
above matched. Its outer spatial loops run in parallel; nothing else changes, which is always
legal and keeps such rare kernels from running on one core."""

from __future__ import annotations

from tvm import s_tir

from .common import REDUCE
from .rule import CPURule


class ParallelReduction(CPURule):
    """Parallelize the leading spatial loops of each top-level block (see the module doc)."""

    def schedule(self, sch, blocks, target) -> bool:
        changed = False
        for block in blocks:
            leading = []
            for iv, loop in zip(sch.get(block).iter_vars, sch.get_loops(block)):
                if iv.iter_type == REDUCE:
                    break
                leading.append(loop)
            if leading:
                try:
                    sch.parallel(sch.fuse(*leading) if len(leading) > 1 else leading[0])
                    changed = True
                except s_tir.ScheduleError:
                    continue
        return changed
