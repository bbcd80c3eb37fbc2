"""Node Input/Output Modification cases: each module before, and after by hand.

`Layers` holds one of each layer kind the operators look for: a 2-D convolution, a batch
norm, a dense layer (a matmul whose second operand is a transposed weight parameter, as ONNX
Gemm imports) and a matmul of two activations, which is not a dense layer. Parameters after
the first are weights (``num_input`` = 1).
"""

from tvm.script import ir as I
from tvm.script import relax as R


@I.ir_module
class Layers:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            a = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e = R.matmul(h, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class TransposeConv2dInput:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            xt = R.permute_dims(x, axes=[0, 1, 3, 2])
            a = R.nn.conv2d(xt, w, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e = R.matmul(h, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class TransposeDenseInput:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            a = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            ht = R.permute_dims(h, axes=[0, 2, 1])
            e = R.matmul(ht, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class TransposeConv2dDenseInput:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            xt = R.permute_dims(x, axes=[0, 1, 3, 2])
            a = R.nn.conv2d(xt, w, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            ht = R.permute_dims(h, axes=[0, 2, 1])
            e = R.matmul(ht, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class TransposeConv2dDenseWeight:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            wk = R.permute_dims(w, axes=[0, 1, 3, 2])
            a = R.nn.conv2d(x, wk, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            wtt = R.permute_dims(wt, axes=[1, 0])
            e = R.matmul(h, wtt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class TransposeConv2dWeightFirstAxes:
    """Site 0 with axes="first": the kernel's O and H axes (both 3) swap, not H and W."""

    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            wk = R.permute_dims(w, axes=[2, 1, 0, 3])
            a = R.nn.conv2d(x, wk, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e = R.matmul(h, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class TransposeBatchNormInput:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            a = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            at = R.permute_dims(a, axes=[0, 1, 3, 2])
            b = R.nn.batch_norm(at, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e = R.matmul(h, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class ExpBeforeConv2dDense:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            xe = R.exp(x)
            a = R.nn.conv2d(xe, w, padding=[1, 1, 1, 1])
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            he = R.exp(h)
            e = R.matmul(he, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class ExpAfterConv2dDense:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            a0 = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            a = R.exp(a0)
            b = R.nn.batch_norm(a, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e0 = R.matmul(h, wt)
            e = R.exp(e0)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class ExpBeforeBatchNorm:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            a = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            ae = R.exp(a)
            b = R.nn.batch_norm(ae, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e = R.matmul(h, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class RoundBeforeBatchNorm:
    @R.function
    def main(x: R.Tensor((1, 2, 4, 4), "float32"), w: R.Tensor((3, 2, 3, 3), "float32"),
             gamma: R.Tensor((3,), "float32"), beta: R.Tensor((3,), "float32"),
             mean: R.Tensor((3,), "float32"), var: R.Tensor((3,), "float32"),
             fc: R.Tensor((4, 4), "float32")) -> R.Tensor((3, 4, 4), "float32"):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            a = R.nn.conv2d(x, w, padding=[1, 1, 1, 1])
            ar = R.round(a)
            b = R.nn.batch_norm(ar, gamma, beta, mean, var, axis=1)
            c = b[0]
            h = R.reshape(c, R.shape([3, 4, 4]))
            wt = R.permute_dims(fc, axes=[1, 0])
            e = R.matmul(h, wt)
            g = R.matmul(e, e)
            R.output(g)
        return g


@I.ir_module
class NoEqualAxes:
    """A dense layer whose input and weight have no two equal axes: nothing to transpose."""

    @R.function
    def main(x: R.Tensor((3, 5), "float32"), w: R.Tensor((5, 2), "float32")):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            y = R.matmul(x, w)
            R.output(y)
        return y


@I.ir_module
class IntegerConv:
    """An integer convolution: exp of its input or output would be ill-typed."""

    @R.function
    def main(x: R.Tensor((1, 1, 4, 4), "int8"), w: R.Tensor((1, 1, 3, 3), "int8")):
        R.func_attr({"num_input": 1})
        with R.dataflow():
            y = R.nn.conv2d(x, w, out_dtype="int32")
            R.output(y)
        return y


#: (operator, parameters, site selection, module, expected module)
CASES = [
    ("transpose_conv2d_input", {}, "all", Layers, TransposeConv2dInput),
    ("transpose_dense_input", {}, "all", Layers, TransposeDenseInput),
    ("transpose_conv2d_dense_input", {}, "all", Layers, TransposeConv2dDenseInput),
    ("transpose_conv2d_dense_weight", {}, "all", Layers, TransposeConv2dDenseWeight),
    ("transpose_conv2d_dense_weight", {"axes": "first"}, 0, Layers,
     TransposeConv2dWeightFirstAxes),
    ("transpose_batch_norm_input", {}, "all", Layers, TransposeBatchNormInput),
    ("exp_before_conv2d_dense", {}, "all", Layers, ExpBeforeConv2dDense),
    ("exp_after_conv2d_dense", {}, "all", Layers, ExpAfterConv2dDense),
    ("exp_before_batch_norm", {}, "all", Layers, ExpBeforeBatchNorm),
    ("round_before_batch_norm", {}, "all", Layers, RoundBeforeBatchNorm),
]
