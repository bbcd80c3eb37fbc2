"""Kernel Variables & Stores cases: kernels before, and after each operator by hand."""

from tvm.script import ir as I
from tvm.script import tirx as T

ULP_1 = 2.0 ** -23  # float32 mantissa step at 1.0


@T.prim_func
def store(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
          C: T.Buffer((8,), "int32")):
    for i in range(8):
        B[i] = A[i] * T.float32(2)
        C[i] = i


@T.prim_func
def store_sub_epsilon(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
                      C: T.Buffer((8,), "int32")):
    for i in range(8):
        x = T.float32()
        B[i] = T.Let(x - T.max(T.float32(1e-08), T.max(x, T.float32(0) - x) * T.float32(ULP_1)),
                     where={x: A[i] * T.float32(2)})
        C[i] = i


@T.prim_func
def store_mul_epsilon(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
                      C: T.Buffer((8,), "int32")):
    for i in range(8):
        B[i] = A[i] * T.float32(2) * T.float32(1.0 + ULP_1)
        C[i] = i


@T.prim_func
def store_mul_big_epsilon(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
                          C: T.Buffer((8,), "int32")):
    for i in range(8):
        B[i] = A[i] * T.float32(2) * T.float32(1.5)
        C[i] = i


@T.prim_func
def identity(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32")):
    for i in range(8):
        B[i] = A[i]


@T.prim_func
def loops(A: T.Buffer((8, 4), "float32")):
    for i in range(8):
        for j in T.serial(1, 4):
            A[i, j] = T.float32(0)


@T.prim_func
def vector_lane(A: T.Buffer((8, 4), "float32")):
    for i in range(8):
        for j in T.vectorized(1):
            A[i, j] = T.float32(0)


@T.prim_func
def loops_extent_dec(A: T.Buffer((8, 4), "float32")):
    for i in range(7):
        for j in T.serial(1, 3):
            A[i, j] = T.float32(0)


@T.prim_func
def loops_extent_inc(A: T.Buffer((8, 4), "float32")):
    for i in range(9):
        for j in T.serial(1, 5):
            A[i, j] = T.float32(0)


@T.prim_func
def loops_min_inc(A: T.Buffer((8, 4), "float32")):
    for i in T.serial(1, 8):
        for j in T.serial(2, 4):
            A[i, j] = T.float32(0)


@T.prim_func
def parallel_rows(A: T.Buffer((8, 4), "float32")):
    for i in T.parallel(8):
        for j in range(4):
            A[i, j] = T.float32(0)


@T.prim_func
def parallel_rows_min_inc(A: T.Buffer((8, 4), "float32")):
    for i in T.parallel(7):  # TVM launches parallel loops from 0 only: the body shifts
        for j in range(4):
            A[i + 1, j] = T.float32(0)


@T.prim_func
def loops_inner_dec_by_2(A: T.Buffer((8, 4), "float32")):
    for i in range(8):
        for j in T.serial(1, 2):
            A[i, j] = T.float32(0)


@T.prim_func(s_tir=True)
def bound(A: T.Buffer((12,), "float32")):
    for bx in T.thread_binding(3, thread="blockIdx.x"):
        for k in range(4):
            with T.sblock("A"):
                vi = T.axis.spatial(12, bx * 4 + k)
                A[vi] = T.float32(0)


@I.ir_module
class Launch:
    @T.prim_func
    def main(A: T.handle("float32", "global")):
        T.func_attr({"calling_conv": 1})
        T.call_ffi_kernel("zero_kernel", A, 2, 64, launch_params=["blockIdx.x", "threadIdx.x"],
                          ret_ty="int32")

    @T.prim_func
    def zero_kernel(A_ptr: T.handle("float32", "global")):
        T.func_attr({"calling_conv": 2, "tirx.is_global_func": True,
                     "tirx.kernel_launch_params": ["blockIdx.x", "threadIdx.x"]})
        A = T.decl_buffer((128,), data=A_ptr)
        with T.launch_thread("blockIdx.x", 2) as blockIdx_x:
            threadIdx_x = T.launch_thread("threadIdx.x", 64)
            A[blockIdx_x * 64 + threadIdx_x] = T.float32(0)


@I.ir_module
class LaunchFewerThreads:
    @T.prim_func
    def main(A: T.handle("float32", "global")):
        T.func_attr({"calling_conv": 1})
        T.call_ffi_kernel("zero_kernel", A, 2, 63, launch_params=["blockIdx.x", "threadIdx.x"],
                          ret_ty="int32")

    @T.prim_func
    def zero_kernel(A_ptr: T.handle("float32", "global")):
        T.func_attr({"calling_conv": 2, "tirx.is_global_func": True,
                     "tirx.kernel_launch_params": ["blockIdx.x", "threadIdx.x"]})
        A = T.decl_buffer((128,), data=A_ptr)
        with T.launch_thread("blockIdx.x", 2) as blockIdx_x:
            threadIdx_x = T.launch_thread("threadIdx.x", 63)
            A[blockIdx_x * 64 + threadIdx_x] = T.float32(0)
