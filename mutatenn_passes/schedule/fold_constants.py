"""`FoldConstants`: evaluate Relax calls whose tensor inputs are all constants, with NumPy.

A deployment pipeline folds what depends only on weights at compile time: batch-norm
statistics decomposed into ``sqrt(var + eps)``, weights materialised by ``broadcast_to``
(ONNX ``ConstantOfShape``), dequantized int8 weights of TFLite models, transposes of constant
matrices. TVM's own ``relax.transform.FoldConstant`` does this by compiling and running one
TIR kernel per folded call; on the default ShuffleNet that is 33 s, four times the whole
unfolded build. The ops folded here are the handful those patterns produce, each evaluated
by NumPy with TVM's semantics (IEEE float32 arithmetic, ``dequantize`` as
``float32(int32(q) - zero_point) * scale``), so the result is the value TVM would compute.
Anything else is left to run at inference time.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant

from .constant_memo import ConstantMemo
from .relax_rewrite import rewrite_functions


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _dequantize(call, data, scale, zero_point):
    axis = int(call.attrs.axis)

    def per_axis(param):
        param = np.asarray(param)
        if param.size == 1:
            return param.reshape(())
        shape = [1] * data.ndim
        shape[axis] = -1
        return param.reshape(shape)

    compute = np.float32 if data.dtype.kind == "f" else np.int32
    shifted = data.astype(compute) - per_axis(zero_point).astype(compute)
    return shifted.astype(np.float32) * per_axis(scale).astype(np.float32)


#: op name -> (number of leading tensor arguments that must be constants, evaluator).
#: The evaluator gets the call and those arguments as NumPy arrays.
FOLDABLE: dict[str, tuple[int, Callable]] = {
    "relax.add": (2, lambda call, a, b: a + b),
    "relax.subtract": (2, lambda call, a, b: a - b),
    "relax.multiply": (2, lambda call, a, b: a * b),
    "relax.divide": (2, lambda call, a, b: a / b),
    "relax.sqrt": (1, lambda call, a: np.sqrt(a)),
    "relax.rsqrt": (1, lambda call, a: np.float32(1) / np.sqrt(a)),
    "relax.astype": (1, lambda call, a: a),  # the cast happens on the way out
    "relax.expand_dims": (1, lambda call, a: np.expand_dims(a, tuple(_ints(call.attrs.axis)))),
    "relax.permute_dims": (1, lambda call, a: np.transpose(
        a, None if call.attrs.axes is None else _ints(call.attrs.axes))),
    "relax.reshape": (1, lambda call, a: a.reshape(_ints(call.args[1].values))),
    "relax.broadcast_to": (1, lambda call, a: np.broadcast_to(a, _ints(call.args[1].values))),
    "relax.dequantize": (3, _dequantize),
}


#: Each fold computed once per process: a graph mutant's constants are its original's, and so
#: are the folds of them (the same objects, so folds of folds are found too).
_folded = ConstantMemo()


def constant_array(const: Constant) -> np.ndarray:
    """The NumPy value of a Relax constant."""
    return const.value.numpy()


@relax.expr_functor.mutator
class _Folder(relax.PyExprMutator):
    """Replaces foldable calls by constants, looking through variables bound to constants."""

    def constant_of(self, expr) -> Constant | None:
        if isinstance(expr, relax.Var):
            expr = self.lookup_binding(expr)
        return expr if isinstance(expr, Constant) else None

    def visit_call_(self, call: relax.Call):
        call = super().visit_call_(call)
        op = call.op.name if isinstance(call.op, tvm.ir.Op) else None
        if op not in FOLDABLE or not isinstance(call.ty, relax.TensorType):
            return call
        count, evaluate = FOLDABLE[op]
        inputs = [self.constant_of(a) for a in call.args[:count]]
        if any(c is None for c in inputs):
            return call
        dtype = str(call.ty.dtype.dtype)

        def fold() -> Constant:
            value = evaluate(call, *(constant_array(c) for c in inputs))
            return relax.const(np.ascontiguousarray(np.asarray(value).astype(dtype)), dtype)

        # what the evaluator reads besides the constants: attributes, shapes, the type
        return _folded.get(inputs, [call.op, call.attrs, call.ty, *call.args[count:]], fold)


@tvm.transform.module_pass(opt_level=0, name="mutatenn.FoldConstants")
class FoldConstants:
    """Fold the calls of `FOLDABLE` whose tensor inputs are constants (see the module doc)."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(mod, _Folder(mod))
