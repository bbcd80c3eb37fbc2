"""Quantization Parameters cases: a quantize/dequantize pair before, and after each operator
by hand."""

from tvm.script import ir as I
from tvm.script import relax as R

T4 = R.Tensor((1, 4), "float32")


@I.ir_module
class QuantizeDequantize:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            q = R.quantize(x, R.const(0.5, "float32"), R.const(3, "int32"), out_dtype="int8",
                           axis=-1)
            y = R.dequantize(q, R.const(0.5, "float32"), R.const(3, "int32"),
                             out_dtype="float32", axis=-1)
            R.output(y)
        return y


@I.ir_module
class ScaleUp:  # quant_scale_inc, delta 0.5, site 0 (the quantize)
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            q = R.quantize(x, R.const(0.75, "float32"), R.const(3, "int32"), out_dtype="int8",
                           axis=-1)
            y = R.dequantize(q, R.const(0.5, "float32"), R.const(3, "int32"),
                             out_dtype="float32", axis=-1)
            R.output(y)
        return y


@I.ir_module
class ZeroPointDown:  # quant_zero_point_dec, k 2, site 1 (the dequantize)
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            q = R.quantize(x, R.const(0.5, "float32"), R.const(3, "int32"), out_dtype="int8",
                           axis=-1)
            y = R.dequantize(q, R.const(0.5, "float32"), R.const(1, "int32"),
                             out_dtype="float32", axis=-1)
            R.output(y)
        return y


@I.ir_module
class TruncatingQuantize:  # quant_round_toward_zero: quantize's formula with trunc for round
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            steps = R.divide(x, R.const(0.5, "float32"))
            q_truncated = R.trunc(steps)
            zero_point = R.astype(R.const(3, "int32"), "float32")
            shifted = R.add(q_truncated, zero_point)
            q_saturated = R.clip(shifted, -128.0, 127.0)
            q = R.astype(q_saturated, "int8")
            y = R.dequantize(q, R.const(0.5, "float32"), R.const(3, "int32"),
                             out_dtype="float32", axis=-1)
            R.output(y)
        return y


#: (operator, params, sites, before, after by hand)
CASES = [
    ("quant_scale_inc", {"delta": 0.5}, 0, QuantizeDequantize, ScaleUp),
    ("quant_zero_point_dec", {"k": 2}, 1, QuantizeDequantize, ZeroPointDown),
    ("quant_round_toward_zero", {}, "all", QuantizeDequantize, TruncatingQuantize),
]
