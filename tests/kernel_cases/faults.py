"""Hardware Faults cases: kernels before, and after each fault by hand."""

from tvm.script import tirx as T

FLIP_30 = 1 << 30  # float32's top exponent bit


@T.prim_func
def stores(A: T.Buffer((2, 4), "float32"), B: T.Buffer((2, 4), "float32"),
           C: T.Buffer((8,), "int8")):
    for i, j in T.grid(2, 4):
        B[i, j] = A[i, j] * T.float32(2)
    for k in range(8):
        C[k] = T.Cast("int8", k)


@T.prim_func
def flip_bit_30_of_element_5(A: T.Buffer((2, 4), "float32"), B: T.Buffer((2, 4), "float32"),
                             C: T.Buffer((8,), "int8")):
    for i, j in T.grid(2, 4):
        v = T.float32()
        B[i, j] = T.Let(T.Select(i * 4 + j == 5, T.reinterpret(
            "float32", T.reinterpret("uint32", v) ^ T.uint32(FLIP_30)), v),
            where={v: A[i, j] * T.float32(2)})
    for k in range(8):
        C[k] = T.Cast("int8", k)


@T.prim_func
def int8_bit_7_stuck_at_1(A: T.Buffer((2, 4), "float32"), B: T.Buffer((2, 4), "float32"),
                          C: T.Buffer((8,), "int8")):
    for i, j in T.grid(2, 4):
        B[i, j] = A[i, j] * T.float32(2)
    for k in range(8):
        v = T.int8()
        C[k] = T.Let(T.reinterpret("int8", T.reinterpret("uint8", v) | T.uint8(128)),
                     where={v: T.Cast("int8", k)})


@T.prim_func
def float_bit_0_stuck_at_0(A: T.Buffer((2, 4), "float32"), B: T.Buffer((2, 4), "float32"),
                           C: T.Buffer((8,), "int8")):
    for i, j in T.grid(2, 4):
        v = T.float32()
        B[i, j] = T.Let(T.reinterpret("float32", T.reinterpret("uint32", v) &
                                      T.bitwise_not(T.uint32(1))),
                        where={v: A[i, j] * T.float32(2)})
    for k in range(8):
        C[k] = T.Cast("int8", k)


@T.prim_func(s_tir=True)
def reduction(A: T.Buffer((4, 8), "float32"), C: T.Buffer((4,), "float32")):
    for i, k in T.grid(4, 8):
        with T.sblock("C"):
            vi, vk = T.axis.remap("SR", [i, k])
            with T.init():
                C[vi] = T.float32(0)
            C[vi] = C[vi] + A[vi, vk]


#: (operator, params, sites, before, after by hand)
CASES = [
    ("store_bit_flip", {"bit": 30, "element": "5"}, 0, stores, flip_bit_30_of_element_5),
    ("store_stuck_at_1", {"bit": 7}, 1, stores, int8_bit_7_stuck_at_1),
    ("store_stuck_at_0", {"bit": 0, "element": "all"}, 0, stores, float_bit_0_stuck_at_0),
]
