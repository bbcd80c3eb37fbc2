"""A CUDA kernel TVM generates and nvcc rejects: the NaN test of a float32x2 value, which TVM's
CUDA backend writes as ``v != v`` on CUDA's float2 (a type with no ``!=``)."""

from tvm.script import ir as I
from tvm.script import tirx as T


@I.ir_module
class VectorNaN:
    @T.prim_func
    def main(A: T.Buffer((64,), "float32"), B: T.Buffer((64,), "float32")):
        T.func_attr({"tirx.noalias": True})
        for i in T.thread_binding(32, thread="threadIdx.x"):
            B[T.Ramp(i * 2, 1, 2)] = T.Select(T.isnan(A[T.Ramp(i * 2, 1, 2)]),
                                              T.Broadcast(T.float32(0), 2), A[T.Ramp(i * 2, 1, 2)])
