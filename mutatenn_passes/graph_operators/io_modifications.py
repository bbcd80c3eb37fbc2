"""Node Input/Output Modifications: perturb what flows into or out of a layer.

The paper's nine configurations: transpose the input (or the weights) of a convolution, a
dense layer or a batch normalisation; apply exp before or after a convolution or dense layer,
or before a batch normalisation; round the input of a batch normalisation. Each rewrite keeps
every shape: a transpose swaps two axes of equal length, exp and round are element-wise.

"dense" is a fully connected layer as TVM imports it: ``relax.matmul`` whose second operand is
computed from constants or weight parameters only (ONNX Gemm and MatMul with an initializer,
TFLite FULLY_CONNECTED; Relax has no linear op, ``relax.op.linear`` emits matmul + add), which
tells it from a matmul of two activations. "batch_norm" is ``relax.nn.batch_norm``, present
because graph mutations run before the target's default pipeline decomposes it.
"""

from __future__ import annotations

from typing import Callable

from tvm import relax

from ..operator_spec import OperatorSpec, Param
from .base import GraphOperator, FunctionScope, Matcher, calls_to, is_float, op_name, \
    static_shape, tensor_dtype

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Node Input/Output Modifications"


def _is_dense(call: relax.Call, scope: FunctionScope) -> bool:
    return op_name(call) == "relax.matmul" and scope.is_constant(call.args[1])


_is_conv2d = calls_to("relax.nn.conv2d")
_is_batch_norm = calls_to("relax.nn.batch_norm")


def _is_conv2d_or_dense(call: relax.Call, scope: FunctionScope) -> bool:
    return _is_conv2d(call, scope) or _is_dense(call, scope)


def _with_arg(call: relax.Call, index: int, value: relax.Expr) -> relax.Call:
    args = list(call.args)
    args[index] = value
    return relax.Call(call.op, args, call.attrs, call.ty_args)


def swapped_axes(shape: tuple[int, ...], which: str) -> tuple[int, int] | None:
    """The pair of axes to swap: equal extents greater than 1 (swapping length-1 axes would
    change nothing), the last such pair (H/W of NCHW and NHWC images, kernel H/W of OIHW and
    HWIO weights) or the ``"first"``; None when no pair qualifies."""
    pairs = [(i, j) for i in range(len(shape)) for j in range(i + 1, len(shape))
             if shape[i] == shape[j] > 1]
    if not pairs:
        return None
    return max(pairs, key=lambda p: (p[1], p[0])) if which == "last" else min(pairs)


class TransposeArgument(GraphOperator):
    """Swap two equal-length axes of argument ``arg`` just before the call."""

    def __init__(self, matcher: Matcher, arg: int):
        super().__init__(matcher)
        self.arg = arg

    def skip_reason(self, call, params):
        shape = static_shape(call.args[self.arg])
        if shape is None:
            return f"argument {self.arg} has no static shape"
        if swapped_axes(shape, params["axes"]) is None:
            return (f"argument {self.arg} has shape {list(shape)}: no two axes longer than 1 "
                    "have equal length")
        return None

    def rewrite(self, builder, call, name, params):
        operand = call.args[self.arg]
        i, j = swapped_axes(static_shape(operand), params["axes"])
        axes = list(range(len(static_shape(operand))))
        axes[i], axes[j] = j, i
        moved = builder.emit(relax.op.permute_dims(operand, axes), f"{name}_transposed")
        return _with_arg(call, self.arg, moved)


def _needs_float(what: str, expr: relax.Expr, label: str) -> str | None:
    """The skip reason when ``expr`` is not floating point (exp of an integer tensor is
    ill-typed in Relax, rounding one changes nothing), else None."""
    dtype = tensor_dtype(expr)
    if is_float(dtype):
        return None
    return f"{what} is {dtype or 'of unknown dtype'}: {label} needs a floating-point tensor"


class _Unary(GraphOperator):
    """An operator inserting the element-wise op ``unary`` (called ``label``) at its sites."""

    def __init__(self, matcher: Matcher, label: str, unary: Callable[[relax.Expr], relax.Expr]):
        super().__init__(matcher)
        self.label = label
        self.unary = unary


class UnaryBefore(_Unary):
    """Apply an element-wise function to argument 0 just before the call."""

    def skip_reason(self, call, params):
        return _needs_float("argument 0", call.args[0], self.label)

    def rewrite(self, builder, call, name, params):
        changed = builder.emit(self.unary(call.args[0]), f"{name}_{self.label}_input")
        return _with_arg(call, 0, changed)


