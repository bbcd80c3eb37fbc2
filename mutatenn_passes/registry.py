"""The operator registry: one catalogue of every mutation operator, graph and kernel level.

Modelled on Mull's mutators: each operator has a stable short ID that is never renamed once
released, a category, a one-line description, a statement of how it finds its sites and how it
rewrites one site, and typed parameters with defaults. Operator modules register themselves on
import; `operators()` returns the specs in a stable order (level, category, paper first, ID).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .errors import OperatorError

if TYPE_CHECKING:  # only for the annotations: the registry itself imports no TVM
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


#: Named groups of operators, Mull-style: each name maps to a predicate over specs or to a list
#: of member IDs, and `expand_preset` is the one function that expands them.
PRESETS: dict[str, Callable[[OperatorSpec], bool] | tuple[str, ...]] = {
    "paper": lambda s: s.from_paper,
    "all": lambda s: True,
    "graph": lambda s: s.level == "graph",
    "kernel": lambda s: s.level == "kernel",
    # DeepMutation++'s model-level operators (Hu et al., ASE 2019), in the paper's order.
    "deepmutation": ("weights_gaussian_fuzz", "weights_shuffle", "neuron_effect_block",
                     "neuron_activation_inverse", "neuron_switch", "layer_deactivation"),
    "quantization": lambda s: s.category == "Quantization Parameters",
    "faults": lambda s: s.category == "Hardware Faults",
}


def expand_preset(name: str) -> list[OperatorSpec] | None:
    """The operators of preset ``name`` (case-insensitive) in catalogue order, or None when
    ``name`` is no preset."""
    members = PRESETS.get(name.lower())
    if members is None:
        return None
    specs = operators()
    if callable(members):
        return [s for s in specs if members(s)]
    return [get_operator(op_id) for op_id in members]


def resolve_operator_names(names: str | list[str]) -> list[OperatorSpec]:
    """Expand IDs, category names and presets (`PRESETS`: ``paper``, ``all``, ``graph``,
    ``kernel``, ``deepmutation``, ``quantization``, ``faults``).

    Accepts a comma-separated string or a list; keeps first-seen order without duplicates.
    """
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    specs = operators()
    chosen: dict[str, OperatorSpec] = {}
    for item in filter(None, items):
        matched = expand_preset(item)
        if matched is None:
            matched = [s for s in specs if s.category.lower() == item.lower()] \
                or [_operator_or_near_name(item)]
        for spec in matched:
            chosen.setdefault(spec.id, spec)
    return list(chosen.values())


def _operator_or_near_name(name: str) -> OperatorSpec:
    """The operator ``name``; otherwise an `OperatorError` naming the near IDs, presets and
    categories (a misspelt preset is as likely as a misspelt ID)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    near = difflib.get_close_matches(name, [*_REGISTRY, *PRESETS, *CATEGORIES], n=3,
                                     cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise OperatorError(f"unknown mutation operator {name!r}{hint} "
                        "(`mutatenn operators` lists them all)")
