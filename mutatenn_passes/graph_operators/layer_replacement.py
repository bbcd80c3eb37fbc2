"""Layer Node Replacement: swap an activation or pooling layer for a sibling, change a clamp's
bounds, or remove an activation.

The paper's operator replaces ReLU with sigmoid. The activation operators here are one class,
`ReplaceActivation`, driven by a table of (from, to) pairs, Mull-style; they find activation
layers however the importer wrote them (one Relax op, the element-wise pattern it expands
into, or the integer clamp a quantized TFLite graph fuses after a quantize: see
`activations`). The pooling operators swap max and average pooling. Every rewrite keeps the
result's type, so the rest of the graph is untouched.

In a quantized graph the replacement goes where the float activation would be, before the
layer's quantize: ``clip(quantize(x))`` becomes ``quantize(sigmoid(x))``. The quantize
saturates to its integer type, whose range in real terms is often [0, 6] itself (MobileNet:
255 steps of 6/255), so there ReLU6, ReLU and no activation at all are the same function;
such a mutant is skipped as equivalent, with the range in the reason.
"""

from __future__ import annotations

import math

from tvm import relax

from ..operator_spec import OperatorSpec, Param
from .activations import CLIP_KINDS, KINDS, Activation, activations
from .base import FunctionScope, GraphOperator, drop_unused, is_float, relax_functions, \
    tensor_dtype
from .replacement import ReplaceOp

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Layer Node Replacement"
_FLOAT_ONLY = "the replacement activation is only defined on floating-point tensors"
_RANKS = ("1d", "2d", "3d")


def _pool(kind: str):
    """A replacement building a ``kind`` pool (``"avg"``/``"max"``) with the original window,
    strides, padding, dilation, ceil_mode (it fixes the output shape) and layouts.

    ``count_include_pad`` is taken from the parameter of that name when the operator has one
    ("keep" means the original attribute); max pooling ignores it, since padding never wins.
    """
    def build(call: relax.Call, params: dict) -> relax.Expr:
        attrs = call.attrs
        include = params.get("count_include_pad", "keep")
        make = getattr(relax.op.nn, f"{kind}_pool{call.op.name[-2:]}")
        return make(call.args[0], pool_size=attrs.pool_size, strides=attrs.strides,
                    padding=attrs.padding, dilation=attrs.dilation, ceil_mode=attrs.ceil_mode,
                    count_include_pad=(bool(attrs.count_include_pad) if include == "keep"
                                       else include == "true"),
                    layout=attrs.layout, out_layout=attrs.out_layout)
    return build


def _quantized_range(activation: Activation, clamp: tuple[float, float]) -> tuple[int, int]:
    """The stored-integer range a float clamp to ``clamp`` followed by the activation's
    quantize keeps (the quantize saturates to its type)."""
    q = activation.quantized
    return q.to_stored(clamp[0]), q.to_stored(clamp[1])


class _ActivationOperator(GraphOperator):
    """Shared by the activation operators: sites are the activation layers of ``kinds``."""

    def __init__(self, kinds: tuple[str, ...]):
        super().__init__(self._is_site)
        self.kinds = kinds

    def _is_site(self, call, scope) -> bool:
        activation = activations(scope).get(scope.var_of(call))
        return activation is not None and activation.kind in self.kinds

    @staticmethod
    def activation(binding, scope) -> Activation:
        return activations(scope)[binding.var]

    def apply(self, mod, sites, params):
        """Rewrite, then drop what is left of each rewritten pattern (the ReLUs of an ELU,
        the quantize a fused clip read): bindings nothing uses any more, which a later
        operator would otherwise find as activations of their own."""
        new_mod, applied, skipped = super().apply(mod, sites, params)
        if not applied:
            return new_mod, applied, skipped
        inner = set()
        for gv, func in relax_functions(mod):
            if any(s.function == gv.name_hint for s in applied):
                found = activations(FunctionScope(gv.name_hint, func))
                # Inner bindings of patterns left alone are still used: they stay.
                inner |= {v for a in found.values() for v in a.inner}
        return drop_unused(new_mod, inner), applied, skipped

    def site_detail(self, binding, scope):
        activation = self.activation(binding, scope)
        plain = not activation.inner and activation.bounds is None
        return "" if plain else activation.describe()

    def skip_reason_at(self, binding, scope, params):
        activation = self.activation(binding, scope)
        dtype = tensor_dtype(activation.operand)
        if not is_float(dtype):
            return f"operand is {dtype or 'of unknown dtype'}: {_FLOAT_ONLY}"
        if activation.quantized is not None:
            return self.quantized_skip(activation, params)
        return None

    def quantized_skip(self, activation: Activation, params: dict) -> str | None:
        """Why the mutant of a fused quantized activation is equivalent, or None."""
        return None

    def replacement(self, x: relax.Expr, activation: Activation, params: dict) -> relax.Expr:
        """The float result the layer computes instead, from its float operand ``x``."""
        raise NotImplementedError

    def rewrite_at(self, builder, binding, call, scope, params):
        activation = self.activation(binding, scope)
        value = self.replacement(activation.operand, activation, params)
        q = activation.quantized
        if q is None:
            return value
        if value.same_as(activation.operand):  # no activation: the quantize already bound
            return activation.inner[0]
        if not isinstance(value, relax.Var):
            value = builder.emit(value, f"{binding.var.name}_float")
        return relax.Call(q.quantize.op, [value, *q.quantize.args[1:]], q.quantize.attrs,
                          q.quantize.ty_args)


