"""The kernels (TIR PrimFuncs) a model turns into for a target, without building it.

Kernel-level operators find their sites in these modules. `build()` runs the same Relax
lowering, so the module `kernel_module(model, target, "s_tir")` returns is the one the wrapping
TIR pipeline hands to ``s_tir``-phase passes, and ``"lowered"`` is what TVM's TIR lowering
makes of it. Listing sites, or checking a kernel mutant for equivalence, then costs a Relax
lowering instead of a full build.
"""

from __future__ import annotations

import tvm
from tvm import relax

from .errors import OperatorError
from .targets import TargetProfile, get_profile


def relax_pipeline(profile: TargetProfile) -> tvm.transform.Pass:
    """The Relax pipeline a profile builds with: TVM's GPU pipeline (dlight schedules) for
    CUDA; for CPUs, mutatenn's scheduled pipeline (``schedule = "default"``, see
    `mutatenn_passes.schedule`) or TVM 0.27's default build pipeline, which neither fuses nor
    schedules (``schedule = "none"``)."""
    target = profile.tvm_target()
    if profile.device == "cuda":
        return relax.get_default_pipeline(target)
    if profile.schedule == "default":
        from .schedule import scheduled_cpu_pipeline

        return scheduled_cpu_pipeline(target)
    return relax.get_pipeline("default")


def lower_relax(mod: tvm.IRModule, profile: TargetProfile) -> tvm.IRModule:
    """Run the profile's Relax pipeline (`relax_pipeline`): legalization, fusion and kernel
    schedules, as `tvm.compile` would before its TIR pipeline."""
    with profile.tvm_target():
        return relax_pipeline(profile)(mod)


def bind_target(tir_mod: tvm.IRModule, profile: TargetProfile) -> tvm.IRModule:
    """Attach the target (with its host) to every PrimFunc, as `tvm.tirx.build` does."""
    target = profile.tvm_target()
    host = target.host if target.host is not None else target
    return tvm.tirx.transform.BindTarget(target.with_host(host))(tir_mod)


def tir_part(mod: tvm.IRModule) -> tvm.IRModule:
    """Only the PrimFuncs of a lowered module."""
    funcs = {gv: f for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}
    return tvm.IRModule(funcs, attrs=mod.attrs)


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
    return tir if phase == "s_tir" else lower_kernels(tir, profile)
