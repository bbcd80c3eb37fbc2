"""The operator registry: one catalogue of every mutation operator, graph and kernel level.

Modelled on Mull's mutators: each operator has a stable short ID that is never renamed once
released, a category, a one-line description, a statement of how it finds its sites and how it
rewrites one site, and typed parameters with defaults (`operator_spec`). Each operator module
lists its specs in a module-level ``OPERATORS`` table, and `operator_modules` is the one list
of those modules the catalogue reads: adding an operator module means adding it there.
Imports go one way, registry -> operator modules -> operator_spec; `operators()` returns the
specs in a stable order (level, category, paper first, ID).
"""

from __future__ import annotations

import difflib
from typing import Callable

from .errors import OperatorError
from .operator_spec import CATEGORIES, OperatorSpec

_REGISTRY: dict[str, OperatorSpec] = {}


def register(spec: OperatorSpec) -> OperatorSpec:
    """Add ``spec`` to the catalogue; IDs are unique and never reused."""
    if spec.id in _REGISTRY:
        raise ValueError(f"operator {spec.id!r} is registered twice")
    if spec.level not in ("graph", "kernel"):
        raise ValueError(f"operator {spec.id!r}: level must be 'graph' or 'kernel'")
    _REGISTRY[spec.id] = spec
    return spec


def operator_modules() -> tuple:
    """Every module that defines operators (its ``OPERATORS`` table): the one list the
    catalogue reads, and the one place to add a new operator module. Imported here, lazily, so
    that the registry module itself has no TVM-heavy imports; written as imports, not names,
    so that the dependency stays visible to readers and to tests/test_import_graph.py."""
    from .graph_operators import (arithmetic_replacement, io_modifications,
                                  layer_replacement, quantization, weight_faults, weights)
    from .kernel_operators import arithmetic_types, conditions, faults, loops, stores

    return (layer_replacement, arithmetic_replacement, io_modifications, quantization, weights,
            weight_faults, arithmetic_types, stores, conditions, loops, faults)


_loaded = False


def _load_operator_modules() -> None:
    """Fill the catalogue from every operator module's ``OPERATORS`` table, once."""
    global _loaded
    if _loaded:
        return
    for module in operator_modules():
        for spec in module.OPERATORS:
            register(spec)
    _loaded = True


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
