"""A small client for the TVM RPC tracker protocol, with timeouts everywhere.

`tvm.rpc.connect_tracker` retries a refused connection for 60 seconds and its ``request``
waits forever for a free server. Here every socket operation has a deadline, an unreachable
tracker is a `TrackerUnreachable` within seconds, and a pending request for a server wakes up
regularly so the caller can give up (no server of the key left, pool closing).

Protocol (see ``tvm/rpc/tracker.py``): a handshake of the int32 ``RPC_TRACKER_MAGIC`` both
ways, then ``[int32 size][json]`` messages, each answered by the tracker.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from dataclasses import dataclass

from .errors import TrackerUnreachable

RPC_TRACKER_MAGIC = 0x2F271
SUCCESS, PING, REQUEST, SUMMARY = 0, 1, 4, 6


@dataclass(frozen=True)
class DeviceKey:
    """What the tracker knows about one device key."""

    key: str
    servers: tuple[str, ...] = ()  # "host:port" of each registered server
    free: int = 0  # servers waiting for a session
    pending: int = 0  # requests waiting for a server

    @property
    def total(self) -> int:
        return len(self.servers)

    @property
    def in_use(self) -> int:
        return max(0, self.total - self.free)

    def as_dict(self) -> dict:
        return {"key": self.key, "servers": list(self.servers), "total": self.total,
                "free": self.free, "in_use": self.in_use, "pending": self.pending}


class TrackerClient:
    """One connection to a tracker. Raises `TrackerUnreachable` on any transport failure."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._sock = None
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
            self._sock.sendall(struct.pack("<i", RPC_TRACKER_MAGIC))
            magic = struct.unpack("<i", self._recv(4))[0]
        except (OSError, ValueError) as exc:
            self.close()
            raise TrackerUnreachable(f"cannot reach the RPC tracker at {self.address}: "
                                     f"{_reason(exc)}") from None
        if magic != RPC_TRACKER_MAGIC:
            self.close()
            raise TrackerUnreachable(f"{self.address} answers but is not a TVM RPC tracker")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _recv(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self._sock.recv(n - got)
            if not chunk:
                raise ConnectionResetError("the tracker closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _send(self, message) -> None:
        data = json.dumps(message).encode("utf-8")
        self._sock.sendall(struct.pack("<i", len(data)) + data)

    def _reply(self):
        size = struct.unpack("<i", self._recv(4))[0]
        return json.loads(self._recv(size).decode("utf-8"))

    def call(self, message):
        """Send one message and return the tracker's answer."""
        if self._sock is None:
            raise TrackerUnreachable(f"connection to the RPC tracker at {self.address} closed")
        try:
            self._sock.settimeout(self.timeout)
            self._send(message)
            return self._reply()
        except (OSError, ValueError) as exc:
            self.close()
            raise TrackerUnreachable(f"the RPC tracker at {self.address} stopped answering: "
                                     f"{_reason(exc)}") from None

    def ping(self) -> bool:
        return self.call([PING]) == SUCCESS

    def summary(self) -> dict:
        """The tracker's raw summary: ``{"queue_info": {...}, "server_info": [...]}``."""
        answer = self.call([SUMMARY])
        if not isinstance(answer, list) or answer[0] != SUCCESS:
            raise TrackerUnreachable(f"the RPC tracker at {self.address} answered "
                                     f"{answer!r} to a summary request")
        return answer[1]

    def devices(self) -> dict[str, DeviceKey]:
        return devices_from_summary(self.summary())

    def request(self, key: str, poll_s: float = 1.0, on_idle=None,
                priority: int = 1) -> tuple[str, int, str]:
        """Ask for a free server of ``key``; returns ``(host, port, matchkey)``.

        Waits as long as needed, calling ``on_idle()`` every ``poll_s`` seconds; ``on_idle``
        raises to give up (the connection is then closed, which withdraws the request).
        """
        if self._sock is None:
            raise TrackerUnreachable(f"connection to the RPC tracker at {self.address} closed")
        try:
            self._sock.settimeout(self.timeout)
            self._send([REQUEST, key, "", priority])
            while True:
                ready, _, _ = select.select([self._sock], [], [], poll_s)
                if ready:
                    break
                if on_idle is not None:
                    on_idle()
            answer = self._reply()
        except (OSError, ValueError) as exc:
            self.close()
            raise TrackerUnreachable(f"the RPC tracker at {self.address} stopped answering: "
                                     f"{_reason(exc)}") from None
        except BaseException:
            self.close()
            raise
        if not isinstance(answer, list) or answer[0] != SUCCESS:
            self.close()
            raise TrackerUnreachable(f"the RPC tracker at {self.address} answered {answer!r} "
                                     f"to a request for {key!r}")
        host, port, matchkey = answer[1]
        return str(host), int(port), str(matchkey)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `python -m tvm.exec.rpc_tracker` running there?)"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def devices_from_summary(summary: dict) -> dict[str, DeviceKey]:
    """Group a tracker summary by device key."""
    servers: dict[str, list[str]] = {}
    for info in summary.get("server_info", []):
        key = str(info.get("key", ""))
        if not key.startswith("server:"):
            continue
        addr = info.get("addr") or ["?", "?"]
        servers.setdefault(key.split(":", 1)[1], []).append(f"{addr[0]}:{addr[1]}")
    queues = summary.get("queue_info", {})
    out = {}
    for key in sorted(set(servers) | set(queues)):
        queue = queues.get(key, {})
        out[key] = DeviceKey(key=key, servers=tuple(sorted(servers.get(key, []))),
                             free=int(queue.get("free", 0)), pending=int(queue.get("pending", 0)))
    return out


def list_devices(tracker, timeout: float = 5.0) -> list[DeviceKey]:
    """Device keys a tracker (``"HOST:PORT"`` or ``(host, port)``) knows, by key.

    Keys that only ever had requests (no server registered, none pending) are left out.
    Raises `TrackerUnreachable` when the tracker does not answer within ``timeout``.
    """
    from .config import parse_tracker

    host, port = parse_tracker(tracker) if isinstance(tracker, str) else tracker
    with TrackerClient(host, port, timeout) as client:
        keys = client.devices()
    return [d for d in keys.values() if d.total or d.free or d.pending]


def wait_for_servers(host: str, port: int, key: str, count: int, timeout: float) -> DeviceKey:
    """Poll until ``count`` servers of ``key`` are registered and free; for setups and tests."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with TrackerClient(host, port, timeout=2.0) as client:
                device = client.devices().get(key, DeviceKey(key))
            if device.total >= count and device.free >= count:
                return device
        except TrackerUnreachable:
            device = None
        if time.monotonic() > deadline:
            have = f"{device.total} registered, {device.free} free" if device else \
                "tracker not answering"
            raise TimeoutError(f"{count} server(s) of key {key!r} at {host}:{port} did not "
                               f"appear within {timeout:g} s ({have})")
        time.sleep(0.1)

