"""Conditional Statements cases: one kernel with a condition in each holder, and the conditions
each operator must leave behind, written out by hand.

`kernel(c1, c2, c3)` builds the kernel below with the given condition texts: ``c1`` guards an
``IfThenElse`` statement, ``c2`` is the condition of the ``if_then_else`` call in its then
branch and ``c3`` that of the ``Select`` in its else branch. In pre-order the comparisons are
numbered ``c1`` first, then ``c2``, then ``c3``, left to right.
"""

import tvm
from tvm.script import tirx as T

_TEMPLATE = '''
@T.prim_func
def kernel(A: T.Buffer((16,), "float32"), B: T.Buffer((16,), "float32")):
    for i in range(16):
        if {c1}:
            B[i] = T.if_then_else({c2}, A[i], T.float32(0))
        else:
            B[i] = T.Select({c3}, A[i], T.float32(1))
'''

C1 = "i < 12 and i != 3"
C2 = "1 <= i and i < 15"
C3 = "A[i] > T.float32(0.5) or i >= 14 or i == 9"


def kernel(c1=C1, c2=C2, c3=C3):
    return tvm.script.from_source(_TEMPLATE.format(c1=c1, c2=c2, c3=c3))


F64 = 'T.Cast("float64", {})'

#: (operator, parameters, expected c1, c2, c3) with every site mutated.
ALL_SITES = [
    ("cond_lt_to_le", {}, "i <= 12 and i != 3", "1 <= i and i <= 15", C3),
    ("cond_lt_to_gt", {}, "i > 12 and i != 3", "1 <= i and i > 15", C3),
    ("cond_gt_to_lt", {}, C1, C2, "A[i] < T.float32(0.5) or i >= 14 or i == 9"),
    ("cond_gt_to_ge", {}, C1, C2, "A[i] >= T.float32(0.5) or i >= 14 or i == 9"),
    ("cond_le_to_lt", {}, C1, "1 < i and i < 15", C3),
    ("cond_ge_to_gt", {}, C1, C2, "A[i] > T.float32(0.5) or i > 14 or i == 9"),
    ("cond_eq_to_ne", {}, C1, C2, "A[i] > T.float32(0.5) or i >= 14 or i != 9"),
    ("cond_ne_to_eq", {}, "i < 12 and i == 3", C2, C3),
    # integer sides and a fractional amount: compared in float64, i < 12.5
    ("cond_threshold", {},
     f"{F64.format('i')} < {F64.format('12')} + T.float64(0.5) and i != 3",
     f"1 <= i and {F64.format('i')} < {F64.format('15')} + T.float64(0.5)", C3),
    # a whole amount stays in the sides' own type
    ("cond_threshold", {"amount": 2, "side": "lhs", "action": "subtract"},
     "i - 2 < 12 and i != 3", "1 <= i and i - 2 < 15", C3),
    ("cond_negate", {}, f"not ({C1})", f"not ({C2})", f"not ({C3})"),
]

#: (operator, parameters, expected c1, c2, c3) where ``kinds`` restricts the holders.
BY_KIND = [
    ("cond_lt_to_le", {"kinds": "if_then_else"}, C1, "1 <= i and i <= 15", C3),
    ("cond_lt_to_le", {"kinds": "IfThenElse,Select"}, "i <= 12 and i != 3", C2, C3),
    ("cond_negate", {"kinds": "Select"}, C1, C2, f"not ({C3})"),
]

#: A float ``<`` in a Select moves by a float constant.
FLOAT_LT = ("A[i] < T.float32(0.5)", "A[i] < T.float32(0.5) + T.float32(0.25)")


@T.prim_func(s_tir=True)
def tiled(A: T.Buffer((10,), "float32"), B: T.Buffer((10,), "float32")):
    for io in T.thread_binding(3, thread="blockIdx.x"):
        for ii in T.thread_binding(4, thread="threadIdx.x"):
            with T.sblock("B"):
                vi = T.axis.spatial(10, io * 4 + ii)
                T.where(io * 4 + ii < 10)
                B[vi] = A[vi]


@T.prim_func(s_tir=True)
def tiled_le(A: T.Buffer((10,), "float32"), B: T.Buffer((10,), "float32")):
    for io in T.thread_binding(3, thread="blockIdx.x"):
        for ii in T.thread_binding(4, thread="threadIdx.x"):
            with T.sblock("B"):
                vi = T.axis.spatial(10, io * 4 + ii)
                T.where(io * 4 + ii <= 10)
                B[vi] = A[vi]
