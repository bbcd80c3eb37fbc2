"""Which constants are a conv2d or dense layer's weights and bias, and how their elements map
to the layer's neurons.

A *layer* is a call to ``relax.nn.conv2d`` or a dense ``relax.matmul`` (second operand
computed from constants: see `io_modifications`). Its weight reaches it from a ``GenericConst``
through ops that keep every element (``dequantize``, ``permute_dims``): ONNX passes the
constant itself, ONNX Gemm a ``permute_dims`` of it, TFLite a ``dequantize`` of the stored
integers. Its bias, when it has one, is the constant operand of the one ``add`` that consumes
the layer's result, reshaped or dequantized, holding one value per output channel. A neuron is
an output channel: index ``o`` along the kernel layout's ``O`` axis (the matmul weight's last
axis).

`StoredTensor` does the arithmetic on such a constant in real terms and stores the result back
in the constant's own type: for a quantized tensor through its dequantize's scale and zero
point, rounded to nearest and saturated to the integer type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tvm import relax
from tvm.ir.expr import GenericConst

from .base import FunctionScope, op_name, static_shape

#: Ops a weight may pass through on its way from its constant to the layer (element-wise or a
#: pure permutation), with how each maps axes.
_KEEPING = ("relax.dequantize", "relax.permute_dims")


@dataclass(frozen=True)
class ConstantSlot:
    """Where a layer's constant sits: argument ``arg`` of ``value``, the call bound to
    ``holder``."""

    holder: relax.Var
    value: relax.Call
    arg: int
    constant: GenericConst
    #: For each axis of the operand the layer sees, the constant's axis.
    axes: tuple[int, ...]
    #: The dequantize the constant goes through: (scale, zero point, constant axis) or None.
    quantization: tuple[np.ndarray, np.ndarray, int] | None


@dataclass(frozen=True)
class Layer:
    """A conv2d or dense layer and its constants, or why they cannot be mutated."""

    var: relax.Var
    call: relax.Call
    kind: str  # "conv2d" or "dense"
    weight: ConstantSlot | None
    out_axis: int  # the neuron axis of the weight constant
    bias: ConstantSlot | None  # one value per neuron, flat index = neuron
    bias_var: relax.Var | None  # the add binding the bias enters
    problem: str = ""  # why the weight cannot be mutated (weight is then None)

    @property
    def neurons(self) -> int:
        return self.weight.constant.value.shape[self.out_axis]

    @property
    def output_var(self) -> relax.Var:
        """The binding holding the layer's result, bias included."""
        return self.bias_var if self.bias_var is not None else self.var


def is_dense(call: relax.Call, scope: FunctionScope) -> bool:
    return op_name(call) == "relax.matmul" and scope.is_constant(call.args[1])


def layers(scope: FunctionScope) -> dict[relax.Var, Layer]:
    """Every conv2d and dense layer of the scope's function, keyed by its call's variable
    (computed once per scope)."""
    return scope.memo("layers", _find_layers)


def _find_layers(scope: FunctionScope) -> dict[relax.Var, Layer]:
    found = {}
    for binding in scope.bindings:
        call = binding.value
        if op_name(call) == "relax.nn.conv2d":
            kind, operand_axis = "conv2d", str(call.attrs.kernel_layout).index("O")
        elif is_dense(call, scope) and static_shape(call.args[1]) is not None \
                and len(static_shape(call.args[1])) >= 2:
            kind, operand_axis = "dense", len(static_shape(call.args[1])) - 1
        else:
            continue
        weight, problem = _trace(call, 1, binding.var, scope)
        out_axis = weight.axes[operand_axis] if weight is not None else -1
        bias, bias_var = (None, None)
        if weight is not None:
            bias, bias_var = _bias(binding.var, weight.constant.value.shape[out_axis], kind,
                                   call, scope)
        found[binding.var] = Layer(binding.var, call, kind, weight, out_axis, bias, bias_var,
                                   problem)
    return found


def _trace(call: relax.Call, arg: int, holder: relax.Var, scope: FunctionScope):
    """Follow argument ``arg`` of ``call`` (bound to ``holder``) back to its constant through
    `_KEEPING` ops used nowhere else; returns (`ConstantSlot`, "") or (None, why not)."""
    steps = []  # (op call) from the layer down to the constant's holder
    expr = call.args[arg]
    while True:
        if isinstance(expr, GenericConst):
            break
        value = scope.value_of(expr)
        if value is None:
            return None, "it is a function parameter, not a constant of the graph"
        if op_name(value) not in _KEEPING:
            return None, f"it is computed by {op_name(value) or type(value).__name__}, " \
                         "not a constant passed through dequantize or permute_dims"
        if scope.uses(expr) != 1:
            return None, f"{expr.name} is shared with another use"
        steps.append(value)
        holder, call, arg, expr = expr, value, 0, value.args[0]
    # Axes: from the constant up to the layer's operand.
    axes = list(range(len(expr.value.shape)))
    quantization = None
    for step in reversed(steps):
        if op_name(step) == "relax.permute_dims":
            order = step.attrs.axes
            order = range(len(axes))[::-1] if order is None else [int(a) for a in order]
            axes = [axes[a] for a in order]
        else:
            scale, zero_point = step.args[1], step.args[2]
            if not (isinstance(scale, GenericConst) and isinstance(zero_point, GenericConst)):
                return None, "its dequantize's scale or zero point is not a constant"
            quantization = (scale.value.numpy(), zero_point.value.numpy(),
                            axes[int(step.attrs.axis) % len(axes)])
    return ConstantSlot(holder, call, arg, expr, tuple(axes), quantization), ""


