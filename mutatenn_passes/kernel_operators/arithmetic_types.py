"""Arithmetic Types: a float32 store keeps only what a narrower type can hold.

Each operator makes every selected store of a float32 value ``v`` store
``cast(float32, cast(T, v))``, T one of float16, bfloat16, int32, int16, int8 (the paper's four
plus bfloat16). Integer casts truncate toward zero and saturate (NaN to 0), so the mutant means
the same on every backend; see ``operators/arith_types.cc``.

The walking and rewriting are done by the C++ pass extension (`native`): this module only
turns its site lists into `Site` objects and runs its pass, ``mutatenn.transform.StoreRoundTrip``,
on the selected positions.
"""

from __future__ import annotations

import tvm
from tvm import tirx

from ..operator_spec import OperatorSpec
from ..selection import Site
from . import native
from .base import count_in_kernel, kernels, site_id, site_position

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Arithmetic Types"

native.load()


class StoreRoundTrip:
    """Implementation of one ``store_f32_to_<T>`` operator over the native pass."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def _sites(self, func) -> list:
        return [tuple(str(x) for x in row)
                for row in native.get("mutatenn.ArithTypeSites")(func, self.dtype)]

    def find_sites(self, mod: tvm.IRModule, params: dict) -> list[Site]:
        sites: list[Site] = []
        for gv, func in kernels(mod):
            for position, (kind, description, _) in enumerate(self._sites(func)):
                sites.append(Site(index=len(sites), id=site_id(gv.name_hint, position),
                                  description=description, function=gv.name_hint, kind=kind))
        return sites

    def apply(self, mod: tvm.IRModule, sites: list[Site], params: dict):
        functions = {gv.name_hint: func for gv, func in kernels(mod)}
        applied, skipped, positions = [], [], {}
        for site in sites:
            reason = self._sites(functions[site.function])[site_position(site)][2]
            if reason:
                skipped.append((site, reason))
            else:
                applied.append(site)
                positions.setdefault(site.function, []).append(site_position(site))
        new_mod = native.get("mutatenn.transform.StoreRoundTrip")(self.dtype, positions)(mod) \
            if positions else mod
        return new_mod, applied, skipped

    def coverage_total(self, mod: tvm.IRModule) -> int:
        """Every store in kernel code, whatever its type."""
        return sum(count_in_kernel(func, (tirx.BufferStore,)) for _, func in kernels(mod))


_TYPES = (
    # id, dtype, from the paper, what a store loses
    ("store_f32_to_f16", "float16", True,
     "keeps 11 significant bits; beyond +-65504 becomes infinity"),
    ("store_f32_to_i32", "int32", True,
     "drops the fraction (toward zero); saturates at the int32 range"),
    ("store_f32_to_i16", "int16", True, "drops the fraction; saturates at -32768..32767"),
    ("store_f32_to_i8", "int8", True, "drops the fraction; saturates at -128..127"),
    ("store_f32_to_bf16", "bfloat16", False, "keeps 8 significant bits, float32's range"),
)

for _id, _dtype, _paper, _loss in _TYPES:
    OPERATORS.append(OperatorSpec(
        id=_id,
        level="kernel", category=CATEGORY,
        description=f"a float32 store round-trips through {_dtype}: {_loss}",
        finds="each BufferStore of a float32 value (scalar or vector) in kernel code",
        rewrites=f"the stored value v into float32({_dtype}(v)); integer casts saturate, "
                 "NaN becomes 0 (C++ pass mutatenn.transform.StoreRoundTrip)",
        from_paper=_paper, implementation=StoreRoundTrip(_dtype)))
