"""The kernels (TIR PrimFuncs) a model turns into for a target, without building it.

Kernel-level operators find their sites in these modules. `build()` runs the same Relax
lowering, so the module `kernel_module(model, target, "s_tir")` returns is the one the wrapping
TIR pipeline hands to ``s_tir``-phase passes, and ``"lowered"`` is what TVM's TIR lowering
makes of it. Listing sites, or checking a kernel mutant for equivalence, then costs a Relax
lowering instead of a full build.

On GPUs the ``s_tir`` kernels have been through one pass of TVM's TIR lowering,
``LowerCrossThreadReduction`` (see `lower_cross_thread_reductions`).
"""

from __future__ import annotations

import tvm
from tvm import relax, s_tir

from .errors import OperatorError
from .targets import TargetProfile, get_profile


def relax_pipeline(profile: TargetProfile) -> tvm.transform.Pass:
    """The Relax pipeline a profile builds with: TVM's GPU pipeline (dlight schedules) for
    CUDA; for CPUs, mutatenn's scheduled pipeline (``schedule = "default"``, see
    `mutatenn_passes.schedule`), the same with the kernels tuned by ``mutatenn tune`` taken
    from the tuning cache (``schedule = "tuned"``, `schedule.tuning`), or TVM 0.27's default
    build pipeline, which neither fuses nor
    schedules (``schedule = "none"``; legalized calls are remembered, as in the scheduled
    pipeline: `schedule.legalize_cache`)."""
    target = profile.tvm_target()
    if profile.device == "cuda":
        return relax.get_default_pipeline(target)
    if profile.schedule in ("default", "tuned"):
        from .schedule import scheduled_cpu_pipeline
        from .schedule.tuning.store import TuningStore

        return scheduled_cpu_pipeline(
            target, tuned=TuningStore() if profile.schedule == "tuned" else None)
    from .schedule.legalize_cache import with_cached_legalization

    return with_cached_legalization(relax.get_pipeline("default"))


def relax_phases(profile: TargetProfile) -> tuple[list, list] | None:
    """A scheduled CPU profile's Relax pipeline, with the lowering caches on, as two pass
    lists to run in order under its target: the kernel phase (legalization, fusion and
    schedules), which transforms each part of a graph on its own, and the VM phase, which
    needs the whole program. Together they make what `relax_pipeline` makes;
    `segmented_lowering` runs the first per segment of a graph. None for other profiles
    (TVM's default pipeline of unscheduled ones ran for minutes over the stitched
    MobileNet fixture) and with the caches off."""
    from .schedule.legalize_cache import enabled

    if profile.device == "cuda" or profile.schedule not in ("default", "tuned") or \
            not enabled():
        return None
    from .schedule.pipeline import scheduled_cpu_phases
    from .schedule.tuning.store import TuningStore

    return scheduled_cpu_phases(profile.tvm_target(),
                                tuned=TuningStore() if profile.schedule == "tuned" else None)


def lower_relax(mod: tvm.IRModule, profile: TargetProfile) -> tvm.IRModule:
    """Run the profile's Relax pipeline (`relax_pipeline`): legalization, fusion and kernel
    schedules, as `tvm.compile` would before its TIR pipeline."""
    with profile.tvm_target():
        return relax_pipeline(profile)(mod)


def is_gpu(target: tvm.target.Target) -> bool:
    """Whether ``target`` compiles GPU kernels (TVM gives GPU target kinds the key ``gpu``)."""
    return "gpu" in target.keys


def lower_cross_thread_reductions(tir_mod: tvm.IRModule,
                                  target: tvm.target.Target) -> tvm.IRModule:
    """The kernels as ``s_tir``-phase passes see them: on GPUs, after TVM's
    ``LowerCrossThreadReduction``; on CPUs ``tir_mod`` itself.

    A reduction that dlight spreads over ``threadIdx`` is an S-TIR block whose init and update
    stores must keep the exact reducer form (``x = 0``; ``x = x + v``), and whose predicate
    must keep its loop bindings affine, for that pass to turn it into a
    ``tvm_thread_allreduce``. A mutated store there fails the build ("No matched reducer"),
    and a mutated predicate leaves a racing reduction over shared memory that fails later
    ("Cannot insert syncs inside condition"). After the pass the same code is an in-thread
    reduction, the allreduce call and a write-back store: ordinary stores and predicates whose
    mutants build (docs/gpu.md). TVM's lowering begins with this pass anyway (after
    ``CanonicalizeLoop``, a no-op on scheduled kernels) and the pass is idempotent, so the
    kernels TVM's lowering makes of the result, and the built original, are the same
    (tested).
    """
    if not is_gpu(target):
        return tir_mod
    return s_tir.transform.LowerCrossThreadReduction()(tir_mod)


