"""`SimplifySums`: undo two frontend expansions that keep a residual add from fusing.

TVM's ONNX frontend imports ``Sum(a, b)`` (ResNet's residual connections in the ONNX model
zoo) as ``sum(stack(broadcast_to(a, s), broadcast_to(b, s)), axis=0)``: two copies, a
concatenation and a reduction, where an element-wise ``add`` was meant. Being a reduction,
the ``sum`` also stops FuseOps from fusing the following ReLU. This pass rewrites
``broadcast_to(x, s)`` with ``s`` equal to ``x``'s own shape to ``x``, and a ``sum`` over
axis 0 of a ``stack`` on axis 0 to a chain of ``add`` in the same order, which computes the
same float values (``((0 + a) + b) == a + b``).
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import relax

from .relax_rewrite import rewrite_functions


def _op(expr) -> str | None:
    return expr.op.name if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) \
        else None


@relax.expr_functor.mutator
class _Simplifier(relax.PyExprMutator):
    def bound(self, expr):
        return self.lookup_binding(expr) if isinstance(expr, relax.Var) else expr

    def visit_call_(self, call: relax.Call):
        call = super().visit_call_(call)
        op = _op(call)
        if op == "relax.broadcast_to":
            source = call.args[0]
            if tvm_ffi.structural_equal(source.ty, call.ty):
                return source
        if op == "relax.sum" and call.attrs.axis is not None and \
                [int(a) for a in call.attrs.axis] == [0] and not call.attrs.keepdims:
            stacked = self.bound(call.args[0])
            if _op(stacked) == "relax.stack" and int(stacked.attrs.axis) == 0:
                terms = list(self.bound(stacked.args[0]).fields) \
                    if isinstance(self.bound(stacked.args[0]), relax.Tuple) else None
                if terms and all(tvm_ffi.structural_equal(t.ty, call.ty) for t in terms):
                    total = terms[0]
                    for term in terms[1:]:
                        total = self.builder_.normalize(relax.op.add(total, term))
                    return total
        return call


@tvm.transform.module_pass(opt_level=0, name="mutatenn.SimplifySums")
class SimplifySums:
    """Remove identity broadcasts and turn sums of stacks into adds (see the module doc)."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(mod, _Simplifier(mod))
