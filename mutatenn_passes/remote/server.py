"""An RPC server that survives jobs that crash: ``python -m mutatenn_passes.remote.server``.

TVM 0.27's server (``python -m tvm.exec.rpc_server``) runs each session in a forked process;
when that process dies of a signal (a mutant writing out of bounds segfaults or aborts), the
server raises in its listening thread and stops serving for good, while its process stays up
and its port stays open. Mutation testing produces such crashes on purpose, so a farm of stock
servers shrinks by one server per crashing mutant.

This launcher runs the same TVM server code in one process, with the session handler replaced
by a copy that logs the crash and goes back to serving (the only change). It takes the stock
server's main options::

    python -m mutatenn_passes.remote.server --host 0.0.0.0 --port 9090 \\
        --tracker TRACKER_HOST:9190 --key cpu-farm

It needs only TVM (plus ``cloudpickle`` and ``psutil``, as TVM's own server does), so it can
also be copied alone onto a device that does not have mutatenn installed.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys


def _serving(sock, addr, opts, load_library):
    """`tvm.rpc.server._serving` of TVM 0.27, except that a crashed session is logged."""
    from tvm.rpc import _ffi_api
    from tvm.rpc import server as srv
    from tvm.support import utils

    logger = srv.logger
    logger.info(f"connected from {addr}")
    work_path = utils.tempdir()
    old_cwd = os.getcwd()
    os.chdir(work_path.path)  # Avoiding file name conflict between sessions.
    logger.info(f"start serving at {work_path.path}")

    server_proc = multiprocessing.Process(target=srv._serve_loop,
                                          args=(sock, load_library, work_path))
    server_proc.start()
    server_proc.join(opts.get("timeout", None))  # Wait until finish or timeout.

    if server_proc.is_alive():
        logger.info("timeout in RPC session, kill..")
        _ffi_api.ReturnException(
            sock.fileno(),
            f"RPCSessionTimeoutError: Your {opts['timeout']}s session has expired, "
            f'try to increase the "session_timeout" value.',
        )
        try:
            import psutil

            for child in psutil.Process(server_proc.pid).children(recursive=True):
                child.terminate()
        except ImportError:
            pass
        server_proc.terminate()
        server_proc.join(5)
    elif server_proc.exitcode != 0:
        # the stock server raises here, which ends its listening loop for good
        logger.warning(f"session process {server_proc.pid} died with exit code "
                       f"{server_proc.exitcode} (the job crashed it); serving on")

    logger.info(f"finish serving {addr}")
    os.chdir(old_cwd)
    work_path.remove()
    sock.close()


def serve(host: str, port: int, port_end: int, tracker: str | None, key: str,
          custom_addr: str | None = None, silent: bool = False) -> int:
    """Run the patched server in this process until its listening loop ends."""
    from tvm.rpc import server as srv

    srv._serving = _serving  # `_listen_loop` looks the handler up in its module globals
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
