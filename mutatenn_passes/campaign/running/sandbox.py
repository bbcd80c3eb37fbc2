"""Run a mutant's code in a child forked just for that run.

The worker is single-threaded and has never executed generated code, so forking it is safe;
the child inherits the worker's cached model and JIT-compiled original. A mutant that corrupts
memory or segfaults then takes down only the child, and the worker stays clean for its next
task. The child reports a picklable `RunOutcome` through a pipe; a child that dies before
reporting is a ``crashed`` outcome naming its signal or exit code. A hanging child is stopped
either by the campaign's per-mutant timeout, which kills the worker (the child dies with it), or,
given a ``timeout``, by the worker itself, which kills the child and lives on (a Ray actor's
way: see `ray_worker`).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import Callable

from .processes import die_with_parent, error_text, signal_name


@dataclass
class RunOutcome:
    """What one run of a built mutant gave: a status and, when ``ok``, its outputs."""

    status: str  # "ok", "crashed", "timeout", "cannot_run_here", "device_lost"
    error: str = ""
    outputs: object = None  # (N, classes) array
    latencies: list[float] | None = None
    load_s: float = 0.0  # loading the library into a VM (or exporting it for a device)
    exit_code: int | None = None
    signal: str = ""


def run_in_child(body: Callable[[], RunOutcome], timeout: float | None = None) -> RunOutcome:
    """``body()`` in a forked child; its outcome, or how the child died. A child still running
    after ``timeout`` seconds is killed (SIGKILL) and the outcome is ``timeout``."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, exit without cleanup
        code = 0
        try:
            os.close(read_fd)
            die_with_parent()
            outcome = body()
        except BaseException as exc:  # e.g. a TVM runtime error raised by the mutant's code
            outcome = RunOutcome("crashed", "the mutant's code raised at run time: "
                                 + error_text(exc), exit_code=1)
        try:
            with os.fdopen(write_fd, "wb") as f:
                f.write(pickle.dumps(outcome))
        except BaseException:
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write_fd)
    data = _read_until_eof(read_fd, None if timeout is None else time.monotonic() + timeout)
    if data is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return RunOutcome("timeout", f"the run was killed after {timeout:g} s",
                          signal="SIGKILL")
    _, wstatus = os.waitpid(pid, 0)
    if data:
        return pickle.loads(data)
    if os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
        name = signal_name(sig)
        return RunOutcome("crashed", f"the run died with {name}", exit_code=-sig, signal=name)
    code = os.WEXITSTATUS(wstatus)
    return RunOutcome("crashed", f"the run exited with code {code}", exit_code=code)


def _read_until_eof(fd: int, deadline: float | None) -> bytes | None:
    """Everything written to the pipe ``fd`` until its writer closes it (closing ``fd``), or
    None at ``deadline`` (a `time.monotonic` value)."""
    chunks = []
    with os.fdopen(fd, "rb", buffering=0) as f:
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([f], [], [], left)[0]:
                    return None
            chunk = f.read(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
