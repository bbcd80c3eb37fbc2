"""The campaign engine: plan, hand tasks to isolated workers, store each result as it arrives.

`execute_campaign` runs a validated `CampaignConfig` (`api.run_campaign`, the public entry
point, validates and then calls it). It first checks what the campaign's files hold
(`inputs.check_inputs`: every image decoded, every model imported, label files read; the
campaign file itself was validated by `config`), then takes a lock on the output folder,
records the run in its history (`run_history`), checks that remote (RPC) targets have servers,
starts the workers (which import the models while the campaign plans), plans, records the
plan and every decision that needs no build (``not_applicable``, ``equivalent``), then has an
executor feed the remaining builds to the workers, originals first, and records each result
as the executor reports it (`ResultSink`). Then each original is held against its model's
reference runtime (`reference_check`). Each result is
committed to the database before the worker gets its next task. The executor is this
machine's worker processes (`local_executor`, the default: a crashed worker is recorded
``crashed`` and replaced, one over the per-mutant timeout is killed, recorded ``timeout`` and
replaced) or actors on a Ray cluster (`ray_executor`); planning, the database and the reports
are the same for both. A rerun of the same campaign skips every finished task (a ``timeout``
is retried only when the timeout was raised since). Ctrl-C stops the workers and raises
`CampaignInterrupted`, whose message says how many mutants' results were saved.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import CampaignInterrupted, ConfigError
from ..scoring import run_history
from ..config.campaign_config import CampaignConfig
from ..config.inputs import check_inputs
from ..scoring.lock import OutputLock
from .messages import ModelSpec, TaskResult, TaskSpec
from ..planning.diffs import DiffsInBackground
from ..planning.plan import Task, make_plan
from .reference_check import check_references
from ..scoring.store import Store
from .schema_groups import SchemaGroups


def versions() -> dict:
    import platform

    import numpy
    import tvm
    import tvm_ffi

    from ...version import __version__

    return {"mutatenn": __version__, "tvm": tvm.__version__,
            "tvm_ffi": getattr(tvm_ffi, "__version__", ""),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "platform": platform.platform()}


def model_spec(config: CampaignConfig, index: int) -> ModelSpec:
    m = config.models[index]
    overrides = m.overrides()
    cache_key = hashlib.sha256(json.dumps([m.path, overrides], sort_keys=True,
                                          default=str).encode()).hexdigest()[:16]
    return ModelSpec(index=index, path=m.path, overrides=overrides, cache_key=cache_key)


@dataclass
class RunStats:
    total: int = 0
    built: int = 0
    ran: int = 0
    done: int = 0
    skipped: int = 0  # finished in an earlier run
    statuses: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    current: dict = field(default_factory=dict)  # worker (as progress shows it) -> task label
    nodes: dict = field(default_factory=dict)  # cluster node -> results it gave (Ray only)


def _task_spec(task: Task, config: CampaignConfig, keep_root: Path | None,
               groups: SchemaGroups) -> TaskSpec:
    keep_dir = None
    if keep_root is not None:
        keep_dir = str(keep_root / f"{task.key[:12]}-{task.operator or 'original'}-{task.target}")
    schema_key, schema = groups.schema_of(task)
    return TaskSpec(key=task.key, label=task.label, model=model_spec(config, task.model_index),
                    target_ref=task.target_ref, images=config.images,
                    definition=task.definition() if task.kind == "mutant" else None,
                    ir_hash=task.ir_hash, incremental=config.incremental, keep_dir=keep_dir,
                    schema_key=schema_key, schema=schema)


def execute_campaign(config: CampaignConfig, *, progress=None,
                     keep_artifacts: bool | None = None, workers: int | None = None,
                     report: bool = True) -> dict:
    """Run (or resume) ``config``; returns the analysis (see `analysis.analyse`)."""
    from ...images import skipped_summary
    from .progress import make_progress

    started_at, wall0 = time.time(), time.perf_counter()
    ui = progress or make_progress()
    inputs = check_inputs(config, ui.phase)  # before any work: every image, model, label
    if inputs.skipped:
        ui.phase(skipped_summary(inputs.skipped))
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    keep = config.keep_artifacts if keep_artifacts is None else keep_artifacts
    n_workers = workers or config.workers
    with OutputLock(out):
        store = Store(out)
        try:
            run_history.begin(store, started_at)
            return _run_locked(config, inputs, store, ui, keep, n_workers, wall0, report)
        finally:
            store.close()


def make_executor(config: CampaignConfig, log_dir: Path, workers: int, keep: bool):
    """The executor ``config`` names: this machine's worker processes (the default), or
    actors on a Ray cluster (``executor = "ray"``)."""
    if config.executor == "ray":
        from .ray_executor import RayExecutor

        if keep:
            raise ConfigError('keep_artifacts needs executor = "local": with "ray" each '
                              "mutant's artifacts would stay on the node that built it")

        return RayExecutor(config)
    from .local_executor import LocalExecutor

    return LocalExecutor(workers, log_dir, config.timeout, keep, config.prefix_reuse)


class ResultSink:
    """Where an executor reports: a task handed to a worker, a build done, a result. Each
    result is committed to the database before the executor gives that worker another task."""

    def __init__(self, store: Store, stats: RunStats, ui, timeout: float,
                 groups: SchemaGroups, diffs: DiffsInBackground):
        self.store, self.stats, self.ui, self.timeout = store, stats, ui, timeout
        self.groups, self.diffs = groups, diffs

    def assigned(self, worker: str, task: Task) -> None:
        self.stats.current[worker] = task.label
        self.ui.update(self.stats)

    def released(self, worker: str) -> None:
        """``worker`` gave up its task without a result (the executor retries it)."""
        self.stats.current.pop(worker, None)
        self.ui.update(self.stats)

    def built(self) -> None:
        self.stats.built += 1
        self.ui.update(self.stats)

    def update(self) -> None:
        """Called often while tasks run: refresh the progress, store the diffs once made."""
        self.diffs.save(self.store)
        self.ui.update(self.stats)

    def note(self, message: str) -> None:
        """Something the executor did that the user should see (a retry, a lost node)."""
        self.ui.phase(message)

    def finished(self, task: Task, result: TaskResult, *, worker: int, label: str,
                 ran: bool, node: str | None = None) -> None:
        """Store ``task``'s result (``worker`` is the number the database records, ``label``
        the worker as progress shows it, ``node`` the cluster node it ran on)."""
        stats = self.stats
        self.store.record(task.key, worker=worker, timeout_s=self.timeout,
                          **result.as_record())
        self.groups.finished(task, result.status, result.stage)
        stats.done += 1
        stats.statuses[result.status] = stats.statuses.get(result.status, 0) + 1
        if ran:
            stats.ran += 1
        if node is not None:
            stats.nodes[node] = stats.nodes.get(node, 0) + 1
        stats.current.pop(label, None)
        self.ui.result(task, result.status, result.error, stats)


def _run_locked(config, inputs, store: Store, ui, keep, n_workers, wall0, report) -> dict:
    out = config.output
    log_dir = out / "logs"
    log_dir.mkdir(exist_ok=True)
    for profile in _profiles(config):
        if profile.runner == "rpc":  # before any work: the tracker answers, servers exist
            from ... import remote

            ui.phase(f"checking remote devices of {profile.name}")
            remote.check(profile)
    executor = make_executor(config, log_dir, n_workers, keep)
    # Start the workers now: they import the first model and build its originals while the
    # campaign plans.
    executor.start(model_spec(config, 0), config.images, config.targets)
    previous = store.meta()
    store.set_meta(config=config.as_dict(), config_text=config.text, seed=config.seed,
                   versions=versions(), state="planning", started_at=time.time(),
                   runs=int(previous.get("runs", 0)) + 1,
                   sampling={o.id: {"mode": o.mode, "sites": o.sites_text(),
                                    "sample": o.sample,
                                    "seed": o.sample_seed(config.seed) if o.sample else None}
                             for o in config.operators})
    planned, diffs = False, None
    try:
        ui.phase("planning")
        t0 = time.perf_counter()
        plan = make_plan(config, progress=ui.phase, inputs=inputs)
        plan_wall = time.perf_counter() - t0
        profiles = _profiles(config)
        store.set_meta(models=plan.models, images=plan.images, image_digest=plan.image_digest,
                       images_skipped=plan.skipped, targets=[p.as_dict() for p in profiles],
                       plan_seconds=plan.seconds)
        store.save_plan(plan.tasks)
        planned = True
        diffs = DiffsInBackground(plan.pending_diffs)  # stored once made (`ResultSink.update`)
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
        keep_root = (out / "artifacts") if keep else None
        groups = SchemaGroups(todo, {ref: p for ref, p in zip(config.targets, profiles)},
                              enabled=config.incremental and not keep)
        executor.run(todo, lambda task: _task_spec(task, config, keep_root, groups),
                     ResultSink(store, stats, ui, config.timeout, groups, diffs),
                     affinity=groups.affinity)
        diffs.save(store, wait=None)
        exec_wall = time.perf_counter() - t_exec
    except BaseException as exc:
        executor.abort()
        if diffs is not None:  # what the reports of a partial campaign show
            _save_diffs_quietly(diffs, store)
        ui.stop()
        store.set_meta(state="interrupted", executor=executor.describe())
        run_history.end(store, "interrupted")
        if isinstance(exc, KeyboardInterrupt):
            raise CampaignInterrupted(_interrupted(store, planned)) from exc
        raise
    executor.close()
    ui.stop()
    t0 = time.perf_counter()
    check_references(store, [model_spec(config, i) for i in range(len(config.models))],
                     inputs.models, config.images, ui.phase)
    reference_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    seconds = {"plan_wall": plan_wall, "plan_import": plan.seconds.get("import", 0.0),
               "plan_lower": plan.seconds.get("lower", 0.0), "execute_wall": exec_wall,
               "reference_wall": reference_wall}
    store.set_meta(state="finished", finished_at=time.time(), last_run_seconds=seconds,
                   executor=executor.describe())
    run_history.end(store, "finished")
    result = None
    if report:
        from ..scoring.analysis import analyse
        from ..scoring.report import write_reports

        result = analyse(store)
        seconds["analysis"] = time.perf_counter() - t0
        seconds["total_wall"] = time.perf_counter() - wall0
        store.set_meta(last_run_seconds=seconds)
        result["campaign"]["seconds"] = seconds  # as `analyse` reads them back from now on
        t0 = time.perf_counter()
        write_reports(result, store, out)
        # apart from last_run_seconds, which the reports show (regenerated, they are the same)
        store.set_meta(reports_seconds=time.perf_counter() - t0)
        ui.summary(result, out)
    return {"analysis": result, "seconds": seconds, "stats": stats}


def _profiles(config):
    from ...targets import get_profile

    return [get_profile(t) for t in config.targets]


def _save_diffs_quietly(diffs: DiffsInBackground, store: Store) -> None:
    """Store the diffs of an interrupted campaign if they are made within a few seconds; a
    failure here must not hide why the campaign stopped."""
    try:
        diffs.save(store, wait=5.0)
    except Exception:
        pass


def _interrupted(store: Store, planned: bool) -> str:
    """What a Ctrl-C left: how many mutants' results are saved, and how to go on."""
    if not planned:
        return (f"interrupted while planning (results saved before stay in {store.folder}); "
                "rerun to resume")
    done, total = store.mutants_finished()
    return (f"interrupted: {done} of {total} mutant results saved in {store.folder}; rerun "
            "to resume")
