"""Shared machinery of the kernel-level operators: which code is a kernel, and how sites are
numbered and rewritten.

Every kernel operator walks each PrimFunc of the module once in pre-order (source reading
order) and numbers the nodes it can rewrite. Finding sites and applying a mutation run the
*same* walk, once with nothing selected and once with the chosen positions selected, so a site
number always means the same node for the same module and parameters.

Only the kernel's own code is walked. After TVM's lowering pipeline, ``MakePackedAPI`` wraps
each host-callable kernel in argument-unpacking code (type checks, ``if_then_else`` on type
indices, asserts); that wrapper is plumbing, not the model's computation, so when a function
holds ``compute_scope`` attributes only their bodies are walked. A function without one
(every PrimFunc before lowering, every device kernel after it) is walked whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import tvm
import tvm_ffi
from tvm import tirx

from ..selection import Site

#: The attribute ``MakePackedAPI`` puts around the kernel body it wraps.
COMPUTE_SCOPE = "compute_scope"

#: A handler rewrites one node type: ``handler(node, mutator) -> node``. It owns descent into
#: the node's children (``mutator.default_mutate(node)`` descends into all of them).
Handler = Callable[[object, tvm_ffi.StructuralMutator], object]


class SkipSite(Exception):
    """Raised by a site rewrite that cannot keep the function well formed; the message is the
    reason the report gives."""


def kernels(mod: tvm.IRModule) -> list[tuple[tvm.ir.GlobalVar, tirx.PrimFunc]]:
    """The module's PrimFuncs, ordered by name so that site numbering is deterministic."""
    funcs = [(gv, f) for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)]
    return sorted(funcs, key=lambda item: item[0].name_hint)


def site_id(function: str, position: int) -> str:
    """The stable key of a kernel site: PrimFunc name and position among the operator's sites
    in that PrimFunc."""
    return f"{function}:{position}"


def site_position(site: Site) -> int:
    """The position of ``site`` inside its kernel, read back from its `site_id`."""
    return int(site.id.rpartition(":")[2])


@dataclass
class SiteScan:
    """One walk of one kernel: the sites it numbered and what happened at the selected ones."""

    selected: frozenset = frozenset()
    found: list = field(default_factory=list)  # (kind, description) per position
    applied: list = field(default_factory=list)  # positions rewritten
    skipped: list = field(default_factory=list)  # (position, reason)
    #: What applied rewrites require of code outside the kernel (see `after_apply`).
    effects: list = field(default_factory=list)

    def site(self, kind: str, description: str, node, rewrite: Callable[[object], object]):
        """Number ``node`` as the next site; return ``rewrite(node)`` if it is selected, else
        ``node``. A rewrite raising `SkipSite` leaves the node as it was and records why."""
        position = len(self.found)
        self.found.append((kind, description))
        if position not in self.selected:
            return node
        try:
            new = rewrite(node)
        except SkipSite as why:
            self.skipped.append((position, str(why)))
            return node
        self.applied.append(position)
        return new


def _has_compute_scope(body) -> bool:
    def probe(attr):
        return tvm_ffi.VisitInterrupt(True) if attr.attr_key == COMPUTE_SCOPE else None

    return tvm_ffi.structural_walk(body, (tirx.AttrStmt, probe), order="pre") is not None


def map_kernel(func: tirx.PrimFunc, handlers: dict[type, Handler]) -> tirx.PrimFunc:
    """Run ``handlers`` (node type -> handler) over the kernel code of ``func``.

    Nodes outside the kernel region are descended into without calling a handler. Returns
    ``func`` itself when nothing changed.
    """
    inside = [not _has_compute_scope(func.body)]
    attr_handler = handlers.get(tirx.AttrStmt)

    def guarded(handler: Handler) -> Handler:
        def run(node, mutator):
            return handler(node, mutator) if inside[-1] else mutator.default_mutate(node)
        return run

    def on_attr(node, mutator):
        if node.attr_key == COMPUTE_SCOPE:
            inside.append(True)
            try:
                return mutator.default_mutate(node)
            finally:
                inside.pop()
        if attr_handler is not None and inside[-1]:
            return attr_handler(node, mutator)
        return mutator.default_mutate(node)

    callbacks = [(t, guarded(h)) for t, h in handlers.items() if t is not tirx.AttrStmt]
    callbacks.append((tirx.AttrStmt, on_attr))
    body = tvm_ffi.structural_mutate(func.body, callbacks)
    return func if body.same_as(func.body) else func.with_body(body)


def count_in_kernel(func: tirx.PrimFunc, types: tuple, predicate=lambda node: True) -> int:
    """How many nodes of ``types`` satisfying ``predicate`` the kernel code of ``func`` holds."""
    count = [0]

    def tally(node, mutator):
        count[0] += bool(predicate(node))
        return mutator.default_mutate(node)

    map_kernel(func, {t: tally for t in types})
    return count[0]


class KernelOperatorBase:
    """The implementation protocol of `registry.OperatorSpec` for kernel operators whose sites
    are nodes inside PrimFuncs.

    A subclass provides ``scan(func, params, scan)`` (walk one PrimFunc, calling
    ``scan.site(...)`` at each candidate, and return the possibly rewritten function) and
    ``coverage_total``; this base turns it into ``find_sites`` and ``apply``.
    """

    def scan(self, func: tirx.PrimFunc, params: dict, scan: SiteScan) -> tirx.PrimFunc:
        raise NotImplementedError

    def find_sites(self, mod: tvm.IRModule, params: dict) -> list[Site]:
        sites: list[Site] = []
        for gv, func in kernels(mod):
            scan = SiteScan()
            self.scan(func, params, scan)
            for position, (kind, description) in enumerate(scan.found):
                sites.append(Site(index=len(sites), id=site_id(gv.name_hint, position),
                                  description=description, function=gv.name_hint, kind=kind))
        return sites

    def apply(self, mod: tvm.IRModule, sites: list[Site], params: dict):
        by_function: dict[str, dict[int, Site]] = {}
        for site in sites:
            by_function.setdefault(site.function, {})[site_position(site)] = site
        new_mod = mod.clone()
        applied, skipped, effects = [], [], {}
        for gv, func in kernels(mod):
            chosen = by_function.get(gv.name_hint)
            if not chosen:
                continue
            scan = SiteScan(selected=frozenset(chosen))
            new_func = self.scan(func, params, scan)
            applied += [chosen[p] for p in scan.applied]
            skipped += [(chosen[p], reason) for p, reason in scan.skipped]
            if scan.effects:
                effects[gv] = scan.effects
            if not new_func.same_as(func):
                new_mod.update_func(gv, new_func)
        new_mod = self.after_apply(new_mod, effects)
        return new_mod, sorted(applied, key=lambda s: s.index), \
            sorted(skipped, key=lambda item: item[0].index)

    def after_apply(self, mod: tvm.IRModule, effects: dict) -> tvm.IRModule:
        """Bring the rest of ``mod`` in line with the rewritten kernels; ``effects`` maps each
        kernel's GlobalVar to the `SiteScan.effects` its rewrites recorded. Most operators'
        rewrites are local, so by default this returns ``mod``."""
        return mod

    def coverage_total(self, mod: tvm.IRModule) -> int:
        raise NotImplementedError
