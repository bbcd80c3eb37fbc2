"""An RPC server that survives jobs that crash: ``python -m mutatenn_passes.remote.server``.

TVM 0.27's server (``python -m tvm.exec.rpc_server``) runs each session in a forked process;
when that process dies of a signal (a mutant writing out of bounds segfaults or aborts), the
server raises in its listening thread and stops serving for good, while its process stays up
and its port stays open. Mutation testing produces such crashes on purpose, so a farm of stock
servers shrinks by one server per crashing mutant.

This launcher runs TVM's own server code in one process, with TVM's session handler wrapped so
that a crashed session is logged and the server goes back to serving (the only change). It takes the stock
server's main options::

    python -m mutatenn_passes.remote.server --host 0.0.0.0 --port 9090 \\
        --tracker TRACKER_HOST:9190 --key cpu-farm

It needs only TVM (plus ``cloudpickle`` and ``psutil``, as TVM's own server does), so it can
also be copied alone onto a device that does not have mutatenn installed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _tolerant(serving):
    """Wrap TVM's session handler so a session process killed by its job is logged and the
    listening loop goes on. The stock handler raises `RuntimeError` for a non-zero exit of the
    session process before restoring the working directory and closing the socket, so the
    wrapper does those two things itself."""
    from tvm.rpc import server as srv

    def handler(sock, addr, opts, load_library):
        cwd = os.getcwd()
        try:
            serving(sock, addr, opts, load_library)
        except RuntimeError as exc:
            srv.logger.warning(f"{exc} (the job crashed its session); serving on")
            os.chdir(cwd)
            sock.close()

    return handler


def serve(host: str, port: int, port_end: int, tracker: str | None, key: str,
          custom_addr: str | None = None, silent: bool = False) -> int:
    """Run the patched server in this process until its listening loop ends."""
    from tvm.rpc import server as srv

    srv._serving = _tolerant(srv._serving)  # `_listen_loop` looks it up in module globals
    tracker_addr = None
    if tracker:
        tracker_host, _, tracker_port = tracker.rpartition(":")
        tracker_addr = (tracker_host.strip("[]"), int(tracker_port))
        if not key:
            raise SystemExit("--key is needed with --tracker")
    state = srv.PopenRPCServerState(host, port, port_end, False, tracker_addr, key, None,
                                    custom_addr, silent)
    state.thread.join()  # returns only when the loop fails (e.g. tracker gone for 60 s)
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mutatenn_passes.remote.server",
        description="TVM RPC server that keeps serving after a job crashes its session.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=9090, help="first port to try")
    parser.add_argument("--port-end", type=int, default=9199, help="end of the port range")
    parser.add_argument("--tracker", help="HOST:PORT of the RPC tracker to register with")
    parser.add_argument("--key", default="", help="device key to register under")
    parser.add_argument("--custom-addr", help="address to report to the tracker")
    parser.add_argument("--silent", action="store_true", help="log errors only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return serve(args.host, args.port, args.port_end, args.tracker, args.key,
                 args.custom_addr, args.silent)


if __name__ == "__main__":
    sys.exit(main())
