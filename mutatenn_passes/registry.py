"""The operator registry: one catalogue of every mutation operator, graph and kernel level.

Modelled on Mull's mutators: each operator has a stable short ID that is never renamed once
released, a category, a one-line description, a statement of how it finds its sites and how it
rewrites one site, and typed parameters with defaults. Operator modules register themselves on
import; `operators()` returns the specs in a stable order (level, category, paper first, ID).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import OperatorError

if TYPE_CHECKING:  # only for the annotations: the registry itself imports no TVM
    import tvm

    from .selection import Site

#: The six categories of the MutateNN paper, in the paper's order.
CATEGORIES = (
    "Layer Node Replacement",
    "Arithmetic Node Replacement",
    "Node Input/Output Modifications",
    "Arithmetic Types",
    "Kernel Variables & Stores",
    "Conditional Statements",
)


@dataclass(frozen=True)
class Param:
    """One operator parameter: a name, a default, a type the value is coerced to, a doc line,
    and optionally the allowed choices."""

    name: str
    default: Any
    type: type
    doc: str
    choices: tuple = ()

    def coerce(self, op_id: str, value: Any) -> Any:
        try:
            converted = self.type(value)
        except (TypeError, ValueError):
            raise OperatorError(f"{op_id}: parameter {self.name}={value!r} is not a "
                                f"{self.type.__name__}") from None
        if self.choices and converted not in self.choices:
            raise OperatorError(f"{op_id}: parameter {self.name}={value!r} must be one of "
                                f"{', '.join(map(str, self.choices))}")
        return converted


class OperatorImplementation(Protocol):
    """What an operator's ``implementation`` provides (graph and kernel level alike)."""

    def find_sites(self, mod: tvm.IRModule, params: dict) -> list[Site]:
        """Every site in ``mod``, in a deterministic order, numbered from 0."""

    def apply(self, mod: tvm.IRModule, sites: list[Site], params: dict
              ) -> tuple[tvm.IRModule, list[Site], list[tuple[Site, str]]]:
        """``mod`` with ``sites`` rewritten, the sites applied, and those skipped with the
        reason."""

    def coverage_total(self, mod: tvm.IRModule) -> int:
        """How many nodes of the kind the operator's level counts ``mod`` holds (the paper's
        layer coverage denominator)."""


@dataclass(frozen=True)
class OperatorSpec:
    """What a user needs to know about an operator, and the object that implements it
    (an `OperatorImplementation`)."""

    id: str
    level: str  # "graph" or "kernel"
    category: str
    description: str
    finds: str
    rewrites: str
    from_paper: bool
    implementation: OperatorImplementation = field(compare=False, repr=False)
    params: tuple[Param, ...] = ()
    #: Kernel level only: the TIR pipeline phase where the operator runs unless told otherwise
    #: (the phase where its sites exist, e.g. ``lowered`` for GPU launch dimensions).
    default_phase: str = "s_tir"

    def resolve_params(self, given: dict) -> dict:
        """Defaults overlaid with ``given``, coerced; unknown names are an `OperatorError`."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise OperatorError(f"{self.id}: unknown parameter(s) {', '.join(unknown)} "
                                f"(valid: {valid})")
        return {name: (p.coerce(self.id, given[name]) if name in given else p.default)
                for name, p in known.items()}

    def as_dict(self) -> dict:
        return {
            "id": self.id, "level": self.level, "category": self.category,
            "description": self.description, "finds": self.finds, "rewrites": self.rewrites,
            "from_paper": self.from_paper,
            **({"default_phase": self.default_phase} if self.level == "kernel" else {}),
            "params": [{"name": p.name, "default": p.default, "type": p.type.__name__,
                        "doc": p.doc, **({"choices": list(p.choices)} if p.choices else {})}
                       for p in self.params],
        }


_REGISTRY: dict[str, OperatorSpec] = {}


def register(spec: OperatorSpec) -> OperatorSpec:
    """Add ``spec`` to the catalogue; IDs are unique and never reused."""
    if spec.id in _REGISTRY:
        raise ValueError(f"operator {spec.id!r} is registered twice")
    if spec.level not in ("graph", "kernel"):
        raise ValueError(f"operator {spec.id!r}: level must be 'graph' or 'kernel'")
    _REGISTRY[spec.id] = spec
    return spec


def _load_operator_modules() -> None:
    # Imported lazily so that the registry module itself has no TVM-heavy imports.
    from . import graph_operators, kernel_operators  # noqa: F401


def _order(spec: OperatorSpec):
    cat = CATEGORIES.index(spec.category) if spec.category in CATEGORIES else len(CATEGORIES)
    return (spec.level != "graph", cat, not spec.from_paper, spec.id)


def operators() -> list[OperatorSpec]:
    """Every registered operator, graph level first, then by category, paper operators first."""
    _load_operator_modules()
    return sorted(_REGISTRY.values(), key=_order)


def get_operator(op_id: str) -> OperatorSpec:
    """The spec for ``op_id``; an unknown ID is an `OperatorError` naming the near matches."""
    _load_operator_modules()
    if op_id in _REGISTRY:
        return _REGISTRY[op_id]
    near = difflib.get_close_matches(op_id, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise OperatorError(f"unknown mutation operator {op_id!r}{hint} "
                        "(`mutatenn operators` lists them all)")


def resolve_operator_names(names: str | list[str]) -> list[OperatorSpec]:
    """Expand IDs, category names and the presets ``paper``/``all``/``graph``/``kernel``.

    Accepts a comma-separated string or a list; keeps first-seen order without duplicates.
    """
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    specs = operators()
    chosen: dict[str, OperatorSpec] = {}
    for item in filter(None, items):
        lowered = item.lower()
        if lowered == "all":
            matched = specs
        elif lowered == "paper":
            matched = [s for s in specs if s.from_paper]
        elif lowered in ("graph", "kernel"):
            matched = [s for s in specs if s.level == lowered]
        else:
            matched = [s for s in specs if s.category.lower() == lowered]
            if not matched:
                matched = [get_operator(item)]
        for spec in matched:
            chosen.setdefault(spec.id, spec)
    return list(chosen.values())

