"""`build()`: compile a model with extra passes slotted into TVM's normal pipeline.

This is the seam every mutation uses. Graph-level passes run on the imported Relax module,
before the target's default Relax pipeline (so they see `batch_norm`, `matmul`, ... as the
frontend emitted them). Kernel-level passes run inside the target's TIR pipeline, through a
wrapping pipeline (`tir_pipeline`): passes of phase ``s_tir`` run on the legalized (and, for
GPUs, scheduled, with cross-thread reductions lowered: see
`kernel_ir.lower_cross_thread_reductions`) S-TIR kernels before TVM's own TIR lowering,
passes of phase ``lowered`` run after it, just before host/device finalization and code
generation. TVM's pass list itself is never copied. A CUDA build ends with nvcc compiling the
generated kernels (`device_code`), which TVM itself defers to loading on a GPU.

`build_incremental` builds a mutant against an `OriginalBuild` (`prepare_original`): only the
kernels the passes changed (`mutant_kernels`) are compiled, and the executable calls the
original's already-compiled library for the others (`schemata` compiles the changed kernels
of many mutants together). Both builds run the same Relax lowering
(`kernel_ir.lower_relax`) and the same wrapping TIR pipeline (`tir_pipeline`).
"""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import tvm
import tvm_ffi
from tvm import relax

from .device_code import compile_device_code
from .errors import BuildError, MutateNNError, OperatorError
from .kernel_ir import KernelsByBody, bind_target, lower_kernels, lower_relax, tir_part
from .model import Model
from .segmented_lowering import SegmentedLowering
from .targets import TargetProfile, get_profile
from .threads import use_physical_cores
from .tir_pipeline import BuildRecord, passes_by_phase, tir_pipeline


