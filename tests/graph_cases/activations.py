"""Activation cases: modules written as TVM 0.27's TFLite and ONNX importers emit each
activation (see ``tvm/relax/frontend/tflite/tflite_frontend.py``), before, and after each
operator by hand."""

from tvm.script import ir as I
from tvm.script import relax as R

T4 = R.Tensor((1, 4), "float32")
Q4 = R.Tensor((1, 4), "uint8")


@I.ir_module
class Relu6:  # TFLite RELU6 (fused or not): relax.clip(x, 0, 6)
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.clip(x, 0, 6)
            R.output(y)
        return y


@I.ir_module
class Relu6ToSigmoid:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.sigmoid(x)
            R.output(y)
        return y


@I.ir_module
class Relu6Unbounded:  # clip_bounds_change, defaults: clip(0, 6) -> clip(0, inf)
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.clip(x, 0.0, float("inf"))
            R.output(y)
        return y


@I.ir_module
class Relu6Removed:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = x
            R.output(y)
        return y


@I.ir_module
class QuantizedRelu6:  # TFLite's fused RELU6 in a quantized graph: 255 steps of 6/255 are 6
    @R.function
    def main(x: T4) -> Q4:
        with R.dataflow():
            q = R.quantize(x, R.const(0.0235294122248888, "float32"), R.const(0, "int32"),
                           out_dtype="uint8", axis=0)
            y = R.clip(q, 0, 255)
            R.output(y)
        return y


@I.ir_module
class QuantizedRelu6ToTanh:  # the quantize the clip read is gone with it
    @R.function
    def main(x: T4) -> Q4:
        with R.dataflow():
            y_float = R.tanh(x)
            y = R.quantize(y_float, R.const(0.0235294122248888, "float32"),
                           R.const(0, "int32"), out_dtype="uint8", axis=0)
            R.output(y)
        return y


@I.ir_module
class QuantizedRelu3:  # a fused clip at 3.0 of an output whose range reaches 6: ReLU6 no more
    @R.function
    def main(x: T4) -> Q4:
        with R.dataflow():
            q = R.quantize(x, R.const(0.0235294122248888, "float32"), R.const(0, "int32"),
                           out_dtype="uint8", axis=0)
            y = R.clip(q, 0, 128)
            R.output(y)
        return y


@I.ir_module
class QuantizedRelu3Removed:
    @R.function
    def main(x: T4) -> Q4:
        with R.dataflow():
            q = R.quantize(x, R.const(0.0235294122248888, "float32"), R.const(0, "int32"),
                           out_dtype="uint8", axis=0)
            y = q
            R.output(y)
        return y


@I.ir_module
class TFLiteHardSwish:  # x * relu6(x + 3) / 6, in TFLite's op order
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            a = R.add(x, R.const(3.0, "float32"))
            b = R.clip(a, 0, 6)
            c = R.multiply(x, b)
            y = R.divide(c, R.const(6.0, "float32"))
            R.output(y)
        return y


@I.ir_module
class TFLiteHardSwishToRelu:  # the rest of the pattern is dropped, not left as dead code
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.nn.relu(x)
            R.output(y)
        return y


@I.ir_module
class TFLiteElu:  # -1 * relu(1 - exp(x)) + relu(x): its ReLUs are no ReLU layers
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            a = R.exp(x)
            b = R.subtract(R.const(1.0, "float32"), a)
            c = R.nn.relu(b)
            d = R.multiply(R.const(-1.0, "float32"), c)
            e = R.nn.relu(x)
            y = R.add(d, e)
            R.output(y)
        return y


@I.ir_module
class TFLiteEluToRelu:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.nn.relu(x)
            R.output(y)
        return y


@I.ir_module
class TFLiteGelu:  # x * (0.5 + erf(x * 0.5 ** 0.5) * 0.5)
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            a = R.multiply(x, R.const(0.7071067811865476, "float32"))
            b = R.erf(a)
            c = R.multiply(b, R.const(0.5, "float32"))
            d = R.add(R.const(0.5, "float32"), c)
            y = R.multiply(x, d)
            R.output(y)
        return y


@I.ir_module
class TFLiteGeluToRelu:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.nn.relu(x)
            R.output(y)
        return y


@I.ir_module
class Swish:  # x * sigmoid(x), how ONNX and TFLite exporters write SiLU
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            s = R.sigmoid(x)
            y = R.multiply(x, s)
            R.output(y)
        return y


@I.ir_module
class SwishToRelu:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.nn.relu(x)
            R.output(y)
        return y


@I.ir_module
class TanhLayer:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.tanh(x)
            R.output(y)
        return y


@I.ir_module
class TanhToSigmoid:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.sigmoid(x)
            R.output(y)
        return y


@I.ir_module
class SigmoidToTanh:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.tanh(x)
            R.output(y)
        return y


@I.ir_module
class SigmoidLayer:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.sigmoid(x)
            R.output(y)
        return y


@I.ir_module
class ReluN1To1:  # TFLite RELU_N1_TO_1: a clip that is not ReLU6
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.clip(x, -1, 1)
            R.output(y)
        return y


@I.ir_module
class ReluN1To1ToRelu:
    @R.function
    def main(x: T4) -> T4:
        with R.dataflow():
            y = R.nn.relu(x)
            R.output(y)
        return y


#: (operator, params, sites, before, after by hand)
CASES = [
    ("relu6_to_sigmoid", {}, "all", Relu6, Relu6ToSigmoid),
    ("relu6_to_relu", {}, "all", Relu6, ReluN1To1ToRelu),
    ("relu6_to_tanh", {}, "all", QuantizedRelu6, QuantizedRelu6ToTanh),
    ("clip_bounds_change", {}, "all", Relu6, Relu6Unbounded),
    ("activation_remove", {}, "all", Relu6, Relu6Removed),
    ("activation_remove", {}, "all", QuantizedRelu3, QuantizedRelu3Removed),
    ("hard_swish_to_relu", {}, "all", TFLiteHardSwish, TFLiteHardSwishToRelu),
    ("elu_to_relu", {}, "all", TFLiteElu, TFLiteEluToRelu),
    ("gelu_to_relu", {}, "all", TFLiteGelu, TFLiteGeluToRelu),
    ("silu_to_relu", {}, "all", Swish, SwishToRelu),
    ("tanh_to_sigmoid", {}, "all", TanhLayer, TanhToSigmoid),
    ("sigmoid_to_tanh", {}, "all", SigmoidLayer, SigmoidToTanh),
    ("clip_to_relu", {}, "all", ReluN1To1, ReluN1To1ToRelu),
]
