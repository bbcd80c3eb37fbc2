"""Build, check and time candidate schedules in a warm child process.

Sampled schedules are code nobody has run: one may crash the compiler or the kernel, or hang.
`Measurer` therefore keeps one worker process (``spawn``: no copy of the parent's TVM state
and thread pools) fed `Job`s over a pipe; a candidate that kills the worker or outlives its
timeout costs that candidate, and the next one starts a fresh worker. Starting a worker costs
seconds (importing TVM), building and timing a candidate a fraction of one, hence one worker
for the whole run rather than one per candidate.

The worker sizes TVM's thread pool as a build does (`threads.use_physical_cores`), calls the
kernel on random inputs drawn from a seed (the same for every candidate of a kernel), checks
every argument afterwards against the rules' schedule's (relative L-inf <= `RTOL` on floats,
one step on integers: fusion and FMA contraction reassociate the sums), and times it with
TVM's ``time_evaluator``: the median of `REPEATS` repeats of at least `MIN_REPEAT_MS` each.
"""

from __future__ import annotations

import multiprocessing
import statistics
from dataclasses import dataclass

import numpy as np

#: Timed repeats per candidate; its time is their median.
REPEATS = 5
#: Each repeat calls the kernel as often as fits this many ms (one call at least).
MIN_REPEAT_MS = 20
#: Largest |candidate - rules| allowed, relative to the largest |rules| of the argument.
RTOL = 1e-4
#: Seconds a fresh worker may take to import TVM and report ready.
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Job:
    """One candidate to measure: its TVMScript, the profile's target dict, the seed of the
    kernel's random inputs, and the arguments after the rules' schedule ran (None: this is
    the rules' schedule; its arguments come back in the `Outcome`)."""

    script: str
    target: dict
    input_seed: int
    expected: list | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a `Job`: ``ok`` with its median ``seconds``, or the one-line
    ``error`` (build failure, wrong values, crash, timeout)."""

    ok: bool
    seconds: float = 0.0
    error: str = ""
    arguments: list | None = None


def random_arguments(func, seed: int) -> list[np.ndarray]:
    """Every argument of ``func`` filled from ``seed``: normal floats, integers 0-15."""
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    rng = np.random.default_rng(seed)
    out = []
    for info in ArgInfo.from_prim_func(func):
        shape, dtype = [int(s) for s in info.shape], str(info.dtype)
        out.append(rng.integers(0, 16, size=shape).astype(dtype) if "int" in dtype
                   else rng.standard_normal(shape).astype(dtype))
    return out


def mismatch(got: list[np.ndarray], expected: list[np.ndarray]) -> str:
    """Why ``got`` differs from ``expected`` beyond rounding ('' when it does not)."""
    for i, (a, b) in enumerate(zip(got, expected)):
        if a.dtype.kind == "f":
            if not np.array_equal(np.isfinite(a), np.isfinite(b)):
                return f"argument {i}: non-finite values differ"
            finite = np.isfinite(b)
            scale = float(np.max(np.abs(b[finite]), initial=0.0)) or 1.0
            err = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0)) / scale
            if err > RTOL:
                return f"argument {i}: relative error {err:.1e} > {RTOL:g}"
        elif np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)), initial=0) > 1:
            return f"argument {i}: integers differ by more than one step"
    return ""


def _measure(job: Job) -> Outcome:
    import tvm

    func = tvm.script.from_source(job.script)
    kernel = tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target(job.target))
    library, device = kernel.jit(), tvm.cpu()
    args = [tvm.runtime.tensor(a, device) for a in random_arguments(func, job.input_seed)]
    library["main"](*args)
    got = [a.numpy() for a in args]
    if job.expected is not None:
        why = mismatch(got, job.expected)
        if why:
            return Outcome(False, error=f"wrong values: {why}")
    timer = library.time_evaluator("main", device, number=1, repeat=REPEATS,
                                   min_repeat_ms=MIN_REPEAT_MS)
    seconds = statistics.median(timer(*args).results)
    return Outcome(True, seconds, arguments=got if job.expected is None else None)


def _serve(conn) -> None:
    """The worker: answer each `Job` with an `Outcome` until the pipe closes or says None."""
    from ...build import tvm_error_summary
    from ...threads import use_physical_cores

    use_physical_cores()  # before TVM creates its pool: the threads a build runs with
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            outcome = _measure(job)
        except Exception as exc:  # a TVM build or run error: this candidate failed
            outcome = Outcome(False, error=tvm_error_summary(exc)[:300])
        conn.send(outcome)


class Measurer:
    """A warm worker process measuring `Job`s one at a time (see the module doc). Use as a
    context manager; the worker starts on the first job and again after each crash."""

    def __init__(self):
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self.restarts = 0

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), daemon=True,
                                              name="mutatenn-tune-worker")
        self._process.start()
        child.close()  # only the worker holds its end: its death is an EOF here
        self._conn = parent
        if not parent.poll(START_TIMEOUT_S) or parent.recv() != "ready":
            self._stop()
            raise RuntimeError("the tuning worker process did not start")

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._conn.close()
        self._process = self._conn = None

    def measure(self, job: Job, timeout: float) -> Outcome:
        """Run ``job`` in the worker; a crash or a timeout is the job's failed `Outcome`."""
        if self._process is None:
            self._start()
        try:
            self._conn.send(job)
            if self._conn.poll(timeout):
                return self._conn.recv()
            error = f"timed out after {timeout:.0f} s"
        except (EOFError, OSError):
            self._process.join()
            code = self._process.exitcode
            error = f"crashed the worker (exit code {code})" if code and code > 0 else \
                f"crashed the worker (signal {-code})" if code else "crashed the worker"
        self._stop()
        self.restarts += 1
        return Outcome(False, error=error)

    def close(self) -> None:
        """Stop the worker (asked to, then killed)."""
        if self._process is not None:
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
            self._process.join(5)
        self._stop()
