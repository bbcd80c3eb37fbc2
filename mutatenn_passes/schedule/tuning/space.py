"""Candidate schedules of one kernel: the rules' own, and samples of MetaSchedule's design
space drawn without its task scheduler.

MetaSchedule's tuner segfaults in TVM 0.27's wheel (``tvm.ir.save_json`` of a PrimFunc, and
``TuneContext`` with its ``MutateParallel`` / ``MutateComputeLocation`` mutators; see
``../shared/notes/tvm-0.27.md``), but its design space does not: a ``TuneContext`` with no
mutators generates the kernel's spaces (a trace of schedule rules with random decisions each),
and replaying a space's instructions without its decisions on a ``Schedule`` with a fresh seed
samples new decisions, after which the space generator's postprocessors (parallel, vectorize
and unroll annotations made real) finish the schedule. One (space, seed) pair always gives the
same schedule. The first ``TuneContext`` of a process imports TVM's tensor intrinsics, which
parses ~500 TVMScript functions: ~14 s, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import Trace

from ...threads import physical_cores
from ..rules import default_rules
from .store import as_kernel


@dataclass(frozen=True)
class Candidate:
    """One schedule of a kernel: its TVMScript (what the child process builds and the
    cache keeps) and where it came from (``space`` -1: the rules)."""

    script: str
    space: int = -1
    seed: int = -1


def rules_candidate(func: tirx.PrimFunc, target: tvm.target.Target) -> Candidate:
    """The kernel as `schedule.rules.default_rules` schedule it (the first candidate: tuning
    never ends worse than the rules)."""
    with target:  # dlight's pass edits the module it is given: a fresh one
        mod = dl.ApplyDefaultSchedule(*default_rules())(tvm.IRModule({"main": as_kernel(func)}))
    return Candidate(mod["main"].script())


class DesignSpace:
    """MetaSchedule's design space of one kernel for ``target`` (see the module doc)."""

    def __init__(self, func: tirx.PrimFunc, target: tvm.target.Target):
        self.mod = tvm.IRModule({"main": as_kernel(func)})
        # MetaSchedule's CPU rules size parallel loops by the target's "num-cores"
        config = {**target.export(), "num-cores": physical_cores()}
        self.generator = ms.space_generator.PostOrderApply(
            sch_rules="llvm", postprocs="llvm", mutator_probs={})
        context = ms.TuneContext(mod=self.mod, target=tvm.target.Target(config),
                                 space_generator=self.generator,
                                 search_strategy="replay-trace")
        self.spaces = [space.trace for space in context.generate_design_space()]

    def sample(self, index: int, seed: int) -> Candidate | None:
        """The schedule of space ``index % len(spaces)`` with fresh decisions from ``seed``
        (1 or more), or None when a postprocessor rejects it (MetaSchedule discards those
        samples too)."""
        space = index % len(self.spaces)
        sch = s_tir.Schedule(self.mod, seed=seed)
        Trace(self.spaces[space].insts, {}).apply_to_schedule(sch, remove_postproc=True)
        if not all(postproc.apply(sch) for postproc in self.generator.postprocs):
            return None
        func = sch.mod["main"]
        script = func.script()
        if not tvm_ffi.structural_equal(tvm.script.from_source(script), func):
            return None  # would not reproduce from the cache: never a candidate
        return Candidate(script, space, seed)
