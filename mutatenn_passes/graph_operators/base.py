"""Shared machinery of the graph-level operators: find call sites, rewrite one binding each.

A graph-level site is one ``VarBinding`` whose value calls a Relax op the operator matches.
Sites are listed in graph order (Relax functions sorted by name, bindings in program order,
nested scopes in place), which is the order TVMScript prints them, so index ``i`` always means
the same binding of the same module. Rewriting keeps the site's bound variable and replaces
only its value (emitting helper bindings just before it when the rewrite needs them), so no use
of the variable has to change and a rewrite that would change its type is a bug, not a mutant.

The classes here follow TVM's own ``relax/transform`` Python passes: a ``PyExprVisitor`` to
collect bindings, a ``PyExprMutator`` overriding ``visit_var_binding_`` to rewrite, the
mutator's ``builder_`` to emit and normalise, and ``update_func`` to assemble the new module.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import tvm
import tvm_ffi
from tvm import relax
from tvm.ir import prim
from tvm.ir.expr import Constant, StringImm

from ..errors import OperatorError
from ..selection import Site

#: A predicate choosing which op calls are sites: ``(call, scope) -> bool``.
Matcher = Callable[[relax.Call, "FunctionScope"], bool]

_CHECKED = contextvars.ContextVar("mutatenn_checked_rewrites", default=True)


@contextmanager
def unchecked_rewrites():
    """Within the block, rewrites skip the well-formedness check (`check_well_formed`).

    Campaign planning applies every graph mutant only to hash and compare it; the worker that
    builds a mutant applies the same rewrite again and records an ill-formed one as a build
    failure, checking only the segments of the graph it changed where the graph is lowered
    by segment (`segmented_lowering`). The whole check is a third of planning a graph mutant
    and a fifth of building one."""
    token = _CHECKED.set(False)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def check_well_formed(mod: tvm.IRModule) -> None:
    """Raise, naming the node, if a rewrite left ``mod`` ill formed (unless in
    `unchecked_rewrites`)."""
    if _CHECKED.get():
        relax.analysis.well_formed(mod)


def relax_functions(mod: tvm.IRModule) -> list[tuple[tvm.ir.GlobalVar, relax.Function]]:
    """The module's Relax functions sorted by name: the outer loop of graph order."""
    return sorted(((gv, func) for gv, func in mod.functions_items()
                   if isinstance(func, relax.Function)), key=lambda item: item[0].name_hint)


def op_name(expr) -> str | None:
    """The name of the Relax op ``expr`` calls (``relax.nn.relu``), or None for anything else."""
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None


def tensor_dtype(expr) -> str | None:
    """The element type of a tensor-typed expression, None when unknown or not a tensor."""
    ty = expr.ty
    if isinstance(ty, relax.TensorType) and ty.dtype is not None:
        return str(ty.dtype.dtype)
    return None


def is_float(dtype: str | None) -> bool:
    """Whether ``dtype`` is a floating-point type (where exp, round, sigmoid, tanh are defined
    as the source model means them; on integers they are ill-typed or meaningless)."""
    return dtype is not None and dtype.startswith(("float", "bfloat"))


def static_shape(expr) -> tuple[int, ...] | None:
    """The shape of a tensor-typed expression when every extent is a constant, else None."""
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    values = list(ty.shape.values)
    if not all(isinstance(v, prim.IntImm) for v in values):
        return None
    return tuple(int(v.value) for v in values)


def calls_to(*names: str) -> Matcher:
    """A matcher for calls to any of the named Relax ops."""
    wanted = frozenset(names)
    return lambda call, _scope: op_name(call) in wanted


def source_location(call: relax.Call) -> str:
    """Where the call came from, when its span says (TVMScript sets file:line spans; the
    TVM 0.27 ONNX and TFLite importers set none, so imported models have no source name)."""
    span = call.span
    if span is None or span.source_name is None:
        return ""
    return f"{span.source_name.name}:{span.line}"


@relax.expr_functor.visitor
class _BindingCollector(relax.PyExprVisitor):
    """Collects every ``VarBinding`` of a function in program order, nested scopes included."""

    def __init__(self):
        self.bindings: list[relax.VarBinding] = []

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        self.bindings.append(binding)
        super().visit_var_binding_(binding)


@relax.expr_functor.visitor
class _UseCounter(relax.PyExprVisitor):
    """Counts how often each variable is used (read) in a function."""

    def __init__(self):
        self.uses: Counter = Counter()

    def visit_var_(self, var: relax.Var) -> None:
        self.uses[var] += 1

    def visit_dataflow_var_(self, var: relax.DataflowVar) -> None:
        self.uses[var] += 1


