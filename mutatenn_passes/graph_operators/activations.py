"""Which bindings of a Relax function are activation layers, and what kind.

The ONNX and TFLite importers emit an activation either as one Relax op (``relax.nn.relu``,
``relax.sigmoid``, ``relax.nn.gelu``, ``relax.nn.leakyrelu``, ``relax.clip`` for TFLite's ReLU6)
or as the small graph of element-wise ops they expand it into: hard-swish as
``x * clip(x + 3, 0, 6) / 6``, ELU as ``-relu(1 - exp(x)) + relu(x)``, ONNX ``Clip`` as
``call_tir(minimum, (call_tir(maximum, (x, lo)), hi))``, and so on (the module docstring of
each recogniser says which importer emits which form). In quantized TFLite graphs a fused
activation is only the bounds of an integer ``clip`` right after the ``quantize`` of the
layer's float result; those bounds, read through the quantize's scale and zero point, say
which activation it is (MobileNet's ``clip(quantize(x, 0.0235, 0), 0, 255)`` is ReLU6: 255
steps of 0.0235 are 6.0).

An `Activation` names the binding that holds the activation's result (the site), its float
operand ``x``, and the pattern's other bindings, which are then no activation of their own
(the ReLUs inside an ELU are part of the ELU).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.ir import prim
from tvm.ir.expr import GenericConst

from .base import FunctionScope, is_float, op_name, tensor_dtype

#: Activation kinds recognised, in the order the docs list them.
KINDS = ("relu", "relu6", "clip", "sigmoid", "tanh", "hard_swish", "hard_sigmoid", "silu",
         "gelu", "leaky_relu", "softplus", "elu")
#: The kinds that are a clamp of their operand to bounds (``clip_bounds_change`` sites).
CLIP_KINDS = ("relu6", "clip")


@dataclass(frozen=True)
class Quantized:
    """A fused activation of a quantized graph: ``clip(quantize(x, scale, zp), lo, hi)``."""

    quantize: relax.Call  # the quantize call, whose scale, zero point and dtype the mutant keeps
    scale: float
    zero_point: int
    low: int  # the clip bounds, in stored integers
    high: int

    @property
    def type_range(self) -> tuple[int, int]:
        dtype = self.quantize.attrs.out_dtype
        return int(tvm.tirx.min_value(dtype).value), int(tvm.tirx.max_value(dtype).value)

    def to_stored(self, real: float) -> int:
        """The stored integer the quantize would make of ``real``, saturated to the type."""
        low, high = self.type_range
        if math.isinf(real):
            return high if real > 0 else low
        return int(np.clip(round(real / self.scale) + self.zero_point, low, high))

    def to_real(self, stored: int) -> float:
        return (stored - self.zero_point) * self.scale


@dataclass(frozen=True)
class Activation:
    """One activation layer: the binding of its result and what it computes."""

    kind: str
    var: relax.Var  # bound to the activation's result: the site
    operand: relax.Expr  # x, floating point
    inner: tuple[relax.Var, ...] = ()  # the pattern's other bindings
    bounds: tuple[float, float] | None = None  # real-valued bounds of a clip kind
    quantized: Quantized | None = None

    def describe(self) -> str:
        text = self.kind
        if self.bounds is not None:
            text += f" [{_show(self.bounds[0])}, {_show(self.bounds[1])}]"
        if self.quantized is not None:
            q = self.quantized
            text += (f" fused into quantize (scale {q.scale:.6g}, zero point {q.zero_point}; "
                     f"{q.quantize.attrs.out_dtype} clip {q.low}..{q.high})")
        return text


def _show(value: float) -> str:
    return f"{value:g}"


def activations(scope: FunctionScope) -> dict[relax.Var, Activation]:
    """Every activation layer of the scope's function, keyed by the variable of its result,
    without the activations that are part of a larger recognised pattern (computed once per
    scope)."""
    return scope.memo("activations", _find_activations)


def _find_activations(scope: FunctionScope) -> dict[relax.Var, Activation]:
    found: dict[relax.Var, Activation] = {}
    for binding in scope.bindings:
        for recognise in _RECOGNISERS:
            activation = recognise(binding.var, binding.value, scope)
            if activation is not None:
                found[binding.var] = activation
                break
    inner = {v for a in found.values() for v in a.inner}
    return {var: a for var, a in found.items() if var not in inner}


# --- reading constants ----------------------------------------------------------------------

def scalar(expr, scope: FunctionScope) -> float | None:
    """The value of a scalar constant (a one-element tensor constant or a prim immediate, possibly
    behind a binding, or ONNX Clip's ``where(isnan(c), inf, c)`` guard around one), else
    None."""
    value = scope.value_of(expr)
    if value is not None:
        return scalar(value, scope)
    if isinstance(expr, GenericConst):
        if math.prod(expr.value.shape) != 1:  # weights are never converted to numpy here
            return None
        return float(expr.value.numpy().reshape(-1)[0])
    if isinstance(expr, (prim.FloatImm, prim.IntImm)):  # clip's bounds
        return float(expr.value)
    if op_name(expr) == "relax.where":
        test = scope.value_of(expr.args[0])
        if op_name(test) == "relax.isnan" and scalar(expr.args[2], scope) is not None and \
                test.args[0].same_as(expr.args[2]):
            guarded = scalar(expr.args[2], scope)
            return guarded if not math.isnan(guarded) else scalar(expr.args[1], scope)
    return None


def _call(expr, scope: FunctionScope, *names: str) -> relax.Call | None:
    """The call ``expr`` is bound to when it calls one of ``names``, else None."""
    value = scope.value_of(expr)
    return value if op_name(value) in names else None


def _near(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-6 * max(1.0, abs(target))


def _float_operand(expr) -> bool:
    return is_float(tensor_dtype(expr))


def _clip_kind(low: float, high: float) -> str:
    return "relu6" if low == 0 and high == 6 else "clip"


# --- recognisers: (var, value, scope) -> Activation | None -----------------------------------

_SINGLE_OPS = {
    "relax.nn.relu": "relu", "relax.sigmoid": "sigmoid", "relax.tanh": "tanh",
    "relax.nn.gelu": "gelu", "relax.nn.gelu_tanh": "gelu", "relax.nn.silu": "silu",
    "relax.nn.leakyrelu": "leaky_relu", "relax.nn.softplus": "softplus",
}


def _single_op(var, value, scope):
    """One Relax op (ONNX Relu, Sigmoid, Tanh, Gelu, LeakyRelu; TFLite RELU, LOGISTIC, TANH,
    LEAKY_RELU; Relax's own silu and softplus)."""
    kind = _SINGLE_OPS.get(op_name(value))
    # An integer operand is still the layer (operators skip it, saying why).
    return Activation(kind, var, value.args[0]) if kind is not None else None


def _relax_clip(var, value, scope):
    """``relax.clip(x, lo, hi)`` on floats: TFLite RELU6 (fused or not), RELU_N1_TO_1,
    RELU_0_TO_1; ONNX HardSigmoid's clamp is part of `_hard_sigmoid`."""
    if op_name(value) != "relax.clip" or not _float_operand(value.args[0]):
        return None
    low, high = scalar(value.args[1], scope), scalar(value.args[2], scope)
    if low is None or high is None:
        return None
    return Activation(_clip_kind(low, high), var, value.args[0], bounds=(low, high))


def _fused_quantized_clip(var, value, scope):
    """TFLite's fused activation in a quantized graph: an integer ``clip`` of the
    per-tensor ``quantize`` of the layer's float result."""
    if op_name(value) != "relax.clip":
        return None
    quantize = _call(value.args[0], scope, "relax.quantize")
    if quantize is None or not _float_operand(quantize.args[0]):
        return None
    scale, zero_point = scalar(quantize.args[1], scope), scalar(quantize.args[2], scope)
    low, high = scalar(value.args[1], scope), scalar(value.args[2], scope)
    if None in (scale, zero_point, low, high) or scale <= 0:
        return None
    q = Quantized(quantize, scale, int(zero_point), int(low), int(high))
    type_low, type_high = q.type_range
    # The quantize saturates to the type's range: the effective real bounds.
    real = (q.to_real(max(q.low, type_low)), q.to_real(min(q.high, type_high)))
    half_step = scale / 2
    if abs(real[0]) <= half_step and abs(real[1] - 6.0) <= half_step:
        kind, bounds = "relu6", (0.0, 6.0)
    else:
        kind, bounds = "clip", real
    return Activation(kind, var, quantize.args[0], inner=(value.args[0],), bounds=bounds,
                      quantized=q)


def _primfunc_name(call: relax.Call) -> str | None:
    """The callee of a ``call_tir`` with its numeric suffix removed (``maximum1``)."""
    if op_name(call) != "relax.call_tir" or not isinstance(call.args[0], tvm.ir.GlobalVar):
        return None
    return re.sub(r"\d+$", "", call.args[0].name_hint)


def _call_tir_args(call: relax.Call) -> list:
    args = call.args[1]
    return list(args.fields) if isinstance(args, relax.Tuple) else [args]


def _onnx_clip(var, value, scope):
    """ONNX ``Clip`` (opset 11 and later, bounds as inputs): the importer emits
    ``call_tir(maximum, (x, lo))`` then ``call_tir(minimum, (that, hi))``, each bound behind a
    ``where(isnan(c), -inf/inf, c)`` guard; either step is left out when its bound is."""
    name = _primfunc_name(value)
    if name not in ("maximum", "minimum"):
        return None
    args = _call_tir_args(value)
    if len(args) != 2:
        return None
    operand, bound = args
    inner: tuple = ()
    low, high = -math.inf, math.inf
    if name == "minimum":
        high = scalar(bound, scope)
        below = scope.value_of(operand)
        if below is not None and _primfunc_name(below) == "maximum" \
                and len(_call_tir_args(below)) == 2:
            inner = (operand,)
            operand, lower = _call_tir_args(below)
            low = scalar(lower, scope)
    else:
        low = scalar(bound, scope)
    if low is None or high is None or not _float_operand(operand):
        return None
    kind = "relu" if (low, high) == (0, math.inf) else _clip_kind(low, high)
    return Activation(kind, var, operand, inner=inner,
                      bounds=None if kind == "relu" else (low, high))


def _is_const(expr, scope, target: float) -> bool:
    return _near(scalar(expr, scope), target)


def _operands(call: relax.Call, scope: FunctionScope, constant: float):
    """For a commutative binary call with one operand the scalar ``constant``: the other."""
    a, b = call.args
    if _is_const(b, scope, constant):
        return a
    if _is_const(a, scope, constant):
        return b
    return None


def _relu6_of(expr, scope, shift: float) -> relax.Expr | None:
    """x when ``expr`` is bound to ``clip(x + shift, 0, 6)``, else None."""
    clip = _call(expr, scope, "relax.clip")
    if clip is None or not (_is_const(clip.args[1], scope, 0) and
                            _is_const(clip.args[2], scope, 6)):
        return None
    add = _call(clip.args[0], scope, "relax.add")
    return _operands(add, scope, shift) if add is not None else None


def _hard_swish(var, value, scope):
    """Hard-swish, ``x * relu6(x + 3) / 6``: ONNX HardSwish as
    ``multiply(x, divide(clip(add(x, 3), 0, 6), 6))``, TFLite HARD_SWISH as
    ``divide(multiply(x, clip(add(x, 3), 0, 6)), 6)``."""
    if op_name(value) == "relax.multiply":  # ONNX
        for x, other in (value.args, reversed(value.args)):
            divide = _call(other, scope, "relax.divide")
            if divide is None or not _is_const(divide.args[1], scope, 6):
                continue
            clip = divide.args[0]
            inner_x = _relu6_of(clip, scope, 3)
            if inner_x is not None and inner_x.same_as(x):
                return Activation("hard_swish", var, x,
                                  inner=(other, clip, scope.value_of(clip).args[0]))
        return None
    if op_name(value) == "relax.divide" and _is_const(value.args[1], scope, 6):  # TFLite
        product = _call(value.args[0], scope, "relax.multiply")
        if product is None:
            return None
        for x, clip in (product.args, reversed(product.args)):
            inner_x = _relu6_of(clip, scope, 3)
            if inner_x is not None and inner_x.same_as(x):
                return Activation("hard_swish", var, x, inner=(
                    value.args[0], clip, scope.value_of(clip).args[0]))
    return None


def _hard_sigmoid(var, value, scope):
    """ONNX HardSigmoid, ``clip(alpha * x + beta, 0, 1)`` (alpha 0.2, beta 0.5 by default)."""
    if op_name(value) != "relax.clip" or not (_is_const(value.args[1], scope, 0) and
                                              _is_const(value.args[2], scope, 1)):
        return None
    add = _call(value.args[0], scope, "relax.add")
    if add is None:
        return None
    for scaled, beta in (add.args, reversed(add.args)):
        product = _call(scaled, scope, "relax.multiply")
        if product is None or scalar(beta, scope) is None:
            continue
        for alpha, x in (product.args, reversed(product.args)):
            if scalar(alpha, scope) is not None and _float_operand(x):
                return Activation("hard_sigmoid", var, x, inner=(value.args[0], scaled))
    return None


def _silu(var, value, scope):
    """SiLU / swish as ``x * sigmoid(x)`` (ONNX and TFLite export it as two ops)."""
    if op_name(value) != "relax.multiply":
        return None
    for x, gate in (value.args, reversed(value.args)):
        sigmoid = _call(gate, scope, "relax.sigmoid")
        if sigmoid is not None and sigmoid.args[0].same_as(x):
            return Activation("silu", var, x, inner=(gate,))
    return None


def _tflite_gelu(var, value, scope):
    """TFLite GELU, ``x * (0.5 + erf(x * 0.7071...) * 0.5)``."""
    if op_name(value) != "relax.multiply":
        return None
    for x, rest in (value.args, reversed(value.args)):
        add = _call(rest, scope, "relax.add")
        half = _operands(add, scope, 0.5) if add is not None else None
        scaled = _call(half, scope, "relax.multiply") if half is not None else None
        erf_var = _operands(scaled, scope, 0.5) if scaled is not None else None
        erf = _call(erf_var, scope, "relax.erf") if erf_var is not None else None
        inside = _call(erf.args[0], scope, "relax.multiply") if erf is not None else None
        if inside is not None and _operands(inside, scope, 0.5 ** 0.5) is not None \
                and _operands(inside, scope, 0.5 ** 0.5).same_as(x):
            return Activation("gelu", var, x, inner=(rest, half, erf_var, erf.args[0]))
    return None


def _onnx_softplus(var, value, scope):
    """ONNX Softplus, ``max(x, 0) + log(1 + exp(-|x|))``."""
    if op_name(value) != "relax.add":
        return None
    for positive, tail in (value.args, reversed(value.args)):
        maximum = _call(positive, scope, "relax.maximum")
        log = _call(tail, scope, "relax.log")
        if maximum is None or log is None:
            continue
        x = _operands(maximum, scope, 0)
        one_plus = _call(log.args[0], scope, "relax.add")
        exp_var = _operands(one_plus, scope, 1) if one_plus is not None else None
        exp = _call(exp_var, scope, "relax.exp") if exp_var is not None else None
        negative = _call(exp.args[0], scope, "relax.negative") if exp is not None else None
        absolute = _call(negative.args[0], scope, "relax.abs") if negative is not None else None
        if x is not None and absolute is not None and absolute.args[0].same_as(x):
            return Activation("softplus", var, x, inner=(
                positive, tail, log.args[0], exp_var, exp.args[0], negative.args[0]))
    return None


def _elu(var, value, scope):
    """ELU with alpha 1 (ONNX Elu, TFLite ELU): ``-1 * relu(1 - exp(x)) + relu(x)``; with
    another alpha (ONNX) the -1 is -alpha."""
    if op_name(value) != "relax.add":
        return None
    for negative_part, positive_part in (value.args, reversed(value.args)):
        relu = _call(positive_part, scope, "relax.nn.relu")
        scaled = _call(negative_part, scope, "relax.multiply")
        if relu is None or scaled is None:
            continue
        x = relu.args[0]
        for alpha, inner_relu in (scaled.args, reversed(scaled.args)):
            alpha_value = scalar(alpha, scope)
            relu_2 = _call(inner_relu, scope, "relax.nn.relu")
            if alpha_value is None or alpha_value >= 0 or relu_2 is None:
                continue
            one_minus = _call(relu_2.args[0], scope, "relax.subtract")
            if one_minus is None or not _is_const(one_minus.args[0], scope, 1):
                continue
            exp = _call(one_minus.args[1], scope, "relax.exp")
            if exp is not None and exp.args[0].same_as(x):
                return Activation("elu", var, x, inner=(
                    negative_part, positive_part, inner_relu, relu_2.args[0],
                    one_minus.args[1]))
    return None


#: Tried in order on every binding; composite patterns first so that a binding which ends one
#: is recognised as the whole pattern (ONNX HardSigmoid ends in a clip).
_RECOGNISERS = (_hard_swish, _hard_sigmoid, _silu, _tflite_gelu, _onnx_softplus, _elu,
                _fused_quantized_clip, _onnx_clip, _relax_clip, _single_op)
