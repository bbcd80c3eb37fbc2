"""Legalized operator calls remembered by what the legalization reads.

TVM's ``LegalizeOps`` turns each high-level Relax call into a ``call_tir`` of a PrimFunc that
it builds through TE (``bb.call_te``): after the schedule cache (`cache`), that was the largest
part of lowering a graph-level mutant again, although the mutation changes one or two calls
of hundreds. `CachedLegalizeOps` runs the same pass with every operator's registered
legalization (``FLegalize``) wrapped: a call whose arguments are all variables, constants or
static shapes (``reshape``'s target) is looked up by its operator, attributes, the types of its
arguments and result, and the value of each constant or shape argument (a legalization may
read a constant, never a variable); a miss runs the registered legalization and remembers its
PrimFunc when the result is the plain ``call_tir(f, (arguments…), out)`` that TE makes. A hit
adds the remembered PrimFunc to the module under the name TVM gave it
(``BlockBuilder.add_func`` reuses an equal function already there, as a fresh legalization
would) and calls it with this call's own arguments. Whatever does not fit that shape is
legalized by TVM as usual. A lowering with the cache is
structurally equal to one without it (tested).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax
from tvm.ir.expr import Constant

from .memo import StructuralMemo

#: Legalized calls remembered per process; past that the least recently used are forgotten.
MAX_CALLS = 8192

#: Set to 0 to lower without the caches (every call legalized, every kernel scheduled afresh):
#: results are the same either way (tested); it is there to rule the caches out.
CACHE_ENV = "MUTATENN_LOWERING_CACHE"


def enabled() -> bool:
    """Whether lowerings use the caches (`CACHE_ENV`)."""
    return os.environ.get(CACHE_ENV, "1") != "0"

_CALL_TIR = tvm.ir.Op.get("relax.call_tir")


@dataclass(frozen=True)
class _Legalized:
    """A remembered legalization (its memo key is what it read: `_signature`)."""

    func: tvm.tirx.PrimFunc
    name: str  # the name hint TE gave the PrimFunc
    order: tuple[int, ...]  # which of the call's arguments the call_tir passes, in order
    out: list  # the output tensor types, as `relax.call_tir` takes them


#: structural hash of the signature -> [(signature, _Legalized)]
_calls = StructuralMemo(MAX_CALLS)


def clear() -> None:
    """Forget every remembered legalization."""
    _calls.clear()


def cached_calls() -> int:
    """How many legalized calls the cache holds."""
    return len(_calls)


def _signature(call: relax.Call) -> list | None:
    """What the legalization of ``call`` depends on, or None when it is not cacheable."""
    parts = [call.op, call.attrs, call.ty, *call.ty_args]
    for arg in call.args:
        if isinstance(arg, Constant):
            parts.append(arg)  # its type and its value
        elif isinstance(arg, relax.Var):
            parts.append(arg.ty)
        elif isinstance(arg, relax.ShapeExpr) and all(
                isinstance(v, tvm.tirx.IntImm) for v in arg.values):
            parts.append(arg)  # a static shape (reshape's target): read by its values
        else:  # symbolic shapes, tuples, prim values: read in ways we do not model
            return None
    return parts


def _as_entry(bb: relax.BlockBuilder, call: relax.Call, result) -> _Legalized | None:
    """``result`` as a cache entry when it is ``call_tir(f, (arguments of call…), out)``."""
    if not (isinstance(result, relax.Call) and result.op.same_as(_CALL_TIR)
            and len(result.args) == 2 and isinstance(result.args[1], relax.Tuple)):
        return None
    gv = result.args[0]
    order = []
    for field in result.args[1].fields:
        index = next((i for i, arg in enumerate(call.args) if arg.same_as(field)), None)
        if index is None:
            return None
        order.append(index)
    func = bb.get()[gv]
    if not isinstance(func, tvm.tirx.PrimFunc):
        return None
    # BlockBuilder names a function NAME, NAME1, NAME2, ... in order of arrival.
    name = re.sub(r"\d+$", "", gv.name_hint) or gv.name_hint
    out = result.ty_args[0]
    outs = list(out.fields) if isinstance(out, relax.TupleType) else [out]
    return _Legalized(func, name, tuple(order), outs)


def _cached(op_name: str, legalize):
    """``legalize`` (an operator's registered FLegalize) through the cache."""

    def cached_legalize(bb: relax.BlockBuilder, call: relax.Call):
        signature = _signature(call)
        if signature is None:
            return legalize(bb, call)
        key = tvm_ffi.structural_hash(signature)
        entry = _calls.get(key, signature)
        if entry is not None:
            gv = bb.add_func(entry.func, entry.name)
            return relax.call_tir(gv, [call.args[i] for i in entry.order], entry.out)
        result = legalize(bb, call)
        entry = _as_entry(bb, call, result)
        if entry is not None:
            _calls.put(key, signature, entry)
        return result

    cached_legalize.__name__ = f"cached_legalize_{op_name}"
    return cached_legalize


def _operators(mod: tvm.IRModule) -> set[str]:
    """Names of the operators the module's Relax functions call."""
    names: set[str] = set()

    def visit(expr) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            names.add(expr.op.name)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return names


@tvm.transform.module_pass(opt_level=0, name="mutatenn.CachedLegalizeOps")
class CachedLegalizeOps:
    """``relax.transform.LegalizeOps`` reusing remembered legalizations (see the module doc);
    ``overrides`` ({operator name: legalization}) replace the registered ones, as
    ``LegalizeOps``'s ``customize_legalize_map`` does."""

    def __init__(self, overrides: dict | None = None):
        self.overrides = dict(overrides or {})

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        table = {}
        for name in _operators(mod):
            legalize = self.overrides.get(name) or tvm.ir.Op.get(name).get_attr("FLegalize")
            if legalize is not None:
                table[name] = _cached(name, legalize)
        return relax.transform.LegalizeOps(customize_legalize_map=table)(mod)


def with_cached_legalization(pipeline: tvm.transform.Pass) -> tvm.transform.Pass:
    """``pipeline``, a Relax pipeline that legalizes (TVM's default build pipeline, which
    unscheduled CPU profiles use), preceded by TVM's library dispatch and `CachedLegalizeOps`:
    its own dispatch and ``LegalizeOps`` then find nothing left to do, so it makes the same
    module at the cost of the calls not seen before. Without the caches (`CACHE_ENV`),
    ``pipeline`` itself."""
    if not enabled():
        return pipeline
    return tvm.transform.Sequential([relax.backend.DispatchSampling(),
                                     relax.backend.DispatchSortScan(), CachedLegalizeOps(),
                                     pipeline], name="mutatenn.CachedLegalization")
