"""Cases for site order, site selection and composition of graph mutations."""

from tvm.script import ir as I
from tvm.script import relax as R


@I.ir_module
class FourRelus:
    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.nn.relu(a)
            c = R.nn.relu(b)
            d = R.nn.relu(c)
            R.output(d)
        return d


@I.ir_module
class ThirdRelu:
    """FourRelus with site 2 mutated by relu_to_sigmoid."""

    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.nn.relu(a)
            c = R.sigmoid(b)
            d = R.nn.relu(c)
            R.output(d)
        return d


@I.ir_module
class SecondAndThirdRelu:
    """FourRelus with sites range(1, 3) mutated by relu_to_sigmoid."""

    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.sigmoid(a)
            c = R.sigmoid(b)
            d = R.nn.relu(c)
            R.output(d)
        return d


@I.ir_module
class FirstAndThirdRelu:
    """FourRelus with sites 0 and 2 mutated: what Sample(n=2, seed=7) picks."""

    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        with R.dataflow():
            a = R.sigmoid(x)
            b = R.nn.relu(a)
            c = R.sigmoid(b)
            d = R.nn.relu(c)
            R.output(d)
        return d


@I.ir_module
class Scopes:
    """Sites in two functions and in both branches of an If: graph order is helper's
    binding, then main's in program order, branches included."""

    @R.function
    def main(x: R.Tensor((4,), "float32"), flag: R.Tensor((), "bool")):
        a = R.nn.relu(x)
        if flag:
            t = R.nn.relu(a)
            r = t
        else:
            r = R.add(a, a)
        s = R.nn.relu(r)
        return s

    @R.function
    def helper(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        y = R.nn.relu(x)
        return y


@I.ir_module
class ScopesInnerMutated:
    """Scopes with site 2 (the relu inside the If) mutated by relu_to_sigmoid."""

    @R.function
    def main(x: R.Tensor((4,), "float32"), flag: R.Tensor((), "bool")):
        a = R.nn.relu(x)
        if flag:
            t = R.sigmoid(a)
            r = t
        else:
            r = R.add(a, a)
        s = R.nn.relu(r)
        return s

    @R.function
    def helper(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        y = R.nn.relu(x)
        return y


@I.ir_module
class ReluAdd:
    @R.function
    def main(x: R.Tensor((4,), "float32"), y: R.Tensor((4,), "float32")):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.add(a, y)
            c = R.nn.relu(b)
            R.output(c)
        return c


@I.ir_module
class SigmoidSubtract:
    """ReluAdd after relu_to_sigmoid at site 0 and add_to_subtract at site 0."""

    @R.function
    def main(x: R.Tensor((4,), "float32"), y: R.Tensor((4,), "float32")):
        with R.dataflow():
            a = R.sigmoid(x)
            b = R.subtract(a, y)
            c = R.nn.relu(b)
            R.output(c)
        return c


@I.ir_module
class ConstantAdd:
    """An add of two constants (FoldConstant folds it) feeding a ReLU."""

    @R.function
    def main(x: R.Tensor((2,), "float32")):
        with R.dataflow():
            k = R.add(R.const([1.0, 2.0], "float32"), R.const([3.0, 5.0], "float32"))
            a = R.multiply(x, k)
            b = R.nn.relu(a)
            R.output(b)
        return b


@I.ir_module
class ConstantSubtract:
    """ConstantAdd after add_to_subtract."""

    @R.function
    def main(x: R.Tensor((2,), "float32")):
        with R.dataflow():
            k = R.subtract(R.const([1.0, 2.0], "float32"), R.const([3.0, 5.0], "float32"))
            a = R.multiply(x, k)
            b = R.nn.relu(a)
            R.output(b)
        return b


@I.ir_module
class Rebound:
    """Two bindings with the same name (TVMScript rebinds ``a``): the IDs must differ."""

    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            a = R.nn.relu(a)
            R.output(a)
        return a


@I.ir_module
class ReboundSecondMutated:
    @R.function
    def main(x: R.Tensor((4,), "float32")) -> R.Tensor((4,), "float32"):
        with R.dataflow():
            a = R.nn.relu(x)
            a = R.sigmoid(a)
            R.output(a)
        return a
