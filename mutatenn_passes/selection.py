"""Site selection: which of an operator's sites one mutation pass rewrites.

Users pick sites as ``"all"``, one index, a list of indices, a ``range`` or a seeded
``Sample``; kernel-level operators can also filter by kernel name first. Selection is resolved
against the full, deterministically ordered site list, so the same selection always means the
same sites for the same module.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from typing import Sequence, Union

from .errors import OperatorError


@dataclass(frozen=True)
class Site:
    """One place an operator can rewrite.

    ``index`` is the position in the operator's site list (graph order, or kernel order then
    position in the kernel); ``id`` is a stable textual key (function, binding or node path);
    ``description`` is for humans; ``function`` names the Relax function or PrimFunc holding it;
    ``kind`` says what sort of node it is (e.g. ``relax.nn.relu``, ``IfThenElse``, ``Select``).
    """

    index: int
    id: str
    description: str
    function: str
    kind: str = ""

    def as_dict(self) -> dict:
        return {"index": self.index, "id": self.id, "description": self.description,
                "function": self.function, "kind": self.kind}


@dataclass(frozen=True)
class Sample:
    """Pick ``n`` sites uniformly at random, reproducibly from ``seed``."""

    n: int
    seed: int = 0

    def __post_init__(self):
        if self.n < 1:
            raise OperatorError(f"Sample(n={self.n}): n must be at least 1")


SiteSelection = Union[str, int, Sequence[int], range, Sample]


def describe_selection(selection: SiteSelection) -> str:
    """A canonical text form of a selection, used in reports and as part of a mutant's key."""
    if isinstance(selection, str):
        return selection
    if isinstance(selection, Sample):
        return f"sample(n={selection.n},seed={selection.seed})"
    if isinstance(selection, range):
        return f"range({selection.start},{selection.stop},{selection.step})"
    if isinstance(selection, int):
        return str(selection)
    return "[" + ",".join(str(i) for i in selection) + "]"


def filter_kernels(sites: list[Site], kernels: str | None) -> list[Site]:
    """Keep the sites whose function name matches the glob ``kernels`` (all when None)."""
    if kernels is None:
        return sites
    return [s for s in sites if fnmatch.fnmatchcase(s.function, kernels)]


def select(sites: list[Site], selection: SiteSelection) -> list[Site]:
    """Resolve ``selection`` against ``sites``.

    With no site at all, every selection picks nothing: the operator is not applicable to
    the module, which is a finding, not an error. Indices beyond a non-empty site list are
    an `OperatorError` naming the valid range.
    """
    if isinstance(selection, str):
        if selection != "all":
            raise OperatorError(f"unknown site selection {selection!r}: use 'all', an index, "
                                "a list of indices, a range or Sample(n, seed)")
        return list(sites)
    if isinstance(selection, Sample):
        if not sites:
            return []
        rng = random.Random(selection.seed)
        picked = sorted(rng.sample(range(len(sites)), min(selection.n, len(sites))))
        return [sites[i] for i in picked]
    if isinstance(selection, bool):
        raise OperatorError(f"bad site selection {selection!r}")
    indices = [selection] if isinstance(selection, int) else list(selection)
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool):
            raise OperatorError(f"bad site index {i!r}: site indices are integers")
    if not sites:
        return []
    chosen = []
    for i in indices:
        if not 0 <= i < len(sites):
            raise OperatorError(f"site index {i} is out of range: "
                                f"this operator found {len(sites)} site(s) (0..{len(sites) - 1})")
        chosen.append(sites[i])
    return chosen
