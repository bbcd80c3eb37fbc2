"""Tune a model's kernels for one target within a time budget (`tune_model`).

The kernels are the model's distinct fused kernels exactly as the scheduled CPU pipeline hands
them to the rules. Each is first measured with the rules' schedule (candidate 0, so a tuned
kernel is never slower than the rules' as far as the measurement can tell); what is left of
the budget is then shared among the kernels in proportion to those times, heaviest first
(a kernel's share is its part of what remains when its turn comes, so time one kernel did not
use goes to the next). A kernel samples candidates from its design space until its share or
``trials`` runs out. A sampled winner is measured once more beside the rules' schedule and
kept only if it is still faster; the outcome is written to the tuning cache (`store`), where
the next run finds it and tries nothing.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
import tvm
import tvm_ffi
from tvm import tirx

from ...errors import MutateNNError
from ...kernel_ir import tir_part
from ...threads import use_physical_cores
from ..pipeline import scheduled_cpu_pipeline
from .measure import Job, Measurer, Outcome
from .space import Candidate, DesignSpace, rules_candidate
from .store import TuningRecord, TuningStore, kernel_key

#: A candidate may take this many times the rules' schedule's build-and-time round trip...
TIMEOUT_FACTOR = 5.0
#: ...and never less than this many seconds (LLVM's compile time varies more than run time).
MIN_TIMEOUT_S = 10.0
#: Seconds the rules' schedule of one kernel may take to build and time.
RULES_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Kernel:
    """One distinct unscheduled kernel: its name in the model, PrimFunc and record key."""

    name: str
    func: tirx.PrimFunc
    key: str


@dataclass(frozen=True)
class KernelReport:
    """How tuning one kernel went: times in ms (``tuned_ms`` equals ``rules_ms`` when no
    sample beat the rules), sampled candidates tried and failed, whether the record came from
    the cache (nothing tried this run), and the error that kept a kernel from being tuned."""

    name: str
    rules_ms: float = 0.0
    tuned_ms: float = 0.0
    tried: int = 0
    failed: int = 0
    cached: bool = False
    error: str = ""

    @property
    def speedup(self) -> float:
        return self.rules_ms / self.tuned_ms if self.tuned_ms else 1.0

    @classmethod
    def of(cls, record: TuningRecord, cached: bool) -> KernelReport:
        return cls(record.kernel, record.rules_ms, record.tuned_ms, 0 if cached else
                   record.tried, 0 if cached else record.failed, cached)


class Progress:
    """What a caller may show while `tune_model` works: a phase of ``total`` steps begins,
    one step is done. The base class shows nothing."""

    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_budget(text: str) -> float:
    """Seconds in a duration such as ``10m``, ``90s``, ``1.5h`` or ``600`` (seconds)."""
    match = _DURATION.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise MutateNNError(f"--budget {text!r}: expected a positive duration such as 10m, "
                            "90s or 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def model_kernels(model, target: tvm.target.Target, pattern: str = "*") -> list[Kernel]:
    """The model's distinct fused kernels whose names match ``pattern`` (fnmatch), as the
    scheduled pipeline's schedule step receives them (its rules list left empty)."""
    with tvm.transform.PassContext(opt_level=3):
        mod = tir_part(scheduled_cpu_pipeline(target, rules=[])(model.mod))
    kernels: dict[str, Kernel] = {}
    for gv, func in mod.functions_items():
        key = kernel_key(func, target)
        if key not in kernels and fnmatch.fnmatchcase(gv.name_hint, pattern):
            kernels[key] = Kernel(gv.name_hint, func, key)
    return list(kernels.values())


@dataclass
class Baseline:
    """A kernel's rules' schedule as measured: the candidate, its outcome (with the arguments
    every other candidate must reproduce), the seconds its build-and-time round trip took,
    and the kernel's design space (None: candidates come from elsewhere)."""

    kernel: Kernel
    rules: Candidate
    outcome: Outcome
    round_trip: float
    space: DesignSpace | None = None


def sampled(space: DesignSpace, seed: int, trials: int) -> Iterable[Candidate | None]:
    """``trials`` samples of ``space``, cycling through its design spaces, each with its own
    ``Schedule`` seed drawn from ``seed``."""
    seeds = np.random.default_rng(seed).integers(1, 2**31 - 1, size=trials)
    for i, schedule_seed in enumerate(seeds):
        yield space.sample(i, int(schedule_seed))