def tvm_error_summary(exc: BaseException) -> str:
    """The line of a TVM error that says what went wrong.

    TVM's messages end with a traceback and, when long, with "(... N lines skipped ...)", so
    the last line is often useless; prefer the last ``SomethingError: ...`` line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line):
            return line
    useful = [line for line in lines if not re.match(r"^\(\.\.\. .* skipped", line)]
    return useful[0] if useful else type(exc).__name__


def _check_pass_levels(relax_passes, tir_passes) -> None:
    """A mutation pass in the wrong list would find nothing (or the wrong IR): say where it
    belongs before anything is compiled."""
    for passes, wanted, other in ((relax_passes, "graph", "tir_passes"),
                                  (tir_passes, "kernel", "relax_passes")):
        for p in passes:
            spec = getattr(p, "spec", None)  # a mutation pass (see mutation._pass_class)
            if spec is not None and spec.level != wanted:
                listed = "relax_passes" if wanted == "graph" else "tir_passes"
                raise OperatorError(f"{spec.id} is a {spec.level}-level operator: pass it "
                                    f"in {other}, not {listed}")


def build(model: Model, target="llvm-x86-64", relax_passes=(), tir_passes=(), *,
          lowered: tvm.IRModule | None = None):
    """Compile ``model`` for ``target`` (a profile name, path or `TargetProfile`).

    ``relax_passes`` run in order on the imported Relax module before the target's default
    Relax pipeline; ``tir_passes`` run inside the target's TIR pipeline at each pass's
    ``phase`` attribute (``s_tir`` when absent). ``lowered`` is the model's module already
    through `kernel_ir.lower_relax` for this target: kernel-level mutants of one model share
    it instead of lowering the Relax side again (it cannot be combined with ``relax_passes``).
    Returns an `Artifact`; a TVM failure is a `BuildError` with TVM's message.
    """
    _check_pass_levels(relax_passes, tir_passes)
    profile = get_profile(target)
    ok, why = profile.can_build()
    if not ok:
        raise BuildError(f"cannot build for {profile.name} here: {why}")
    if lowered is not None and relax_passes:
        raise BuildError("a pre-lowered module cannot take Relax passes: they run before "
                         "the Relax lowering")
    record = BuildRecord()
    start = time.perf_counter()
    target = profile.tvm_target()
    try:
        with tvm.transform.PassContext(opt_level=3):
            mod = tvm.transform.Sequential(list(relax_passes))(model.mod) if relax_passes \
                else model.mod
            record.relax_input = mod
            with tir_pipeline(target, list(tir_passes), record) as pipeline:
                # GPU kernels are scheduled (dlight) by the target's own Relax pipeline here.
                relax_lowered = lowered if lowered is not None else lower_relax(mod, profile)
                executable = tvm.compile(relax_lowered, target, relax_pipeline=None,
                                         tir_pipeline=pipeline)
            if profile.device == "cuda":  # TVM leaves the kernels as CUDA source: see device_code
                compile_device_code(executable, target)
    except MutateNNError:  # a bad selection or a misplaced pass: the user's error, as it is
        raise
    except Exception as exc:  # TVM raises many types; to the user all are build failures
        raise BuildError(f"building {model.name} for {profile.name} failed: "
                         f"{tvm_error_summary(exc)}") from exc
    return _artifact(model, profile, executable, record, time.perf_counter() - start)


def _artifact(model: Model, profile: TargetProfile, executable, record: BuildRecord,
              seconds: float):
    from .artifact import Artifact

    return Artifact(executable=executable, profile=profile, input=model.input,
                    output=model.output, preprocess=model.preprocess, labels=model.labels,
                    model_name=model.name, build_seconds=seconds, record=record)


# --- incremental builds ---------------------------------------------------------------------

def incremental_unavailable(profile: TargetProfile) -> str:
    """Why mutants for ``profile`` cannot be built incrementally ("" when they can).

    An incremental build links new kernels against the original's library loaded in this
    process, which needs an LLVM CPU target run here (not through RPC: a remote device needs
    one exported library, and the linked executable holds kernels of the same name twice)."""
    if profile.kind != "llvm" or profile.device != "cpu":
        return f"{profile.name} is not an LLVM CPU target"
    if profile.runner != "local":
        return f"{profile.name} runs through {profile.runner}, which needs one exported library"
    return ""


@dataclass
class OriginalBuild:
    """A model built without mutation for one target, kept to build its mutants against.

    ``relax`` is the model after the target's Relax lowering (`kernel_ir.lower_relax`),
    ``kernels`` its S-TIR kernels bound to the target, ``artifact`` the original's build and
    ``libraries`` its kernels, compiled and loaded in this process: one JIT-compiled library,
    or one per process that compiled them (`prepare_original`'s ``jobs``); none, with the
    reason in ``unavailable``, when mutants cannot be linked against them.
    """

    model: Model
    profile: TargetProfile
    relax: tvm.IRModule
    kernels: tvm.IRModule
    artifact: object
    libraries: list
    unavailable: str = ""
    _lowered_kernels: tvm.IRModule | None = field(default=None, repr=False)
    _segmented: SegmentedLowering | None = field(default=None, repr=False)
    _bodies: dict = field(default_factory=dict, repr=False)

    def kernel_bodies(self, lowered: bool) -> KernelsByBody:
        """The original's kernels (``lowered``: after TVM's TIR lowering) by body, made once:
        each mutant's changed kernels are looked up in it (`_changed_kernels`)."""
        if lowered not in self._bodies:
            base = self.lowered_kernels() if lowered else self.kernels
            self._bodies[lowered] = KernelsByBody(
                (gv.name_hint, func) for gv, func in base.functions_items())
        return self._bodies[lowered]

    def lowered_kernels(self) -> tvm.IRModule:
        """The kernels after TVM's TIR lowering (the ``lowered`` phase), computed once."""
        if self._lowered_kernels is None:
            self._lowered_kernels = lower_kernels(self.kernels, self.profile)
        return self._lowered_kernels

    def segmented_lowering(self) -> SegmentedLowering:
        """How this original lowers its graph mutants segment by segment, made once."""
        if self._segmented is None:
            with tvm.transform.PassContext(opt_level=3):  # as `prepare_original` lowers
                self._segmented = SegmentedLowering(self.model.mod, self.relax, self.profile)
        return self._segmented

    def lower_graph_mutant(self, relax_passes: list, from_cut: bool = False
                           ) -> tuple[tvm.IRModule, tvm.IRModule, int]:
        """The model with ``relax_passes`` applied, that through the target's Relax lowering,
        and the cut its ``main`` starts at (`SegmentedLowering.lower`; 0 unless ``from_cut``):
        only its segments that differ from the original's are lowered where the original can
        be cut (`segmented_lowering`, which checks the segments it lowers well formed, so
        mutation operators skip their check of the whole graph), else the whole graph."""
        # imported here: the graph operators load the C++ extension, which `import
        # mutatenn_passes` does not need (a checkout without it still imports)
        from .graph_operators.base import unchecked_rewrites

        segmented = self.segmented_lowering()
        with unchecked_rewrites() if not segmented.why else nullcontext():
            mod = tvm.transform.Sequential(relax_passes)(self.model.mod)
        lowered = segmented.lower(mod, from_cut)
        if lowered is None:
            if not segmented.why:
                relax.analysis.well_formed(mod)
            return mod, lower_relax(mod, self.profile), 0
        return (mod, *lowered)


