"""The campaign's side of its worker processes: start one, hand it a task, read its messages,
notice its death, kill or stop it."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

from .messages import Assign, Stop, TaskSpec
from ..planning.plan import Task

#: Keeps BLAS and OpenMP to one thread in a worker (TVM's own pool is sized apart).
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}

#: Seconds a fresh worker may take to import a model and lower it before a task starts.
PREPARE_TIMEOUT = 900.0


class WorkerProcess:
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
        package_root = str(Path(__file__).resolve().parents[3])  # holds mutatenn_passes
        env = dict(os.environ, **SINGLE_THREAD_ENV, TVM_NUM_THREADS=str(threads))
        # The worker must import this very package: `python -c` puts the working directory
        # first on sys.path, and a source checkout there (without the built C++ extension)
        # would otherwise shadow the installed mutatenn.
        code = (f"import sys; sys.path.insert(0, {package_root!r}); "
                "from mutatenn_passes.campaign.running.worker import main_from_fd; "
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

    def send(self, message) -> None:
        try:
            self.conn.send(message)
        except OSError:
            pass  # it died already; the campaign loop notices

    def assign(self, task: Task, spec: TaskSpec) -> None:
        self.task = task
        self.stage = "prepare"
        self.deadline = time.monotonic() + PREPARE_TIMEOUT
        self.build_s = None
        try:
            self.log_offset = self.log_path.stat().st_size
        except OSError:
            self.log_offset = 0
        self.send(Assign(spec))

    def messages(self):
        """Every message the worker has sent so far (without waiting)."""
        while True:
            try:
                if not self.conn.poll():
                    return
                yield self.conn.recv()
            except (EOFError, OSError):
                return

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self.conn.close()

    def stop(self) -> None:
        self.send(Stop())
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)
        self.conn.close()