def tune_kernel(base: Baseline, candidates: Iterable[Candidate | None], measurer: Measurer,
                job: Job, deadline: float, progress: Progress) -> tuple:
    """Measure ``candidates`` against ``base`` until ``deadline`` (``job``: the rules'
    job, whose target and input seed every candidate shares): (best candidate, None when
    the rules' schedule stays best; rules' seconds; best seconds; tried; failed). A
    candidate the postprocessors rejected (None) counts as failed."""
    timeout = max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * base.round_trip)
    check = replace(job, expected=base.outcome.arguments)
    rules_s = best_s = base.outcome.seconds
    best, tried, failed = None, 0, 0
    for candidate in candidates:
        if time.monotonic() + base.round_trip > deadline:
            break
        tried += 1
        outcome = None if candidate is None else \
            measurer.measure(replace(check, script=candidate.script), timeout)
        if outcome is None or not outcome.ok:
            failed += 1
        elif outcome.seconds < best_s:
            best, best_s = candidate, outcome.seconds
        progress.advance()
    if best is not None:  # once more, beside the rules: a lucky measurement is no win
        again = measurer.measure(job, timeout)
        mine = measurer.measure(replace(check, script=best.script), timeout)
        if again.ok and mine.ok:
            rules_s, best_s = again.seconds, mine.seconds
        if not mine.ok or best_s >= rules_s:
            best, best_s = None, rules_s
    return best, rules_s, best_s, tried, failed


def _baselines(kernels: list[Kernel], target: tvm.target.Target, job: Job,
               measurer: Measurer, progress: Progress, reports: dict) -> list[Baseline]:
    """Each kernel's rules' schedule measured, and its design space; a kernel whose rules'
    schedule fails in the worker (inputs it cannot take, say) gets an error report instead."""
    progress.begin("measuring the rules' schedules", len(kernels))
    out = []
    for kernel in kernels:
        rules = rules_candidate(kernel.func, target)
        start = time.monotonic()
        outcome = measurer.measure(replace(job, script=rules.script), RULES_TIMEOUT_S)
        if outcome.ok:
            out.append(Baseline(kernel, rules, outcome, time.monotonic() - start,
                                DesignSpace(kernel.func, target)))
        else:
            reports[kernel.key] = KernelReport(kernel.name, error=outcome.error)
        progress.advance()
    return sorted(out, key=lambda b: -b.outcome.seconds)


def tune_model(model, profile, budget_s: float, trials: int = 64, seed: int = 0,
               store: TuningStore | None = None, pattern: str = "*",
               progress: Progress | None = None) -> list[KernelReport]:
    """Tune ``model``'s kernels (those named by ``pattern``) for the LLVM CPU ``profile``
    within ``budget_s`` seconds, at most ``trials`` sampled candidates each (see the module
    doc); one `KernelReport` per kernel, in the model's order. Kernels with a record in
    ``store`` are not tuned again."""
    deadline = time.monotonic() + budget_s
    store, progress = store or TuningStore(), progress or Progress()
    target = profile.tvm_target()
    threads = use_physical_cores()  # inherited by the worker: the threads a build runs on
    kernels = model_kernels(model, target, pattern)
    if not kernels:
        raise MutateNNError(f"{model.name} has no kernel named like {pattern!r}")
    reports = {k.key: KernelReport.of(r, cached=True) for k in kernels
               if (r := store.get(k.key)) is not None}
    with Measurer() as measurer:
        todo = [k for k in kernels if k.key not in reports]
        base_job = Job("", profile.target, seed)
        baselines = _baselines(todo, target, base_job, measurer, progress, reports)
        weight = sum(b.outcome.seconds for b in baselines)
        for base in baselines:
            now = time.monotonic()
            share = (deadline - now) * base.outcome.seconds / weight if weight else 0.0
            weight -= base.outcome.seconds
            progress.begin(base.kernel.name, trials)
            best, rules_s, best_s, tried, failed = tune_kernel(
                base, sampled(base.space, seed, trials), measurer,
                replace(base_job, script=base.rules.script), now + share, progress)
            record = TuningRecord(
                base.kernel.key, base.kernel.name, str(target), seed, rules_s * 1e3,
                best_s * 1e3, tried, failed, threads=threads,
                **(_winner(best) if best is not None else {}))
            if tried:  # a kernel the budget did not reach is tuned by the next run
                store.put(record)
            reports[base.kernel.key] = KernelReport.of(record, cached=False)
    return [reports[k.key] for k in kernels]


def _winner(best: Candidate) -> dict:
    """The record fields of a sampled winner."""
    return {"script": best.script, "space": best.space, "schedule_seed": best.seed,
            "scheduled_hash": tvm_ffi.structural_hash(tvm.script.from_source(best.script))}
