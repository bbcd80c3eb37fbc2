"""Run a `relax.PyExprMutator` over every Relax function of a module (the shared body of
this package's Relax passes, as in TVM's own ``relax/transform`` Python passes)."""

from __future__ import annotations

import tvm
from tvm import relax


def rewrite_functions(mod: tvm.IRModule, mutator: relax.PyExprMutator) -> tvm.IRModule:
    """``mod`` with each Relax function replaced by ``mutator``'s rewrite of it."""
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            mutator.builder_.update_func(gv, mutator.visit_expr(func))
    return mutator.builder_.get()
