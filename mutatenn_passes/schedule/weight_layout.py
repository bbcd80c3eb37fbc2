"""`PackConvWeights`: store constant conv2d weights with the output channel innermost.

The CPU conv2d schedule (`rules.conv2d`) computes a tile of output channels as one SIMD
vector per input pixel: it needs the weights of neighbouring output channels next to each
other in memory. ONNX stores weights ``OIHW`` and TFLite ``OHWI`` or ``HWOI``; this pass
transposes each constant conv2d weight to ``HWIO`` at compile time (the same numbers,
another order, like TVM's ``AlterOpLayout`` used to) and tells the conv2d so through its
``kernel_layout`` attribute, which TVM's legalization follows. The data layout is left as
the model has it, so no transpose is added between layers. Weights that are not constants
(a model whose weights are inputs) keep their layout.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant

from .constant_memo import ConstantMemo
from .fold_constants import constant_array
from .relax_rewrite import rewrite_functions

#: Output channel last: input pixels are broadcast, weights loaded as vectors.
PACKED = "HWIO"

#: Each weight packed once per process: a graph mutant's weights are its original's.
_packed = ConstantMemo()


@relax.expr_functor.mutator
class _Packer(relax.PyExprMutator):
    def visit_call_(self, call: relax.Call):
        call = super().visit_call_(call)
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.conv2d"):
            return call
        attrs = call.attrs
        layout = str(attrs.kernel_layout)
        weight = call.args[1]
        if isinstance(weight, relax.Var):
            weight = self.lookup_binding(weight)
        if layout == PACKED or not isinstance(weight, Constant) or sorted(layout) != \
                sorted(PACKED):
            return call
        packed = _packed.get([weight], [layout], lambda: relax.const(np.ascontiguousarray(
            np.transpose(constant_array(weight), [layout.index(axis) for axis in PACKED]))))
        return relax.op.nn.conv2d(call.args[0], packed, attrs.strides,
                                  attrs.padding, attrs.dilation, attrs.groups,
                                  attrs.data_layout, PACKED, attrs.out_layout, attrs.out_dtype)


@tvm.transform.module_pass(opt_level=0, name="mutatenn.PackConvWeights")
class PackConvWeights:
    """Transpose constant conv2d weights to `PACKED` (see the module doc)."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(mod, _Packer(mod))
