"""`build()`: compile a model with extra passes slotted into TVM's normal pipeline.

This is the seam every mutation uses. Graph-level passes run on the imported Relax module,
before the target's default Relax pipeline (so they see `batch_norm`, `matmul`, ... as the
frontend emitted them). Kernel-level passes run inside the target's TIR pipeline, through a
wrapping pipeline registered with `tvm.tirx.register_tir_pipeline`: passes of phase ``s_tir``
run on the legalized (and, for GPUs, scheduled, with cross-thread reductions lowered: see
`kernel_ir.lower_cross_thread_reductions`) S-TIR kernels before TVM's own TIR lowering,
passes of phase ``lowered`` run after it, just before host/device finalization and code
generation. TVM's pass list itself is never copied. A CUDA build ends with nvcc compiling the
generated kernels (`device_code`), which TVM itself defers to loading on a GPU.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import dataclass, field

import tvm

from .device_code import compile_device_code
from .errors import BuildError
from .kernel_ir import lower_cross_thread_reductions, lower_relax
from .model import Model
from .mutation import DEFAULT_KERNEL_PHASE, KERNEL_PHASES
from .targets import TargetProfile, get_profile


@dataclass
class BuildRecord:
    """IR snapshots taken during one build, for inspection and diffs."""

    relax_input: tvm.IRModule | None = None
    tir: dict[str, tvm.IRModule] = field(default_factory=dict)


def _phase_of(p) -> str:
    return getattr(p, "phase", None) or DEFAULT_KERNEL_PHASE


def _wrapping_tir_pipeline(target: tvm.target.Target, tir_passes, record: BuildRecord):
    """A TIR pipeline factory running ``tir_passes`` around TVM's default for ``target``."""
    by_phase = {phase: [p for p in tir_passes if _phase_of(p) == phase]
                for phase in KERNEL_PHASES}
    unknown = [p for p in tir_passes if _phase_of(p) not in KERNEL_PHASES]
    if unknown:
        raise BuildError(f"unknown kernel phase {_phase_of(unknown[0])!r} "
                         f"(known: {', '.join(KERNEL_PHASES)})")

    def factory():
        lower, finalize_host, finalize_device = tvm.tirx.get_default_tir_pipeline(target)

        @tvm.transform.module_pass(opt_level=0, name="mutatenn.WrappedTIRPipeline")
        def pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
            mod = lower_cross_thread_reductions(mod, target)  # GPUs only; see kernel_ir
            mod = tvm.transform.Sequential(by_phase["s_tir"])(mod)
            record.tir["s_tir"] = mod
            mod = lower(mod)
            mod = tvm.transform.Sequential(by_phase["lowered"])(mod)
            record.tir["lowered"] = mod
            return mod

        return pipeline, finalize_host, finalize_device

    return factory


_pipeline_ids = itertools.count()


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


def _compile(mod: tvm.IRModule, profile: TargetProfile, tir_passes, record: BuildRecord,
             lowered: tvm.IRModule | None):
    from tvm.tirx import compilation_pipeline

    target = profile.tvm_target()
    name = f"mutatenn-{uuid.uuid4().hex[:8]}-{next(_pipeline_ids)}"
    compilation_pipeline.register_tir_pipeline(
        name, _wrapping_tir_pipeline(target, tir_passes, record))
    try:
        # GPU kernels are scheduled (dlight) by the target's own Relax pipeline here.
        relax_lowered = lowered if lowered is not None else lower_relax(mod, profile)
        executable = tvm.compile(relax_lowered, target, relax_pipeline=None,
                                 tir_pipeline=name)
    finally:
        compilation_pipeline.PIPELINE_MAP.pop(name, None)
    if profile.device == "cuda":  # TVM leaves the kernels as CUDA source: see device_code
        compile_device_code(executable, target)
    return executable


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
    from .artifact import Artifact

    profile = get_profile(target)
    ok, why = profile.can_build()
    if not ok:
        raise BuildError(f"cannot build for {profile.name} here: {why}")
    if lowered is not None and relax_passes:
        raise BuildError("a pre-lowered module cannot take Relax passes: they run before "
                         "the Relax lowering")
    record = BuildRecord()
    start = time.perf_counter()
    try:
        with tvm.transform.PassContext(opt_level=3):
            mod = tvm.transform.Sequential(list(relax_passes))(model.mod) if relax_passes \
                else model.mod
            record.relax_input = mod
            executable = _compile(mod, profile, list(tir_passes), record, lowered)
    except BuildError:
        raise
    except Exception as exc:  # TVM raises many types; to the user all are build failures
        raise BuildError(f"building {model.name} for {profile.name} failed: "
                         f"{tvm_error_summary(exc)}") from exc
    return Artifact(executable=executable, profile=profile, input=model.input,
                    output=model.output, preprocess=model.preprocess, labels=model.labels,
                    model_name=model.name, build_seconds=time.perf_counter() - start,
                    record=record)
