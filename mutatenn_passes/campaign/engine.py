"""The campaign engine: plan, hand tasks to isolated workers, store each result as it arrives.

`run_campaign` validates nothing itself (that is `config.load_config`'s job, done before any
work): it takes a lock on the output folder, checks that remote (RPC) targets have servers,
starts the workers (which import the models while
the campaign plans), plans, records the plan and every decision that needs no build
(``not_applicable``, ``equivalent``), then feeds the remaining builds to the workers, originals
first. Each result is committed to the database before the worker gets its next task; a worker
that crashes is recorded ``crashed`` (with its exit code or signal and its log's tail) and
replaced; one that exceeds the per-mutant timeout is killed, recorded ``timeout`` and replaced.
A rerun of the same campaign skips every finished task (a ``timeout`` is retried only when the
timeout was raised since).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from ..errors import MutateNNError
from .config import CampaignConfig
from .plan import Task, make_plan
from .store import Store
from .worker import log_tail

_SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}

#: Seconds a fresh worker may take to import a model and lower it before a task starts.
PREPARE_TIMEOUT = 900.0


def versions() -> dict:
    import platform

    import numpy
    import tvm

    from .. import __version__

    try:
        import tvm_ffi

        ffi = getattr(tvm_ffi, "__version__", "")
    except ImportError:  # pragma: no cover
        ffi = ""
    return {"mutatenn": __version__, "tvm": tvm.__version__, "tvm_ffi": ffi,
            "python": platform.python_version(), "numpy": numpy.__version__,
            "platform": platform.platform()}


def model_spec(config: CampaignConfig, index: int) -> dict:
    m = config.models[index]
    overrides = m.overrides()
    cache_key = hashlib.sha256(json.dumps([m.path, overrides], sort_keys=True,
                                          default=str).encode()).hexdigest()[:16]
    return {"index": index, "path": m.path, "overrides": overrides, "cache_key": cache_key}


def _signal_name(code: int | None) -> str:
    if code is None or code >= 0:
        return ""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Worker:
    """One worker process and the task it is working on.

    A worker is a fresh interpreter (``python -c`` running `worker.worker_main`), not a fork and
    not a `multiprocessing` spawn, so it never re-imports the caller's main script; it talks to
    the campaign over a socket pair wrapped in a `multiprocessing.connection.Connection`. Its
    stdout and stderr (C++ included) go to ``logs/worker-N.log``.
    """

    def __init__(self, wid: int, log_dir: Path, threads: int):
        self.wid = wid
        self.log_path = log_dir / f"worker-{wid}.log"
        parent, child = mp.Pipe(duplex=True)
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, **_SINGLE_THREAD_ENV, TVM_NUM_THREADS=str(threads))
        # The worker must import this very package: `python -c` puts the working directory
        # first on sys.path, and a source checkout there (without the built C++ extension)
        # would otherwise shadow the installed mutatenn.
        code = (f"import sys; sys.path.insert(0, {package_root!r}); "
                "from mutatenn_passes.campaign.worker import main_from_fd; "
                "main_from_fd(*sys.argv[1:])")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, str(child.fileno()), str(wid),
                 str(self.log_path), str(threads)],
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, close_fds=True)
        child.close()
        self.conn = parent
        self.task: Task | None = None
        self.stage = ""
        self.deadline: float | None = None
        self.started_at = 0.0
        self.log_offset = 0
        self.prepare_s = 0.0
        self.build_s: float | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.proc.returncode

    def assign(self, task: Task, message: dict) -> None:
        self.task = task
        self.stage = "prepare"
        self.deadline = time.monotonic() + PREPARE_TIMEOUT
        self.started_at = time.monotonic()
        self.build_s = None
        try:
            self.log_offset = self.log_path.stat().st_size
        except OSError:
            self.log_offset = 0
        try:
            self.conn.send(("task", message))
        except OSError:
            pass  # it died already; the campaign loop notices

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)
        self.conn.close()


@dataclass
class RunStats:
    total: int = 0
    built: int = 0
    ran: int = 0
    done: int = 0
    skipped: int = 0  # finished in an earlier run
    statuses: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    current: dict = field(default_factory=dict)  # worker id -> label


class _Lock:
    def __init__(self, folder: Path):
        self.path = folder / ".campaign.lock"
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise MutateNNError(f"{self.path.parent}: another campaign is running in this "
                                "output folder") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _task_message(task: Task, config: CampaignConfig, keep_root: Path | None) -> dict:
    msg = {"key": task.key, "label": task.label, "model": model_spec(config, task.model_index),
           "target_ref": task.target_ref, "images": config.images, "top_k": 5,
           "ir_hash": task.ir_hash, "incremental": config.incremental,
           "definition": task.definition() if task.kind == "mutant" else None}
    if keep_root is not None:
        name = f"{task.key[:12]}-{task.operator or 'original'}-{task.target}"
        msg["keep_dir"] = str(keep_root / name)
    return msg


def run_campaign(config: CampaignConfig, *, progress=None, keep_artifacts: bool | None = None,
                 workers: int | None = None, report: bool = True) -> dict:
    """Run (or resume) ``config``; returns the analysis (see `analysis.analyse`)."""
    from .progress import make_progress

    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    keep = config.keep_artifacts if keep_artifacts is None else keep_artifacts
    n_workers = workers or config.workers
    ui = progress or make_progress()
    wall0 = time.perf_counter()
    with _Lock(out):
        store = Store(out)
        try:
            return _run_locked(config, store, ui, keep, n_workers, wall0, report)
        finally:
            store.close()


def _run_locked(config, store: Store, ui, keep, n_workers, wall0, report) -> dict:
    out = config.output
    log_dir = out / "logs"
    log_dir.mkdir(exist_ok=True)
    for profile in _profiles(config):
        if profile.runner == "rpc":  # before any work: the tracker answers, servers exist
            from .. import remote

            ui.phase(f"checking remote devices of {profile.name}")
            remote.check(profile)
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    pool: list[_Worker | None] = [None] * n_workers

    def spawn(i: int) -> _Worker:
        pool[i] = _Worker(i, log_dir, threads)
        return pool[i]

    # Start the workers now: they import the first model while the campaign plans.
    for i in range(n_workers):
        w = spawn(i)
        w.conn.send(("prepare", model_spec(config, 0), {"images": config.images}))
    previous = store.meta()
    store.set_meta(config=config.as_dict(), config_text=config.text, seed=config.seed,
                   versions=versions(), state="planning", started_at=time.time(),
                   runs=int(previous.get("runs", 0)) + 1,
                   sampling={o.id: {"mode": o.mode, "sites": o.sites_text(),
                                    "sample": o.sample,
                                    "seed": o.sample_seed(config.seed) if o.sample else None}
                             for o in config.operators})
    try:
        ui.phase("planning")
        t0 = time.perf_counter()
        plan = make_plan(config, progress=ui.phase)
        plan_wall = time.perf_counter() - t0
        profiles = _profiles(config)
        store.set_meta(models=plan.models, images=plan.images, image_digest=plan.image_digest,
                       targets=[p.as_dict() for p in profiles],
                       plan_seconds=plan.seconds)
        store.save_plan(plan.tasks)
        finished = store.finished()
        for t in plan.tasks:
            if t.planned_status and t.key not in finished:
                store.record(t.key, t.planned_status, error=t.note)
        finished = store.finished()
        todo = []
        for t in plan.tasks:
            if not t.needs_build:
                continue
            done = finished.get(t.key)
            if done and not (done["status"] == "timeout" and
                             (done["timeout_s"] or 0) < config.timeout):
                continue
            todo.append(t)
        stats = RunStats(total=sum(t.needs_build for t in plan.tasks))
        stats.skipped = stats.total - len(todo)
        stats.done = stats.skipped
        store.set_meta(state="running")
        ui.start(stats, plan)
        t_exec = time.perf_counter()
        _execute(config, store, pool, spawn, todo, stats, ui,
                 (out / "artifacts") if keep else None)
        exec_wall = time.perf_counter() - t_exec
    except BaseException:
        for w in pool:
            if w is not None:
                w.kill()
        ui.stop()
        store.set_meta(state="interrupted")
        raise
    for w in pool:
        if w is not None:
            w.stop()
    ui.stop()
    t0 = time.perf_counter()
    seconds = {"plan_wall": plan_wall, "plan_import": plan.seconds.get("import", 0.0),
               "plan_lower": plan.seconds.get("lower", 0.0), "execute_wall": exec_wall}
    store.set_meta(state="finished", finished_at=time.time(), last_run_seconds=seconds)
    result = None
    if report:
        from .report import write_reports

        write_reports(store, out)
        seconds["analysis"] = time.perf_counter() - t0
        seconds["total_wall"] = time.perf_counter() - wall0
        store.set_meta(last_run_seconds=seconds)
        result = write_reports(store, out)  # again, now with the timings
        ui.summary(result, out)
    return {"analysis": result, "seconds": seconds, "stats": stats}


def _profiles(config):
    from ..targets import get_profile

    return [get_profile(t) for t in config.targets]


def _execute(config, store: Store, pool, spawn, todo: list[Task], stats: RunStats, ui,
             keep_root) -> None:
    queue = deque(sorted(todo, key=lambda t: t.kind != "original"))
    timeout = config.timeout

    def finish(w, status, **fields):
        task = w.task
        store.record(task.key, status, worker=w.wid, timeout_s=timeout,
                     prepare_s=fields.pop("prepare_s", w.prepare_s),
                     build_s=fields.pop("build_s", w.build_s), **fields)
        stats.done += 1
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if w.stage == "run":
            stats.ran += 1
        stats.current.pop(w.wid, None)
        ui.result(task, status, fields.get("error", ""), stats)
        w.task = None
        w.deadline = None

    while queue or any(w is not None and w.busy for w in pool):
        for i, w in enumerate(pool):
            if queue and (w is None or not w.busy):
                if w is None or not w.alive():
                    if w is not None:
                        w.kill()
                    w = spawn(i)
                task = queue.popleft()
                w.assign(task, _task_message(task, config, keep_root))
                stats.current[w.wid] = task.label
                ui.update(stats)
        busy = [w for w in pool if w is not None and w.busy]
        if not busy:
            continue
        now = time.monotonic()
        wait_for = max(0.05, min(w.deadline - now for w in busy))
        ready = wait([w.conn for w in busy], timeout=min(wait_for, 1.0))
        for w in busy:
            if w.conn in ready or not w.alive():
                _drain(w, finish, stats, ui, timeout)
            if w.busy and w.deadline is not None and time.monotonic() > w.deadline:
                # A last look: the result may have arrived just now.
                _drain(w, finish, stats, ui, timeout)
                if w.busy:
                    w.kill()
                    stage = w.stage
                    limit = PREPARE_TIMEOUT if stage == "prepare" else timeout
                    finish(w, "timeout", stage=stage,
                           error=f"killed after {limit:g} s in the {stage} stage",
                           signal="SIGKILL")
        ui.update(stats)


def _drain(w: _Worker, finish, stats: RunStats, ui, timeout: float) -> None:
    """Read every message the worker has sent; detect its death."""
    while w.busy:
        try:
            if not w.conn.poll():
                break
            msg = w.conn.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if not w.task or msg[1] != w.task.key:
            continue
        if kind == "started":
            w.prepare_s = msg[2]
            w.stage = "build"
            w.deadline = time.monotonic() + timeout
        elif kind == "built":
            w.build_s = msg[2]
            w.stage = "run"
            stats.built += 1
            ui.update(stats)
        elif kind == "done":
            result = dict(msg[2])
            status = result.pop("status")
            if status == "build_failed":
                stats.built += 1
            outputs = result.pop("outputs", None)
            finish(w, status, outputs=outputs, **result)
            return
    if w.busy and not w.alive():
        # Died without a result: a crash in generated code, an abort, the OOM killer.
        code = w.exitcode
        tail = log_tail(w.log_path, w.log_offset)
        sig = _signal_name(code)
        stage = w.stage
        if stage == "prepare":
            stage = "build"
        what = f"worker died with {sig}" if sig else f"worker exited with code {code}"
        finish(w, "crashed", stage=stage, exit_code=code, signal=sig,
               error=f"{what} during {stage}" + (f"\n{tail}" if tail else ""))
        w.kill()