class UnaryAfter(_Unary):
    """Apply an element-wise function to the call's result, bound to the call's variable."""

    def skip_reason(self, call, params):
        return _needs_float("the result", call, self.label)

    def rewrite(self, builder, call, name, params):
        return self.unary(builder.emit(call, f"{name}_before_{self.label}"))


_AXES = Param("axes", "last", str,
              "which pair of equal-length axes (longer than 1) to swap: the 'last' pair (H/W "
              "for NCHW/NHWC inputs and for OIHW/HWIO kernels) or the 'first'",
              choices=("last", "first"))
_CONV2D = ("calls to relax.nn.conv2d (ONNX Conv; TFLite CONV_2D and DEPTHWISE_CONV_2D, in "
           "float between dequantize and quantize in quantized graphs)")
_DENSE = ("calls to relax.matmul whose second operand is computed from constants or weights "
          "only (ONNX Gemm and MatMul with an initializer; TFLite FULLY_CONNECTED)")
_CONV2D_DENSE = f"Two-D convolutions, {_CONV2D}, and dense layers, {_DENSE}."
_BATCH_NORM = ("Calls to relax.nn.batch_norm (ONNX BatchNormalization; TFLite has no batch "
               "norm op, its converter folds batch norms into the convolutions).")


def _transpose(op_id: str, what: str, finds: str, matcher: Matcher, arg: int):
    operand = "input" if arg == 0 else "weight"
    OPERATORS.append(OperatorSpec(
        id=op_id, level="graph", category=CATEGORY, from_paper=True,
        description=f"Transpose the {operand} of {what} (two equal-length axes swapped).",
        finds=finds,
        rewrites=f"op(x, ...) becomes op(permute_dims(x, swap), ...) on argument {arg} "
                 f"({operand}); skipped when no two axes longer than 1 have equal length.",
        params=(_AXES,),
        implementation=TransposeArgument(matcher, arg)))


_transpose("transpose_conv2d_input", "a 2-D convolution", f"Two-D convolutions, {_CONV2D}.",
           _is_conv2d, 0)
_transpose("transpose_dense_input", "a dense layer", f"Dense layers, {_DENSE}.", _is_dense, 0)
_transpose("transpose_conv2d_dense_input", "a 2-D convolution or dense layer", _CONV2D_DENSE,
           _is_conv2d_or_dense, 0)
_transpose("transpose_conv2d_dense_weight", "a 2-D convolution or dense layer", _CONV2D_DENSE,
           _is_conv2d_or_dense, 1)
_transpose("transpose_batch_norm_input", "a batch normalisation", _BATCH_NORM, _is_batch_norm,
           0)

OPERATORS.append(OperatorSpec(
    id="exp_before_conv2d_dense", level="graph", category=CATEGORY, from_paper=True,
    description="Apply exp to the input of a 2-D convolution or dense layer.",
    finds=_CONV2D_DENSE,
    rewrites="op(x, w) becomes op(exp(x), w); skipped when x is not floating point.",
    implementation=UnaryBefore(_is_conv2d_or_dense, "exp", relax.op.exp)))

OPERATORS.append(OperatorSpec(
    id="exp_after_conv2d_dense", level="graph", category=CATEGORY, from_paper=True,
    description="Apply exp to the output of a 2-D convolution or dense layer.",
    finds=_CONV2D_DENSE,
    rewrites="y = op(x, w) becomes y = exp(op(x, w)), before any bias add the frontend "
             "emitted separately; skipped when the result is not floating point.",
    implementation=UnaryAfter(_is_conv2d_or_dense, "exp", relax.op.exp)))

OPERATORS.append(OperatorSpec(
    id="exp_before_batch_norm", level="graph", category=CATEGORY, from_paper=True,
    description="Apply exp to the input of a batch normalisation.",
    finds=_BATCH_NORM,
    rewrites="batch_norm(x, ...) becomes batch_norm(exp(x), ...); skipped when x is not "
             "floating point.",
    implementation=UnaryBefore(_is_batch_norm, "exp", relax.op.exp)))

OPERATORS.append(OperatorSpec(
    id="round_before_batch_norm", level="graph", category=CATEGORY, from_paper=True,
    description="Round the input of a batch normalisation to integers.",
    finds=_BATCH_NORM,
    rewrites="batch_norm(x, ...) becomes batch_norm(round(x), ...); skipped when x is not "
             "floating point (rounding an integer changes nothing).",
    implementation=UnaryBefore(_is_batch_norm, "round", relax.op.round)))
