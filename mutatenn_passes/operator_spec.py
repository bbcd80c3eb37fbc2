"""What a mutation operator is, as data: `OperatorSpec` (a stable ID, a category, a one-line
description, how it finds its sites and rewrites one, typed parameters `Param`) and the
`OperatorImplementation` protocol its implementation follows.

Operator modules build their specs from these types and list them in a module-level
``OPERATORS`` table; they never import the catalogue (`registry`), which reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import OperatorError

if TYPE_CHECKING:  # only for the annotations: the specs (and the registry) import no TVM
    import tvm

    from .selection import Site

#: The six categories of the MutateNN paper, in the paper's order, then the categories added
#: for the models people deploy: quantization parameters (int8 edge models), DeepMutation++'s
#: model-level operators on trained weights, and the fault-injection literature's bit flips.
CATEGORIES = (
    "Layer Node Replacement",
    "Arithmetic Node Replacement",
    "Node Input/Output Modifications",
    "Arithmetic Types",
    "Kernel Variables & Stores",
    "Conditional Statements",
    "Quantization Parameters",
    "Weights",
    "Hardware Faults",
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
