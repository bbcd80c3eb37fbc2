"""A throw-away RPC farm on this machine: one tracker and N servers, as real subprocesses.

For tests and for trying the remote runner without devices::

    with LocalFarm(key="cpu-farm", servers=2) as farm:
        profile = farm.write_profile(tmp / "rpc-cpu.toml")
        ...
        farm.kill_server(0)       # SIGKILL, as if the machine died

Every process gets its own process group, so `close()` (and `kill_server`) reaches the
server's worker and session processes too. Everything binds to ``host`` (127.0.0.1).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import TrackerUnreachable
from .tracker import DeviceKey, TrackerClient, wait_for_servers

STOCK_SERVER = "tvm.exec.rpc_server"
CRASH_TOLERANT_SERVER = "mutatenn_passes.remote.server"


# A tiny process (no TVM) that learns each process group the farm starts on its stdin and
# kills them all when stdin closes: on `close()`, and also when the farm's owner is killed
# outright and no finalizer runs, so a farm never outlives its owner.
_REAPER = """
import os, signal, sys
groups = [int(line) for line in sys.stdin]
for group in groups:
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except OSError:
            pass
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalFarm:
    """A tracker plus ``servers`` servers of ``key`` on ``host``, started on enter."""

    def __init__(self, key: str = "farm", servers: int = 2, host: str = "127.0.0.1",
                 server_module: str = STOCK_SERVER, start_timeout: float = 60.0,
                 extra_servers: tuple[tuple[str, str], ...] = ()):
        self.key, self.host, self.server_module = key, host, server_module
        self.start_timeout = start_timeout
        self.initial_servers = servers
        #: more servers to start with the farm: (key, server module) pairs
        self.extra_servers = tuple(extra_servers)
        self.port: int | None = None
        self.tracker: subprocess.Popen | None = None
        self.servers: list[subprocess.Popen] = []
        self.server_ports: list[int] = []
        self.server_keys: list[str] = []
        self._starter: threading.Thread | None = None
        self._started = threading.Event()
        self._reaper: subprocess.Popen | None = None
        self._start_error: BaseException | None = None
        self._logs = tempfile.TemporaryDirectory(prefix="mutatenn-farm-")
        self.log_dir = Path(self._logs.name)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> "LocalFarm":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        proc = self._popen(args, log_name)
        if self._reaper is None or self._reaper.poll() is not None:
            self._reaper = subprocess.Popen([sys.executable, "-c", _REAPER],
                                            stdin=subprocess.PIPE, start_new_session=True)
        self._reaper.stdin.write(f"{proc.pid}\n".encode())
        self._reaper.stdin.flush()
        return proc

    def _popen(self, args: list[str], log_name: str) -> subprocess.Popen:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        log = open(self.log_dir / log_name, "wb")
        try:
            return subprocess.Popen([sys.executable, "-m", *args], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        finally:
            log.close()

    def start(self, background: bool = False) -> None:
        """Start the tracker, then the servers, and wait until all are registered.

        With ``background`` the waiting happens in a thread (the processes start either
        way); `ready()` waits for it, so a caller can build models meanwhile.
        """
        if not background:
            self._start()
            return

        def run():
            try:
                self._start()
            except BaseException as exc:  # handed to ready()
                self._start_error = exc
            finally:
                self._started.set()

        self._starter = threading.Thread(target=run, daemon=True, name="mutatenn-farm-start")
        self._starter.start()

    def ready(self) -> "LocalFarm":
        """Wait for a background `start` to finish; re-raises its error."""
        if self._starter is not None:
            self._started.wait()
        if self._start_error is not None:
            raise self._start_error
        return self

    def _start(self) -> None:
        self.port = free_port(self.host)
        self.tracker = self._spawn(["tvm.exec.rpc_tracker", "--host", self.host, "--port",
                                    str(self.port), "--port-end", str(self.port + 1),
                                    "--silent"], "tracker.log")
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with TrackerClient(self.host, self.port, timeout=1.0) as client:
                    client.ping()
                break
            except TrackerUnreachable:
                if self.tracker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the RPC tracker did not start on {self.address}:\n"
                                       + self.log("tracker.log")) from None
                time.sleep(0.1)
        for _ in range(self.initial_servers):
            self.add_server(wait=False)
        for key, module in self.extra_servers:
            self.add_server(wait=False, key=key, server_module=module)
        self.wait(self.initial_servers)
        for key in {k for k, _ in self.extra_servers}:
            self.wait(sum(1 for k, _ in self.extra_servers if k == key), key=key)

    def add_server(self, wait: bool = True, key: str | None = None,
                   server_module: str | None = None) -> int:
        """Start one more server (of the farm's key unless ``key``); returns its index."""
        key = key or self.key
        before = 0
        if wait:
            with TrackerClient(self.host, self.port) as client:
                before = client.devices().get(key, DeviceKey(key)).total
        port = free_port(self.host)
        index = len(self.servers)
        self.servers.append(self._spawn(
            [server_module or self.server_module, "--host", self.host, "--port", str(port),
             "--port-end", str(port + 1), "--tracker", self.address, "--key", key],
            f"server{index}.log"))
        self.server_ports.append(port)
        self.server_keys.append(key)
        if wait:
            self.wait(before + 1, key=key)
        return index

    def alive_servers(self, key: str | None = None) -> list[int]:
        """Indices of the servers (of ``key``, default the farm's) whose process runs."""
        key = key or self.key
        return [i for i, p in enumerate(self.servers)
                if p.poll() is None and self.server_keys[i] == key]

    def wait(self, count: int, timeout: float | None = None, key: str | None = None):
        """Wait until ``count`` servers of ``key`` (default the farm's) are registered and
        free."""
        return wait_for_servers(self.host, self.port, key or self.key, count,
                                timeout or self.start_timeout)

    def server_address(self, index: int) -> str:
        return f"{self.host}:{self.server_ports[index]}"

    def signal_server(self, index: int, sig: int) -> None:
        """Send ``sig`` to server ``index``'s whole process group."""
        try:
            os.killpg(self.servers[index].pid, sig)
        except ProcessLookupError:
            pass

    def kill_server(self, index: int) -> None:
        """SIGKILL server ``index`` with its worker and session processes."""
        self.signal_server(index, signal.SIGKILL)
        self.servers[index].wait()

    def stop_server(self, index: int) -> None:
        """SIGSTOP server ``index``: it keeps its connections but stops answering."""
        self.signal_server(index, signal.SIGSTOP)

    def resume_server(self, index: int) -> None:
        self.signal_server(index, signal.SIGCONT)

    def log(self, name: str) -> str:
        path = self.log_dir / name
        return path.read_text(errors="replace") if path.is_file() else ""

    def profile_toml(self, name: str, key: str | None = None, **rpc) -> str:
        """Text of a CPU target profile running on this farm (servers of ``key``, default
        the farm's); ``rpc`` adds [rpc] keys."""
        lines = [f'name = "{name}"', 'description = "LLVM x86-64 on a local RPC farm"',
                 'device = "cpu"', 'runner = "rpc"', "", "[target]", 'kind = "llvm"',
                 'mcpu = "x86-64"', "", "[rpc]", f'tracker = "{self.address}"',
                 f'key = "{key or self.key}"']
        for k, v in rpc.items():
            text = f'"{v}"' if isinstance(v, str) else str(v).lower() \
                if isinstance(v, bool) else repr(v)
            lines.append(f"{k} = {text}")
        return "\n".join(lines) + "\n"

    def write_profile(self, path, name: str | None = None, key: str | None = None,
                      **rpc) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.profile_toml(name or path.stem, key, **rpc))
        return path

    def close(self) -> None:
        """Kill every process of the farm (process groups) and reap them."""
        if self._starter is not None:
            self._started.wait(self.start_timeout)
        for proc in [*self.servers, self.tracker]:
            if proc is None:
                continue
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
                pass
        self.servers, self.tracker = [], None
        if self._reaper is not None:
            self._reaper.stdin.close()  # it kills the (already dead) groups again and exits
            self._reaper.wait(timeout=10)
            self._reaper = None
        self._starter = None
        self._logs.cleanup()
