"""Reduction fallback: any other kernel with reductions (sums, means, norms) that no rule
above matched. Its outer spatial loops run in parallel; nothing else changes, which is always
legal and keeps such rare kernels from running on one core."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.target import Target

from .common import REDUCE, root_blocks
from .rule import CPURule


class ParallelReduction(CPURule):
    """Parallelize the leading spatial loops of each top-level block (see the module doc)."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool):
        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        try:
            blocks = root_blocks(sch)
        except Exception:  # no root block: not an S-TIR kernel
            return None
        changed = False
        for block in blocks:
            ivs = sch.get(block).iter_vars
            loops = sch.get_loops(block)
            leading = []
            for iv, loop in zip(ivs, loops):
                if iv.iter_type == REDUCE:
                    break
                leading.append(loop)
            if leading:
                try:
                    sch.parallel(sch.fuse(*leading) if len(leading) > 1 else leading[0])
                    changed = True
                except s_tir.ScheduleError:
                    continue
        return sch if changed else None
