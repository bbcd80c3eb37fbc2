"""Errors of remote runs. All are `MutateNNError`s, so the CLI prints one line for each.

Before any work: `TrackerUnreachable` and `NoServers` (both `TargetError`s: the target cannot
be used right now). Per job: `DeviceLost` when every try ended because a server died, stopped
answering or none was available (`RemoteTimeout`, a `DeviceLost`, when every try timed out);
`RemoteJobError` when the remote side reported an error running the job, which another server
would repeat (`RemoteCrash` when the job killed the server's session process).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MutateNNError, TargetError


@dataclass(frozen=True)
class Attempt:
    """One try of one job on one server: where, how it ended, and how long it took."""

    job: int
    server: str  # "host:port", or "" when no server was acquired
    outcome: str  # "ok", "lost", "timeout", "crash", "error", "unavailable"
    seconds: float
    message: str = ""

    def __str__(self) -> str:
        where = self.server or "no server"
        return f"{where}: {self.outcome}" + (f" ({self.message})" if self.message else "")


class RemoteError(MutateNNError):
    """Base of the remote-run errors; ``attempts`` lists the tries made (possibly none)."""

    def __init__(self, message: str, attempts: tuple[Attempt, ...] = ()):
        super().__init__(message)
        self.attempts = tuple(attempts)


class TrackerUnreachable(TargetError, RemoteError):
    """The RPC tracker of a profile does not answer (wrong address, not started, firewall)."""


class NoServers(TargetError, RemoteError):
    """The tracker answers but no server is registered under the profile's device key."""


class DeviceLost(RemoteError):
    """Every try of a job failed because its server died, hung, or none was available."""


class RemoteTimeout(DeviceLost):
    """Every try of a job ended without an answer within the timeouts."""


class RemoteJobError(RemoteError):
    """The remote side raised an error for this job (e.g. the library does not load)."""


class RemoteCrash(RemoteJobError):
    """The job killed the server's session process (a crash in the generated code)."""
