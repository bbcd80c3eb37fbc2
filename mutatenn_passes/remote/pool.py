"""Spread jobs over every server of a device key, with failover and timeouts.

A job is one exported library and one preprocessed batch. `RemotePool` starts one worker
thread per server registered under the key when it opens (``workers`` overrides); each
worker takes a job, asks the tracker for a free server, and runs the job there in an attempt
thread. The tracker hands each server to one session at a time, so every server runs at most
one job at once and all of them work in parallel.

Failover, per job, up to ``tries`` tries (``[rpc] tries``):

* the connection breaks (server killed, machine gone, network cut): if the server's port
  stops accepting connections within 1.5 s, it died, and the job is tried again on the next
  server the tracker hands out. If the server is still there, the job itself killed the
  server's session process (a crash in the generated code): `RemoteCrash`, not retried, since
  every server would crash the same way (and TVM's stock server stops serving after a crashed
  session; `python -m mutatenn_passes.remote.server` does not).
* no remote call answers within ``timeout_s``: the worker shuts the session's socket down
  (which unblocks the attempt thread), abandons the try as "timeout" and tries again. The
  server side also gets a session limit (``session_timeout_s``, by default ``timeout_s`` per
  image plus three), after which the TVM server kills the session itself, so a hung job does
  not hold a server forever.
* the remote side raises an error for the job (library fails to load, ...): `RemoteJobError`,
  not retried.
* no server of the key registered for ``wait_s`` seconds: the job fails at once, and later
  jobs fail without waiting again until a server reappears.

When every try failed, the job's future raises `DeviceLost` (`RemoteTimeout` if every try
timed out); the other jobs go on. Results already returned are never touched again.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from .config import RemoteConfig
from .errors import (Attempt, DeviceLost, NoServers, RemoteCrash, RemoteError, RemoteJobError,
                     RemoteTimeout, TrackerUnreachable)
from .session import SessionFailure, probe_server, run_session, shutdown_connections
from .tracker import DeviceKey, TrackerClient

log = logging.getLogger("mutatenn.remote")

_job_ids = itertools.count(1)
_STOP = object()


class _Job:
    def __init__(self, library_path: Path, batch: np.ndarray):
        self.id = next(_job_ids)
        self.library_path = library_path
        self.batch = batch
        self.future: Future = Future()
        self.future.job_id = self.id  # so callers can match attempts to futures


class _Unavailable(Exception):
    """No server of the key registered for ``wait_s`` (raised from a tracker request)."""


class RemotePool:
    """Run jobs on all servers of a profile's device key at once (one job per server).

    Use as a context manager::

        with RemotePool("my-rpc-profile") as pool:
            futures = [pool.submit("mutant1.so", batch), pool.submit("mutant2.so", batch)]
            outputs, latencies_ms = futures[0].result()

    ``pool.map(jobs)`` runs ``(library_path, batch)`` pairs and returns their results in
    order. Opening the pool checks the tracker: `TrackerUnreachable` or `NoServers` before
    any work. Keyword arguments override the profile's ``[rpc]`` settings (``tries``,
    ``timeout_s``, ``session_timeout_s``, ``wait_s``, ``timing``). ``attempts`` records every
    try of every job (`Attempt`), in the order they ended.
    """

    def __init__(self, profile, workers: int | None = None, **overrides):
        from ..targets import get_profile

        self.profile = get_profile(profile)
        self.config = RemoteConfig.from_profile(self.profile, **overrides)
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.attempts: list[Attempt] = []
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._cancelled = threading.Event()
        self._unavailable_since: float | None = None  # no server of the key seen since then
        self._running: dict[int, str] = {}  # job id -> server it is being tried on
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> "RemotePool":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)

    def start(self) -> "RemotePool":
        """Check the tracker and the key, then start the workers (idempotent)."""
        with self._lock:
            if self._started:
                return self
            device = self.check()
            count = self.workers or max(1, device.total)
            for index in range(count):
                thread = threading.Thread(target=self._worker, daemon=True,
                                          name=f"mutatenn-remote-{self.config.key}-{index}")
                thread.start()
                self._threads.append(thread)
            self._started = True
        log.info("remote pool on %s key %s: %d worker(s)", self.config.tracker,
                 self.config.key, count)
        return self

    def check(self) -> DeviceKey:
        """The key's state at the tracker; waits up to ``wait_s`` for a first server.

        Raises `TrackerUnreachable` when the tracker does not answer and `NoServers` when no
        server of the key registers in time.
        """
        cfg = self.config
        deadline = time.monotonic() + cfg.wait_s
        while True:
            with TrackerClient(cfg.host, cfg.port) as client:
                keys = client.devices()
            device = keys.get(cfg.key, DeviceKey(cfg.key))
            if device.total:
                return device
            if time.monotonic() >= deadline:
                others = ", ".join(f"{k} ({d.total})" for k, d in keys.items() if d.total)
                raise NoServers(f"the RPC tracker at {cfg.tracker} has no server with key "
                                f"{cfg.key!r} (waited {cfg.wait_s:g} s; keys with servers: "
                                f"{others or 'none'})")
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def close(self, wait: bool = True, cancel: bool = False) -> None:
        """Stop the workers after the queued jobs (or cancel those not started)."""
        if cancel:
            self._closing.set()
            self._cancelled.set()
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not _STOP:
                    job.future.cancel()
        for _ in self._threads:
            self._queue.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
        self._closing.set()

    # -- submitting ------------------------------------------------------------------------

    def submit(self, library_path, batch: np.ndarray) -> Future:
        """Queue one job; its future gives ``(outputs (N, classes), latencies_ms)``."""
        if self._closing.is_set():
            raise RuntimeError("the remote pool is closed")
        library_path = Path(library_path)
        if not library_path.is_file():
            raise RemoteError(f"{library_path}: no such library to run remotely")
        batch = np.asarray(batch)
        if batch.ndim < 1 or len(batch) == 0:
            raise RemoteError("a remote job needs a non-empty batch of inputs")
        self.start()
        job = _Job(library_path, np.ascontiguousarray(batch))
        self._queue.put(job)
        return job.future

    def map(self, jobs, return_exceptions: bool = False) -> list:
        """Run ``(library_path, batch)`` jobs; results in order.

        With ``return_exceptions`` a failed job's entry is its exception (`DeviceLost`, ...)
        and the others still complete; otherwise the first failure (in job order) is raised
        after every job has finished.
        """
        futures = [self.submit(path, batch) for path, batch in jobs]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                results.append(exc)
        if not return_exceptions:
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results

    def running(self) -> dict[int, str]:
        """Jobs being tried right now: job id -> ``"host:port"`` of their server."""
        with self._lock:
            return dict(self._running)

    # -- workers ---------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                result = self._run_job(job)
            except BaseException as exc:  # every failure goes to the job's future
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

    def _record(self, attempt: Attempt) -> Attempt:
        with self._lock:
            self.attempts.append(attempt)
        level = logging.INFO if attempt.outcome == "ok" else logging.WARNING
        log.log(level, "job %d on %s: %s%s", attempt.job, attempt.server or "-",
                attempt.outcome, f" ({attempt.message})" if attempt.message else "")
        return attempt

    def _run_job(self, job: _Job):
        cfg = self.config
        tried: list[Attempt] = []
        for _ in range(cfg.tries):
            start = time.monotonic()
            try:
                host, port, matchkey = self._acquire()
            except _Unavailable as exc:
                tried.append(self._record(Attempt(job.id, "", "unavailable",
                                                  time.monotonic() - start, str(exc))))
                break
            except TrackerUnreachable as exc:
                tried.append(self._record(Attempt(job.id, "", "unavailable",
                                                  time.monotonic() - start, str(exc))))
                break
            server = f"{host}:{port}"
            with self._lock:
                self._running[job.id] = server
            try:
                outcome, payload = self._attempt(job, host, port, matchkey)
            finally:
                with self._lock:
                    self._running.pop(job.id, None)
            elapsed = time.monotonic() - start
            if outcome == "ok":
                self._record(Attempt(job.id, server, "ok", elapsed))
                return payload
            if outcome == "connect":  # handed out but unreachable: gone, or a stale match
                outcome, payload = "lost", f"cannot connect: {payload}"
            elif outcome == "connection":
                alive = self._server_alive(host, port)
                outcome = "crash" if alive else "lost"
                payload = (f"the session process died while the server stayed up: {payload}"
                           if alive else f"server gone: {payload}")
            attempt = self._record(Attempt(job.id, server, outcome, elapsed, payload))
            tried.append(attempt)
            if outcome == "crash":
                raise RemoteCrash(f"job {job.id} ({job.library_path.name}) crashed the remote "
                                  f"session on {server}: {payload}", tuple(tried))
            if outcome == "error":
                raise RemoteJobError(f"job {job.id} ({job.library_path.name}) failed on "
                                     f"{server}: {payload}", tuple(tried))
        summary = "; ".join(str(a) for a in tried)
        error = RemoteTimeout if tried and all(a.outcome == "timeout" for a in tried) \
            else DeviceLost
        raise error(f"job {job.id} ({job.library_path.name}) lost after {len(tried)} "
                    f"tr{'y' if len(tried) == 1 else 'ies'} on key {cfg.key!r} at "
                    f"{cfg.tracker}: {summary}", tuple(tried))

    def _acquire(self) -> tuple[str, int, str]:
        """A free server of the key from the tracker, waiting while all are busy."""
        cfg = self.config
        with self._lock:
            gone_since = self._unavailable_since
        if gone_since is not None:
            # the key was declared empty before: fail fast unless a server came back
            with TrackerClient(cfg.host, cfg.port) as probe:
                if not probe.devices().get(cfg.key, DeviceKey(cfg.key)).total:
                    raise _Unavailable(f"no server with key {cfg.key!r} since "
                                       f"{time.monotonic() - gone_since:.0f} s ago")
            with self._lock:
                self._unavailable_since = None
        empty_since = [None]

        def on_idle():
            if self._cancelled.is_set():
                raise _Unavailable("the pool was closed with cancel=True")
            with TrackerClient(cfg.host, cfg.port) as probe:
                total = probe.devices().get(cfg.key, DeviceKey(cfg.key)).total
            now = time.monotonic()
            if total:
                empty_since[0] = None
                return
            if empty_since[0] is None:
                empty_since[0] = now
            if now - empty_since[0] >= cfg.wait_s:
                with self._lock:
                    self._unavailable_since = empty_since[0]
                raise _Unavailable(f"no server with key {cfg.key!r} registered for "
                                   f"{cfg.wait_s:g} s")

        with TrackerClient(cfg.host, cfg.port) as client:
            return client.request(cfg.key, poll_s=min(1.0, max(0.1, cfg.wait_s / 4)),
                                  on_idle=on_idle)

    def _attempt(self, job: _Job, host: str, port: int, matchkey: str):
        """Run one try in its own thread under the watchdog; ``(outcome, result|message)``."""
        cfg = self.config
        state = {"last": time.monotonic(), "result": None}
        done = threading.Event()

        def progress():
            state["last"] = time.monotonic()

        def body():
            try:
                state["result"] = ("ok", run_session(
                    host, port, matchkey, str(job.library_path), job.batch, cfg.device,
                    cfg.timing, cfg.session_timeout_for(len(job.batch)), progress))
            except SessionFailure as exc:
                state["result"] = (exc.kind, str(exc))
            except BaseException as exc:  # a bug here must not hang the worker
                state["result"] = ("error", f"{type(exc).__name__}: {exc}")
            finally:
                done.set()

        thread = threading.Thread(target=body, daemon=True,
                                  name=f"mutatenn-remote-job-{job.id}")
        thread.start()
        while not done.wait(0.1):
            silent = time.monotonic() - state["last"]
            if silent > cfg.timeout_s:
                shutdown_connections(host, port)  # unblocks the attempt thread
                done.wait(2.0)
                return "timeout", f"no answer for {silent:.0f} s (timeout_s = {cfg.timeout_s:g})"
        return state["result"]

    def _server_alive(self, host: str, port: int) -> bool:
        """After a broken connection: is the server process still there (so the job killed
        its session)? Its listening port tells, probed twice over 1.5 s (a killed server's
        processes may take a moment to go; the tracker may list it for a while yet): a dead
        server's port refuses connections or does not answer at all, a live server answers,
        and TVM's stock server, after a crashed session, no longer serves but still accepts
        connections."""
        for delay in (0.5, 1.0):
            time.sleep(delay)
            if probe_server(host, port) == "closed":
                return False
        return True


def run_exported(profile, library_path, batch: np.ndarray, **overrides):
    """Run one exported library on a remote server of ``profile``'s device key.

    Returns ``(outputs (N, classes), latencies_ms)`` like `Artifact.run_array`; retries on
    other servers as configured and raises `DeviceLost` when every try failed (see
    `RemotePool` for all errors). For many jobs, a `RemotePool` spreads them over servers.
    """
    with RemotePool(profile, workers=1, **overrides) as pool:
        return pool.submit(library_path, batch).result()


def check(profile, **overrides) -> DeviceKey:
    """Before any work: the profile's key at its tracker, with at least one server.

    Raises `TrackerUnreachable` (the tracker does not answer within seconds) or `NoServers`
    (no server of the key registered within ``wait_s``); both are `TargetError`s.
    """
    return RemotePool(profile, **overrides).check()


def servers_free(profile) -> int:
    """How many servers of the profile's device key are free right now."""
    from ..targets import get_profile

    config = RemoteConfig.from_profile(get_profile(profile))
    with TrackerClient(config.host, config.port) as client:
        return client.devices().get(config.key, DeviceKey(config.key)).free
