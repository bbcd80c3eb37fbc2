"""Matmul: dense layers and matrix products (``matmul`` and its fused bias/activation).

The output's innermost axis is the vector when the second operand has it innermost too
(ONNX ``Gemm`` weights arrive transposed by a ``permute_dims`` that `FoldConstants` folds
into a ``K x N`` constant); rows of the first operand are the register tile. For a batch of
one (a matrix-vector product) each vector of outputs accumulates over the whole reduction
in registers, reading the weights once, contiguously.
"""

from __future__ import annotations

from .common import indices, register_tile, uses
from .rule import ReductionRule


class Matmul(ReductionRule):
    """Register-tiled matrix product (see the module doc)."""

    def match(self, sch, red):
        """(column axis, row axis or None)."""
        block = sch.get(red.block)
        spatial, reduce_ = red.axes(sch)
        out = indices(block.writes[0])
        if len(reduce_) != 1 or len(block.reads) != 2 or len(out) < 2:
            return None
        ivs = block.iter_vars
        column = next((i for i in spatial if out[-1].same_as(ivs[i].var)), None)
        row = next((i for i in spatial if out[-2].same_as(ivs[i].var)), None)
        if column is None:
            return None
        var = ivs[column].var
        weight = [r for r in block.reads if indices(r)[-1].same_as(var)]
        data = [r for r in block.reads if not any(uses(e, var) for e in indices(r))]
        if len(weight) != 1 or len(data) != 1:
            return None
        return column, None if row is None or int(ivs[row].dom.extent) == 1 else row

    def tile(self, sch, red, plan, unit):
        column, row = plan
        register_tile(sch, red, column, row, unit, channel_axis=column)