def prepare_original(model: Model, target="llvm-x86-64", *,
                     lowered: tvm.IRModule | None = None, jobs: int = 1) -> OriginalBuild:
    """Build ``model`` for ``target`` unmutated and keep what `build_incremental` reuses.

    ``lowered`` is the model already through `kernel_ir.lower_relax` for this target, when the
    caller has it. The original's kernels are JIT-compiled now, so that processes forked
    afterwards inherit the machine code instead of compiling it again. ``jobs`` > 1 compiles
    them in that many processes forked from this one (`parallel_compile`: only for a
    single-threaded caller that runs no generated code, as the campaign's zygote), where
    mutants can link against them; the artifact's kernels are then calls into those
    libraries, and its ``record.mode`` says so (one process, and why, if that failed).
    """
    profile = get_profile(target)
    with tvm.transform.PassContext(opt_level=3):
        relax_mod = lowered if lowered is not None else lower_relax(model.mod, profile)
        kernels = bind_target(tir_part(relax_mod), profile)
    why = incremental_unavailable(profile)
    names = [gv.name_hint for gv in kernels.get_global_vars()]
    note = ""
    if not why and jobs > 1 and len(names) > 1:
        from .parallel_compile import compile_kernels

        start = time.perf_counter()
        try:
            libraries = compile_kernels(kernels, profile.tvm_target(), jobs)
        except Exception as exc:  # a build in one process has the last word
            note = f" (not in {jobs} processes: {tvm_error_summary(exc)})"
        else:
            artifact = _linked_artifact(model, profile, relax_mod, {}, libraries,
                                        BuildRecord(mode=f"full (kernels compiled in "
                                                         f"{len(libraries)} processes)"))
            artifact.build_seconds = time.perf_counter() - start
            return OriginalBuild(model=model, profile=profile, relax=relax_mod,
                                 kernels=kernels, artifact=artifact, libraries=libraries)
    artifact = build(model, profile, lowered=relax_mod)
    artifact.record.mode += note
    libraries = []
    if not why:
        imports = list(artifact.executable.mod.imports)
        if len(imports) == 1 and imports[0].kind == "llvm":
            libraries = [imports[0]]
            if names:
                libraries[0].get_function(names[0])  # JIT-compiles the whole library
        else:
            why = "the original's kernels are not one LLVM library"
    return OriginalBuild(model=model, profile=profile, relax=relax_mod, kernels=kernels,
                         artifact=artifact, libraries=libraries, unavailable=why)


def _linked_artifact(model: Model, profile: TargetProfile, relax_mod: tvm.IRModule,
                     symbols: dict, libraries: list, record: BuildRecord):
    """An artifact of ``relax_mod`` whose every kernel is called in ``libraries`` (by the
    symbol ``symbols`` gives it, else by its name), already compiled and loaded here: its
    executable holds no kernel, so it compiles in milliseconds and its VM is set up from the
    executable's module directly (`Executable.jit` would export and link the libraries it
    calls, compiling every kernel again, for nothing)."""
    mod = _calling_library(relax_mod, {}, symbols, libraries)
    target = profile.tvm_target()
    start = time.perf_counter()
    with tir_pipeline(target, (), BuildRecord()) as pipeline:
        executable = tvm.compile(mod, target, relax_pipeline=None, tir_pipeline=pipeline)
    art = _artifact(model, profile, executable, record, time.perf_counter() - start)
    use_physical_cores()  # as `Artifact` does, before TVM's thread pool exists
    art._vm = relax.VirtualMachine(executable.mod, art.device())
    return art


