"""A worker process: receive tasks, build and run one mutant at a time, report each result.

Local workers are forked from the campaign's `zygote`, a fresh interpreter that prepared the
first model; otherwise (Ray actors, or when the zygote cannot fork) a worker is a fresh
interpreter itself (``python -c``). Neither is a fork of the caller's process, which may have
run TVM threads or generated code, nor re-imports the caller's main script. A worker
receives plain data (`messages`): the model's file and overrides, the target profile, the
image paths and the mutation's definition. It keeps each model, its preprocessed images, its
Relax side lowered per target and its original build (`worker_cache`). Per task it rebuilds
the mutation pass from its definition, builds the mutant — incrementally against the original
when it can (`build.build_incremental`) — checks the built IR's hash against the plan's, runs
it in a forked child (`runners`, `sandbox`) and sends the result back (`task_messages`, which
a Ray actor runs as it is: `ray_worker`). A worker that dies (a segfaulting build) or hangs
(killed at the timeout) is replaced by the campaign; its log (stdout/stderr, TVM's messages
included) stays in the output folder.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from .faults import maybe_fault
from .messages import Assign, Built, Done, Prepare, Started, Stop, TaskResult, TaskSpec
from .processes import die_with_parent, error_text, log_excerpt
from .worker_cache import WorkerCache


def main_from_fd(fd: str, worker_id: str, log_path: str, threads: str) -> None:
    """Entry point of ``python -c``: the campaign's end of the socket pair is ``fd``."""
    from multiprocessing.connection import Connection

    worker_main(Connection(int(fd)), int(worker_id), log_path or None, int(threads))


def worker_main(conn, worker_id: int, log_path: str | None, threads: int) -> None:
    """The life of a fresh worker process: set up, then `serve` with empty caches."""
    die_with_parent()
    redirect_output(log_path)
    os.environ["TVM_NUM_THREADS"] = str(threads)  # read when a run creates TVM's pool
    threads_now = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") \
        else 0
    print(f"mutatenn worker {worker_id} (pid {os.getpid()}) started, {threads_now} "
          "thread(s)", flush=True)
    serve(conn, WorkerCache(), log_path)


def serve(conn, cache: WorkerCache, log_path: str | None) -> None:
    """The message loop of a worker: prepare, run tasks, until `Stop` or the campaign's end.
    ``cache`` is empty in a fresh worker and the zygote's in a forked one (`zygote`)."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(msg, Stop):
            return
        try:
            if isinstance(msg, Prepare):  # ahead of its tasks; a failure shows there
                prepare(cache, msg)
            elif isinstance(msg, Assign):
                print(f"task {msg.task.key} {msg.task.label}", flush=True)
                for reply in task_messages(msg.task, cache, log_path):
                    conn.send(reply)
        except (BrokenPipeError, EOFError, OSError):
            return


def redirect_output(log_path: str | None) -> None:
    """Send the process's own stdout/stderr (C++ writes included) to the worker log."""
    if not log_path:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def prepare(cache: WorkerCache, msg: Prepare) -> None:
    """Import the model and its images, and build its original for each of the message's
    targets (its kernels compiled in ``jobs`` processes), with what its mutants' builds and
    runs reuse (`build.OriginalBuild.segmented_lowering`, the activations at its cuts), ahead
    of its tasks: the campaign is planning meanwhile, and every worker needs the original of
    each target it builds mutants for. A failure is only logged here (it shows again,
    reported, in the first task that needs what failed)."""
    from ...targets import get_profile

    try:
        cache.batch(msg.model, msg.images)
        for ref in msg.targets:
            profile = get_profile(ref)
            original = cache.original(msg.model, profile, jobs=msg.jobs)
            print(f"original for {ref}: {original.artifact.record.mode}", flush=True)
            if original.libraries:
                original.segmented_lowering()
                if msg.activations:
                    cache.activations(msg.model, profile, msg.images, msg.activations)
    except Exception:
        traceback.print_exc()


def task_messages(task: TaskSpec, cache: WorkerCache, log_path: str | None):
    """Prepare, build, (keep,) run one task, yielding `Started`, `Built` and `Done`. A
    failure of the worker's own (not of the mutant's build or run) ends the task as
    ``build_failed`` in the prepare stage, and the worker stays alive."""
    try:
        yield from _task_messages(task, cache, log_path)
    except Exception as exc:
        traceback.print_exc()
        yield Done(task.key, TaskResult("build_failed", stage="prepare",
                                        error="worker failed preparing the task: "
                                              + error_text(exc)))