class FunctionScope:
    """The bindings of one Relax function and what they compute, for matchers to consult."""

    def __init__(self, name: str, func: relax.Function):
        self.name = name
        self.func = func
        collector = _BindingCollector()
        collector.visit_expr(func)
        self.bindings = collector.bindings
        self._values = {b.var: b.value for b in self.bindings}
        self._vars = {b.value: b.var for b in self.bindings}
        self._uses: Counter | None = None
        self._memo: dict = {}
        # TVM's convention (e.g. from_onnx(keep_params_in_input=True)): parameters after the
        # first ``num_input`` ones are the model's weights.
        num_input = func.attrs["num_input"] if func.attrs and "num_input" in func.attrs \
            else len(func.params)
        self._weights = set(list(func.params)[int(num_input):])
        self._constant: dict = {}

    def value_of(self, expr):
        """The value ``expr`` is bound to when it is a variable bound in this function, else
        None (function parameters, constants, anything else)."""
        return self._values.get(expr) if isinstance(expr, relax.Var) else None

    def var_of(self, value) -> relax.Var | None:
        """The variable a binding value (the very object) is bound to, or None."""
        return self._vars.get(value)

    def uses(self, var: relax.Var) -> int:
        """How many times ``var`` is read in the function (binding sites not counted)."""
        if self._uses is None:
            counter = _UseCounter()
            counter.visit_expr(self.func)
            self._uses = counter.uses
        return self._uses[var]

    def memo(self, key, compute: Callable[["FunctionScope"], object]):
        """``compute(self)``, computed once per scope: analyses that several matchers consult
        (the function's activation layers, its weight layers) run once per function."""
        if key not in self._memo:
            self._memo[key] = compute(self)
        return self._memo[key]

    def is_constant(self, expr) -> bool:
        """Whether ``expr`` is computed from constants and weights only (not from the model's
        input): how a dense layer's weight operand is told from an activation."""
        if isinstance(expr, (Constant, relax.ShapeExpr, StringImm)):  # prim immediates too
            return True
        if isinstance(expr, relax.Var):
            if expr in self._weights:
                return True
            if expr not in self._constant:
                value = self._values.get(expr)
                self._constant[expr] = value is not None and self.is_constant(value)
            return self._constant[expr]
        if isinstance(expr, relax.Call):
            return isinstance(expr.op, tvm.ir.Op) and all(map(self.is_constant, expr.args))
        if isinstance(expr, relax.Tuple):
            return all(map(self.is_constant, expr.fields))
        if isinstance(expr, relax.TupleGetItem):
            return self.is_constant(expr.tuple_value)
        return False


def coverage_total(mod: tvm.IRModule) -> int:
    """How many Relax op calls the module's Relax functions bind: the layer-coverage
    denominator shared by every graph-level operator."""
    return sum(op_name(b.value) is not None
               for gv, func in relax_functions(mod)
               for b in FunctionScope(gv.name_hint, func).bindings)


@dataclass(frozen=True)
class _Candidate:
    site: Site
    var: relax.Var
    scope: FunctionScope


