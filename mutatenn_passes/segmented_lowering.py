"""Graph mutants lowered one segment at a time: a mutant of one binding lowers that binding's
segment of the graph, not the whole model again.

A graph-level mutant differs from its original in a binding or two of ``main``, yet the target's
Relax pipeline (`kernel_ir.relax_pipeline`) legalizes, prepares, fuses and schedules the whole
graph for each mutant — most of a graph mutant's build. This module cuts ``main`` into
segments at the points where one tensor alone is live and the next call is one that fusion
never merges with its producer (a convolution, a matrix product, a pooling: `ANCHORS`), runs
the pipeline's kernel phase (`kernel_ir.relax_phases`) on each segment as a function of its
own, and stitches the lowered segments back into one ``main`` for the VM phase. Segments equal
to one of the original's are taken lowered from the original's; only the others are lowered.

Cutting must not change the program: for the original, the stitched lowering is checked to be
structurally equal to the whole lowering (same kernels, same names, same calls) before any
mutant uses it, and when it is not — a model whose fusion crosses a cut, a ``main`` that is not
one dataflow block — every mutant of that original is lowered whole, as before. A mutant's
kernels that equal one of the original's take the original kernel's name (so the build links
them from the original's library); its new kernels keep the name fusion gave them, made unique.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax

from .kernel_ir import KernelsByBody, relax_phases
from .targets import TargetProfile

#: Operators that begin a fused kernel: TVM's fusion merges what follows them into them,
#: never what precedes them, so a cut just before one keeps the fusion of the whole graph.
ANCHORS = frozenset({"relax.nn.conv1d", "relax.nn.conv2d", "relax.nn.conv3d",
                     "relax.nn.conv2d_transpose", "relax.matmul", "relax.nn.max_pool2d",
                     "relax.nn.avg_pool2d"})

#: Fewest bindings in a segment: each segment pays the pipeline's fixed cost once.
MIN_BINDINGS = 16


def split_main(mod: tvm.IRModule) -> list[relax.Function] | None:
    """``mod``'s ``main`` as a chain of functions, each taking the previous one's result (the
    first takes ``main``'s parameters; the last returns what ``main`` returns); None when
    ``mod`` holds other functions or ``main`` is not one dataflow block and its output."""
    if [gv.name_hint for gv in mod.get_global_vars()] != ["main"]:
        return None
    main = mod["main"]
    if not isinstance(main, relax.Function) or not isinstance(main.body, relax.SeqExpr) or \
            len(main.body.blocks) != 1 or \
            not isinstance(main.body.blocks[0], relax.DataflowBlock):
        return None
    bindings = list(main.body.blocks[0].bindings)
    cuts = _cuts(main, bindings)
    segments, start, inputs = [], 0, list(main.params)
    for end in cuts + [len(bindings)]:
        body = bindings[start:end]
        head = []
        if start:
            cut = bindings[start - 1].var
            inputs = [relax.Var(cut.name, cut.ty)]
            head = [relax.VarBinding(cut, inputs[0])]  # the cut's name, bound to the input
        if end == len(bindings):
            tail, result, ret = [], main.body.body, main.ret_ty
        else:
            last = body[-1].var
            result = relax.Var(last.name, last.ty)
            tail, ret = [relax.VarBinding(result, last)], last.ty
        segments.append(relax.BlockBuilder().normalize(relax.Function(
            inputs, relax.SeqExpr([relax.DataflowBlock(head + body + tail)], result), ret,
            main.is_pure, main.attrs)))
        start = end
    return segments


def _cuts(main: relax.Function, bindings: list) -> list[int]:
    """Indices of the bindings that begin a segment: after a binding whose result is all
    that is live, before an `ANCHORS` call (and the constant-only bindings, such as a
    quantized weight's dequantization, that come before it)."""
    last_use = {}
    for i, binding in enumerate(bindings):
        for var in relax.analysis.free_vars(binding.value):
            last_use[var] = i
    outputs = set(relax.analysis.free_vars(main.body.body))
    live, cuts, start = set(main.params), [], 0
    for i, binding in enumerate(bindings[:-1]):
        live.add(binding.var)
        live = {v for v in live if last_use.get(v, -1) > i or v in outputs}
        if live == {binding.var} and isinstance(binding.var.ty, relax.TensorType) and \
                i + 1 - start >= MIN_BINDINGS and _anchor_follows(bindings, i + 1):
            cuts.append(i + 1)
            start = i + 1
    return cuts


def _anchor_follows(bindings: list, start: int) -> bool:
    """Whether the first binding from ``start`` on that reads a variable is an `ANCHORS`
    call."""
    for binding in bindings[start:]:
        value = binding.value
        if relax.analysis.free_vars(value):
            return isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and \
                value.op.name in ANCHORS
    return False


@dataclass
class _Lowered:
    """One segment after the kernel phase: its function, calling kernels by their names in
    the stitched module, and the kernels it adds to the original's (name -> PrimFunc)."""

    main: relax.Function
    new_kernels: dict


@relax.expr_functor.mutator
class _CallRenamer(relax.PyExprMutator):
    """Replaces each kernel reference by the GlobalVar ``names`` gives its name."""

    def __init__(self, mod: tvm.IRModule, names: dict):
        super().__init__(mod)
        self.names = names

    def visit_global_var_(self, gv: tvm.ir.GlobalVar):
        return self.names.get(gv.name_hint, gv)


class SegmentedLowering:
    """Lowers graph mutants of one original segment by segment (see the module doc).

    ``model_mod`` is the original's imported Relax module and ``lowered`` its whole lowering
    for ``profile``; ``why`` says why mutants must be lowered whole (empty when they need not).
    Make it under the `tvm.transform.PassContext` the original was lowered in.
    """

    def __init__(self, model_mod: tvm.IRModule, lowered: tvm.IRModule,
                 profile: TargetProfile):
        self.profile = profile
        self.lowered = lowered
        self.why = ""
        self._kernel_vars = {gv.name_hint: gv for gv, f in lowered.functions_items()
                             if isinstance(f, tvm.tirx.PrimFunc)}
        self._by_body = KernelsByBody((name, lowered[gv])
                                      for name, gv in self._kernel_vars.items())
        self._segments: dict[int, list[tuple[relax.Function, _Lowered]]] = {}
        self._order: list[tuple[relax.Function, _Lowered]] = []  # the original's, in order
        self._suffixes: dict[int, tvm.IRModule] = {}
        self._calls: list[set[str]] = []  # the kernels each of the original's segments calls
        phases = relax_phases(profile)
        segments = split_main(model_mod) if phases else None
        if phases is None:
            self.why = f"{profile.name} is lowered in one piece (not a scheduled CPU " \
                "profile, or the lowering caches off)"
        elif segments is None or len(segments) < 2:
            self.why = "the graph has no place to cut"
        if self.why:
            return
        self._kernel_phase = tvm.transform.Sequential(phases[0])
        self._vm_phase = tvm.transform.Sequential(
            [relax.transform.CanonicalizeBindings(), *phases[1]])
        self._attrs = model_mod.attrs
        parts = [self._lower_segment(segment) for segment in segments]
        if any(part.new_kernels for part in parts) or \
                not tvm_ffi.structural_equal(self._stitch({"main": parts}), lowered):
            self.why = "lowering the graph in segments changes its fusion"
            return
        for segment, part in zip(segments, parts):
            self._segments.setdefault(tvm_ffi.structural_hash(segment), []).append(
                (segment, part))
        self._order = list(zip(segments, parts))

    @property
    def segment_count(self) -> int:
        """How many segments the original has (0 when it is lowered whole)."""
        return len(self._order)

    def lower(self, mod: tvm.IRModule,
              from_cut: bool = False) -> tuple[tvm.IRModule, int] | None:
        """``mod`` (a graph mutant of the original) through the profile's Relax pipeline,
        lowering only the segments the original has not, and the index of the cut its ``main``
        starts at: 0 (the model's input), or with ``from_cut`` the first of its segments that
        differs from the original's (see the module doc); None when it must be lowered whole
        (``why`` set, or ``mod`` cannot be cut). Each segment lowered is checked well formed
        first (``relax.analysis.well_formed`` raises), so that a mutant needs no check of
        the whole graph. Call under a `tvm.transform.PassContext`."""
        if self.why:
            return None
        segments = split_main(mod)
        if segments is None:
            return None
        start = self._first_change(segments) if from_cut else 0
        new: dict = {}  # the mutant's new kernels, across its segments: unique names
        used: set = set()  # the lowered segments taken so far (their ids)
        return self._stitch({"main": [self._known(segment, used) or
                                      self._lower_segment(segment, new)
                                      for segment in segments[start:]]}), start

    def _first_change(self, segments: list[relax.Function]) -> int:
        """The first of ``segments`` that differs from the original's at its place (the last
        place both have, when none differs: a run from there gives the original's output)."""
        for i, (mine, (theirs, _)) in enumerate(zip(segments, self._order)):
            if not tvm_ffi.structural_equal(mine, theirs):
                return i
        return min(len(segments), len(self._order)) - 1

    def first_calling(self, kernels) -> int:
        """The first of the original's segments that calls one of the kernels named in
        ``kernels`` (0 when none does)."""
        if not self._calls:
            for _, part in self._order:
                called: set[str] = set()
                relax.analysis.post_order_visit(
                    part.main, lambda e, c=called: c.add(e.name_hint)
                    if isinstance(e, tvm.ir.GlobalVar) else None)
                self._calls.append(called)
        wanted = set(kernels)
        return next((i for i, called in enumerate(self._calls) if called & wanted), 0)

    def suffix(self, start: int) -> tvm.IRModule:
        """The original from cut ``start`` on: its segments from there, stitched into a
        ``main`` that takes the activation at that cut (made once per cut)."""
        if start not in self._suffixes:
            self._suffixes[start] = self._stitch(
                {"main": [part for _, part in self._order[start:]]})
        return self._suffixes[start]

    def chain(self) -> tvm.IRModule:
        """The original's segments but the last as functions ``segment_<i>``, each taking the
        previous one's result (the first, the model's input): their results are the
        activations at the cuts."""
        return self._stitch({f"segment_{i}": [part]
                             for i, (_, part) in enumerate(self._order[:-1])})

    def _known(self, segment: relax.Function, used: set) -> _Lowered | None:
        """The original's lowered segment equal to ``segment`` that this stitch has not taken
        yet. Equal segments recur where a model repeats a block with equal weights (the onnx
        wheel's light ResNet50); each occurrence has its own lowered segment, whose variables
        may be defined once in a program."""
        for known, part in self._segments.get(tvm_ffi.structural_hash(segment), ()):
            if id(part) not in used and tvm_ffi.structural_equal(known, segment):
                used.add(id(part))
                return part
        return None

    def _lower_segment(self, segment: relax.Function, taken: dict | None = None) -> _Lowered:
        """The kernel phase on one segment; its kernels named as the original's equal ones,
        the others by names neither the original's kernels nor those in ``taken`` (a
        mutant's new kernels so far, which this adds to) have. A mutant's segment
        (``taken`` given) is checked well formed first."""
        mod = tvm.IRModule({"main": segment}, attrs=self._attrs)
        if taken is not None:
            relax.analysis.well_formed(mod)
        with self.profile.tvm_target():
            mod = self._kernel_phase(mod)
        names, new = {}, {}
        for gv, func in mod.functions_items():
            if not isinstance(func, tvm.tirx.PrimFunc):
                continue
            twin = self._by_body.find(func)
            if twin is not None:
                names[gv.name_hint] = self._kernel_vars[twin]
            else:
                name = self._unique(gv.name_hint, {**new, **(taken or {})})
                names[gv.name_hint] = relax.BlockBuilder().add_func(func, name)
                new[name] = func
        if taken is not None:
            taken.update(new)
        main = _CallRenamer(mod, names).visit_expr(mod["main"])
        return _Lowered(main, new)

    def _unique(self, name: str, taken: dict) -> str:
        """``name``, or ``name_1``, ``name_2`` ..., whichever no original kernel has."""
        candidate, n = name, 0
        while candidate in self._kernel_vars or candidate in taken:
            n += 1
            candidate = f"{name}_{n}"
        return candidate

    def _stitch(self, programs: dict[str, list[_Lowered]]) -> tvm.IRModule:
        """A module of one function per entry of ``programs`` (name -> segments), binding
        each segment's input to the previous one's result, with the kernels they call,
        through the VM phase."""
        functions: dict = {}
        for name, parts in programs.items():
            func = self._joined(parts)
            functions[relax.BlockBuilder().add_func(func, name)] = func
        new = {name: func for parts in programs.values() for part in parts
               for name, func in part.new_kernels.items()}

        def add_kernel(expr) -> None:
            if isinstance(expr, tvm.ir.GlobalVar) and expr.name_hint not in programs:
                name = expr.name_hint
                functions[expr] = new[name] if name in new else self.lowered[name]

        for func in list(functions.values()):
            relax.analysis.post_order_visit(func, add_kernel)
        with self.profile.tvm_target():
            return self._vm_phase(tvm.IRModule(functions, attrs=self._attrs))

    @staticmethod
    def _joined(parts: list[_Lowered]) -> relax.Function:
        """One function of ``parts`` in order, each one's input bound to the previous one's
        result."""
        bindings, result = [], None
        for part in parts:
            if result is not None:
                bindings.append(relax.VarBinding(part.main.params[0], result))
            bindings += list(part.main.body.blocks[0].bindings)
            result = part.main.body.body
        first, last = parts[0].main, parts[-1].main
        return relax.Function(first.params,
                              relax.SeqExpr([relax.DataflowBlock(bindings)], result),
                              last.ret_ty, last.is_pure, first.attrs)
