"""`mutatenn tune`: tune a model's kernels for one LLVM CPU target within a time budget.

Opt-in: builds never tune. What `tune` finds is kept in the tuning cache
(`schedule.tuning.store`), and only profiles with ``schedule = "tuned"`` (``llvm-avx2-tuned``
...) build with it; see docs/scheduling.md, "Tuning". A rerun tunes only the kernels that have
no record yet.
"""

from __future__ import annotations

import time

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn
from rich.table import Table

from ..errors import MutateNNError, TargetError
from ..schedule.tuning.store import DIR_ENV, TuningStore, default_folder
from ..schedule.tuning.tuner import Progress as TuningProgress
from ..schedule.tuning.tuner import parse_budget, tune_model
from ..targets import get_profile
from ..ui import console, errors
from .predict import add_model_arguments, model_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="tune a model's kernels for a CPU target (opt-in, cached)",
        description="Sample schedules of each kernel of MODEL (default: the embedded "
                    "ShuffleNet) from TVM MetaSchedule's design space, measure them against "
                    "mutatenn's rules in a child process, and keep the fastest in the tuning "
                    "cache, where profiles with schedule = \"tuned\" (e.g. llvm-avx2-tuned) "
                    "find them.")
    add_model_arguments(p)
    p.add_argument("--target", default="llvm-x86-64",
                   help="LLVM CPU target profile to tune for (default: llvm-x86-64)")
    p.add_argument("--budget", default="10m", metavar="TIME",
                   help="wall-clock time to spend, e.g. 90s, 10m, 1h (default: 10m)")
    p.add_argument("--trials", type=int, default=64, metavar="N",
                   help="sampled schedules per kernel at most")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled schedules")
    p.add_argument("--kernels", default="*", metavar="GLOB",
                   help="tune only the kernels named like this (e.g. 'fused_conv2d*')")
    p.add_argument("--cache-dir", metavar="DIR",
                   help=f"tuning cache folder (default: ${DIR_ENV}, else "
                        f"{default_folder()}); builds read ${DIR_ENV} or the default")
    p.set_defaults(func=run)


class _Bars(TuningProgress):
    """One bar per phase (the rules' schedules, then each kernel's candidates) on stderr."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def begin(self, label: str, total: int) -> None:
        if self.task is not None:  # a kernel the budget cut short: show it as finished
            self.progress.update(self.task, total=self.progress.tasks[-1].completed)
        self.task = self.progress.add_task(escape(label), total=total)

    def advance(self) -> None:
        self.progress.advance(self.task)


def _check(args):
    """The profile and budget, checked before the slow model import."""
    budget = parse_budget(args.budget)
    if args.trials < 1:
        raise MutateNNError(f"--trials must be at least 1, not {args.trials}")
    if args.seed < 0:
        raise MutateNNError(f"--seed must be 0 or more, not {args.seed}")
    profile = get_profile(args.target)
    if profile.kind != "llvm" or profile.device != "cpu" or profile.schedule == "none":
        raise TargetError(f"{profile.name}: only scheduled LLVM CPU profiles are tuned "
                          f"(schedule {profile.schedule!r}, kind {profile.kind!r})")
    ok, why = profile.can_run()
    if not ok:
        raise TargetError(f"cannot tune for {profile.name} here: {why}")
    return profile, budget


def run(args) -> int:
    profile, budget = _check(args)
    model = model_from_args(args)
    store = TuningStore(args.cache_dir)
    start = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=errors, transient=True,
                  disable=not errors.is_terminal) as bars:
        reports = tune_model(model, profile, budget, trials=args.trials, seed=args.seed,
                             store=store, pattern=args.kernels, progress=_Bars(bars))
    table = Table(title=f"{model.name} tuned for {profile.name} "
                        f"({time.monotonic() - start:.0f} s of {budget:.0f} s)")
    table.add_column("kernel", overflow="fold", ratio=1)  # long fused names wrap, not figures
    for col in ("rules ms", "tuned ms", "speed-up", "tried", "failed"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    for r in reports:
        if r.error:
            table.add_row(escape(r.name), "-", "-", "-", "-", "-",
                          f"[red]not tuned[/]: {escape(r.error)}")
            continue
        table.add_row(escape(r.name), f"{r.rules_ms:.3f}", f"{r.tuned_ms:.3f}",
                      f"{r.speedup:.2f}x", str(r.tried), str(r.failed),
                      "cached" if r.cached else "" if r.tried else "[yellow]budget spent[/]")
    console.print(table)
    rules = sum(r.rules_ms for r in reports if not r.error)
    tuned = sum(r.tuned_ms for r in reports if not r.error)
    console.print(f"kernels summed: rules {rules:.2f} ms, tuned {tuned:.2f} ms "
                  f"({rules / tuned if tuned else 1:.2f}x); records in "
                  f"{escape(str(store.folder))}",
                  soft_wrap=True)
    if store.folder != default_folder():
        console.print(f"[yellow]note:[/] builds read ${DIR_ENV} or {default_folder()}: set "
                      f"{DIR_ENV}={escape(str(store.folder))} to build with these records",
                      soft_wrap=True)
    twin = profile.name if profile.schedule == "tuned" else f"{profile.name}-tuned"
    try:
        get_profile(twin)
    except TargetError:
        twin = "a profile like this one with schedule = \"tuned\""
    console.print(f"build with the tuned kernels: --target {escape(twin)}", soft_wrap=True)
    return 0