def _bias(var: relax.Var, neurons: int, kind: str, call: relax.Call, scope: FunctionScope):
    """The bias of the layer bound to ``var``: the constant operand of the only binding using
    ``var``, an ``add`` whose other operand has one value per neuron along the output's
    channel axis."""
    if scope.uses(var) != 1:
        return None, None
    users = [b for b in scope.bindings if op_name(b.value) == "relax.add"
             and any(a.same_as(var) for a in b.value.args)]
    if len(users) != 1:
        return None, None
    add = users[0]
    other = 1 if add.value.args[0].same_as(var) else 0
    shape, out_shape = static_shape(add.value.args[other]), static_shape(add.value)
    if shape is None or out_shape is None or math.prod(shape) != neurons:
        return None, None
    channel = len(out_shape) - 1 if kind == "dense" else \
        str(call.attrs.out_layout or call.attrs.data_layout).index("C")
    aligned = [1] * (len(out_shape) - len(shape)) + list(shape)
    if aligned[channel] != neurons or len(aligned) != len(out_shape):
        return None, None
    slot = _trace_any(add.value, other, add.var, scope)
    return (slot, add.var) if slot is not None else (None, None)


def _trace_any(call, arg, holder, scope) -> ConstantSlot | None:
    """`_trace` that also passes through ``reshape`` (a bias's flat order is unchanged by
    it); the slot's axes are then meaningless and unused."""
    expr = call.args[arg]
    while not isinstance(expr, GenericConst):
        value = scope.value_of(expr)
        if value is None or op_name(value) not in (*_KEEPING, "relax.reshape") \
                or scope.uses(expr) != 1:
            return None
        holder, call, arg, expr = expr, value, 0, value.args[0]
    quantization = None
    if op_name(call) == "relax.dequantize":
        scale, zero_point = call.args[1], call.args[2]
        if not (isinstance(scale, GenericConst) and isinstance(zero_point, GenericConst)):
            return None
        quantization = (scale.value.numpy(), zero_point.value.numpy(), 0)
    return ConstantSlot(holder, call, arg, expr, (), quantization)


class StoredTensor:
    """A constant's values in real terms, and real values stored back in its type."""

    def __init__(self, slot: ConstantSlot):
        self.slot = slot
        self.stored = slot.constant.value.numpy()
        self.dtype = self.stored.dtype
        if slot.quantization is None:
            self.scale = self.zero_point = None
        else:
            scale, zero_point, axis = slot.quantization
            self.scale = self._along(scale.astype(np.float64), axis)
            self.zero_point = self._along(zero_point.astype(np.float64), axis)

    def _along(self, values: np.ndarray, axis: int) -> np.ndarray:
        if values.size <= 1:
            return values.reshape(())
        shape = [1] * self.stored.ndim
        shape[axis] = values.size
        return values.reshape(shape)

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def real(self) -> np.ndarray:
        if not self.quantized:
            return self.stored.astype(np.float64)
        return (self.stored.astype(np.float64) - self.zero_point) * self.scale

    def store(self, real: np.ndarray) -> np.ndarray:
        """``real`` in the constant's type: rounded to nearest and saturated for integers."""
        if not self.quantized:
            return real.astype(self.dtype)
        info = np.iinfo(self.dtype)
        steps = np.rint(real / self.scale + self.zero_point)
        return np.clip(steps, info.min, info.max).astype(self.dtype)


def replace_constant(slot: ConstantSlot, array: np.ndarray) -> dict:
    """The new binding value that makes ``slot``'s constant ``array``: {holder: value}."""
    args = list(slot.value.args)
    args[slot.arg] = relax.const(array, str(array.dtype))
    return {slot.holder: relax.Call(slot.value.op, args, slot.value.attrs, slot.value.ty_args)}


@relax.expr_functor.mutator
class BindingValueRewriter(relax.PyExprMutator):
    """Re-emits every binding, giving the variables in ``values`` their new values (each of
    the same type as the variable)."""

    def __init__(self, mod, values: dict):
        super().__init__(mod)
        self.values = values

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        new = self.values.get(binding.var)
        if new is None:
            super().visit_var_binding_(binding)
            return
        value = self.builder_.normalize(new)
        self.builder_.emit_normalized(relax.VarBinding(binding.var, value))
