"""Layer Node Replacement: swap an activation or pooling layer for a sibling.

The paper's operator replaces ReLU with sigmoid; the others extend the same idea to the
activation and pooling layers image classifiers are built from. Every replacement keeps the
operand and the result type, so the rest of the graph is untouched.
"""

from __future__ import annotations

from tvm import relax

from ..registry import OperatorSpec, Param, register
from .replacement import ReplaceOp, same_operands

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


register(OperatorSpec(
    id="relu_to_sigmoid", level="graph", category=CATEGORY, from_paper=True,
    description="Replace a ReLU activation with a sigmoid.",
    finds="Calls to relax.nn.relu (ONNX Relu; TFLite float RELU). Quantized TFLite graphs "
          "fuse ReLU into relax.clip on integers and have no site.",
    rewrites="relu(x) becomes sigmoid(x); skipped when x is not floating point.",
    implementation=ReplaceOp({"relax.nn.relu": same_operands(relax.op.sigmoid)},
                             requires_float=_FLOAT_ONLY)))

register(OperatorSpec(
    id="relu_to_tanh", level="graph", category=CATEGORY, from_paper=False,
    description="Replace a ReLU activation with a hyperbolic tangent.",
    finds="Calls to relax.nn.relu, as relu_to_sigmoid.",
    rewrites="relu(x) becomes tanh(x); skipped when x is not floating point.",
    implementation=ReplaceOp({"relax.nn.relu": same_operands(relax.op.tanh)},
                             requires_float=_FLOAT_ONLY)))

register(OperatorSpec(
    id="sigmoid_to_relu", level="graph", category=CATEGORY, from_paper=False,
    description="Replace a sigmoid activation with a ReLU (the paper's mutation reversed).",
    finds="Calls to relax.sigmoid (ONNX Sigmoid; TFLite LOGISTIC on float tensors).",
    rewrites="sigmoid(x) becomes relu(x).",
    implementation=ReplaceOp({"relax.sigmoid": same_operands(relax.op.nn.relu)})))

register(OperatorSpec(
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

register(OperatorSpec(
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