def _equivalent(activation: Activation, clamp: tuple[float, float], what: str) -> str | None:
    """The skip reason when clamping to ``clamp`` before the quantize keeps exactly the
    stored range the fused clip keeps."""
    q = activation.quantized
    low, high = q.type_range
    original = (max(q.low, low), min(q.high, high))
    if _quantized_range(activation, clamp) != original:
        return None
    real = (q.to_real(original[0]), q.to_real(original[1]))
    return (f"equivalent: the quantize saturates {q.quantize.attrs.out_dtype} to "
            f"[{real[0]:g}, {real[1]:g}] in real terms (scale {q.scale:.6g}, zero point "
            f"{q.zero_point}), so {what} computes the same stored values")


#: The activations a layer can become: (build from x, the clamp it is or None).
_TARGETS = {
    "relu": (relax.op.nn.relu, (0.0, math.inf)),
    "relu6": (lambda x: relax.op.clip(x, 0.0, 6.0), (0.0, 6.0)),
    "sigmoid": (relax.op.sigmoid, None),
    "tanh": (relax.op.tanh, None),
}


class ReplaceActivation(_ActivationOperator):
    """Replace activations of kind ``source`` by activation ``target`` (a `_TARGETS` key)."""

    def __init__(self, source: str, target: str):
        super().__init__((source,))
        self.target = target

    def quantized_skip(self, activation, params):
        clamp = _TARGETS[self.target][1]
        return _equivalent(activation, clamp, self.target) if clamp is not None else None

    def replacement(self, x, activation, params):
        return _TARGETS[self.target][0](x)


class RemoveActivation(_ActivationOperator):
    """``activation_remove``: the layer passes its operand through."""

    def __init__(self):
        super().__init__(KINDS)

    def quantized_skip(self, activation, params):
        return _equivalent(activation, (-math.inf, math.inf), "no activation")

    def replacement(self, x, activation, params):
        return x


class ClipBound(str):
    """Parameter type of a clamp bound: 'keep' or a number ('inf' and '-inf' included)."""

    def __new__(cls, value):
        text = str(value).strip()
        if text != "keep":
            number = float(text)  # ValueError for anything else
            if math.isnan(number):
                raise ValueError("NaN is no bound")
        return str.__new__(cls, text)


def _new_bounds(activation: Activation, params: dict) -> tuple[float, float]:
    old = activation.bounds
    return tuple(o if p == "keep" else float(p)
                 for o, p in zip(old, (params["lower"], params["upper"])))


class ChangeClipBounds(_ActivationOperator):
    """``clip_bounds_change``: the clamp keeps other bounds."""

    def __init__(self):
        super().__init__(CLIP_KINDS)

    def skip_reason_at(self, binding, scope, params):
        activation = self.activation(binding, scope)
        low, high = _new_bounds(activation, params)
        if low > high:
            return f"the new bounds [{low:g}, {high:g}] are empty"
        if (low, high) == activation.bounds:
            return f"the bounds are already [{low:g}, {high:g}]"
        return super().skip_reason_at(binding, scope, params)

    def quantized_skip(self, activation, params):
        low, high = _new_bounds(activation, params)
        return _equivalent(activation, (low, high), f"clip to [{low:g}, {high:g}]")

    def replacement(self, x, activation, params):
        low, high = _new_bounds(activation, params)
        return relax.op.clip(x, low, high)


