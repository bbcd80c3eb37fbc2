"""The Relax pipeline of a scheduled CPU build: TVM's own CPU pipeline with a faster constant
folding, conv2d weights packed for SIMD, and every kernel scheduled by mutatenn's rules.

TVM 0.27's ``tvm.compile`` uses, for CPU targets, a pipeline that neither fuses operators nor
schedules kernels: every kernel is serial, naive loops. Its per-target pipeline
(``relax.backend.cpu_generic``) fuses but still schedules nothing, and its constant folding
compiles one kernel per folded call. This pipeline takes that per-target pass list as it is
(no copy), swaps ``FoldConstant`` for `FoldConstants`, adds the graph-level preparation a
deployment makes (batch norm decomposed for inference, `SimplifySums`, `PackConvWeights`,
whose blocked weights `weight_layout.legalize_conv2d` legalizes),
and applies `rules.default_rules` after fusion — where dlight schedules GPU kernels in TVM's
GPU pipelines. Kernel-level mutations then run on the kernels a deployment would ship.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_generic
from tvm.s_tir import dlight as dl

from .cache import CachedSchedule
from .fold_constants import FoldConstants
from .legalize_cache import CACHE_ENV, CachedLegalizeOps, enabled
from .rules import default_rules
from .simplify import SimplifySums
from .tuning.apply import ApplyTuned
from .tuning.store import TuningStore
from .weight_layout import LEGALIZE, PackConvWeights

__all__ = ["CACHE_ENV", "graph_preparation", "scheduled_cpu_phases", "scheduled_cpu_pipeline"]


def graph_preparation(target: tvm.target.Target) -> list:
    """The Relax passes before legalization: what a deployment does to the graph itself."""
    return [relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings(),
            SimplifySums(), relax.transform.CanonicalizeBindings(), FoldConstants(),
            PackConvWeights(target), relax.transform.DeadCodeElimination()]


def scheduled_cpu_phases(target: tvm.target.Target, rules=None,
                         tuned: TuningStore | None = None) -> tuple[list, list]:
    """The passes of `scheduled_cpu_pipeline` in its two phases: the kernel phase (dispatch,
    graph preparation, legalization, fusion and schedules), which transforms each part of a
    graph on its own, and the VM phase (dataflow lowering, memory planning, VM builtins),
    which needs the whole program. Run them in order under ``target``.
    `segmented_lowering` runs the first per segment of a graph and the second once."""
    cached = rules is None and enabled()
    rules = default_rules() if rules is None else list(rules)
    schedule = CachedSchedule(rules) if cached else dl.ApplyDefaultSchedule(*rules)
    if tuned is not None:
        schedule = tvm.transform.Sequential([ApplyTuned(tuned, target), schedule])
    ours = CachedLegalizeOps(LEGALIZE) if cached else \
        relax.transform.LegalizeOps(customize_legalize_map=LEGALIZE)
    legalize = [ours if p.info.name == "LegalizeOps" else p
                for p in cpu_generic.legalize_passes(target) if p.info.name != "FoldConstant"]
    kernel_phase = (cpu_generic.library_dispatch_passes(target) + graph_preparation(target) +
                    legalize + [schedule])
    vm_phase = cpu_generic.dataflow_lower_passes(target) + cpu_generic.finalize_passes(target)
    return kernel_phase, vm_phase


def scheduled_cpu_pipeline(target: tvm.target.Target, rules=None,
                           tuned: TuningStore | None = None) -> tvm.transform.Pass:
    """The Relax pipeline for ``schedule = "default"`` CPU profiles (see the module doc), and
    with a tuning cache ``tuned``, for ``schedule = "tuned"`` ones: kernels tuned for
    ``target`` take their tuned schedule (`tuning.apply`), the others the rules'.

    With the default rules, calls legalized and kernels scheduled before in this process are
    reused (`legalize_cache`, `cache`): a graph mutant lowers at the cost of what it changed.
    ``rules`` replaces `default_rules` and, like `CACHE_ENV` = 0, legalizes and schedules
    every kernel afresh (an empty list gives the same fused kernels without schedules, which
    is how the tests hold each rule against the kernel it transformed)."""
    kernel_phase, vm_phase = scheduled_cpu_phases(target, rules, tuned)

    @tvm.transform.module_pass(opt_level=0, name="mutatenn.ScheduledCPUPipeline")
    def pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        with target:
            return tvm.transform.Sequential(kernel_phase + vm_phase)(mod)

    return pipeline