def _task_messages(task: TaskSpec, cache: WorkerCache, log_path: str | None):
    from ...targets import get_profile
    from .output_rows import image_rows

    start = time.perf_counter()
    names, batch = cache.batch(task.model, task.images)
    profile = get_profile(task.target_ref)
    d = task.definition
    if d is None or d.level == "kernel":
        cache.lowered(task.model, profile)
    if d is None or _incremental(task, profile):
        cache.original(task.model, profile)  # built once per worker, reused after
    activations = None  # the original's at its cuts: the mutant runs from its first change
    if d is not None and task.activations and _incremental(task, profile):
        activations = cache.activations(task.model, profile, task.images, task.activations)
    result = TaskResult("", prepare_s=time.perf_counter() - start)
    deadline = None if task.timeout is None else time.monotonic() + task.timeout
    yield Started(task.key, result.prepare_s)

    maybe_fault(task.operator, "build")
    t0 = time.perf_counter()
    try:
        art = _build(task, cache, profile, from_cut=activations is not None)
    except Exception as exc:
        result.status, result.stage, result.error = "build_failed", "build", error_text(exc)
        result.build_s = time.perf_counter() - t0
        yield Done(task.key, result)
        return
    # an original was compiled while preparing: its build time is the build's own
    result.build_s = art.build_seconds if d is None else time.perf_counter() - t0
    result.build_mode = art.record.mode
    result.ir_verified = d.ir_matches(art.record, task.ir_hash) if d else None
    yield Built(task.key, result.build_s)
    if task.keep_dir:
        result.artifact = _keep(art, task.keep_dir)

    maybe_fault(task.operator, "run")
    from .runners import run_artifact
    from .sandbox import RunOutcome

    t0 = time.perf_counter()
    log_offset = _size(log_path)
    try:
        left = None if deadline is None else max(0.1, deadline - time.monotonic())
        outcome = run_artifact(art, profile, batch, timeout=left, activations=activations)
    except Exception as exc:
        outcome = RunOutcome("crashed", "run raised: " + error_text(exc))
    result.status, result.error, result.load_s = outcome.status, outcome.error, outcome.load_s
    result.run_s = time.perf_counter() - t0 - outcome.load_s
    if outcome.status == "crashed":
        tail = log_excerpt(log_path, log_offset)
        result.stage, result.exit_code, result.signal = "run", outcome.exit_code, outcome.signal
        result.error += f"\n{tail}" if tail else ""
    elif outcome.status == "timeout":  # as the campaign words its own timeouts
        result.stage, result.signal = "run", outcome.signal
        result.error = f"killed after {task.timeout:g} s in the run stage"
    if outcome.outputs is not None:
        result.outputs = image_rows(names, outcome.outputs, outcome.latencies, task.top_k)
    yield Done(task.key, result)


def _incremental(task: TaskSpec, profile) -> bool:
    """Incremental builds unless turned off, or the artifact must be kept (exported as one
    library), or the target cannot link against the original's library."""
    from ...build import incremental_unavailable

    return task.incremental and not task.keep_dir and not incremental_unavailable(profile)


def _build(task: TaskSpec, cache: WorkerCache, profile, from_cut: bool):
    """The task's artifact: the cached original, or the mutant built from its definition
    (``from_cut``: starting at its first changed cut, `build.build_incremental`)."""
    from ...build import build, build_incremental

    d = task.definition
    if d is None:
        return cache.original(task.model, profile).artifact
    if _incremental(task, profile):
        if task.schema:
            return _schema_variant(task, cache, profile, from_cut)
        return build_incremental(cache.original(task.model, profile), **d.build_arguments(),
                                 from_cut=from_cut)
    lowered = cache.lowered(task.model, profile) if d.level == "kernel" else None
    return build(cache.model(task.model), profile, lowered=lowered, **d.build_arguments())


def _schema_variant(task: TaskSpec, cache: WorkerCache, profile, from_cut: bool):
    """The task's mutant as a variant of its group's schema; built on its own (saying why in
    its build mode) when the schema cannot be built."""
    from ...build import build_incremental
    from ...errors import BuildError

    try:
        schema = cache.schema(task.model, profile, task.schema_key, task.schema, from_cut)
    except BuildError as exc:
        art = build_incremental(cache.original(task.model, profile),
                                **task.definition.build_arguments(), from_cut=from_cut)
        art.record.mode += f" (no schema: {exc})"
        return art
    return schema.variants[task.schema.index(task.definition)]


def _keep(art, folder: str) -> str:
    """Export the library and dump the IR to ``folder``; what to record as the artifact.
    Keeping artifacts must not change the outcome, so a failure is only noted."""
    from pathlib import Path

    try:
        art.export(Path(folder) / "model.so")
        art.dump(Path(folder) / "ir")
        return folder
    except Exception as exc:
        return f"(could not keep artifacts: {error_text(exc)})"


def _size(path: str | None) -> int:
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0
