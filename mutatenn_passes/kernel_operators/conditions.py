"""Conditional Statements: mutate the comparisons that decide which branch a kernel takes.

TIR holds a condition in three places, and every operator here covers all three:

* ``IfThenElse`` statements (``if c: ...``; bounds guards, reduction-init guards after
  lowering),
* ``if_then_else(c, a, b)`` calls (padding: read the input or the pad value),
* ``Select(c, a, b)`` expressions (both branches evaluated, one picked),

and, before lowering, a fourth: the predicate of an S-TIR block (``T.where(c)``), which is how
scheduled GPU kernels guard their bounds until lowering turns it into an ``IfThenElse``.

Each site carries the holder as its ``Site.kind`` and the ``kinds`` parameter restricts which
holders are searched. A comparison operator's sites are the comparison nodes of its type inside
the condition of a holder (``1 <= i and i < 57`` holds one ``<`` and one ``<=``); a comparison
nested in a holder's *value* (``if_then_else(c, x < y, ...)``) belongs to that holder only if it
is itself inside a condition. ``cond_negate``'s sites are the conditions themselves.

Comparisons are matched as they appear in the IR, not up to mirroring: TVM's simplifier
rewrites ``a > b`` as ``b < a`` and ``a >= b`` as ``b <= a``, so after any simplification the
``>``/``>=`` forms are rare and their mutants are reached through the ``<``/``<=`` operators
(``cond_lt_to_gt`` on ``b < a`` gives ``b > a``, which is ``cond_gt_to_lt`` on ``a > b``).
Matching both forms would list the same mutant twice under two operators.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.ir import prim

from ..operator_spec import OperatorSpec, Param
from .base import (KernelOperatorBase, SiteScan, SkipSite, count_in_kernel, kernels,
                   map_kernel)
from .params import NonZeroFloat

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Conditional Statements"

IF_STMT, IF_CALL, SELECT, WHERE = "IfThenElse", "if_then_else", "Select", "where"
#: The condition holders, in the order the ``kinds`` parameter documents them.
CONDITION_KINDS = (IF_STMT, IF_CALL, SELECT, WHERE)
COMPARISONS = (prim.LT, prim.LE, prim.GT, prim.GE, prim.EQ, prim.NE)
#: Node types that may hold a condition (of calls, only ``if_then_else`` does).
_HOLDER_TYPES = (tirx.IfThenElse, prim.Select, tvm.ir.Call, s_tir.SBlockRealize)


def parse_kinds(text: str) -> frozenset:
    """The holder kinds named by a ``kinds`` parameter value ('all' or a comma list)."""
    if text.strip() == "all":
        return frozenset(CONDITION_KINDS)
    return frozenset(k.strip() for k in text.split(",") if k.strip())


class ConditionKinds(str):
    """Parameter type of ``kinds``: 'all' or a comma list of `CONDITION_KINDS`."""

    def __new__(cls, value):
        text = str.__new__(cls, value)
        kinds = parse_kinds(text)
        if not kinds or kinds - set(CONDITION_KINDS):
            raise ValueError(f"not 'all' or a comma list of {', '.join(CONDITION_KINDS)}")
        return text


KINDS_PARAM = Param("kinds", "all", ConditionKinds,
                    "condition holders to search: 'all' or a comma list of "
                    + ", ".join(CONDITION_KINDS))


def condition_kind(node) -> str | None:
    """Which holder ``node`` is, or None if it holds no condition."""
    if isinstance(node, tirx.IfThenElse):
        return IF_STMT
    if isinstance(node, prim.Select):
        return SELECT
    if isinstance(node, s_tir.SBlockRealize):
        return WHERE
    if isinstance(node, tvm.ir.Call) and isinstance(node.op, tvm.ir.Op) \
            and node.op.name == "prim.if_then_else":
        return IF_CALL
    return None


def condition_of(node):
    if isinstance(node, tvm.ir.Call):
        return node.args[0]
    return node.predicate if isinstance(node, s_tir.SBlockRealize) else node.condition


def with_condition(node, condition):
    """``node`` with its condition replaced, everything else shared."""
    if isinstance(node, tirx.IfThenElse):
        return tirx.IfThenElse(condition, node.then_case, node.else_case, node.span)
    if isinstance(node, prim.Select):
        return prim.Select(condition, node.true_value, node.false_value, node.span)
    if isinstance(node, s_tir.SBlockRealize):
        return s_tir.SBlockRealize(node.iter_values, condition, node.block, node.span)
    return tvm.ir.Call(node.op, [condition, *node.args[1:]], node.attrs, node.ty_args,
                       node.span, ret_ty=node.ty)


def describe(expr, kind: str) -> str:
    text = " ".join(str(expr).split())
    if len(text) > 90:
        text = text[:87] + "..."
    return f"{text} in {kind} condition"


def map_conditions(func, kinds: frozenset, matched: tuple, scan: SiteScan, rewrite):
    """Number (and, where selected, ``rewrite``) the comparisons of the ``matched`` types
    inside the conditions of holders of ``kinds`` in ``func``'s kernel code."""
    def number(condition, kind):
        # One catch-all callback (conditions are small): structural_mutate inspects the
        # signature of each callback it is given, on every call, which cost more than the walk.
        def visit(node, mutator):
            if isinstance(node, matched):
                return mutator.default_mutate(
                    scan.site(kind, describe(node, kind), node, rewrite))
            if isinstance(node, _HOLDER_TYPES) and condition_kind(node):
                return node  # numbered when the outer walk reaches it
            return mutator.default_mutate(node)

        return tvm_ffi.structural_mutate(condition, visit)

    def on_holder(node, mutator):
        kind = condition_kind(node)
        if kind in kinds:
            condition = condition_of(node)
            new_condition = number(condition, kind)
            if not new_condition.same_as(condition):
                node = with_condition(node, new_condition)
        return mutator.default_mutate(node)

    return map_kernel(func, {t: on_holder for t in _HOLDER_TYPES})


