"""Operators that swap one Relax op for another with the same operands and result type.

Both node-replacement categories of the paper (layer nodes such as activations and pools,
arithmetic nodes such as add) are the same rewrite: keep the binding and the operands, call a
different op. `ReplaceOp` is that rewrite; the category modules only choose the op pairs.
"""

from __future__ import annotations

from typing import Callable

from tvm import relax

from .base import GraphOperator, calls_to, is_float, tensor_dtype

#: Builds the replacement call from the original one (and the operator's parameters).
Replacement = Callable[[relax.Call, dict], relax.Expr]


class ReplaceOp(GraphOperator):
    """Replace each call to a key of ``replacements`` with ``replacements[op](call, params)``.

    ``requires_float``, when given, is why the replacement is wrong on a non-float operand
    (sigmoid of an integer tensor is ill-typed; integer division traps on a zero divisor):
    such sites, as in quantized graphs, are skipped with that reason.
    """

    def __init__(self, replacements: dict[str, Replacement], *,
                 requires_float: str | None = None):
        super().__init__(calls_to(*replacements))
        self.replacements = replacements
        self.requires_float = requires_float

    def skip_reason(self, call: relax.Call, params: dict) -> str | None:
        dtype = tensor_dtype(call.args[0])
        if self.requires_float is None or is_float(dtype):
            return None
        return f"operand is {dtype or 'of unknown dtype'}: {self.requires_float}"

    def rewrite(self, builder, call, name, params):
        return self.replacements[call.op.name](call, params)


def same_operands(op: Callable[..., relax.Expr]) -> Replacement:
    """A replacement calling ``op`` (an attribute-free Relax op constructor such as
    ``relax.op.sigmoid``) on the original call's operands."""
    return lambda call, _params: op(*call.args)