#: (ID, from, to, from the paper, note): one operator per pair, all `ReplaceActivation`.
ACTIVATION_PAIRS = (
    ("relu_to_sigmoid", "relu", "sigmoid", True, ""),
    ("relu_to_tanh", "relu", "tanh", False, ""),
    ("sigmoid_to_relu", "sigmoid", "relu", False, "the paper's mutation reversed"),
    ("sigmoid_to_tanh", "sigmoid", "tanh", False, ""),
    ("tanh_to_sigmoid", "tanh", "sigmoid", False, ""),
    ("relu6_to_relu", "relu6", "relu", False, "the upper bound dropped"),
    ("relu6_to_sigmoid", "relu6", "sigmoid", False, ""),
    ("relu6_to_tanh", "relu6", "tanh", False, ""),
    ("clip_to_relu", "clip", "relu", False, ""),
    ("hard_swish_to_relu", "hard_swish", "relu", False, ""),
    ("hard_sigmoid_to_sigmoid", "hard_sigmoid", "sigmoid", False, "the exact curve"),
    ("silu_to_relu", "silu", "relu", False, ""),
    ("gelu_to_relu", "gelu", "relu", False, ""),
    ("leaky_relu_to_relu", "leaky_relu", "relu", False, ""),
    ("softplus_to_relu", "softplus", "relu", False, ""),
    ("elu_to_relu", "elu", "relu", False, ""),
)

#: Activation kinds as the descriptions name them.
NAMES = {"relu": "ReLU", "relu6": "ReLU6", "clip": "clip", "sigmoid": "sigmoid",
         "tanh": "hyperbolic tangent", "hard_swish": "hard-swish", "hard_sigmoid": "hard-sigmoid",
         "silu": "SiLU (swish)", "gelu": "GELU", "leaky_relu": "leaky ReLU",
         "softplus": "softplus", "elu": "ELU"}

#: How each activation kind is found, for the specs' ``finds`` text.
FORMS = {
    "relu": "relax.nn.relu (ONNX Relu, Clip(x, 0); TFLite RELU, dequantized in quantized "
            "graphs)",
    "relu6": "relax.clip(x, 0, 6) (TFLite RELU6 and fused RELU6), ONNX Clip(x, 0, 6) "
             "(call_tir maximum then minimum), and a quantized graph's integer clip after a "
             "quantize whose bounds are 0 and 6 in real terms",
    "clip": "a clamp with other bounds, in the same three forms as relu6 (TFLite "
            "RELU_N1_TO_1, RELU_0_TO_1; ONNX Clip)",
    "sigmoid": "relax.sigmoid (ONNX Sigmoid; TFLite LOGISTIC)",
    "tanh": "relax.tanh (ONNX Tanh; TFLite TANH)",
    "hard_swish": "x * clip(x + 3, 0, 6) / 6 in ONNX's and TFLite's op orders",
    "hard_sigmoid": "ONNX HardSigmoid, clip(alpha * x + beta, 0, 1)",
    "silu": "relax.nn.silu and x * sigmoid(x)",
    "gelu": "relax.nn.gelu (ONNX Gelu) and TFLite's x * (0.5 + erf(x / sqrt 2) * 0.5)",
    "leaky_relu": "relax.nn.leakyrelu (ONNX LeakyRelu; TFLite LEAKY_RELU)",
    "softplus": "relax.nn.softplus and ONNX's max(x, 0) + log(1 + exp(-|x|))",
    "elu": "-alpha * relu(1 - exp(x)) + relu(x) (ONNX Elu, TFLite ELU)",
}
_TARGET_TEXT = {"relu": "relu(x)", "relu6": "clip(x, 0, 6)", "sigmoid": "sigmoid(x)",
                "tanh": "tanh(x)"}
