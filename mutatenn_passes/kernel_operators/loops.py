"""Kernel Variables & Stores, loop half: change how far a kernel's loops and launches reach.

The paper's ``change_loop_threshold`` becomes three operators on TIR ``For`` loops, which run
``for v in [min, min + extent)``:

* ``loop_extent_dec`` / ``loop_extent_inc``: ``extent -/+ amount`` (the last iterations are
  dropped, or one more runs past the end: an out-of-bounds access that may crash);
* ``loop_min_inc``: ``min + amount`` with ``extent - amount``, i.e. the *lower* bound rises and
  the upper bound stays (the first iterations are skipped). Raising ``min`` alone would shift
  the whole range instead.

Loops bound to GPU threads (``ForKind.THREAD_BINDING``, before lowering) are not loop sites:
the same thread tag is usually bound by several loops of one kernel, and changing one of them
describes no launch at all. Launch dimensions are ``thread_extent_change``'s sites instead, the
paper's ``change_block``: after lowering, each ``thread_extent`` attribute of a device kernel
(``blockIdx.x``, ``threadIdx.x``, ...) says how many blocks/threads run. Those attributes
exist only in GPU (CUDA) builds and only at the ``lowered`` phase; an llvm or c build, or the
``s_tir`` phase, has no site. Since host/device splitting has already run there, the host's
``call_ffi_kernel`` launch argument for the same dimension is changed together with the
kernel's attribute, so the kernel is really launched with the new size.
"""

from __future__ import annotations

import collections

import tvm
import tvm_ffi
from tvm import tirx
from tvm.ir import prim

from ..operator_spec import OperatorSpec, Param
from .base import KernelOperatorBase, SkipSite, count_in_kernel, kernels, map_kernel
from .params import NonZeroInt, PositiveInt

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Kernel Variables & Stores"
THREAD_EXTENT = "thread_extent"
ALLREDUCE = "tirx.tvm_thread_allreduce"
#: The loop annotation that bounds TVM's automatic unrolling inside a loop (0: none).
NO_UNROLL = "pragma_auto_unroll_max_step"


def offset(expr, amount: int):
    """``expr + amount`` in ``expr``'s type, folded when ``expr`` is a constant."""
    if isinstance(expr, prim.IntImm):
        return tirx.const(expr.value + amount, expr.ty.dtype)
    if amount >= 0:
        return prim.Add(expr, tirx.const(amount, expr.ty.dtype))
    return prim.Sub(expr, tirx.const(-amount, expr.ty.dtype))


def _show(expr) -> str:
    """A loop bound for a site description: constants as plain numbers (not T.int64(14))."""
    return str(expr.value) if isinstance(expr, prim.IntImm) else " ".join(str(expr).split())


def _with_range(loop, min_, extent):
    return tirx.For(loop.loop_var, min_, extent, loop.kind, loop.body, loop.thread_binding,
                    loop.annotations, loop.step, loop.span)


def _is_loop_site(loop) -> bool:
    return loop.kind != tirx.ForKind.THREAD_BINDING


class _LoopBound(KernelOperatorBase):
    """Rewrites the range of ``For`` loops; subclasses say how."""

    def new_range(self, loop, amount: int):
        raise NotImplementedError

    def rewrite(self, loop, amount: int):
        """``loop`` with its new range."""
        return _with_range(loop, *self.new_range(loop, amount))

    def scan(self, func, params, scan):
        amount = params["amount"]

        def on_for(loop, mutator):
            if _is_loop_site(loop):
                kind = tirx.ForKind(loop.kind).name.lower()
                low, extent = _show(loop.min), _show(loop.extent)
                description = f"for {loop.loop_var.name} in [{low}, {low} + {extent}) ({kind})"
                loop = scan.site(kind, description, loop, lambda n: self.rewrite(n, amount))
            return mutator.default_mutate(loop)

        return map_kernel(func, {tirx.For: on_for})

    def coverage_total(self, mod):
        """Every loop in kernel code, thread bindings included."""
        return sum(count_in_kernel(func, (tirx.For,)) for _, func in kernels(mod))