def bind_target(tir_mod: tvm.IRModule, profile: TargetProfile) -> tvm.IRModule:
    """Attach the target (with its host) to every PrimFunc, as `tvm.tirx.build` does."""
    target = profile.tvm_target()
    host = target.host if target.host is not None else target
    return tvm.tirx.transform.BindTarget(target.with_host(host))(tir_mod)


def tir_part(mod: tvm.IRModule) -> tvm.IRModule:
    """Only the PrimFuncs of a lowered module."""
    funcs = {gv: f for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}
    return tvm.IRModule(funcs, attrs=mod.attrs)


def nameless(func: tvm.tirx.PrimFunc) -> tvm.tirx.PrimFunc:
    """``func`` without its symbol: what compares kernels by body alone (a graph mutation
    renames the kernels fused after its site)."""
    return func.with_attr("global_symbol", "")


class KernelsByBody:
    """Kernel names found by body (`nameless`): structural hash, confirmed by structural
    equality. Matches an original's kernels that a graph mutation renamed, and a kernel
    compiled once for several mutants that change their kernels alike."""

    def __init__(self, kernels=()):
        """``kernels``: (name, PrimFunc) pairs, in order; the first of equal bodies wins."""
        self._table: dict[int, list] = {}
        for name, func in kernels:
            self.setdefault(name, func)

    def find(self, func: tvm.tirx.PrimFunc) -> str | None:
        """The name of the first kernel whose body equals ``func``'s (None: none does)."""
        import tvm_ffi

        body = nameless(func)
        return self._match(self._table.get(tvm_ffi.structural_hash(body), ()), body)

    def setdefault(self, name: str, func: tvm.tirx.PrimFunc) -> str:
        """The name of a kernel whose body equals ``func``'s; ``name`` (``func`` added under
        it) when there is none."""
        import tvm_ffi

        body = nameless(func)
        entries = self._table.setdefault(tvm_ffi.structural_hash(body), [])
        found = self._match(entries, body)
        if found is None:
            entries.append((body, name))
        return name if found is None else found

    @staticmethod
    def _match(entries, body) -> str | None:
        import tvm_ffi

        return next((name for other, name in entries
                     if tvm_ffi.structural_equal(other, body)), None)


def lower_kernels(kernels: tvm.IRModule, profile: TargetProfile) -> tvm.IRModule:
    """S-TIR kernels through TVM's TIR lowering for ``profile`` (the ``lowered`` phase)."""
    lower, _, _ = tvm.tirx.get_default_tir_pipeline(profile.tvm_target())
    with tvm.transform.PassContext(opt_level=3):
        return lower(kernels)


def kernel_module(model_or_mod, target="llvm-x86-64", phase: str = "s_tir") -> tvm.IRModule:
    """The model's kernels for ``target`` at ``phase`` (``s_tir`` or ``lowered``)."""
    if phase not in ("s_tir", "lowered"):
        raise OperatorError(f"unknown kernel phase {phase!r} (known: s_tir, lowered)")
    profile = get_profile(target)
    mod = getattr(model_or_mod, "mod", model_or_mod)
    with tvm.transform.PassContext(opt_level=3):
        tir = bind_target(tir_part(lower_relax(mod, profile)), profile)
    return kernels_at_phase(tir, profile, phase)


def kernels_at_phase(tir: tvm.IRModule, profile: TargetProfile, phase: str) -> tvm.IRModule:
    """``tir``, a model's kernels after its Relax lowering bound to ``profile``'s target, as
    passes of ``phase`` see them: one Relax lowering serves both phases."""
    if phase == "s_tir":
        return lower_cross_thread_reductions(tir, profile.tvm_target())
    return lower_kernels(tir, profile)
