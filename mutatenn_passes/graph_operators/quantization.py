"""Quantization Parameters: perturb the scale, the zero point or the rounding of a quantize or
dequantize.

Quantized models are what edge accelerators run, and their arithmetic hangs on a few constants
per tensor. TVM 0.27's importers keep them visible at graph level: TFLite's quantized ops
become ``dequantize -> float op -> quantize`` (a TFLite requantize is a dequantize followed by
a quantize), ONNX's QuantizeLinear and DequantizeLinear become ``relax.quantize`` and
``relax.dequantize``, each with its scale and zero point as constant operands. So these
operators rewrite those operands before the default pipeline legalizes the ops into the
``quantize*``/``dequantize*`` kernels; at that point the kernels hold the same constants folded
into their arithmetic.

``relax.quantize`` computes ``clip(round(x / scale) + zero_point)`` and saturates to its
integer type (see TVM's ``legalize_ops/qdq.py``); ``quant_round_toward_zero`` writes that
computation out with ``trunc`` in place of ``round``.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import GenericConst

from ..operator_spec import OperatorSpec, Param
from ..kernel_operators.params import PositiveFloat, PositiveInt
from .base import GraphOperator, calls_to, is_float, static_shape, tensor_dtype

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Quantization Parameters"
_QDQ = ("relax.quantize", "relax.dequantize")


def _with_arg(call: relax.Call, index: int, value: relax.Expr) -> relax.Call:
    args = list(call.args)
    args[index] = value
    return relax.Call(call.op, args, call.attrs, call.ty_args)


class _ChangeConstantOperand(GraphOperator):
    """Replace constant operand ``arg`` (1: scale, 2: zero point) of a quantize/dequantize by
    ``new(values, params)``, same dtype and shape."""

    arg: int
    what: str

    def __init__(self):
        super().__init__(calls_to(*_QDQ))

    def new(self, values: np.ndarray, params: dict) -> np.ndarray:
        raise NotImplementedError

    def skip_reason(self, call, params):
        operand = call.args[self.arg]
        if not isinstance(operand, GenericConst):
            return f"the {self.what} is computed, not a constant"
        values = operand.value.numpy()
        if np.array_equal(self.new(values, params), values):
            return f"the {self.what} would not change"
        return None

    def rewrite(self, builder, call, name, params):
        values = call.args[self.arg].value.numpy()
        return _with_arg(call, self.arg, relax.const(self.new(values, params), str(values.dtype)))


class ScaleChange(_ChangeConstantOperand):
    """scale into scale * (1 + sign * delta)."""

    arg, what = 1, "scale"

    def __init__(self, sign: int):
        super().__init__()
        self.sign = sign

    def new(self, values, params):
        return (values * (1 + self.sign * params["delta"])).astype(values.dtype)

    def skip_reason(self, call, params):
        if self.sign < 0 and params["delta"] >= 1:
            return f"delta {params['delta']} would make the scale zero or negative"
        return super().skip_reason(call, params)


class ZeroPointShift(_ChangeConstantOperand):
    """zero point into zero point + sign * k, saturated to its integer type."""

    arg, what = 2, "zero point"

    def __init__(self, sign: int):
        super().__init__()
        self.sign = sign

    def new(self, values, params):
        info = np.iinfo(values.dtype) if values.dtype.kind in "iu" else None
        shifted = values.astype(np.int64) + self.sign * params["k"]
        if info is not None:
            shifted = np.clip(shifted, info.min, info.max)
        return shifted.astype(values.dtype)


def _along(param: relax.Expr, axis: int, ndim: int) -> relax.Expr:
    """A per-axis quantization parameter reshaped to broadcast along ``axis`` of an
    ``ndim``-D tensor; scalars and one-element parameters unchanged."""
    shape = static_shape(param)
    if shape is None or math.prod(shape) <= 1:
        return param
    target = [1] * ndim
    target[axis] = shape[0]
    return relax.op.reshape(param, target)


class RoundTowardZero(GraphOperator):
    """``quant_round_toward_zero``: quantize(x) with ``trunc`` instead of ``round``."""

    def __init__(self):
        super().__init__(calls_to("relax.quantize"))

    def skip_reason(self, call, params):
        dtype = tensor_dtype(call.args[0])
        if not is_float(dtype):
            return f"the quantized operand is {dtype or 'of unknown dtype'}: nothing to round"
        if static_shape(call.args[0]) is None:
            return "the operand has no static shape (per-axis parameters cannot be placed)"
        return None

    def rewrite(self, builder, call, name, params):
        x, scale, zero_point = call.args
        ndim = len(static_shape(x))
        axis = int(call.attrs.axis) % max(ndim, 1)
        dtype = tensor_dtype(x)
        scale = _along(scale, axis, ndim)
        zero_point = _along(relax.op.astype(zero_point, dtype), axis, ndim)
        steps = builder.emit(relax.op.trunc(relax.op.divide(x, scale)), f"{name}_truncated")
        out_dtype = str(call.attrs.out_dtype)
        low = float(tvm.tirx.min_value(out_dtype).value)
        high = float(tvm.tirx.max_value(out_dtype).value)
        shifted = builder.emit(relax.op.clip(relax.op.add(steps, zero_point), low, high),
                               f"{name}_saturated")
        return relax.op.astype(shifted, out_dtype)


_FINDS = ("Calls to relax.quantize and relax.dequantize (TFLite: every quantized tensor's "
          "quantize, the dequantize of every input, weight and bias, and both halves of a "
          "requantize; ONNX QuantizeLinear / DequantizeLinear), whose {what} is a constant.")
_DELTA = Param("delta", 0.1, PositiveFloat, "relative change of the scale (0.1: by 10%)")
_K = Param("k", 1, PositiveInt, "how many integer steps the zero point moves")

for _id, _sign in (("quant_scale_inc", 1), ("quant_scale_dec", -1)):
    OPERATORS.append(OperatorSpec(
        id=_id, level="graph", category=CATEGORY, from_paper=False,
        description=f"Multiply a quantization scale by 1 {'+' if _sign > 0 else '-'} delta.",
        finds=_FINDS.format(what="scale"),
        rewrites=f"the scale constant s (scalar or per axis) becomes s * (1 "
                 f"{'+' if _sign > 0 else '-'} delta) in its own dtype.",
        params=(_DELTA,), implementation=ScaleChange(_sign)))

for _id, _sign in (("quant_zero_point_inc", 1), ("quant_zero_point_dec", -1)):
    OPERATORS.append(OperatorSpec(
        id=_id, level="graph", category=CATEGORY, from_paper=False,
        description=f"{'Raise' if _sign > 0 else 'Lower'} a quantization zero point by k.",
        finds=_FINDS.format(what="zero point"),
        rewrites=f"the zero point constant z becomes z {'+' if _sign > 0 else '-'} k, "
                 "saturated to its integer type (skipped when already at the limit).",
        params=(_K,), implementation=ZeroPointShift(_sign)))

OPERATORS.append(OperatorSpec(
    id="quant_round_toward_zero", level="graph", category=CATEGORY, from_paper=False,
    description="Quantize by rounding toward zero instead of to nearest.",
    finds="Calls to relax.quantize of a floating-point operand (TFLite: every quantized "
          "layer's output; ONNX QuantizeLinear).",
    rewrites="quantize(x, s, z) becomes astype(clip(trunc(x / s) + z, min, max)) with the "
             "output type's range; per-axis s and z are reshaped to broadcast along the axis.",
    implementation=RoundTowardZero()))
