"""One try of one job on one server: connect, upload, load, run every image, read outputs.

Latency is measured on the remote side: each image is set as the VM's input, then
``time_evaluator("invoke_stateful", dev, number=1, repeat=1)`` runs ``main`` on the remote
device and times it there (TVM runs one untimed warm-up call first, so each image runs twice
and the time excludes the network; with ``timing = "roundtrip"`` each image runs once and the
time is taken here around the call, so it includes one network round trip). The outputs are
read back with ``get_outputs`` after the timed run.

Everything holding the RPC session (module, VM, device, tensors) lives in `run_session`'s
frame only, so the session, and with it the server, is released as soon as it returns or
raises. Errors leave as `SessionFailure` carrying text only, never the TVM exception, whose
traceback would keep the session alive.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np

#: Words in TVM error messages that mean the connection to the server broke.
_CONNECTION_WORDS = ("socket", "sockchannel", "kshutdown", "connection", "broken pipe",
                     "connect to", "closed", "reset by peer", "eof")

#: The server's end answered a call with ``RPCCode::kShutdown`` (1), not ``kReturn``: it was
#: going away (TVM 0.27 prints the code as a number), as when its process group is killed and
#: the server outlives its session process by a moment.
_SHUTDOWN_ANSWER = "(code == RPCCode::kReturn) is false: code=1"


class SessionFailure(Exception):
    """A try failed; ``kind`` is "timeout" (the server's session limit), "error" (the remote
    raised for this job), "connect" (the server handed out could not be reached) or
    "connection" (an established connection broke)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def classify(exc: BaseException) -> str:
    """The `SessionFailure` kind of a TVM exception raised during a session."""
    text = str(exc)
    if "RPCSessionTimeoutError" in text:
        return "timeout"
    if "Error caught from RPC call" in text:  # raised on the remote side, sent back to us
        return "error"
    if _SHUTDOWN_ANSWER in text or any(word in text.lower() for word in _CONNECTION_WORDS):
        return "connection"
    return "error"


def short(text: str, limit: int = 300) -> str:
    """The informative tail of a TVM error message, on one line."""
    lines = [l.strip() for l in str(text).splitlines() if l.strip()]
    lines = [l for l in lines if not l.startswith(("File ", "Traceback", "at "))] or lines
    line = lines[-1] if lines else ""
    if line.startswith("RPCError: Error caught from RPC call") and len(lines) > 1:
        line = lines[-1]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def run_session(host: str, port: int, matchkey: str, library_path: str, batch: np.ndarray,
                device: str, timing: str, session_timeout: float, progress=None):
    """Run ``batch`` (N, ...) one image at a time with the library on server ``host:port``.

    Returns ``(outputs (N, classes) float array, latencies_ms list)``; raises `SessionFailure`.
    ``progress()`` is called after every remote call that answered (the caller's watchdog).
    """
    try:
        return _run(host, port, matchkey, library_path, batch, device, timing, session_timeout,
                    progress or (lambda: None))
    except SessionFailure:
        raise
    except Exception as exc:  # TVM raises several types; the text tells what happened
        kind, message = classify(exc), short(str(exc))
    raise SessionFailure(kind, message)


def _run(host, port, matchkey, library_path, batch, device, timing, session_timeout, progress):
    import tvm
    from tvm import relax, rpc

    try:
        sess = rpc.connect(host, port, matchkey, session_timeout=session_timeout)
    except Exception as exc:
        raise SessionFailure("connect", short(str(exc))) from None
    progress()
    name = Path(library_path).name
    sess.upload(str(library_path), target=name)
    progress()
    lib = sess.load_module(name)
    progress()
    dev = sess.cuda(0) if device == "cuda" else sess.cpu(0)
    devices = [dev, sess.cpu(0)] if device == "cuda" else [dev]
    vm = relax.VirtualMachine(lib, devices)
    try:
        timer = vm.time_evaluator("invoke_stateful", dev, number=1, repeat=1) \
            if timing == "remote" else None
        progress()
        outputs, latencies = [], []
        for x in batch:
            arg = tvm.runtime.tensor(np.ascontiguousarray(x[None]), dev)
            vm.set_input("main", arg)
            if timer is not None:
                latencies.append(float(timer("main").mean) * 1000.0)
            else:
                start = time.perf_counter()
                vm.invoke_stateful("main")
                latencies.append((time.perf_counter() - start) * 1000.0)
            out = vm.get_outputs("main")
            if not hasattr(out, "numpy"):  # a tuple of outputs: the first is the prediction
                out = out[0]
            outputs.append(out.numpy().reshape(-1))
            progress()
        return np.stack(outputs), latencies
    finally:
        # The VirtualMachine wrapper sits in a reference cycle, which would keep the remote
        # module, and so the session and the server, alive until the next garbage
        # collection; clearing its attributes lets the session close on return.
        vm.__dict__.clear()


def shutdown_connections(host: str, port: int) -> int:
    """Shut down every socket of this process connected to ``host:port``.

    A thread blocked in TVM's C++ socket receive (a server that stopped answering) cannot be
    interrupted otherwise; shutting the socket down makes that receive fail at once, so the
    thread raises and releases the session. Returns how many sockets were shut down.
    """
    try:
        wanted = {info[4][0] for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)}
    except OSError:
        wanted = {host}
    count = 0
    for fd in _socket_fds():
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            peer = sock.getpeername()
            if isinstance(peer, tuple) and peer[1] == port and peer[0] in wanted:
                sock.shutdown(socket.SHUT_RDWR)
                count += 1
        except OSError:
            pass
        finally:
            sock.close()  # closes our duplicate only
    return count


def _socket_fds() -> list[int]:
    try:
        import psutil

        return [c.fd for c in psutil.Process().net_connections(kind="tcp") if c.fd >= 0]
    except Exception:  # psutil missing or not permitted: fall back to /proc
        pass
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return []


RPC_MAGIC, RPC_CODE_MISMATCH = 0xFF271, 0xFF271 + 2


def probe_server(host: str, port: int, timeout: float = 1.0) -> str:
    """``"serving"``, ``"open"`` (accepts connections but does not answer) or ``"closed"``.

    The probe introduces itself as an RPC client with a key no server has, which a serving
    TVM server answers with "mismatch" and forgets; a bare connect-and-close would make it
    drop and redo its tracker registration. A stock server that stopped serving after a
    crashed session still accepts connections into its listen backlog, without answering.
    """
    import struct

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return "closed"
    try:
        key = b"client:mutatenn-liveness-probe"
        sock.sendall(struct.pack("<ii", RPC_MAGIC, len(key)) + key)
        reply = sock.recv(4)
        if len(reply) == 4 and struct.unpack("<i", reply)[0] == RPC_CODE_MISMATCH:
            return "serving"
        return "open"
    except OSError:
        return "open"
    finally:
        sock.close()
