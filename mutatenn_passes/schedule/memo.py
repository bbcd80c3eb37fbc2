"""A bounded, least-recently-used map from IR to what was computed from it.

The lowering caches (`legalize_cache`, `cache`, `constant_memo`) all remember a result by a
piece of IR: they look it up by a hash and confirm it by structural equality, so a hash
collision costs a recomputation, never a wrong result. `StructuralMemo` is that map, once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import tvm_ffi


class StructuralMemo:
    """``key`` (a hash of ``signature``, with whatever else must match exactly) ->
    [(``signature``, value)], the ``max_keys`` least recently used keys forgotten first."""

    def __init__(self, max_keys: int):
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, list[tuple[object, object]]] = OrderedDict()

    def get(self, key: Hashable, signature):
        """The value remembered for ``signature`` under ``key``, or None."""
        for remembered, value in self._buckets.get(key, ()):
            if tvm_ffi.structural_equal(signature, remembered):
                self._buckets.move_to_end(key)
                return value
        return None

    def put(self, key: Hashable, signature, value) -> None:
        self._buckets.setdefault(key, []).append((signature, value))
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        """How many values are remembered."""
        return sum(len(bucket) for bucket in self._buckets.values())

    def clear(self) -> None:
        self._buckets.clear()