def build_incremental(original: OriginalBuild, relax_passes=(), tir_passes=(), *,
                      from_cut: bool = False):
    """Build ``original``'s model with extra passes, compiling only the kernels that change.

    The passes run on the same IR `build` would give them: ``relax_passes`` on the imported
    Relax module, then the target's Relax lowering; ``tir_passes`` on the kernels at their
    phase (the original's S-TIR, or its TIR after TVM's lowering). Every kernel whose name and
    body equal the original's is called from the original's library, already compiled; only
    the others go through TVM's TIR pipeline and code generation. Deterministic mutants give
    bit-identical outputs to `build` (tested). The artifact runs in this process; it cannot be
    exported (its library imports the original's, which has kernels of the same names).

    With ``from_cut``, the artifact's program starts at the first of the original's cuts
    where the mutant differs (``artifact.cut``; `segmented_lowering`, prefix reuse): it takes
    the original's activation there instead of the image.

    Falls back to `build` — and says why in ``artifact.record.mode`` — when the original has
    no reusable library or linking fails; a TVM failure of that full build is a `BuildError`.
    """
    if not original.libraries:
        return _full_build(original, relax_passes, tir_passes,
                           f"full ({original.unavailable})")
    start = time.perf_counter()
    try:
        with tvm.transform.PassContext(opt_level=3):
            executable, m = _link_changed_kernels(original, list(relax_passes),
                                                  list(tir_passes), from_cut)
    except Exception as exc:  # the full build has the last word
        return _full_build(original, relax_passes, tir_passes,
                           f"full (incremental failed: {tvm_error_summary(exc)})")
    art = _artifact(original.model, original.profile, executable, m.record,
                    time.perf_counter() - start)
    art.cut = m.cut
    return art


def _full_build(original: OriginalBuild, relax_passes, tir_passes, mode: str):
    art = build(original.model, original.profile, relax_passes, tir_passes,
                lowered=None if relax_passes else original.relax)
    art.record.mode = mode
    return art


@dataclass
class MutantKernels:
    """What a mutant changes in its original (`mutant_kernels`): its Relax program after
    lowering, the kernels to compile (name -> PrimFunc), the kernels equal to an original
    kernel under another name (name -> that name), whether the changed kernels are already
    through TVM's TIR lowering (``lowered`` phase), the build record, and the cut the Relax
    program starts at (0: the model's input; see `build_incremental`'s ``from_cut``)."""

    relax: tvm.IRModule
    changed: dict
    renamed: dict
    kernels_lowered: bool
    record: BuildRecord
    cut: int = 0

    def cut_note(self) -> str:
        """What a build mode adds when the program starts at a cut ("" when it does not)."""
        return f", from cut {self.cut}" if self.cut else ""


def _link_changed_kernels(original: OriginalBuild, relax_passes: list, tir_passes: list,
                          from_cut: bool):
    """The incremental build proper: (executable, `MutantKernels`)."""
    m = mutant_kernels(original, relax_passes, tir_passes, from_cut)
    m.record.mode = f"incremental ({len(m.changed)} kernel(s) compiled: " \
        f"{m.record.compiled_shown()}){m.cut_note()}"
    mod = _calling_library(m.relax, m.changed, m.renamed, original.libraries)
    target = original.profile.tvm_target()
    with tir_pipeline(target, (), BuildRecord(),
                      kernels_lowered=m.kernels_lowered) as pipeline:
        executable = tvm.compile(mod, target, relax_pipeline=None, tir_pipeline=pipeline)
    return executable, m


