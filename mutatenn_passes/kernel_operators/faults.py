"""Hardware Faults in activations: a bit of a value a kernel stores flips, or is stuck.

The fault-injection literature (PyTorchFI, TensorFI, LLTFI, Ares) models a soft error in an
activation as one flipped bit of one value a layer writes, and a permanent fault as a bit stuck
at 0 or 1. A kernel's ``BufferStore`` is where a value is written, so here the stored value
``v`` of one store becomes ``reinterpret(v) ^ (1 << b)`` (``& ~(1 << b)``, ``| (1 << b)``)
read back in ``v``'s type, in TIR (``reinterpret`` and the bitwise intrinsics), for every
element the store writes or only for the element at one flat (row-major) index of the buffer:
``Select(flat(indices) == e, faulty, v)``, ``v`` bound once by a ``Let``. A constant stored
value (an accumulator's initial ``0.0``) gets its faulty constant computed here instead.

A store that reads back the element it writes (a reduction's update, ``C[i] = C[i] + ...``)
runs once per reduced value, so a flip there would be applied again at every update, which is
no single-event upset: ``store_bit_flip`` skips such stores and says so. A stuck bit stays
stuck however often it is written, so the stuck-at operators keep them.

Which bit and which element are given, or drawn from a ``numpy.random.Generator`` seeded with
``seed``, the kernel's name and the site's position in it, when the sites are listed; the
choice is in each site's description, so it is recorded with the campaign's results. Sites are
numbered like every kernel operator's (`base.KernelOperatorBase`): the stores of any
integer or float type, in kernel order.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import tvm_ffi
from tvm import tirx
from tvm.ir import prim
from tvm.ir.expr import TensorLoad  # what tirx.BufferLoad builds in TVM 0.27

from ..operator_spec import OperatorSpec, Param
from .base import KernelOperatorBase, SkipSite, count_in_kernel, kernels, map_kernel
from .params import IndexOrRandom, NonNegativeInt
from .stores import describe_store

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Hardware Faults"


def _bit_type(dtype) -> bool:
    """Whether values of ``dtype`` have bits to fault: ints, uints and floats (bfloat16
    included), not bool or handles."""
    return dtype.is_float or dtype.is_integer


def _const(value: int, dtype):
    """``value`` in the unsigned type ``dtype`` (vector types broadcast)."""
    scalar = tirx.const(value, str(dtype.with_lanes(1)))
    return scalar if dtype.lanes == 1 else tirx.Broadcast(scalar, dtype.lanes)


def _faulty(value, kind: str, bit: int):
    """``value`` with bit ``bit`` flipped (``kind`` 'flip'), cleared ('0') or set ('1')."""
    dtype = value.ty.dtype
    unsigned = tvm_ffi.dtype(f"uint{dtype.bits}").with_lanes(dtype.lanes)
    bits = value if dtype == unsigned else tirx.reinterpret(str(unsigned), value)
    if bit == 63:  # 1 << 63 does not fit the signed 64-bit immediate a constant is made from
        mask = tirx.shift_left(_const(1, unsigned), _const(63, unsigned))
    else:
        mask = _const(1 << bit, unsigned)
    if kind == "flip":
        new = tirx.bitwise_xor(bits, mask)
    elif kind == "1":
        new = tirx.bitwise_or(bits, mask)
    else:
        new = tirx.bitwise_and(bits, tirx.bitwise_not(mask))
    return new if dtype == unsigned else tirx.reinterpret(str(dtype), new)


def _constant_fault(value, kind: str, bit: int):
    """The faulty value of a constant store (an accumulator's ``0.0``), computed here: TVM's
    C and CUDA code generators write ``reinterpret`` of a literal as ``*(uint *)(&(0.0f))``,
    the address of a literal, which nvcc rejects. None for types numpy lacks (bfloat16)."""
    scalar = value.value if isinstance(value, tirx.Broadcast) else value
    if not isinstance(scalar, (prim.FloatImm, prim.IntImm)) or str(scalar.ty.dtype) == "bfloat16":
        return None
    dtype = scalar.ty.dtype
    unsigned = np.dtype(f"uint{dtype.bits}")
    bits = np.array(scalar.value, dtype=str(dtype)).view(unsigned)
    mask = unsigned.type(1 << bit)
    bits = bits ^ mask if kind == "flip" else (bits | mask if kind == "1" else bits & ~mask)
    faulty = tirx.const(bits.view(str(dtype)).item(), str(dtype))
    return tirx.Broadcast(faulty, value.lanes) if isinstance(value, tirx.Broadcast) else faulty


def _extents(store) -> list[int] | None:
    shape = store.buffer.shape
    return [int(e.value) for e in shape] if all(isinstance(e, prim.IntImm) for e in shape) \
        else None


def _flat_index(store, extents: list[int]):
    """The row-major flat index of the element(s) ``store`` writes."""
    flat = None
    for index, extent in zip(store.indices, extents):
        flat = index if flat is None else flat * extent + index
    return flat


def _updates_itself(store) -> bool:
    """Whether the stored value reads the element being written (a reduction's update)."""
    def probe(load):
        if load.source.same_as(store.buffer) and len(load.indices) == len(store.indices) and \
                all(tvm_ffi.structural_equal(a, b) for a, b in zip(load.indices, store.indices)):
            return tvm_ffi.VisitInterrupt(True)
        return None

    return tvm_ffi.structural_walk(store.value, (TensorLoad, probe)) is not None


class ElementChoice(str):
    """Parameter type of ``element``: 'random', 'all', or a flat index (at least 0)."""

    def __new__(cls, value):
        text = str(value).strip()
        if text not in ("random", "all") and int(text) < 0:
            raise ValueError(f"{value!r} is not 'random', 'all' or an index")
        return str.__new__(cls, text)


class StoreBitFault(KernelOperatorBase):
    """Fault one bit of the value stores write (``kind``: 'flip', '0', '1')."""

    def __init__(self, kind: str):
        self.kind = kind

    def _choice(self, func, position: int, store, params):
        """(bit, element or None for all, why the site cannot be faulted or "")."""
        dtype = store.value.ty.dtype
        symbol = func.attrs["global_symbol"] if func.attrs and "global_symbol" in func.attrs \
            else ""
        rng = np.random.default_rng([params["seed"], position, zlib.crc32(str(symbol).encode())])
        bit = params["bit"]
        if bit < 0:
            bit = int(rng.integers(dtype.bits))
        extents = _extents(store)
        element = params["element"]
        if element == "all":
            element = None
        elif element == "random":
            element = int(rng.integers(math.prod(extents))) if extents else -1
        else:
            element = int(element)
        problem = ""
        if bit >= dtype.bits:
            problem = f"bit {bit} is out of range: {dtype} has {dtype.bits} bits"
        elif element is not None and extents is None:
            problem = f"buffer {store.buffer.name} has a symbolic shape: no flat index"
        elif element is not None and element >= math.prod(extents):
            problem = (f"element {element} is out of range: buffer {store.buffer.name} has "
                       f"{math.prod(extents)}")
        elif self.kind == "flip" and _updates_itself(store):
            problem = ("the store updates the element it reads (a reduction): a flip would "
                       "be applied again at every update")
        return bit, element, problem

    def scan(self, func, params, scan):
        def on_store(store, mutator):
            if not _bit_type(store.value.ty.dtype):
                return store
            bit, element, problem = self._choice(func, len(scan.found), store, params)
            where = "every element" if element is None else f"element {element}"
            description = f"{describe_store(store)}: bit {bit} of {where}"

            def rewrite(node):
                if problem:
                    raise SkipSite(problem)
                constant = _constant_fault(node.value, self.kind, bit)
                x = node.value if constant is not None else tirx.Var("v", node.value.ty.dtype)
                faulty = constant if constant is not None else _faulty(x, self.kind, bit)
                if element is not None:
                    flat = _flat_index(node, _extents(node))
                    target = tirx.const(element, str(flat.ty.dtype.with_lanes(1)))
                    if flat.ty.dtype.lanes > 1:
                        target = tirx.Broadcast(target, flat.ty.dtype.lanes)
                    faulty = prim.Select(prim.EQ(flat, target), faulty, x)
                value = faulty if constant is not None else prim.Let(x, node.value, faulty)
                return tirx.BufferStore(node.buffer, value, node.indices, node.span)

            return scan.site(str(store.value.ty.dtype), description, store, rewrite)

        return map_kernel(func, {tirx.BufferStore: on_store})

    def coverage_total(self, mod):
        """Every store in kernel code, whatever its type."""
        return sum(count_in_kernel(func, (tirx.BufferStore,)) for _, func in kernels(mod))


def _params(element_default: str) -> tuple[Param, ...]:
    return (Param("bit", -1, IndexOrRandom,
                  "bit position (0 = least significant; 31 is float32's sign, 30-23 its "
                  "exponent); -1 draws one per site with the seeded generator"),
            Param("element", element_default, ElementChoice,
                  "'random' (one flat index per site, seeded), 'all' (every element the store "
                  "writes) or a flat row-major index"),
            Param("seed", 0, NonNegativeInt,
                  "seeds the random choices (mixed with the kernel's name and the site's "
                  "position); the choice is in each site's description"))


_FAULTS = (
    # id, kind, what the value becomes, the default scope
    ("store_bit_flip", "flip", "v ^ (1 << b)", "random",
     "a single-event upset: one bit of one stored activation flips"),
    ("store_stuck_at_0", "0", "v & ~(1 << b)", "all",
     "a permanent fault: bit b of every value the store writes is stuck at 0"),
    ("store_stuck_at_1", "1", "v | (1 << b)", "all",
     "a permanent fault: bit b of every value the store writes is stuck at 1"),
)

for _id, _kind, _expr, _default, _doc in _FAULTS:
    OPERATORS.append(OperatorSpec(
        id=_id, level="kernel", category=CATEGORY, description=_doc,
        finds="each BufferStore of an integer or float value (scalar or vector) in kernel code"
              + ("; reduction updates (the value reads the element written) are listed and "
                 "skipped" if _kind == "flip" else ""),
        rewrites=f"the stored value v into {_expr} on its bits (reinterpret to the unsigned "
                 "type of its width and back), for one flat index of the buffer "
                 "(Select(flat == e, ...)) or every element",
        from_paper=False, implementation=StoreBitFault(_kind), params=_params(_default)))
