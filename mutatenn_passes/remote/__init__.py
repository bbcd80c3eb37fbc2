"""Run built models on remote devices through TVM RPC (target profiles with runner = "rpc").

The build happens here; the exported library is uploaded to a server registered with a TVM
RPC tracker under the profile's device key, loaded there, and run on the remote device, with
latency measured on the remote side. The API the campaign engine uses:

* `run_exported(profile, library_path, batch)` -> ``(outputs (N, classes), latencies_ms)``
* `RemotePool(profile)`: ``submit(library_path, batch) -> Future`` and ``map(jobs)``, spreading
  jobs over every server of the key (one job per server at a time), with failover
* `check(profile)`: before any work, `TrackerUnreachable` / `NoServers` or the key's state
* `servers_free(profile)`, `list_devices(tracker)`: what the tracker has now
* `export_for_remote(artifact, folder)`: ``.so``, or ``.tar`` for cross-compiled targets (the
  device links it)

Errors (all `MutateNNError`): `TrackerUnreachable` / `NoServers` before any work,
`DeviceLost` (and `RemoteTimeout`) when all tries of a job failed, `RemoteJobError` (and
`RemoteCrash`) when the job itself failed on the remote side. See ``docs/remote.md``.
"""

from .config import RPC_DEFAULTS, RemoteConfig, parse_tracker, validate_rpc_table
from .errors import (Attempt, DeviceLost, NoServers, RemoteCrash, RemoteError, RemoteJobError,
                     RemoteTimeout, TrackerUnreachable)
from .export import export_for_remote, library_suffix, needs_remote_link
from .pool import RemotePool, check, run_exported, servers_free
from .tracker import DeviceKey, TrackerClient, list_devices

__all__ = [
    "Attempt", "DeviceKey", "DeviceLost", "NoServers", "RPC_DEFAULTS", "RemoteConfig",
    "RemoteCrash", "RemoteError", "RemoteJobError", "RemotePool", "RemoteTimeout", "check",
    "TrackerClient", "TrackerUnreachable", "export_for_remote", "library_suffix",
    "list_devices", "needs_remote_link", "parse_tracker", "run_exported", "servers_free",
    "validate_rpc_table",
]