class GraphOperator:
    """An operator that rewrites the bindings of the op calls ``matcher`` accepts.

    Subclasses say when a site cannot be rewritten (``skip_reason``: the mutant would be
    ill-typed or would not change anything) and how to rewrite it (``rewrite``: the new value of
    the binding, emitting any helper bindings through ``builder``).
    """

    def __init__(self, matcher: Matcher):
        self.matcher = matcher

    def skip_reason(self, call: relax.Call, params: dict) -> str | None:
        """Why this site must be left alone, or None when it can be rewritten."""
        return None

    def rewrite(self, builder: relax.BlockBuilder, call: relax.Call, name: str,
                params: dict) -> relax.Expr:
        """The new value for the binding of ``call`` to the variable called ``name``."""
        raise NotImplementedError

    def skip_reason_at(self, binding: relax.VarBinding, scope: FunctionScope,
                       params: dict) -> str | None:
        """`skip_reason` for operators that need the binding and its function's analyses
        (a pattern spanning several bindings); by default the call alone decides."""
        return self.skip_reason(binding.value, params)

    def site_detail(self, binding: relax.VarBinding, scope: FunctionScope) -> str:
        """What the site is beyond its op, appended to its description (e.g. the activation
        a multi-op pattern computes); empty by default."""
        return ""

    def rewrite_at(self, builder: relax.BlockBuilder, binding: relax.VarBinding,
                   call: relax.Call, scope: FunctionScope, params: dict) -> relax.Expr:
        """`rewrite` with the binding and its function's scope; ``call`` is the binding's
        value after the mutator visited it."""
        return self.rewrite(builder, call, binding.var.name, params)

    # The three methods `OperatorSpec.implementation` provides.

    def find_sites(self, mod: tvm.IRModule, params: dict) -> list[Site]:
        return [c.site for c in self._candidates(mod)]

    def coverage_total(self, mod: tvm.IRModule) -> int:
        return coverage_total(mod)

    def apply(self, mod: tvm.IRModule, sites: list[Site], params: dict):
        by_id = {c.site.id: c for c in self._candidates(mod)}
        missing = [s.id for s in sites if s.id not in by_id]
        if missing:
            raise OperatorError(f"no such site in this module: {', '.join(missing)}")
        targets = {by_id[s.id].var: (s, by_id[s.id].scope) for s in sites}
        rewriter = _SiteRewriter(mod, self, targets, params)
        for gv, func in relax_functions(mod):
            if any(s.function == gv.name_hint for s in sites):
                rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
        if not rewriter.applied:
            return mod, [], rewriter.skipped
        new_mod = rewriter.builder_.get()
        check_well_formed(new_mod)
        return new_mod, rewriter.applied, rewriter.skipped

    def _candidates(self, mod: tvm.IRModule) -> list[_Candidate]:
        """Every matching binding in graph order, as a site with a stable ID and a description
        naming the op, its position among all calls of that op, and the binding. Those of
        the last module asked about are kept: a campaign finds an operator's sites and then
        applies it, site group by site group, to the same original module."""
        last = getattr(self, "_last_candidates", None)
        if last is not None and last[0].same_as(mod):
            return last[1]
        candidates = self._find_candidates(mod)
        self._last_candidates = (mod, candidates)
        return candidates

    def _find_candidates(self, mod: tvm.IRModule) -> list[_Candidate]:
        matched, calls_seen = [], Counter()
        for gv, func in relax_functions(mod):
            scope = FunctionScope(gv.name_hint, func)
            names_seen = Counter()
            for binding in scope.bindings:
                names_seen[binding.var.name] += 1
                name = op_name(binding.value)
                if name is None:
                    continue
                calls_seen[name] += 1
                if self.matcher(binding.value, scope):
                    repeat = names_seen[binding.var.name]
                    site_id = f"{gv.name_hint}/{binding.var.name}" + \
                        (f"#{repeat}" if repeat > 1 else "")
                    matched.append((gv.name_hint, site_id, binding, name, calls_seen[name],
                                    scope, self.site_detail(binding, scope)))
        candidates = []
        for index, (function, site_id, binding, name, position, scope, detail) \
                in enumerate(matched):
            where = source_location(binding.value)
            description = (f"{name} call {position} of {calls_seen[name]}, bound to "
                           f"{binding.var.name} in {function}"
                           + (f": {detail}" if detail else "")
                           + (f" (source {where})" if where else ""))
            candidates.append(_Candidate(
                Site(index, site_id, description, function, kind=name), binding.var, scope))
        return candidates


@relax.expr_functor.mutator
class _SiteRewriter(relax.PyExprMutator):
    """Re-emits every binding unchanged except the targeted ones, which get the operator's
    new value bound to the same variable."""

    def __init__(self, mod: tvm.IRModule, operator: GraphOperator, targets: dict,
                 params: dict):
        super().__init__(mod)
        self.operator = operator
        self.targets = targets
        self.params = params
        self.applied: list[Site] = []
        self.skipped: list[tuple[Site, str]] = []

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        target = self.targets.get(binding.var)
        if target is None:
            super().visit_var_binding_(binding)
            return
        site, scope = target
        reason = self.operator.skip_reason_at(binding, scope, self.params)
        if reason is not None:
            self.skipped.append((site, reason))
            super().visit_var_binding_(binding)
            return
        call = self.visit_expr(binding.value)
        value = self.builder_.normalize(
            self.operator.rewrite_at(self.builder_, binding, call, scope, self.params))
        if not tvm_ffi.structural_equal(value.ty, binding.var.ty):
            raise RuntimeError(f"mutation at {site.id} changed its type from {binding.var.ty} "
                               f"to {value.ty}: a bug in the operator")
        self.builder_.emit_normalized(relax.VarBinding(binding.var, value))
        self.applied.append(site)


@relax.expr_functor.mutator
class _BindingDropper(relax.PyExprMutator):
    """Re-emits every binding except those of the variables in ``dropped``."""

    def __init__(self, mod: tvm.IRModule, dropped: set):
        super().__init__(mod)
        self.dropped = dropped

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        if binding.var not in self.dropped:
            super().visit_var_binding_(binding)


def drop_unused(mod: tvm.IRModule, candidates: set) -> tvm.IRModule:
    """``mod`` without the bindings of ``candidates`` that nothing uses any more (repeatedly,
    so a chain a rewrite left behind goes as a whole). Only candidates are touched: dead code
    the model had before is not the mutation's to remove."""
    for gv, func in relax_functions(mod):
        pending = {b.var for b in FunctionScope(gv.name_hint, func).bindings} & set(candidates)
        dropped: set = set()
        while pending:
            counter = _UseCounter()
            counter.visit_expr(_BindingDropper(mod, dropped).visit_expr(func))
            unused = {v for v in pending if counter.uses[v] == 0}
            if not unused:
                break
            dropped |= unused
            pending -= unused
        if dropped:
            dropper = _BindingDropper(mod, dropped)
            dropper.builder_.update_func(gv, dropper.visit_expr(func))
            mod = dropper.builder_.get()
    return mod
