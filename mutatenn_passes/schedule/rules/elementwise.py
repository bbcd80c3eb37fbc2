"""Elementwise: kernels of injective blocks only (activations, casts, reshapes, transposes,
concatenations, padding, quantize/dequantize, and chains of them fused by FuseOps).

Every block but the last is inlined into its consumer, so the fused chain makes one pass
over memory; the last block's outer loops run in parallel and its innermost loop is
vectorized (the innermost output axis: stores are contiguous even when a transpose makes the
loads strided).
"""

from __future__ import annotations

from tvm import s_tir

from .common import VectorUnit, is_spatial, parallel_vectorize
from .rule import CPURule


class Elementwise(CPURule):
    """Inline, parallelize and vectorize an all-injective kernel (see the module doc)."""

    def schedule(self, sch, blocks, target) -> bool:
        if not all(is_spatial(sch, b) for b in blocks):
            return False
        for block in blocks:
            try:
                if block is not blocks[-1]:
                    sch.compute_inline(block)
                    continue
            except s_tir.ScheduleError:  # e.g. a block whose output is also a result
                pass
            dtype = sch.get(block).writes[0].source.dtype
            parallel_vectorize(sch, block, VectorUnit.of(target, dtype.bits))
        return True
