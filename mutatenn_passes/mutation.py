"""`mutation(op_id, ...)`: turn a registered operator into a real `tvm.transform.Pass`.

The pass is a TVM module pass named ``mutatenn.<op_id>`` at opt_level 0, so it composes with
`tvm.transform.Sequential`, honours `PassContext`, and slots into `build(relax_passes=...)`
(graph level) or `build(tir_passes=...)` (kernel level, at the pass's ``phase``). After it runs,
``pass_.report`` says what it did: sites found, applied, skipped with reasons, and the
module's coverage total, because a mutation that silently did nothing is worse than none.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from dataclasses import dataclass, field

import tvm
from tvm import relax

from .errors import OperatorError
from .registry import OperatorSpec, get_operator
from .selection import Site, SiteSelection, describe_selection, filter_kernels, select

#: Where in a target's TIR pipeline a kernel-level pass runs (see `mutatenn_passes.build`).
KERNEL_PHASES = ("s_tir", "lowered")
DEFAULT_KERNEL_PHASE = "s_tir"


@dataclass(repr=False)
class MutationReport:
    """What one run of a mutation pass did to one module (``MutationPass.report``).

    ``sites_found``: every site the operator found (after a ``kernels`` filter), in order;
    ``sites_selected``: those the selection picked; ``applied``: those rewritten;
    ``skipped``: (site, reason) for each selected site whose rewrite would be ill-typed.
    ``coverage_total`` is the size of the module in the operator's unit (Relax op calls for
    graph-level operators, the nodes its family inspects for kernel-level ones): the
    denominator when asking what share of a model an operator can reach. ``note`` says why
    nothing was rewritten when that is not obvious ('' otherwise), e.g. that the operator is
    not applicable to the module.
    """

    operator: str
    selection: str
    sites_found: list[Site] = field(default_factory=list)
    sites_selected: list[Site] = field(default_factory=list)
    applied: list[Site] = field(default_factory=list)
    skipped: list[tuple[Site, str]] = field(default_factory=list)
    coverage_total: int = 0
    note: str = ""

    @property
    def applicable(self) -> bool:
        """False when the operator found no site at all in the module (not an error)."""
        return bool(self.sites_found)

    def __repr__(self) -> str:
        if not self.applicable:
            return f"MutationReport({self.operator}, sites={self.selection}: not applicable)"
        return (f"MutationReport({self.operator}, sites={self.selection}: "
                f"{len(self.sites_found)} found, {len(self.applied)} applied, "
                f"{len(self.skipped)} skipped)")

    def as_dict(self) -> dict:
        """A JSON-safe summary: counts of found sites, the applied and skipped sites in full
        (each skip with its reason), ``applicable`` and ``note``."""
        return {
            "operator": self.operator, "selection": self.selection,
            "applicable": self.applicable, "note": self.note,
            "sites_found": len(self.sites_found), "coverage_total": self.coverage_total,
            "applied": [s.as_dict() for s in self.applied],
            "skipped": [{**s.as_dict(), "reason": r} for s, r in self.skipped],
        }


def find_sites(op_id: str, mod: tvm.IRModule, *, kernels: str | None = None,
               **params) -> list[Site]:
    """Every site ``op_id`` finds in ``mod``, in deterministic order, without rewriting."""
    spec = get_operator(op_id)
    sites, _ = _scan(spec, mod, spec.resolve_params(params))
    return filter_kernels(sites, kernels) if spec.level == "kernel" else sites


def _check_level(spec: OperatorSpec, mod: tvm.IRModule) -> None:
    """A graph-level operator needs Relax functions and a kernel-level one PrimFuncs; a module
    holding only the other kind means the pass was put in the wrong place."""
    funcs = list(mod.functions.values())
    has_tir = any(isinstance(f, tvm.tirx.PrimFunc) for f in funcs)
    has_relax = any(isinstance(f, relax.Function) for f in funcs)
    if spec.level == "kernel" and has_relax and not has_tir:
        raise OperatorError(f"{spec.id} is a kernel-level operator and this module holds only "
                            "Relax functions: pass it in build(tir_passes=[...]), or apply it "
                            "to kernel_ir.kernel_module(model, target)")
    if spec.level == "graph" and has_tir and not has_relax:
        raise OperatorError(f"{spec.id} is a graph-level operator and this module holds only "
                            "TIR PrimFuncs: pass it in build(relax_passes=[...]), or apply it "
                            "to model.mod")


class MutationPass:
    """One operator applied at the selected sites; see `mutation`.

    `mutation` wraps this class with TVM's public `tvm.transform.module_pass` decorator, once
    per operator (so each pass is named ``mutatenn.<op_id>``). The pass object it returns is a
    real `tvm.transform.ModulePass` that forwards attribute reads (``report``, ``phase``,
    ``key``, ...) to the instance of this class it wraps.

    ``report`` is None until the pass has run, then the `MutationReport` of its latest run
    (a pass reused on a second module reports on that one).
    """

    def __init__(self, spec: OperatorSpec, sites: SiteSelection, kernels: str | None,
                 phase: str | None, params: dict):
        self.spec = spec
        self.selection = sites
        self.kernels = kernels
        self.phase = phase
        self.params = params
        self.report: MutationReport | None = None

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        _check_level(self.spec, mod)
        impl = self.spec.implementation
        found, coverage = _scan(self.spec, mod, self.params)
        if self.spec.level == "kernel":
            found = filter_kernels(found, self.kernels)
        chosen = select(found, self.selection)
        new_mod, applied, skipped = impl.apply(mod, chosen, self.params) if chosen \
            else (mod, [], [])
        where = f" in kernels matching {self.kernels!r}" if self.kernels else ""
        self.report = MutationReport(
            operator=self.spec.id, selection=describe_selection(self.selection),
            sites_found=found, sites_selected=chosen, applied=list(applied),
            skipped=list(skipped), coverage_total=coverage,
            note="" if found else f"not applicable: {self.spec.id} finds no site in this "
                                  f"module{where}, so nothing was rewritten")
        return new_mod

    @property
    def key(self) -> str:
        """A canonical description of this mutation (operator, selection, filter, params)."""
        parts = [self.spec.id, describe_selection(self.selection)]
        if self.spec.level == "kernel":
            parts += [f"phase={self.phase}", f"kernels={self.kernels or '*'}"]
        parts += [f"{k}={v}" for k, v in sorted(self.params.items())]
        return ";".join(parts)


def mutation(op_id: str, sites: SiteSelection = "all", *, kernels: str | None = None,
             phase: str | None = None, **params) -> tvm.transform.ModulePass:
    """A `tvm.transform.Pass` applying operator ``op_id`` at ``sites``.

    ``sites`` is ``"all"``, an index, a list of indices, a ``range`` or ``Sample(n, seed)``.
    Kernel-level operators also take ``kernels`` (a glob over PrimFunc names, applied before
    indexing; ``sites`` then indexes the filtered list) and ``phase`` (one of `KERNEL_PHASES`,
    where in the TIR pipeline they run; default: the operator's ``default_phase``).
    Other keyword arguments are the operator's parameters (`mutatenn operators` lists them).
    """
    spec = get_operator(op_id)
    resolved = spec.resolve_params(params)
    if spec.level == "graph":
        if kernels is not None or phase is not None:
            raise OperatorError(f"{op_id} is a graph-level operator: 'kernels' and 'phase' "
                                "apply to kernel-level operators only")
    else:
        phase = phase or spec.default_phase
        if phase not in KERNEL_PHASES:
            raise OperatorError(f"unknown kernel phase {phase!r} (known: "
                                f"{', '.join(KERNEL_PHASES)})")
    if isinstance(sites, str) and sites != "all":
        raise OperatorError(f"unknown site selection {sites!r}: use 'all', an index, "
                            "a list of indices, a range or Sample(n, seed)")
    return _pass_class(spec.id)(spec, sites, kernels, phase, resolved)


#: Sites and coverage of the latest modules scanned, by operator, parameters and functions.
_SCANS: OrderedDict[tuple, tuple[list[Site], int]] = OrderedDict()
_MAX_SCANS = 64


def _scan(spec: OperatorSpec, mod: tvm.IRModule, params: dict) -> tuple[list[Site], int]:
    """``spec``'s sites in ``mod`` and its coverage total, computed once per module.

    A campaign applies each operator once per mutant to the same module (the model's Relax
    module, or one target's kernels), and finding sites walks every function of it: the
    walk is remembered by the identity of the module's functions (IR nodes are immutable, and
    the key holds them, so an identity cannot be reused while remembered)."""
    functions = tuple(sorted(((gv.name_hint, func) for gv, func in mod.functions_items()),
                             key=lambda item: item[0]))
    key = (spec.id, json.dumps(params, sort_keys=True, default=str), functions)
    if key in _SCANS:
        _SCANS.move_to_end(key)
        return _SCANS[key]
    impl = spec.implementation
    _SCANS[key] = (impl.find_sites(mod, params), impl.coverage_total(mod))
    if len(_SCANS) > _MAX_SCANS:
        _SCANS.popitem(last=False)
    return _SCANS[key]


@functools.cache
def _pass_class(op_id: str):
    """The `tvm.transform.ModulePass` class of operator ``op_id`` (named ``mutatenn.<op_id>``,
    opt_level 0)."""
    return tvm.transform.module_pass(MutationPass, opt_level=0, name=f"mutatenn.{op_id}")
