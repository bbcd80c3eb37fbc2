"""Arithmetic Node Replacement cases: each module before, and after by hand."""

from tvm.script import ir as I
from tvm.script import relax as R


@I.ir_module
class Arithmetic:
    @R.function
    def main(x: R.Tensor((2, 3), "float32"), y: R.Tensor((3,), "float32")):
        with R.dataflow():
            a = R.add(x, y)
            b = R.subtract(a, y)
            c = R.multiply(b, y)
            d = R.divide(c, y)
            e = R.add(d, x)
            R.output(e)
        return e


@I.ir_module
class AddToSubtract:
    @R.function
    def main(x: R.Tensor((2, 3), "float32"), y: R.Tensor((3,), "float32")):
        with R.dataflow():
            a = R.subtract(x, y)
            b = R.subtract(a, y)
            c = R.multiply(b, y)
            d = R.divide(c, y)
            e = R.subtract(d, x)
            R.output(e)
        return e


@I.ir_module
class SubtractToAdd:
    @R.function
    def main(x: R.Tensor((2, 3), "float32"), y: R.Tensor((3,), "float32")):
        with R.dataflow():
            a = R.add(x, y)
            b = R.add(a, y)
            c = R.multiply(b, y)
            d = R.divide(c, y)
            e = R.add(d, x)
            R.output(e)
        return e


@I.ir_module
class MultiplyToDivide:
    @R.function
    def main(x: R.Tensor((2, 3), "float32"), y: R.Tensor((3,), "float32")):
        with R.dataflow():
            a = R.add(x, y)
            b = R.subtract(a, y)
            c = R.divide(b, y)
            d = R.divide(c, y)
            e = R.add(d, x)
            R.output(e)
        return e


@I.ir_module
class DivideToMultiply:
    @R.function
    def main(x: R.Tensor((2, 3), "float32"), y: R.Tensor((3,), "float32")):
        with R.dataflow():
            a = R.add(x, y)
            b = R.subtract(a, y)
            c = R.multiply(b, y)
            d = R.multiply(c, y)
            e = R.add(d, x)
            R.output(e)
        return e


@I.ir_module
class AddSecondOnly:
    """add_to_subtract at site 1 only."""

    @R.function
    def main(x: R.Tensor((2, 3), "float32"), y: R.Tensor((3,), "float32")):
        with R.dataflow():
            a = R.add(x, y)
            b = R.subtract(a, y)
            c = R.multiply(b, y)
            d = R.divide(c, y)
            e = R.subtract(d, x)
            R.output(e)
        return e


@I.ir_module
class IntegerMultiply:
    """An integer product: divide would trap on a zero divisor, so no mutant."""

    @R.function
    def main(x: R.Tensor((4,), "int32"), y: R.Tensor((4,), "int32")):
        with R.dataflow():
            a = R.multiply(x, y)
            R.output(a)
        return a


#: (operator, parameters, site selection, module, expected module)
CASES = [
    ("add_to_subtract", {}, "all", Arithmetic, AddToSubtract),
    ("add_to_subtract", {}, 1, Arithmetic, AddSecondOnly),
    ("subtract_to_add", {}, "all", Arithmetic, SubtractToAdd),
    ("multiply_to_divide", {}, "all", Arithmetic, MultiplyToDivide),
    ("divide_to_multiply", {}, "all", Arithmetic, DivideToMultiply),
]
