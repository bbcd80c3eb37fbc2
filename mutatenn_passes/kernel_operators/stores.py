"""Kernel Variables & Stores, store half: perturb the value a kernel writes to memory.

The paper's operators store ``x - 1e-8`` and ``x * 1.00000001``. In float32 both are no-ops
for almost every ``x``: 1e-8 is below half an ulp of any ``|x|`` above about 0.17, and
1.00000001 rounds to exactly 1.0. Computing in float64 would not help, since the result is
rounded back to the buffer's type on store. So the perturbation is floored at one ulp of the
stored value, which makes every finite nonzero store change:

* ``store_sub_epsilon`` stores ``x - max(eps, |x| * 2**-p)``, with ``p`` the type's mantissa
  bits. ``|x| * 2**-p`` is between one and two ulps of ``x`` (exact: a power-of-two scale), so
  the result is at least one representable step below ``x``; ``eps`` dominates near zero, so
  ``0`` becomes ``-eps``. ``eps`` is raised to the type's smallest subnormal when it would
  round to zero (1e-8 in float16). ``x`` is bound once with a ``Let``, so it is evaluated once.
* ``store_mul_epsilon`` stores ``x * max(1 + eps, 1 + 2**-p)``: the factor is at least the
  next representable value above 1, so every finite nonzero ``x`` grows in magnitude by at
  least one ulp. ``0`` stays ``0`` (no factor changes it); infinities and NaN stay as they are.

Sites are the ``BufferStore`` nodes whose value is a float type (float16, bfloat16, float32,
float64; vector stores included) in the kernel code.
"""

from __future__ import annotations

from tvm import tirx
from tvm.ir import prim

from ..operator_spec import OperatorSpec, Param
from .base import KernelOperatorBase, count_in_kernel, kernels, map_kernel
from .params import PositiveFloat

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Kernel Variables & Stores"

#: (DLPack type code, bits) -> (mantissa bits, exponent of the smallest positive subnormal)
_FLOAT_FORMATS = {(2, 16): (10, -24), (4, 16): (7, -133), (2, 32): (23, -149),
                  (2, 64): (52, -1074)}


def float_format(dtype):
    """The (mantissa bits, smallest subnormal exponent) of a float ``dtype``, else None."""
    return _FLOAT_FORMATS.get((dtype.type_code, dtype.bits))


def describe_store(store) -> str:
    indices = ", ".join(" ".join(str(i).split()) for i in store.indices)
    if len(indices) > 60:
        indices = indices[:57] + "..."
    constant = ", a constant" if isinstance(store.value, prim.FloatImm) else ""
    return f"store to {store.buffer.name}[{indices}] ({store.value.ty.dtype}){constant}"


class _StorePerturbation(KernelOperatorBase):
    """Rewrites the value of float stores; subclasses say how."""

    def perturb(self, value, eps: float, mantissa: int, subnormal_exp: int):
        raise NotImplementedError

    def scan(self, func, params, scan):
        eps = params["epsilon"]

        def on_store(store, mutator):
            dtype = store.value.ty.dtype
            fmt = float_format(dtype)
            if fmt is None:
                return store
            return scan.site(str(dtype), describe_store(store), store, lambda s: tirx.BufferStore(
                s.buffer, self.perturb(s.value, eps, *fmt), s.indices, s.span))

        return map_kernel(func, {tirx.BufferStore: on_store})

    def coverage_total(self, mod):
        """Every store in kernel code, whatever its type."""
        return sum(count_in_kernel(func, (tirx.BufferStore,)) for _, func in kernels(mod))


class SubEpsilon(_StorePerturbation):
    """``store_sub_epsilon``: x - max(eps, |x| * 2**-p)."""

    def perturb(self, value, eps, mantissa, subnormal_exp):
        dtype = value.ty.dtype
        x = tirx.Var("x", dtype)
        floor = tirx.const(max(eps, 2.0 ** subnormal_exp), dtype)
        # |x| as max(x, 0 - x): TVM's C backend has no lowering for fabs
        magnitude = prim.Max(x, prim.Sub(tirx.const(0.0, dtype), x))
        relative = prim.Mul(magnitude, tirx.const(2.0 ** -mantissa, dtype))
        return prim.Let(x, value, prim.Sub(x, prim.Max(floor, relative)))


class MulEpsilon(_StorePerturbation):
    """``store_mul_epsilon``: x * max(1 + eps, 1 + 2**-p)."""

    def perturb(self, value, eps, mantissa, subnormal_exp):
        factor = max(1.0 + eps, 1.0 + 2.0 ** -mantissa)
        return prim.Mul(value, tirx.const(factor, value.ty.dtype))


_EPS_DOC = "the perturbation; the effective one is never below one ulp of the stored value"

OPERATORS.append(OperatorSpec(
    id="store_sub_epsilon", level="kernel", category=CATEGORY,
    description="x is stored as x - eps (at least one ulp below x)",
    finds="each BufferStore of a float value (scalar or vector) in kernel code",
    rewrites="the stored value x into x - max(eps, |x| * 2**-mantissa_bits), computed once",
    from_paper=True, implementation=SubEpsilon(),
    params=(Param("epsilon", 1e-8, PositiveFloat, _EPS_DOC),)))

OPERATORS.append(OperatorSpec(
    id="store_mul_epsilon", level="kernel", category=CATEGORY,
    description="x is stored as x * (1 + eps) (at least one ulp away from x unless x is 0)",
    finds="each BufferStore of a float value (scalar or vector) in kernel code",
    rewrites="the stored value x into x * max(1 + eps, 1 + 2**-mantissa_bits)",
    from_paper=True, implementation=MulEpsilon(),
    params=(Param("epsilon", 1e-8, PositiveFloat, _EPS_DOC),)))
