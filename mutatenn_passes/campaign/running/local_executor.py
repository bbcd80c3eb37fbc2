"""The embedded default executor: worker processes on this machine.

An executor hands a campaign's build tasks to workers and reports each result to the
engine's `engine.ResultSink` as it arrives; the engine plans, stores and reports. This one
keeps ``workers`` `pool.WorkerProcess` processes, forked from a `zygote` started before
planning, which imports the first model and builds its originals meanwhile (fresh worker
processes when the zygote cannot fork). A worker that crashes is recorded ``crashed`` (with
its exit code or signal and an excerpt of its log) and replaced; one that exceeds the
per-mutant timeout is killed, recorded ``timeout`` and replaced.
`ray_executor.RayExecutor` is the other one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path

from .messages import Built, Done, ModelSpec, Prepare, Started, TaskResult
from .pool import PREPARE_TIMEOUT, WorkerProcess, Zygote
from .processes import log_excerpt, signal_name


class LocalExecutor:
    """``workers`` worker processes on this machine, their logs in ``log_dir``."""

    def __init__(self, workers: int, log_dir: Path, timeout: float, keep: bool = False,
                 prefix_reuse: bool = False):
        """``keep``: artifacts are kept (exported as one library each), so the originals'
        kernels are compiled in one process, as one library. ``prefix_reuse``: mutants run
        from their first changed cut, on activations kept in a temporary folder
        (`activations`) that `start` makes and `close` removes."""
        self.timeout = timeout
        self.prefix_reuse = prefix_reuse and not keep
        self.activations: str | None = None
        self.log_dir = log_dir
        self.keep = keep
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.pool: list[WorkerProcess | None] = [None] * workers
        self.zygote: Zygote | None = None
        self.forked = 0  # workers the zygote forked (recorded)

    def describe(self) -> dict:
        """What ran the campaign (recorded in the database)."""
        return {"kind": "local", "workers": len(self.pool), "threads": self.threads,
                "forked": self.forked}

    def _spawn(self, i: int, sink) -> WorkerProcess:
        """Worker ``i``: forked from the zygote, or a fresh process when the zygote is gone
        (then it is not asked again)."""
        w = None
        if self.zygote is not None:
            w = self.zygote.fork(i, self.log_dir, waiting=sink.update)
            if w is None:
                self.zygote.kill()
                self.zygote = None
                sink.note("the zygote could not fork workers: starting fresh ones "
                          f"(see {self.log_dir / 'zygote.log'})")
            else:
                self.forked += 1
        self.pool[i] = w or WorkerProcess.spawn(i, self.log_dir, self.threads)
        return self.pool[i]

    def start(self, first: ModelSpec, images: list[str] | None, targets=()) -> None:
        """Start the zygote: it imports ``first`` and builds its original for each of
        ``targets`` while the campaign plans, compiling the kernels in as many processes as
        there are cores (`build.prepare_original`: the planner finishes first and leaves its
        core to them), and forks the workers when the tasks start."""
        if self.prefix_reuse:
            self.activations = tempfile.mkdtemp(prefix="mutatenn-activations-")
        self.zygote = Zygote(self.log_dir, self.threads)
        jobs = 1 if self.keep else os.cpu_count() or 1
        self.zygote.send(Prepare(first, images, tuple(targets), jobs, self.activations))

    def run(self, tasks: list, spec_of, sink, affinity=None) -> None:
        """Build and run ``tasks`` (originals first); ``spec_of(task)`` is its `TaskSpec`.
        ``affinity(task)``, when given, names a group whose tasks a worker takes in a row once
        it has taken one (a schema it has compiled: `schema_groups`), and which the other
        workers leave to it while they have other work."""
        queue = _TaskQueue(sorted(tasks, key=lambda t: t.kind != "original"),
                           affinity or (lambda task: None))
        pool = self.pool
        while queue or any(w is not None and w.busy for w in pool):
            for i, w in enumerate(pool):
                if queue and (w is None or not w.busy):
                    if w is None or not w.alive():
                        if w is not None:
                            w.kill()
                        w = self._spawn(i, sink)
                    task, shared = queue.next_for(i)
                    spec = dataclasses.replace(spec_of(task), activations=self.activations)
                    if shared:  # one task of a group another worker compiled: on its own
                        spec = dataclasses.replace(spec, schema_key="", schema=())
                    w.assign(task, spec)
                    sink.assigned(_label(w), task)
            busy = [w for w in pool if w is not None and w.busy]
            if not busy:
                continue
            now = time.monotonic()
            wait_for = max(0.05, min(w.deadline - now for w in busy))
            ready = wait([w.conn for w in busy], timeout=min(wait_for, 1.0))
            for w in busy:
                if w.conn in ready or not w.alive():
                    self._drain(w, sink)
                if w.busy and w.deadline is not None and time.monotonic() > w.deadline:
                    # A last look: the result may have arrived just now.
                    self._drain(w, sink)
                    if w.busy:
                        w.kill()
                        stage = w.stage
                        limit = PREPARE_TIMEOUT if stage == "prepare" else self.timeout
                        self._finish(w, sink, TaskResult(
                            "timeout", stage=stage, signal="SIGKILL",
                            error=f"killed after {limit:g} s in the {stage} stage"))
            sink.update()

    def _finish(self, w: WorkerProcess, sink, result: TaskResult) -> None:
        if result.prepare_s is None:
            result.prepare_s = w.prepare_s
        if result.build_s is None:
            result.build_s = w.build_s
        sink.finished(w.task, result, worker=w.wid, label=_label(w), ran=w.stage == "run")
        w.task = None
        w.deadline = None

    def _drain(self, w: WorkerProcess, sink) -> None:
        """Act on every message the worker has sent; detect its death."""
        for msg in w.messages():
            if not w.task or msg.key != w.task.key:
                continue
            if isinstance(msg, Started):
                w.prepare_s = msg.prepare_s
                w.stage = "build"
                w.deadline = time.monotonic() + self.timeout
            elif isinstance(msg, Built):
                w.build_s = msg.build_s
                w.stage = "run"
                sink.built()
            elif isinstance(msg, Done):
                if msg.result.status == "build_failed":
                    sink.built()
                self._finish(w, sink, msg.result)
                return
        if w.busy and w.ended():
            # Died without a result: a crash in generated code, an abort, the OOM killer.
            code = w.exitcode
            tail = log_excerpt(w.log_path, w.log_offset)
            sig = signal_name(-code) if code is not None and code < 0 else ""
            stage = "build" if w.stage == "prepare" else w.stage
            what = f"worker died with {sig}" if sig else f"worker exited with code {code}"
            self._finish(w, sink, TaskResult(
                "crashed", stage=stage, exit_code=code, signal=sig,
                error=f"{what} during {stage}" + (f"\n{tail}" if tail else "")))
            w.kill()

    def close(self) -> None:
        """Stop the workers, then the zygote, at the end of a campaign. A zygote that forked
        no worker (a rerun with nothing left to build) is killed: it may still be preparing
        what nobody needs, and stopping would wait for it."""
        for w in self.pool:
            if w is not None:
                w.stop()
        if self.zygote is not None:
            if self.forked:
                self.zygote.stop()
            else:
                self.zygote.kill()
        self._remove_activations()

    def abort(self) -> None:
        """Kill the workers and the zygote (the campaign was interrupted)."""
        for w in self.pool:
            if w is not None:
                w.kill()
        if self.zygote is not None:
            self.zygote.kill()
        self._remove_activations()

    def _remove_activations(self) -> None:
        if self.activations is not None:
            shutil.rmtree(self.activations, ignore_errors=True)


class _TaskQueue:
    """The tasks still to hand out, in order, a group (``affinity``) as one unit: a worker
    that takes a group's first task owns the group and gets its other tasks next; the others
    take the next unit, and only when none is left take tasks of the fullest group still
    owned, each built on its own (not as a variant of a schema they would compile again)."""

    def __init__(self, tasks: list, affinity):
        self.units: deque[deque] = deque()
        groups: dict[str, deque] = {}
        for task in tasks:
            group = affinity(task)
            if group is None:
                self.units.append(deque([task]))
            else:
                if group not in groups:
                    groups[group] = deque()
                    self.units.append(groups[group])
                groups[group].append(task)
        self.left = len(tasks)
        self.owned: dict[int, deque] = {}

    def __bool__(self) -> bool:
        return self.left > 0

    def next_for(self, worker: int):
        """(the next task for ``worker``, whether it comes from a group another worker owns:
        compiling that group's whole schema for a few of its tasks would cost more than
        building them one by one)."""
        unit = self.owned.get(worker)
        while not unit and self.units:
            unit = self.owned[worker] = self.units.popleft()
        shared = not unit
        if shared:
            unit = max(self.owned.values(), key=len)
        self.left -= 1
        return unit.popleft(), shared


def _label(w: WorkerProcess) -> str:
    return f"worker {w.wid}"