def mutant_kernels(original: OriginalBuild, relax_passes: list, tir_passes: list,
                   from_cut: bool = False) -> MutantKernels:
    """Apply a mutant's passes to the IR `build` would give them (``relax_passes`` to the
    imported Relax module, then the target's Relax lowering; ``tir_passes`` to the original's
    kernels at their phase) and find what must be compiled (`MutantKernels`); with
    ``from_cut``, its Relax program from the first cut where it differs from the original
    (`build_incremental`). Call under a `tvm.transform.PassContext`."""
    profile, record = original.profile, BuildRecord(relax_input=original.model.mod)
    by_phase = passes_by_phase(tir_passes)
    relax_mod, kernels, cut = original.relax, original.kernels, 0
    if relax_passes:
        record.relax_input, relax_mod, cut = original.lower_graph_mutant(relax_passes,
                                                                         from_cut)
        kernels = bind_target(tir_part(relax_mod), profile)
    if by_phase["s_tir"]:
        kernels = tvm.transform.Sequential(by_phase["s_tir"])(kernels)
    record.tir["s_tir"] = kernels
    base = original.kernels
    if by_phase["lowered"]:
        unchanged = not relax_passes and not by_phase["s_tir"]
        lowered = original.lowered_kernels() if unchanged else lower_kernels(kernels, profile)
        kernels = record.tir["lowered"] = \
            tvm.transform.Sequential(by_phase["lowered"])(lowered)
        base = original.lowered_kernels()
    changed, renamed = _changed_kernels(kernels, base,
                                        original.kernel_bodies(bool(by_phase["lowered"])))
    record.compiled = sorted(changed)
    segmented = original.segmented_lowering() if from_cut and not relax_passes else None
    if segmented is not None and not segmented.why:
        cut = segmented.first_calling([*changed, *renamed])
        relax_mod = segmented.suffix(cut) if cut else relax_mod
    return MutantKernels(relax_mod, changed, renamed, bool(by_phase["lowered"]), record, cut)


def _changed_kernels(kernels: tvm.IRModule, base: tvm.IRModule,
                     by_body: KernelsByBody) -> tuple[dict, dict]:
    """The kernels of ``kernels`` that must be compiled (name -> PrimFunc), and those equal
    to a kernel of ``base`` (``by_body`` indexes it) under another name (name -> that name).

    A graph mutation changes how Relax fuses and numbers kernels (a ReLU replaced early in
    the graph renames every later ``fused_add4_relu1``), so a kernel is matched by its body,
    not only by its name. A twin whose name a compiled kernel takes is not reused: a call by
    that name would reach the new kernel.
    """
    before = {gv.name_hint: f for gv, f in base.functions_items()}
    changed, renamed = {}, {}
    for gv, func in kernels.functions_items():
        name = gv.name_hint
        if name in before and tvm_ffi.structural_equal(func, before[name]):
            continue
        twin = by_body.find(func)
        if twin is not None:
            renamed[name] = twin
        else:
            changed[name] = func
    for name, twin in list(renamed.items()):
        if twin in changed:
            changed[name] = kernels[name]
            del renamed[name]
    return changed, renamed


def _calling_library(relax_mod: tvm.IRModule, changed: dict, renamed: dict,
                     libraries: list) -> tvm.IRModule:
    """``relax_mod`` holding only the ``changed`` kernels (name -> PrimFunc): its calls of the
    other kernels become calls of `relax.ExternFunc` by the symbol ``renamed`` gives them
    (name -> symbol, else their own name), found at run time in ``libraries``, which join the
    module's ``external_mods``."""
    kernels = {gv.name_hint for gv, f in relax_mod.functions_items()
               if isinstance(f, tvm.tirx.PrimFunc)}
    redirect = _ExternKernels(relax_mod, {name: renamed.get(name, name)
                                          for name in kernels - set(changed)})
    functions = {}
    gvs = {gv.name_hint: gv for gv in relax_mod.get_global_vars()}
    for gv, func in relax_mod.functions_items():
        if isinstance(func, relax.Function):
            functions[gv] = redirect.visit_expr(func)
    for name, func in changed.items():
        functions[gvs.get(name) or tvm.ir.GlobalVar(name)] = func
    mod = tvm.IRModule(functions, attrs=relax_mod.attrs)
    external = list((dict(relax_mod.attrs) if relax_mod.attrs else {}).get("external_mods", []))
    return mod.with_attr("external_mods", [*external, *libraries])


@relax.expr_functor.mutator
class _ExternKernels(relax.PyExprMutator):
    """Replaces references to the kernels named in ``names`` (name -> library symbol) by
    `relax.ExternFunc`s of their symbols."""

    def __init__(self, mod: tvm.IRModule, names: dict[str, str]):
        super().__init__(mod)
        self.names = names

    def visit_global_var_(self, gv: tvm.ir.GlobalVar):
        symbol = self.names.get(gv.name_hint)
        return gv if symbol is None else relax.ExternFunc(symbol)
