"""The campaign's side of its worker processes: start one (forked from the `Zygote`, or
fresh), hand it a task, read its messages, notice its death, kill or stop it."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .messages import Assign, Exited, Fork, Forked, Stop, TaskSpec
from ..planning.plan import Task

#: Keeps BLAS and OpenMP to one thread in a worker (TVM's own pool is sized apart).
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}

#: Seconds a fresh worker may take to import a model and lower it before a task starts.
PREPARE_TIMEOUT = 900.0


def _python(entry: str, args: list[str], conn_fd: int, log_path: Path,
            threads: int) -> subprocess.Popen:
    """A fresh interpreter running ``entry(*args)`` (a function of this package, by its
    module path), holding the socket ``conn_fd``, its output in ``log_path``."""
    package_root = str(Path(__file__).resolve().parents[3])  # holds mutatenn_passes
    env = dict(os.environ, **SINGLE_THREAD_ENV, TVM_NUM_THREADS=str(threads))
    module, _, function = entry.rpartition(".")
    # It must import this very package: `python -c` puts the working directory first on
    # sys.path, and a source checkout there (without the built C++ extension) would
    # otherwise shadow the installed mutatenn.
    code = (f"import sys; sys.path.insert(0, {package_root!r}); "
            f"from {module} import {function}; {function}(*sys.argv[1:])")
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-c", code, *args], pass_fds=[conn_fd],
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, close_fds=True)


def _stop(proc, conn) -> None:
    """Give a process told to stop 3 s to exit, then kill it; close its connection."""
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(3)
    conn.close()


class WorkerProcess:
    """One worker process and the task it is working on.

    A worker is forked from the campaign's `Zygote`, or (`spawn`) a fresh interpreter
    (``python -c`` running `worker.worker_main`): never a fork of the campaign and never a
    `multiprocessing` spawn, so it never re-imports the caller's main script. It talks to the
    campaign over a socket pair wrapped in a `multiprocessing.connection.Connection`; its
    stdout and stderr (C++ included) go to ``logs/worker-N.log``. ``proc`` is its
    `subprocess.Popen` or, forked, its `ForkedProcess`.
    """

    def __init__(self, wid: int, log_path: Path, proc, conn):
        self.wid = wid
        self.log_path = log_path
        self.proc = proc
        self.conn = conn
        self.closed = False  # its end of the connection is closed: it is ending
        self.task: Task | None = None
        self.stage = ""
        self.deadline: float | None = None
        self.log_offset = 0
        self.prepare_s = 0.0
        self.build_s: float | None = None

    @classmethod
    def spawn(cls, wid: int, log_dir: Path, threads: int) -> WorkerProcess:
        """A fresh worker process."""
        log_path = log_dir / f"worker-{wid}.log"
        parent, child = mp.Pipe(duplex=True)
        proc = _python("mutatenn_passes.campaign.running.worker.main_from_fd",
                       [str(child.fileno()), str(wid), str(log_path), str(threads)],
                       child.fileno(), log_path, threads)
        child.close()
        return cls(wid, log_path, proc, parent)

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
        while not self.closed:
            try:
                if not self.conn.poll():
                    return
                yield self.conn.recv()
            except (EOFError, OSError):
                self.closed = True

    def ended(self) -> bool:
        """Whether the worker has ended: it has exited, or it closed its connection (then it
        is given a few seconds to exit, so that its exit code is known, and killed after)."""
        if not self.alive():
            return True
        if not self.closed:
            return False
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
        return True

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
        _stop(self.proc, self.conn)


class Zygote:
    """The campaign's side of its `zygote` process: the workers it forks, and how they end."""

    def __init__(self, log_dir: Path, threads: int):
        self.log_path = log_dir / "zygote.log"
        self.conn, child = mp.Pipe(duplex=True)
        self.proc = _python("mutatenn_passes.campaign.running.zygote.main_from_fd",
                            [str(child.fileno()), str(self.log_path), str(threads)],
                            child.fileno(), self.log_path, threads)
        child.close()
        self.exits: dict[int, int] = {}  # pid -> exit code, of the workers it reaped

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message) -> bool:
        try:
            self.conn.send(message)
            return True
        except OSError:
            return False

    def fork(self, wid: int, log_dir: Path, waiting=lambda: None) -> WorkerProcess | None:
        """A worker forked from the zygote, or None when the zygote is gone or did not fork
        within `PREPARE_TIMEOUT` (it may still be preparing: ``waiting()`` is called about
        twice a second meanwhile)."""
        from multiprocessing.reduction import send_handle

        log_path = log_dir / f"worker-{wid}.log"
        parent, child = mp.Pipe(duplex=True)
        try:
            if not self.send(Fork(wid, str(log_path))):
                return None
            send_handle(self.conn, child.fileno(), self.proc.pid)
        except OSError:
            return None
        finally:
            child.close()
        deadline = time.monotonic() + PREPARE_TIMEOUT
        while self.alive() and time.monotonic() < deadline:
            for msg in self._messages(0.5):
                if isinstance(msg, Forked):
                    return WorkerProcess(wid, log_path, ForkedProcess(msg.pid, self), parent)
            waiting()
        parent.close()
        return None

    def exit_code(self, pid: int, wait: float = 0.0) -> int | None:
        """How the worker ``pid`` ended (None: it has not, as far as the zygote said within
        ``wait`` seconds). Workers die with the zygote: with it gone, SIGKILL."""
        deadline = time.monotonic() + wait
        while pid not in self.exits:
            for _ in self._messages(max(0.0, deadline - time.monotonic())):
                pass
            if pid in self.exits:
                break
            if not self.alive():
                return -signal.SIGKILL
            if time.monotonic() >= deadline:
                return None
        return self.exits[pid]

    def _messages(self, wait: float):
        """The zygote's messages, waiting up to ``wait`` seconds for the first; `Exited`
        ones are kept in ``exits``."""
        try:
            ready = self.conn.poll(wait)
            while ready:
                msg = self.conn.recv()
                if isinstance(msg, Exited):
                    self.exits[msg.pid] = msg.code
                yield msg
                ready = self.conn.poll()
        except (EOFError, OSError):
            return

    def stop(self) -> None:
        self.send(Stop())
        _stop(self.proc, self.conn)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        self.conn.close()


class ForkedProcess:
    """A worker forked by the `Zygote`, as much of `subprocess.Popen` as `WorkerProcess`
    uses: it is the zygote's child, so its exit code comes from the zygote."""

    def __init__(self, pid: int, zygote: Zygote):
        self.pid = pid
        self.zygote = zygote
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.returncode = self.zygote.exit_code(self.pid, 1e9 if timeout is None else timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