_QUANTIZED = ("; in a quantized graph quantize(x) keeps its scale and zero point (skipped as "
              "equivalent where the quantize's own saturation makes it so)")

for _id, _source, _target, _paper, _note in ACTIVATION_PAIRS:
    OPERATORS.append(OperatorSpec(
        id=_id, level="graph", category=CATEGORY, from_paper=_paper,
        description=f"Replace a {NAMES[_source]} activation with a {NAMES[_target]}"
                    + (f" ({_note})." if _note else "."),
        finds=f"{_source} activations: {FORMS[_source]}. An activation inside a larger "
              "recognised one (the ReLUs of an ELU) is part of that one.",
        rewrites=f"the activation's result becomes {_TARGET_TEXT[_target]} of its operand x; "
                 f"skipped when x is not floating point" + _QUANTIZED + ".",
        implementation=ReplaceActivation(_source, _target)))

OPERATORS.append(OperatorSpec(
    id="activation_remove", level="graph", category=CATEGORY, from_paper=False,
    description="Remove an activation layer: its operand passes through unchanged.",
    finds="Every activation layer of the kinds " + ", ".join(KINDS) + ", in every form the "
          "relu6_to_relu, relu_to_sigmoid, ... operators recognise (relax.nn.relu, relax.clip, "
          "patterns, quantized clips).",
    rewrites="the activation's result becomes its operand x (in a quantized graph, "
             "quantize(x)); skipped when x is not floating point, and as equivalent where the "
             "quantize's saturation is the activation.",
    implementation=RemoveActivation()))

OPERATORS.append(OperatorSpec(
    id="clip_bounds_change", level="graph", category=CATEGORY, from_paper=False,
    description="Change the bounds of a clamping activation (by default clip(0, 6) becomes "
                "clip(0, inf)).",
    finds="relu6 and other clip activations: relax.clip on floats, ONNX Clip (call_tir "
          "maximum/minimum) and a quantized graph's integer clip after a quantize.",
    rewrites="the clamp becomes relax.clip(x, lower, upper) on the float operand (bounds in "
             "real terms; in a quantized graph before its quantize, skipped as equivalent when "
             "the quantize saturates to the same range).",
    params=(Param("lower", "keep", ClipBound,
                  "the new lower bound: 'keep' or a number ('-inf' for none)"),
            Param("upper", "inf", ClipBound,
                  "the new upper bound: 'keep' or a number ('inf' for none)")),
    implementation=ChangeClipBounds()))


OPERATORS.append(OperatorSpec(
    id="max_pool_to_avg_pool", level="graph", category=CATEGORY, from_paper=False,
    description="Replace a max pooling layer with an average pooling layer of the same "
                "window.",
    finds="Calls to relax.nn.max_pool1d/2d/3d (ONNX MaxPool; TFLite MAX_POOL_2D). Global "
          "max pooling imports as relax.max (a reduction) and is not a site.",
    rewrites="max_poolNd(x, window) becomes avg_poolNd(x, window) with the same pool size, "
             "strides, padding, dilation, ceil_mode and layouts; count_include_pad per the "
             "parameter.",
    params=(Param("count_include_pad", "keep", str,
                  "whether padded cells count in the average: 'keep' the max pool's attribute "
                  "(ONNX and TFLite import it as false: average over in-bounds cells), "
                  "'true' or 'false'", choices=("keep", "true", "false")),),
    implementation=ReplaceOp({f"relax.nn.max_pool{r}": _pool("avg") for r in _RANKS})))

OPERATORS.append(OperatorSpec(
    id="avg_pool_to_max_pool", level="graph", category=CATEGORY, from_paper=False,
    description="Replace an average pooling layer with a max pooling layer of the same "
                "window.",
    finds="Calls to relax.nn.avg_pool1d/2d/3d (ONNX AveragePool; TFLite AVERAGE_POOL_2D, on "
          "int32 in quantized graphs). Global average pooling imports as relax.mean (ONNX) "
          "and is not a site.",
    rewrites="avg_poolNd(x, window) becomes max_poolNd(x, window) with the same pool size, "
             "strides, padding, dilation, ceil_mode, count_include_pad (which max pooling "
             "ignores) and layouts.",
    implementation=ReplaceOp({f"relax.nn.avg_pool{r}": _pool("max") for r in _RANKS})))
