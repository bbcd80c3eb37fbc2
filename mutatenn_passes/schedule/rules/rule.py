"""The bases of mutatenn's CPU schedule rules: dlight `ScheduleRule`s for LLVM (and C) CPU
targets.

`CPURule` does what every rule does first (target check, a fresh `Schedule`, the kernel's
top-level blocks) and asks the subclass to `schedule` them; `ReductionRule` is the base of the
rules for kernels built around one reduction block: it finds that block, asks the subclass
whether it `match`es before anything is transformed, schedules the blocks before it (padding,
dequantization) as elementwise code (a mere copy is inlined), and lets the subclass `tile`
the rest.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.ir.expr import TensorLoad  # what tirx.BufferLoad builds in TVM 0.27
from tvm.s_tir import dlight as dl
from tvm.target import Target

from .common import ReductionBlock, VectorUnit, parallel_vectorize, root_blocks


def is_copy(sch: s_tir.Schedule, block) -> bool:
    """Whether ``block`` only copies an element (TVM's conv2d legalization emits a
    ``pad_temp`` copy of the input even for a convolution without padding: inlined, the
    convolution reads its input directly instead of copying it first)."""
    body = sch.get(block).body
    return isinstance(body, tirx.BufferStore) and isinstance(body.value, TensorLoad)


class CPURule(dl.ScheduleRule):
    """A schedule rule for CPU targets; `apply` returns None for any other target and for a
    kernel the rule does not match."""

    def is_target_available(self, target: Target) -> bool:
        return target.kind.name in ("llvm", "c")

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool):
        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        try:
            blocks = root_blocks(sch)
        except s_tir.ScheduleError:  # no root block: not an S-TIR kernel
            return None
        return sch if blocks and self.schedule(sch, blocks, target) else None

    def schedule(self, sch: s_tir.Schedule, blocks: list, target: Target) -> bool:
        """Schedule the kernel's top-level ``blocks``; False when the rule does not match
        (the schedule is then discarded)."""
        raise NotImplementedError


class ReductionRule(CPURule):
    """A rule for kernels of one reduction block with injective blocks around it."""

    def match(self, sch: s_tir.Schedule, red: ReductionBlock):
        """What `tile` needs (e.g. which axes to vectorize), or None when the reduction is
        not this rule's pattern. Called before the schedule is changed."""
        raise NotImplementedError

    def tile(self, sch: s_tir.Schedule, red: ReductionBlock, plan, unit: VectorUnit) -> None:
        raise NotImplementedError

    def inline_prologue(self, sch: s_tir.Schedule, block) -> bool:
        """Whether the injective ``block`` before the reduction is inlined into it rather than
        scheduled as elementwise code of its own: a mere copy is (`is_copy`)."""
        return is_copy(sch, block)

    def schedule(self, sch, blocks, target) -> bool:
        red = ReductionBlock.split(sch, blocks)
        plan = None if red is None else self.match(sch, red)
        if plan is None:
            return False
        unit = VectorUnit.of(target, sch.get(red.block).writes[0].source.dtype.bits)
        for producer in red.prologue:
            if self.inline_prologue(sch, producer):
                sch.compute_inline(producer)
            else:
                parallel_vectorize(sch, producer, unit)
        self.tile(sch, red, plan, unit)
        return True
