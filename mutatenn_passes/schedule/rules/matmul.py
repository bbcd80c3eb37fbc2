"""Matmul: dense layers and matrix products (``matmul`` and its fused bias/activation).

The output's innermost axis is the vector when the second operand has it innermost too
(ONNX ``Gemm`` weights arrive transposed by a ``permute_dims`` that `FoldConstants` folds
into a ``K x N`` constant); rows of the first operand are the register tile. For a batch of
one (a matrix-vector product) each vector of outputs accumulates over the whole reduction
in registers, reading the weights once, contiguously.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.target import Target

from .common import ReductionBlock, indices, parallel_vectorize, register_tile, uses, \
    VectorUnit
from .rule import CPURule


class Matmul(CPURule):
    """Register-tiled matrix product (see the module doc)."""

    def apply(self, func: tirx.PrimFunc, target: Target, _tunable: bool):
        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        red = ReductionBlock.find(sch)
        if red is None:
            return None
        block = sch.get(red.block)
        spatial, reduce_ = red.axes(sch)
        if len(reduce_) != 1 or len(block.reads) != 2 or len(indices(block.writes[0])) < 2:
            return None
        ivs = block.iter_vars
        out = indices(block.writes[0])
        column = next((i for i in spatial if out[-1].same_as(ivs[i].var)), None)
        row = next((i for i in spatial if out[-2].same_as(ivs[i].var)), None)
        if column is None:
            return None
        var = ivs[column].var
        weight = [r for r in block.reads if indices(r)[-1].same_as(var)]
        data = [r for r in block.reads if not any(uses(e, var) for e in indices(r))]
        if len(weight) != 1 or len(data) != 1:
            return None
        if row is not None and int(ivs[row].dom.extent) == 1:
            row = None
        unit = VectorUnit.of(target, block.writes[0].source.dtype.bits)
        for producer in red.prologue:
            parallel_vectorize(sch, producer, unit)
        register_tile(sch, red, column, row, unit, channel_axis=column)
        return sch
