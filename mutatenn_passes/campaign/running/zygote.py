"""The zygote: one process prepares the first model once, and every local worker is forked
from it.

Each worker used to import the model and build its originals itself: a second worker of the
default campaign paid ~3 s of one core for what the first had already done (the import, the
Relax lowering, LLVM's code generation and JIT compilation of the original's kernels, the
segments its graph mutants are lowered in), and a worker that replaced a crashed one paid it
again. The zygote is a fresh interpreter (``python -c``, as a worker is) that does this once
while the campaign plans (`worker.prepare`), then only forks: a forked worker starts with
the zygote's caches, the JIT-compiled original's machine code included, in milliseconds.

Forking is safe for the same reason a worker's runs are forked from it (`sandbox`): the
zygote is single-threaded (BLAS and OpenMP are held to one thread; TVM's thread pool exists
only once generated code runs, which the zygote never does) and runs no mutant. The zygote is
the parent of the workers, so it reaps them and tells the campaign how each ended
(`messages.Exited`): the campaign records a crashed worker's signal from that. Workers die
with the zygote and the zygote with the campaign (``PDEATHSIG``).
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle

from ...forking import fork
from .faults import maybe_fault
from .messages import Exited, Fork, Forked, Prepare, Stop
from .processes import die_with_parent
from .worker import prepare, redirect_output, serve
from .worker_cache import WorkerCache

#: Seconds between looks for ended workers while the zygote waits for a message.
REAP_INTERVAL = 0.05


def main_from_fd(fd: str, log_path: str, threads: str) -> None:
    """Entry point of ``python -c``: the campaign's end of the socket pair is ``fd``."""
    zygote_main(Connection(int(fd)), log_path or None, int(threads))


def zygote_main(conn, log_path: str | None, threads: int) -> None:
    """The zygote's message loop: `Prepare` once, then `Fork` per worker, until `Stop`."""
    die_with_parent()
    redirect_output(log_path)
    os.environ["TVM_NUM_THREADS"] = str(threads)  # inherited by the workers' runs
    print(f"mutatenn zygote (pid {os.getpid()}) started", flush=True)
    cache = WorkerCache()
    while True:
        _report_exits(conn)
        try:
            if not conn.poll(REAP_INTERVAL):
                continue
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(msg, Stop):
            return
        if isinstance(msg, Prepare):
            maybe_fault("zygote", "prepare")
            start = time.perf_counter()
            prepare(cache, msg)
            print(f"prepared in {time.perf_counter() - start:.1f} s", flush=True)
        elif isinstance(msg, Fork):
            worker_conn = Connection(recv_handle(conn))
            pid = _fork_worker(conn, worker_conn, msg, cache)
            worker_conn.close()
            conn.send(Forked(pid))


def _fork_worker(conn, worker_conn, msg: Fork, cache: WorkerCache) -> int:
    """Fork a worker serving ``worker_conn`` with the zygote's ``cache``; its process ID."""

    def worker() -> None:  # until the campaign stops it
        conn.close()
        die_with_parent()  # with the zygote, which dies with the campaign
        redirect_output(msg.log_path)
        print(f"mutatenn worker {msg.worker_id} (pid {os.getpid()}) forked from the zygote "
              f"(pid {os.getppid()})", flush=True)
        serve(worker_conn, cache, msg.log_path)

    return fork(worker)


def _report_exits(conn) -> None:
    """Reap every worker that has ended and tell the campaign how."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        try:
            conn.send(Exited(pid, os.waitstatus_to_exitcode(status)))
        except OSError:
            return
