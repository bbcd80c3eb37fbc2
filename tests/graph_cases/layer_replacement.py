"""Layer Node Replacement cases: each module before, and after by hand."""

from tvm.script import ir as I
from tvm.script import relax as R


@I.ir_module
class Activations:
    @R.function
    def main(x: R.Tensor((2, 3), "float32")) -> R.Tensor((2, 3), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.sigmoid(a)
            c = R.nn.relu(b)
            R.output(c)
        return c


@I.ir_module
class ReluToSigmoid:
    @R.function
    def main(x: R.Tensor((2, 3), "float32")) -> R.Tensor((2, 3), "float32"):
        with R.dataflow():
            a = R.sigmoid(x)
            b = R.sigmoid(a)
            c = R.sigmoid(b)
            R.output(c)
        return c


@I.ir_module
class ReluToTanh:
    @R.function
    def main(x: R.Tensor((2, 3), "float32")) -> R.Tensor((2, 3), "float32"):
        with R.dataflow():
            a = R.tanh(x)
            b = R.sigmoid(a)
            c = R.tanh(b)
            R.output(c)
        return c


@I.ir_module
class SigmoidToRelu:
    @R.function
    def main(x: R.Tensor((2, 3), "float32")) -> R.Tensor((2, 3), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.nn.relu(a)
            c = R.nn.relu(b)
            R.output(c)
        return c


@I.ir_module
class IntegerRelu:
    """A ReLU on integers, as a quantized graph could hold: no sigmoid or tanh of it."""

    @R.function
    def main(x: R.Tensor((2, 3), "int8")) -> R.Tensor((2, 3), "int8"):
        with R.dataflow():
            a = R.nn.relu(x)
            R.output(a)
        return a


@I.ir_module
class Pools:
    @R.function
    def main(x: R.Tensor((1, 2, 6, 6), "float32"), y: R.Tensor((1, 2, 8), "float32")):
        with R.dataflow():
            a = R.nn.max_pool2d(x, pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1],
                                ceil_mode=True, count_include_pad=False)
            b = R.nn.avg_pool2d(a, pool_size=[2, 2], strides=[1, 1], count_include_pad=True)
            c = R.nn.max_pool1d(y, pool_size=[2], strides=[2], layout="NCW")
            R.output(b, c)
        return (b, c)


@I.ir_module
class MaxPoolToAvgPool:
    @R.function
    def main(x: R.Tensor((1, 2, 6, 6), "float32"), y: R.Tensor((1, 2, 8), "float32")):
        with R.dataflow():
            a = R.nn.avg_pool2d(x, pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1],
                                ceil_mode=True, count_include_pad=False)
            b = R.nn.avg_pool2d(a, pool_size=[2, 2], strides=[1, 1], count_include_pad=True)
            c = R.nn.avg_pool1d(y, pool_size=[2], strides=[2], layout="NCW",
                                count_include_pad=False)
            R.output(b, c)
        return (b, c)


@I.ir_module
class MaxPoolToAvgPoolIncludingPad:
    """Site 0 only, with count_include_pad="true"."""

    @R.function
    def main(x: R.Tensor((1, 2, 6, 6), "float32"), y: R.Tensor((1, 2, 8), "float32")):
        with R.dataflow():
            a = R.nn.avg_pool2d(x, pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1],
                                ceil_mode=True, count_include_pad=True)
            b = R.nn.avg_pool2d(a, pool_size=[2, 2], strides=[1, 1], count_include_pad=True)
            c = R.nn.max_pool1d(y, pool_size=[2], strides=[2], layout="NCW")
            R.output(b, c)
        return (b, c)


@I.ir_module
class AvgPoolToMaxPool:
    @R.function
    def main(x: R.Tensor((1, 2, 6, 6), "float32"), y: R.Tensor((1, 2, 8), "float32")):
        with R.dataflow():
            a = R.nn.max_pool2d(x, pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1],
                                ceil_mode=True, count_include_pad=False)
            b = R.nn.max_pool2d(a, pool_size=[2, 2], strides=[1, 1], count_include_pad=True)
            c = R.nn.max_pool1d(y, pool_size=[2], strides=[2], layout="NCW")
            R.output(b, c)
        return (b, c)


#: (operator, parameters, site selection, module, expected module)
CASES = [
    ("relu_to_sigmoid", {}, "all", Activations, ReluToSigmoid),
    ("relu_to_tanh", {}, "all", Activations, ReluToTanh),
    ("sigmoid_to_relu", {}, "all", Activations, SigmoidToRelu),
    ("max_pool_to_avg_pool", {}, "all", Pools, MaxPoolToAvgPool),
    ("max_pool_to_avg_pool", {"count_include_pad": "true"}, 0, Pools,
     MaxPoolToAvgPoolIncludingPad),
    ("avg_pool_to_max_pool", {}, "all", Pools, AvgPoolToMaxPool),
]
