"""`PackConvWeights`: store constant conv2d weights with the output channel innermost, in
blocks of the schedule's vector tile.

The CPU conv2d schedule (`rules.conv2d`) computes a tile of output channels as one or two
SIMD vectors per input pixel: it needs the weights of neighbouring output channels next to
each other in memory. ONNX stores weights ``OIHW`` and TFLite ``OHWI`` or ``HWOI``; this pass
transposes each constant conv2d weight at compile time (the same numbers, another order, as
TVM's ``AlterOpLayout`` used to) and tells the conv2d so through its ``kernel_layout``
attribute. The data layout is left as the model has it, so no transpose is added between
layers. Weights that are not constants (a model whose weights are inputs) keep their layout.

A regular convolution's weights are blocked by the vector tile the rules give its output
channels (`rules.common.tile_sizes`): ``OHWI16o`` for tiles of 16 channels, i.e. one block
``[kh, kw, ci, 16]`` per channel tile, every weight a tile reads in one contiguous run. In
plain ``HWIO`` a tile's weights were 64 bytes every ``4 x output channels`` bytes (8 KB apart
at 2048 channels): a page per input channel, which the hardware prefetcher does not follow
from one to the next, so in a model, where each kernel finds its weights out of cache,
ResNet50's 7x7 stage read them at DRAM latency. Blocked, its 1x1 and 3x3 kernels ran
1.3-1.9x faster from cold caches and 1.04-1.24x from warm ones (kernel A/B, AVX2, 2 threads).
TOPI's conv2d takes no blocked kernel layout, so `legalize_conv2d` legalizes these: TOPI's
convolution over a view of the blocked weights as ``HWIO``, a copy the conv2d rule inlines.
Grouped and depthwise convolutions keep ``HWIO`` (their schedules vectorize pixels, or
channels that one block already holds).
"""

from __future__ import annotations

import re

import numpy as np
import tvm
from tvm import relax, te, topi
from tvm.ir.expr import Constant

from .constant_memo import ConstantMemo
from .fold_constants import constant_array
from .relax_rewrite import rewrite_functions
from .rules.common import VectorUnit, tile_sizes

#: Output channel last: input pixels are broadcast, weights loaded as vectors.
PACKED = "HWIO"

#: ``OHWI<tile>o``: `PACKED` cut into blocks of ``tile`` output channels, blocks outermost.
_BLOCKED = re.compile(r"OHWI(\d+)o")

#: Each weight packed once per process: a graph mutant's weights are its original's.
_packed = ConstantMemo()


def blocked_layout(call: relax.Call, target: tvm.target.Target) -> str:
    """The kernel layout `PackConvWeights` gives the conv2d ``call`` on ``target``: blocks of
    the output channels' vector tile, or `PACKED` for a grouped convolution and where one
    tile holds every channel."""
    attrs = call.attrs
    out = [int(d) for d in call.ty.shape]
    layout = str(attrs.out_layout or attrs.data_layout)
    channel = layout.index("C")
    # the register axis `rules.conv2d.choose_axes` takes: the innermost other wider than 1
    pixels = next((out[d] for d in reversed(range(len(out))) if d != channel and out[d] > 1),
                  None)
    unit = VectorUnit.of(target, tvm.runtime.DataType(call.ty.dtype).bits)
    tile, _ = tile_sizes(out[channel], pixels, unit)
    return PACKED if attrs.groups != 1 or tile >= out[channel] else f"OHWI{tile}o"


@relax.expr_functor.mutator
class _Packer(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, target: tvm.target.Target):
        super().__init__(mod)
        self.target = target

    def visit_call_(self, call: relax.Call):
        call = super().visit_call_(call)
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.conv2d"):
            return call
        attrs = call.attrs
        layout = str(attrs.kernel_layout)
        weight = call.args[1]
        if isinstance(weight, relax.Var):
            weight = self.lookup_binding(weight)
        if not isinstance(weight, Constant) or sorted(layout) != sorted(PACKED) or \
                not isinstance(call.ty, relax.TensorType) or \
                not all(isinstance(d, tvm.tirx.IntImm) for d in call.ty.shape):
            return call
        packed_layout = blocked_layout(call, self.target)
        if packed_layout == layout:
            return call

        def pack():
            hwio = np.transpose(constant_array(weight), [layout.index(a) for a in PACKED])
            if packed_layout != PACKED:
                kh, kw, ci, co = hwio.shape
                tile = int(_BLOCKED.fullmatch(packed_layout).group(1))
                hwio = hwio.reshape(kh, kw, ci, co // tile, tile).transpose(3, 0, 1, 2, 4)
            return relax.const(np.ascontiguousarray(hwio))

        packed = _packed.get([weight], [layout, packed_layout], pack)
        return relax.op.nn.conv2d(call.args[0], packed, attrs.strides,
                                  attrs.padding, attrs.dilation, attrs.groups,
                                  attrs.data_layout, packed_layout, attrs.out_layout,
                                  attrs.out_dtype)


@tvm.transform.module_pass(opt_level=0, name="mutatenn.PackConvWeights")
class PackConvWeights:
    """Transpose constant conv2d weights to `PACKED`, blocked for ``target`` (see the module
    doc)."""

    def __init__(self, target: tvm.target.Target):
        self.target = target

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(mod, _Packer(mod, self.target))


def legalize_conv2d(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """Legalize a conv2d whose weights `PackConvWeights` blocked (``OHWI<tile>o``) as TOPI's
    convolution over an ``HWIO`` view of them; any other conv2d as TVM does."""
    attrs = call.attrs
    match = _BLOCKED.fullmatch(str(attrs.kernel_layout))
    if match is None or str(attrs.out_layout) != str(attrs.data_layout):
        return tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")(bb, call)
    tile = int(match.group(1))

    def conv(data, weight):
        blocks, kh, kw, ci, _ = weight.shape
        kernel = te.compute((kh, kw, ci, blocks * tile),
                            lambda h, w, i, o: weight[o // tile, h, w, i, o % tile],
                            name="kernel")
        return topi.nn.conv(data, kernel, *([int(v) for v in values] for values in
                                             (attrs.strides, attrs.padding, attrs.dilation)),
                            attrs.groups, attrs.data_layout, PACKED,
                            attrs.out_dtype if attrs.out_dtype != "" else None)

    return bb.call_te(conv, call.args[0], call.args[1], primfunc_name_hint="conv2d")


#: The legalizations scheduled CPU builds use instead of TVM's registered ones.
LEGALIZE = {"relax.nn.conv2d": legalize_conv2d}
