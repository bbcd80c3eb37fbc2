"""Arithmetic Node Replacement: swap an element-wise arithmetic op for its inverse.

The paper's operator turns an addition into a subtraction; the others complete the pairs.
Relax arithmetic ops broadcast their operands identically, so the result type never changes.
"""

from __future__ import annotations

from tvm import relax

from ..operator_spec import OperatorSpec
from .replacement import ReplaceOp, same_operands

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Arithmetic Node Replacement"

OPERATORS.append(OperatorSpec(
    id="add_to_subtract", level="graph", category=CATEGORY, from_paper=True,
    description="Replace an element-wise addition with a subtraction.",
    finds="Calls to relax.add: ONNX Add and the bias of Conv and Gemm (imported as conv2d or "
          "matmul, then add); TFLite ADD and every conv/fully-connected bias (in quantized "
          "graphs computed in float between dequantize and quantize).",
    rewrites="add(a, b) becomes subtract(a, b).",
    implementation=ReplaceOp({"relax.add": same_operands(relax.op.subtract)})))

OPERATORS.append(OperatorSpec(
    id="subtract_to_add", level="graph", category=CATEGORY, from_paper=False,
    description="Replace an element-wise subtraction with an addition.",
    finds="Calls to relax.subtract (ONNX Sub; TFLite SUB).",
    rewrites="subtract(a, b) becomes add(a, b).",
    implementation=ReplaceOp({"relax.subtract": same_operands(relax.op.add)})))

OPERATORS.append(OperatorSpec(
    id="multiply_to_divide", level="graph", category=CATEGORY, from_paper=False,
    description="Replace an element-wise multiplication with a division.",
    finds="Calls to relax.multiply (ONNX Mul, Gemm alpha/beta scaling; TFLite MUL).",
    rewrites="multiply(a, b) becomes divide(a, b); skipped on integer operands, where a zero "
             "divisor would trap the process instead of producing a wrong answer.",
    implementation=ReplaceOp({"relax.multiply": same_operands(relax.op.divide)},
                             requires_float="integer division traps on a zero divisor")))

OPERATORS.append(OperatorSpec(
    id="divide_to_multiply", level="graph", category=CATEGORY, from_paper=False,
    description="Replace an element-wise division with a multiplication.",
    finds="Calls to relax.divide (ONNX Div; TFLite DIV).",
    rewrites="divide(a, b) becomes multiply(a, b).",
    implementation=ReplaceOp({"relax.divide": same_operands(relax.op.multiply)})))
