"""Arithmetic Types cases: a float32 store before, and after each round trip by hand."""

from tvm.script import tirx as T

FLT_MAX = 3.4028234663852886e38


@T.prim_func
def store(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
          C: T.Buffer((8,), "float16")):
    for i in range(8):
        B[i] = A[i] + T.float32(1)
        C[i] = T.Cast("float16", A[i])


@T.prim_func
def store_f32_to_f16(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
                     C: T.Buffer((8,), "float16")):
    for i in range(8):
        B[i] = T.Cast("float32", T.Cast("float16", A[i] + T.float32(1)))
        C[i] = T.Cast("float16", A[i])


def _saturating(low, high, dtype):
    @T.prim_func
    def expected(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
                 C: T.Buffer((8,), "float16")):
        for i in range(8):
            v = T.float32()
            B[i] = T.Let(T.Cast("float32", T.Cast(dtype, T.Select(
                T.isnan(v), T.float32(0), T.min(T.max(v, T.float32(low)), T.float32(high))))),
                where={v: A[i] + T.float32(1)})
            C[i] = T.Cast("float16", A[i])

    return expected


store_f32_to_i8 = _saturating(-128.0, 127.0, "int8")
store_f32_to_i16 = _saturating(-32768.0, 32767.0, "int16")
store_f32_to_i32 = _saturating(-2147483648.0, 2147483520.0, "int32")


@T.prim_func
def store_f32_to_bf16(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32"),
                      C: T.Buffer((8,), "float16")):
    for i in range(8):
        v = T.float32()
        B[i] = T.Let(T.Select(T.isnan(v), v, T.reinterpret("float32", (
            T.reinterpret("uint32", v) + T.uint32(0x7FFF)
            + (T.reinterpret("uint32", v) >> T.uint32(16) & T.uint32(1))) & T.uint32(0xFFFF0000))),
            where={v: A[i] + T.float32(1)})
        C[i] = T.Cast("float16", A[i])


@T.prim_func
def pool_init(B: T.Buffer((4,), "float32")):
    for i in range(4):
        B[i] = T.float32(-FLT_MAX)
        B[i] = T.max(B[i], T.float32(1))


@T.prim_func
def pool_init_f16(B: T.Buffer((4,), "float32")):
    for i in range(4):
        B[i] = T.float32(-FLT_MAX)
        B[i] = T.Cast("float32", T.Cast("float16", T.max(B[i], T.float32(1))))


@T.prim_func
def vector(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32")):
    B[T.Ramp(0, 1, 4)] = A[T.Ramp(0, 1, 4)]


@T.prim_func
def vector_f16(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32")):
    B[T.Ramp(0, 1, 4)] = T.Cast("float32x4", T.Cast("float16x4", A[T.Ramp(0, 1, 4)]))


@T.prim_func
def pool_init_bf16(B: T.Buffer((4,), "float32")):
    # bfloat16 rounding of -FLT_MAX, done at mutation time: -infinity
    for i in range(4):
        B[i] = T.float32("-inf")
        B[i] = T.max(B[i], T.float32(1))