class _ComparisonOperator(KernelOperatorBase):
    """Rewrites comparison nodes of one type found in holder conditions."""

    matched: type

    def rewrite(self, comparison, params):
        raise NotImplementedError

    def scan(self, func, params, scan):
        return map_conditions(func, parse_kinds(params["kinds"]), (self.matched,),
                              scan, lambda node: self.rewrite(node, params))

    def coverage_total(self, mod):
        """Comparisons of any type in conditions of any holder."""
        total = 0
        for _, func in kernels(mod):
            scan = SiteScan()
            map_conditions(func, frozenset(CONDITION_KINDS), COMPARISONS, scan, None)
            total += len(scan.found)
        return total


class ComparisonSwap(_ComparisonOperator):
    """Replace one comparison type by another with the same operands."""

    def __init__(self, matched: type, replacement: type):
        self.matched = matched
        self.replacement = replacement

    def rewrite(self, comparison, params):
        return self.replacement(comparison.a, comparison.b, comparison.span)


class Threshold(_ComparisonOperator):
    """Move one side of a ``<`` by a constant: ``a < b`` becomes ``a < b + c`` (or ``a + c``,
    or ``- c``).

    Float operands take the constant in their own type. Integer operands take a whole-number
    constant in their own type (the off-by-``c`` mutant; like any integer addition it wraps at
    the type's limits); a fractional constant such as the default 0.5 cannot be represented
    there, so both sides are compared in float64 instead, which is exact for integers below
    2**53 and keeps the meaning "``i < 57.5``". Boolean and pointer operands have no threshold
    and are skipped.
    """

    matched = prim.LT

    def rewrite(self, comparison, params):
        amount = params["amount"]
        a, b = comparison.a, comparison.b
        dtype = a.ty.dtype
        if dtype.is_float:
            constant = tirx.const(amount, dtype)
        elif dtype.is_integer:
            if float(amount).is_integer():
                constant = tirx.const(int(amount), dtype)
            else:
                wide = tvm_ffi.dtype("float64").with_lanes(dtype.lanes)
                a, b = prim.Cast(wide, a), prim.Cast(wide, b)
                constant = tirx.const(amount, wide)
        else:
            raise SkipSite(f"operands of type {dtype} have no threshold to move")
        # TIR's operators fold constants: 0.5 + 0.25 is one threshold, 0.75
        if params["action"] == "add":
            a, b = (a, b + constant) if params["side"] == "rhs" else (a + constant, b)
        else:
            a, b = (a, b - constant) if params["side"] == "rhs" else (a - constant, b)
        return prim.LT(a, b, comparison.span)