def _check_shrink(loop, amount):
    if not isinstance(loop.extent, prim.IntImm):
        return
    if loop.extent.value < amount:
        raise SkipSite(f"the loop runs {loop.extent.value} time(s): it cannot lose {amount}")
    if loop.kind == tirx.ForKind.VECTORIZED and loop.extent.value == amount:
        # a scheduled kernel's vector loop of one lane: TVM cannot vectorize an empty loop
        # (the build fails in VectorizeLoop), so the mutant is known not to build
        raise SkipSite(f"a vectorized loop of {amount} iteration(s) cannot lose them all")


class ExtentDec(_LoopBound):
    """``loop_extent_dec``: the last ``amount`` iterations are dropped."""

    def new_range(self, loop, amount):
        _check_shrink(loop, amount)
        return loop.min, offset(loop.extent, -amount)


def _encloses_allreduce(loop) -> bool:
    """Whether ``loop`` holds a GPU cross-thread reduction (a ``tvm_thread_allreduce`` call,
    made by ``LowerCrossThreadReduction`` before the ``s_tir`` phase on GPUs)."""
    def probe(call):
        if isinstance(call.op, tvm.ir.Op) and call.op.name == ALLREDUCE:
            return tvm_ffi.VisitInterrupt(True)
        return None

    return tvm_ffi.structural_walk(loop.body, (tvm.ir.Call, probe), order="pre") is not None


class ExtentInc(_LoopBound):
    """``loop_extent_inc``: ``amount`` iterations run past the end.

    A loop around a GPU cross-thread reduction is also kept rolled: dlight leaves such loops
    (one iteration) under a thread binding's ``pragma_auto_unroll_max_step``, TVM would unroll
    the longer loop into copies of the reduction, and its ``LowerThreadAllreduce`` cannot lower
    copies (undefined ``red_buf``; seen on ShuffleNet's ``avg_pool2d3``). Unrolling is a code
    generation choice, so the mutant means the same either way.
    """

    def new_range(self, loop, amount):
        return loop.min, offset(loop.extent, amount)

    def rewrite(self, loop, amount):
        grown = super().rewrite(loop, amount)
        if not _encloses_allreduce(loop):
            return grown
        return tirx.For(grown.loop_var, grown.min, grown.extent, grown.kind, grown.body,
                        grown.thread_binding, {**grown.annotations, NO_UNROLL: 0}, grown.step,
                        grown.span)


class MinInc(_LoopBound):
    """``loop_min_inc``: the first ``amount`` iterations are skipped.

    TVM launches a parallel loop only from 0 (code generation fails on any other start), so
    a parallel loop keeps its start and runs ``extent - amount`` times with its body reading
    the loop variable shifted by ``amount``: the same iterations as ``[min + amount, min +
    extent)``."""

    def new_range(self, loop, amount):
        _check_shrink(loop, amount)
        return offset(loop.min, amount), offset(loop.extent, -amount)

    def rewrite(self, loop, amount):
        if loop.kind != tirx.ForKind.PARALLEL:
            return super().rewrite(loop, amount)
        _check_shrink(loop, amount)
        var = loop.loop_var
        fresh = tirx.Var(var.name, var.ty.dtype)
        start = fresh if isinstance(loop.min, prim.IntImm) and loop.min.value == 0 else \
            prim.Add(fresh, loop.min)
        shifted = offset(start, amount)

        def on_var(node):
            return shifted if node.same_as(var) else node

        body = tvm_ffi.structural_map(loop.body, [(tvm.ir.expr.Var, on_var)])
        return tirx.For(fresh, loop.min, offset(loop.extent, -amount), loop.kind, body,
                        loop.thread_binding, loop.annotations, loop.step, loop.span)


def _launch_counts(func) -> collections.Counter:
    """How many thread_extent attributes bind each thread tag in ``func``'s kernel code."""
    counts = collections.Counter()

    def record(attr, mutator):
        if attr.attr_key == THREAD_EXTENT:
            counts[attr.node.thread_tag] += 1
        return mutator.default_mutate(attr)

    map_kernel(func, {tirx.AttrStmt: record})
    return counts


def _launch_symbol(gv, func) -> str:
    return str(func.attrs["global_symbol"]) if func.attrs and "global_symbol" in func.attrs \
        else gv.name_hint


