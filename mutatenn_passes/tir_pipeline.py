"""The target's TIR pipeline with kernel-level mutation passes slotted in, and the record of
what it saw.

TVM compiles kernels through a TIR pipeline it looks up by name; `tir_pipeline` registers, for
one compilation, a pipeline that wraps the target's default one: passes of phase ``s_tir`` run
on the S-TIR kernels before TVM's own TIR lowering, passes of phase ``lowered`` after it, just
before host/device finalization and code generation. TVM's pass list itself is never copied.
Full, incremental and schema builds and the compilation of an original's kernels in several
processes (`build`, `schemata`, `parallel_compile`) all compile through it.
"""

from __future__ import annotations

import itertools
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import tvm

from .errors import BuildError
from .kernel_ir import lower_cross_thread_reductions
from .mutation import DEFAULT_KERNEL_PHASE, KERNEL_PHASES


@dataclass
class BuildRecord:
    """IR snapshots taken during one build, for inspection and diffs, and how it was built.

    ``mode`` is ``full``, ``full (why not incremental)``, ``incremental (N kernel(s)
    compiled: ...)`` or ``schema (...)`` (`schemata`); ``compiled`` names the kernels an
    incremental or schema build compiled.
    """

    relax_input: tvm.IRModule | None = None
    tir: dict[str, tvm.IRModule] = field(default_factory=dict)
    mode: str = "full"
    compiled: list[str] = field(default_factory=list)

    def compiled_shown(self, most: int = 6) -> str:
        """``compiled`` as a build mode shows it: the first ``most`` names, then "…"."""
        return ", ".join(self.compiled[:most]) + (", …" if len(self.compiled) > most else "")


def _phase_of(p) -> str:
    return getattr(p, "phase", None) or DEFAULT_KERNEL_PHASE


def passes_by_phase(tir_passes) -> dict[str, list]:
    """``tir_passes`` grouped by their ``phase`` (`KERNEL_PHASES`, in order)."""
    unknown = [p for p in tir_passes if _phase_of(p) not in KERNEL_PHASES]
    if unknown:
        raise BuildError(f"unknown kernel phase {_phase_of(unknown[0])!r} "
                         f"(known: {', '.join(KERNEL_PHASES)})")
    return {phase: [p for p in tir_passes if _phase_of(p) == phase] for phase in KERNEL_PHASES}


_pipeline_ids = itertools.count()


@contextmanager
def tir_pipeline(target: tvm.target.Target, tir_passes, record: BuildRecord, *,
                 kernels_lowered: bool = False):
    """Register, for the duration of the block, a TIR pipeline that runs ``tir_passes``
    around TVM's default pipeline for ``target``; yields its name for ``tvm.compile``.

    ``kernels_lowered`` says the kernels handed to it have been through TVM's TIR lowering
    already (an incremental build of ``lowered``-phase mutants): then only host/device
    finalization runs. TVM has no public way to unregister a pipeline; the registry is the
    public module dictionary ``PIPELINE_MAP``, so the name is removed from it afterwards.
    """
    from tvm.tirx import compilation_pipeline

    by_phase = passes_by_phase(tir_passes)

    def factory():
        lower, finalize_host, finalize_device = tvm.tirx.get_default_tir_pipeline(target)

        @tvm.transform.module_pass(opt_level=0, name="mutatenn.WrappedTIRPipeline")
        def pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
            if not kernels_lowered:
                mod = lower_cross_thread_reductions(mod, target)  # GPUs only; see kernel_ir
                mod = tvm.transform.Sequential(by_phase["s_tir"])(mod)
                record.tir["s_tir"] = mod
                mod = lower(mod)
            mod = tvm.transform.Sequential(by_phase["lowered"])(mod)
            record.tir["lowered"] = mod
            return mod

        return pipeline, finalize_host, finalize_device

    name = f"mutatenn-{uuid.uuid4().hex[:8]}-{next(_pipeline_ids)}"
    compilation_pipeline.register_tir_pipeline(name, factory)
    try:
        yield name
    finally:
        compilation_pipeline.PIPELINE_MAP.pop(name, None)