def _decides(node) -> bool:
    """Whether ``node`` holds a condition that is not a constant (every S-TIR block has the
    predicate ``True``; negating it would delete the block, not flip a decision)."""
    return condition_kind(node) is not None and not isinstance(condition_of(node), prim.IntImm)


class Negate(KernelOperatorBase):
    """Replace a whole condition ``c`` by ``not c``."""

    def scan(self, func, params, scan):
        kinds = parse_kinds(params["kinds"])

        def on_holder(node, mutator):
            kind = condition_kind(node)
            if kind in kinds and _decides(node):
                node = scan.site(kind, describe(condition_of(node), kind), node,
                                 lambda n: with_condition(n, prim.Not(condition_of(n))))
            return mutator.default_mutate(node)

        return map_kernel(func, {t: on_holder for t in _HOLDER_TYPES})

    def coverage_total(self, mod):
        """Every non-constant condition of any holder."""
        return sum(count_in_kernel(func, _HOLDER_TYPES, _decides) for _, func in kernels(mod))


_SWAPS = (
    # id, matched, replacement, from the paper, what it models
    ("cond_lt_to_le", prim.LT, prim.LE, True, "a < b becomes a <= b (admits the boundary)"),
    ("cond_lt_to_gt", prim.LT, prim.GT, True, "a < b becomes a > b (inverts the test)"),
    ("cond_gt_to_lt", prim.GT, prim.LT, True, "a > b becomes a < b (inverts the test)"),
    ("cond_gt_to_ge", prim.GT, prim.GE, True, "a > b becomes a >= b (admits the boundary)"),
    ("cond_le_to_lt", prim.LE, prim.LT, False, "a <= b becomes a < b (drops the boundary)"),
    ("cond_ge_to_gt", prim.GE, prim.GT, False, "a >= b becomes a > b (drops the boundary)"),
    ("cond_eq_to_ne", prim.EQ, prim.NE, False, "a == b becomes a != b"),
    ("cond_ne_to_eq", prim.NE, prim.EQ, False, "a != b becomes a == b"),
)

_SYMBOL = {prim.LT: "<", prim.LE: "<=", prim.GT: ">", prim.GE: ">=", prim.EQ: "==",
           prim.NE: "!="}
_WHERE = ("in the condition of an IfThenElse statement, if_then_else call, Select or S-TIR "
          "block predicate")

for _id, _matched, _replacement, _paper, _doc in _SWAPS:
    OPERATORS.append(OperatorSpec(
        id=_id, level="kernel", category=CATEGORY, description=_doc,
        finds=f"each '{_SYMBOL[_matched]}' comparison node {_WHERE}, as written in the IR "
              "(no mirroring of a > b into b < a)",
        rewrites=f"the comparison into '{_SYMBOL[_replacement]}' with the same operands",
        from_paper=_paper, implementation=ComparisonSwap(_matched, _replacement),
        params=(KINDS_PARAM,)))

OPERATORS.append(OperatorSpec(
    id="cond_threshold", level="kernel", category=CATEGORY,
    description="a < b becomes a < b + c: move a comparison's threshold by a constant",
    finds=f"each '<' comparison node {_WHERE}",
    rewrites="one side plus (or minus) the constant; integer sides are compared in float64 "
             "when the constant is fractional, so i < 57 + 0.5 keeps its meaning",
    from_paper=True, implementation=Threshold(),
    params=(Param("amount", 0.5, NonZeroFloat, "the constant moved by (nonzero)"),
            Param("side", "rhs", str, "which side of '<' moves", ("rhs", "lhs")),
            Param("action", "add", str, "add or subtract the constant", ("add", "subtract")),
            KINDS_PARAM)))

OPERATORS.append(OperatorSpec(
    id="cond_negate", level="kernel", category=CATEGORY,
    description="c becomes not c: take the other branch of a condition",
    finds="each non-constant condition of an IfThenElse statement, if_then_else call, Select "
          "or S-TIR block predicate",
    rewrites="the whole condition into its logical negation",
    from_paper=False, implementation=Negate(), params=(KINDS_PARAM,)))
