"""Values computed from Relax constants, remembered by the constants' identity.

A graph-level mutant shares its constants with the original it was made from: the mutation
rewrites one or two calls and leaves every weight the very same object. The graph
preparation (`FoldConstants`, `PackConvWeights`) would otherwise evaluate, transpose and copy
every weight of the model again for each mutant. `ConstantMemo` remembers each result by the
identity of the constants it was computed from (and a structural signature of whatever else
it read; small constants, which the passes before make afresh each time, by value), holding
those constants so that their identity cannot pass to new objects, and
gives back the same result object: later stages (the legalization cache) then see the same
constants too. Per process, least recently used forgotten past `MAX_ENTRIES`.
"""

from __future__ import annotations

from typing import Callable

import tvm_ffi

from .legalize_cache import enabled
from .memo import StructuralMemo

#: Results remembered per memo.
MAX_ENTRIES = 4096

#: Constants of at most this many elements are compared by value, larger ones by identity.
SMALL = 64


def _elements(constant) -> int:
    n = 1
    for d in constant.value.shape:
        n *= int(d)
    return n


class ConstantMemo:
    """``get(constants, signature, compute)``: ``compute()``'s result for these constant
    objects and this signature (anything structural: attributes, types, shapes)."""

    def __init__(self):
        self._memo = StructuralMemo(MAX_ENTRIES)

    def get(self, constants: list, signature: list, compute: Callable):
        if not enabled():
            return compute()
        # small constants (an epsilon, a zero point) are made afresh by the passes before, so
        # they are read by value; weights by identity
        large = [c for c in constants if _elements(c) > SMALL]
        signature = [*signature, *(c for c in constants if _elements(c) <= SMALL)]
        key = (tuple(c.__chandle__() for c in large), tvm_ffi.structural_hash(signature))
        kept = self._memo.get(key, signature)
        if kept is None:
            # the large constants are held with the result, so their identity cannot pass
            # to new objects while it is remembered
            kept = (large, compute())
            self._memo.put(key, signature, kept)
        return kept[1]

    def __len__(self) -> int:
        return len(self._memo)

    def clear(self) -> None:
        self._memo.clear()