class ThreadExtentChange(KernelOperatorBase):
    """Changes one launch dimension of a device kernel, in the kernel and at its launch."""

    def scan(self, func, params, scan):
        delta = params["delta"]
        launches = _launch_counts(func)

        def rewrite(attr):
            tag = attr.node.thread_tag
            if launches[tag] > 1:
                raise SkipSite(f"{tag} is launched {launches[tag]} times in this kernel: "
                               "changing one would not match the kernel's single launch size")
            if isinstance(attr.value, prim.IntImm) and attr.value.value + delta < 1:
                raise SkipSite(f"{tag} would launch {attr.value.value + delta} threads/blocks")
            value = offset(attr.value, delta)
            iv = attr.node
            node = tirx.IterVar(tvm.ir.Range.from_min_extent(iv.dom.min, value), iv.var,
                                iv.iter_type, iv.thread_tag, iv.span) if iv.dom else iv
            scan.effects.append((tag, delta))
            return tirx.AttrStmt(node, attr.attr_key, value, attr.body, attr.span)

        def on_attr(attr, mutator):
            if attr.attr_key == THREAD_EXTENT:
                attr = scan.site(attr.node.thread_tag,
                                 f"{attr.node.thread_tag} launches {attr.value}", attr, rewrite)
            return mutator.default_mutate(attr)

        return map_kernel(func, {tirx.AttrStmt: on_attr})

    def after_apply(self, mod, effects):
        """Launch each changed kernel with its new size: rewrite the host's launch calls."""
        by_symbol = {_launch_symbol(gv, mod[gv]): changes for gv, changes in effects.items()}
        for gv, func in kernels(mod):
            new_func = _relaunch(func, by_symbol)
            if not new_func.same_as(func):
                mod.update_func(gv, new_func)
        return mod

    def coverage_total(self, mod):
        """Every thread_extent attribute in kernel code."""
        return sum(count_in_kernel(func, (tirx.AttrStmt,), lambda a: a.attr_key == THREAD_EXTENT)
                   for _, func in kernels(mod))


def _relaunch(func, launches: dict):
    """``func`` with the launch sizes of the kernels in ``launches`` changed accordingly."""

    def on_call(call, mutator):
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "tirx.call_ffi_kernel"
                and call.args and isinstance(call.args[0], tvm.ir.StringImm)
                and call.args[0].value in launches):
            return mutator.default_mutate(call)
        params = list(call.attrs.launch_params)
        args = list(call.args)
        first = len(args) - len(params)
        for tag, delta in launches[call.args[0].value]:
            i = first + params.index(tag)
            args[i] = offset(args[i], delta)
        return tvm.ir.Call(call.op, args, call.attrs, call.ty_args, call.span, ret_ty=call.ty)

    body = tvm_ffi.structural_mutate(func.body, [(tvm.ir.Call, on_call)])
    return func if body.same_as(func.body) else func.with_body(body)


_AMOUNT = Param("amount", 1, PositiveInt, "how many iterations the bound moves by (at least 1)")

OPERATORS.append(OperatorSpec(
    id="loop_extent_dec", level="kernel", category=CATEGORY,
    description="a loop runs amount fewer iterations (its last ones)",
    finds="each For loop in kernel code except GPU thread bindings",
    rewrites="extent into extent - amount (skipped when the loop has fewer iterations)",
    from_paper=True, implementation=ExtentDec(), params=(_AMOUNT,)))

OPERATORS.append(OperatorSpec(
    id="loop_extent_inc", level="kernel", category=CATEGORY,
    description="a loop runs amount more iterations, past its end",
    finds="each For loop in kernel code except GPU thread bindings",
    rewrites="extent into extent + amount (reads/writes past the end; may crash when run)",
    from_paper=True, implementation=ExtentInc(), params=(_AMOUNT,)))

OPERATORS.append(OperatorSpec(
    id="loop_min_inc", level="kernel", category=CATEGORY,
    description="a loop starts amount iterations late and ends where it did",
    finds="each For loop in kernel code except GPU thread bindings",
    rewrites="min into min + amount and extent into extent - amount",
    from_paper=True, implementation=MinInc(), params=(_AMOUNT,)))

OPERATORS.append(OperatorSpec(
    id="thread_extent_change", level="kernel", category=CATEGORY,
    description="a GPU kernel launches delta more (or fewer) blocks or threads in one dimension",
    finds="each thread_extent attribute of a device kernel (CUDA builds, lowered phase only)",
    rewrites="the extent into extent + delta, in the kernel and in the host's launch call",
    from_paper=True, implementation=ThreadExtentChange(), default_phase="lowered",
    params=(Param("delta", -1, NonZeroInt, "change of the launch size (nonzero)"),)))
