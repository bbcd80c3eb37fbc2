"""The ``[rpc]`` table of a target profile: what it may hold, its defaults, and validation.

A profile with ``runner = "rpc"`` builds here and runs on servers registered with a TVM RPC
tracker under a device key::

    runner = "rpc"
    device = "cpu"                # the device on the remote side: "cpu" or "cuda"

    [target]
    kind = "llvm"
    mtriple = "aarch64-linux-gnu" # cross-compile when the remote is another architecture

    [rpc]
    tracker = "127.0.0.1:9190"    # HOST:PORT of `python -m tvm.exec.rpc_tracker` (required)
    key = "cpu-farm"              # device key the servers registered with (required)
    tries = 3                     # servers one job may be tried on before it is DeviceLost
    timeout_s = 60                # longest wait for any one remote call (upload, load, an image)
    session_timeout_s = 0         # server-side cap on one job's session; 0: computed per job
    wait_s = 30                   # how long to wait for a server of the key to (re)appear
    timing = "remote"             # "remote": time_evaluator on the device; "roundtrip": client
    remote_device = "cpu"         # optional; must agree with `device` when given

This module imports nothing heavy (no TVM), so `targets.py` can validate profiles cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TargetError

#: Keys of the ``[rpc]`` table and their defaults (``None``: required).
RPC_DEFAULTS: dict[str, object] = {
    "tracker": None,
    "key": None,
    "tries": 3,
    "timeout_s": 60.0,
    "session_timeout_s": 0.0,
    "wait_s": 30.0,
    "timing": "remote",
    "remote_device": None,
}

TIMINGS = ("remote", "roundtrip")


def parse_tracker(text: str, where: str = "") -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:9190"`` for IPv6) into ``(host, port)``; else `TargetError`."""
    prefix = f"{where}: " if where else ""
    if not isinstance(text, str) or ":" not in text:
        raise TargetError(f"{prefix}tracker must be 'HOST:PORT', not {text!r}")
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise TargetError(f"{prefix}tracker must be 'HOST:PORT' with a port in 1-65535, "
                          f"not {text!r}")
    return host, number


def _number(table: dict, name: str, where: str, minimum: float, integer: bool = False):
    value = table[name]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
        what = "an integer" if integer else "a number"
        raise TargetError(f"{where}: [rpc] {name} must be {what} >= {minimum}, not {value!r}")
    return int(value) if integer else float(value)


def validate_rpc_table(table, runner: str, device: str, where: str) -> dict:
    """Check a profile's ``[rpc]`` table against its ``runner`` and ``device``.

    Returns the table with defaults filled in (``{}`` for a profile without one and a runner
    other than ``rpc``). Raises `TargetError` naming ``where`` (the profile file) on any
    problem: ``runner = "rpc"`` without a tracker or key, an ``[rpc]`` table on a local
    profile, an unknown key, a malformed address or a bad number.
    """
    if table is None or table == {}:
        if runner == "rpc":
            raise TargetError(f"{where}: runner 'rpc' needs an [rpc] table with tracker = "
                              "'HOST:PORT' and key = 'DEVICE-KEY'")
        return {}
    if not isinstance(table, dict):
        raise TargetError(f"{where}: 'rpc' must be a table ([rpc])")
    if runner != "rpc":
        raise TargetError(f"{where}: an [rpc] table is only meaningful with runner = 'rpc' "
                          f"(this profile has runner = {runner!r})")
    unknown = set(table) - set(RPC_DEFAULTS)
    if unknown:
        raise TargetError(f"{where}: unknown [rpc] key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(RPC_DEFAULTS)})")
    for name in ("tracker", "key"):
        if name not in table:
            raise TargetError(f"{where}: [rpc] needs {name!r}")
    out = {**RPC_DEFAULTS, **table}
    parse_tracker(out["tracker"], where)
    key = out["key"]
    if not isinstance(key, str) or not key or any(c.isspace() for c in key) or ":" in key:
        raise TargetError(f"{where}: [rpc] key must be a non-empty device key without spaces "
                          f"or ':', not {key!r}")
    out["tries"] = _number(out, "tries", where, 1, integer=True)
    out["timeout_s"] = _number(out, "timeout_s", where, 0.1)
    out["session_timeout_s"] = _number(out, "session_timeout_s", where, 0)
    out["wait_s"] = _number(out, "wait_s", where, 0)
    if out["timing"] not in TIMINGS:
        raise TargetError(f"{where}: [rpc] timing must be one of {', '.join(TIMINGS)}, "
                          f"not {out['timing']!r}")
    remote_device = out["remote_device"]
    if remote_device is not None:
        if remote_device not in ("cpu", "cuda"):
            raise TargetError(f"{where}: [rpc] remote_device must be 'cpu' or 'cuda', "
                              f"not {remote_device!r}")
        if remote_device != device:
            raise TargetError(f"{where}: [rpc] remote_device {remote_device!r} disagrees with "
                              f"the profile's device {device!r}")
    out["remote_device"] = device
    return out


@dataclass(frozen=True)
class RemoteConfig:
    """The validated ``[rpc]`` settings of one profile, with per-pool overrides applied."""

    host: str
    port: int
    key: str
    device: str = "cpu"
    tries: int = 3
    timeout_s: float = 60.0
    session_timeout_s: float = 0.0
    wait_s: float = 30.0
    timing: str = "remote"

    @property
    def tracker(self) -> str:
        return f"{self.host}:{self.port}"

    def session_timeout_for(self, images: int) -> float:
        """Server-side session limit for a job of ``images`` images (upload, load, runs)."""
        if self.session_timeout_s:
            return self.session_timeout_s
        return self.timeout_s * (images + 3)

    @classmethod
    def from_profile(cls, profile, **overrides) -> "RemoteConfig":
        if profile.runner != "rpc":
            raise TargetError(f"target {profile.name} has runner {profile.runner!r}, not "
                              "'rpc': it does not run on a remote device")
        table = validate_rpc_table(dict(profile.rpc), "rpc", profile.device,
                                   profile.path or profile.name)
        host, port = parse_tracker(table["tracker"], profile.path or profile.name)
        values = {"host": host, "port": port, "key": table["key"], "device": profile.device,
                  "tries": table["tries"], "timeout_s": table["timeout_s"],
                  "session_timeout_s": table["session_timeout_s"], "wait_s": table["wait_s"],
                  "timing": table["timing"]}
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in values or name in ("host", "port", "key", "device"):
                raise TypeError(f"unknown remote setting {name!r}")
            values[name] = value
        # overrides go through the same checks as the profile's own values
        check = {k: values[k] for k in ("tries", "timeout_s", "session_timeout_s", "wait_s",
                                        "timing")}
        validate_rpc_table({"tracker": f"{host}:{port}", "key": values["key"], **check}, "rpc",
                           profile.device, "override")
        return cls(**values)
