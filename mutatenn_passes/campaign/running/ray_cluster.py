"""Connecting to a Ray cluster and reading its nodes (`ray_executor`, `mutatenn cluster`).

Ray is an optional dependency (extra ``cluster``): it is imported only here, when a campaign
names ``executor = "ray"`` or `mutatenn cluster` runs, and its absence is one clear error.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

from ...errors import MissingDependencyError, MutateNNError


def import_ray():
    """The ``ray`` module, or a `MissingDependencyError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            'executor = "ray" needs the ray package: pip install "mutatenn[cluster]" '
            '(or pip install "ray>=2.9")') from None
    return ray


def connect(address: str | None, cpus: int) -> bool:
    """Connect this process to the Ray cluster at ``address`` (``"auto"``: the cluster this
    machine belongs to; None: start a private Ray instance of ``cpus`` CPUs on this
    machine). True when this call connected (then `disconnect` undoes it); False when the
    process was connected already (a notebook that called ``ray.init`` itself)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address not in (None, "auto"):
        _check_reachable(address)
    # Actors write their own logs on their nodes; Ray's copies would flood the terminal.
    options = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        with _outside_any_checkout():
            if address is None:
                ray.init(num_cpus=cpus, include_dashboard=False, **options)
            else:
                ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = "start a Ray instance here" if address is None \
            else f"connect to the Ray cluster at {address}"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MutateNNError(f"cannot {where}: {first}") from None
    return True


@contextmanager
def _outside_any_checkout():
    """Run ``ray.init`` from a folder that holds no mutatenn source.

    Ray puts the driver's working directory first on its workers' ``sys.path``. Run from a
    mutatenn checkout (CI, a developer's shell), the actors would import that checkout, whose
    C++ extension is built only into the installed package, instead of the mutatenn the driver
    runs; every build on Ray would fail.
    """
    here = os.getcwd()
    os.chdir(tempfile.gettempdir())
    try:
        yield
    finally:
        os.chdir(here)


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once when nothing listens at ``address`` (HOST:PORT): Ray itself would retry
    connecting for ever."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise MutateNNError(f"cannot connect to the Ray cluster at {address}: nothing answers "
                            f"there ({exc.strerror or exc}); is `ray start --head` running?") \
            from None


def disconnect() -> None:
    """Disconnect this process (a private instance stops; a cluster goes on)."""
    import ray

    ray.shutdown()


@dataclass(frozen=True)
class Node:
    """One node of the cluster, as `ray.nodes` describes it."""

    id: str
    address: str
    hostname: str
    alive: bool
    cpus: int
    memory_gb: float
    object_store_gb: float
    head: bool

    @property
    def label(self) -> str:
        """Short, unique: the address and the first digits of the node ID."""
        return f"{self.address}/{self.id[:6]}"


def nodes() -> list[Node]:
    """Every node the cluster knows, alive or dead, in the order Ray lists them."""
    import ray

    out = []
    for n in ray.nodes():
        res = n.get("Resources", {})
        out.append(Node(id=n["NodeID"], address=n.get("NodeManagerAddress", "?"),
                        hostname=n.get("NodeManagerHostname", ""), alive=bool(n["Alive"]),
                        cpus=int(res.get("CPU", 0)),
                        memory_gb=res.get("memory", 0) / 2**30,
                        object_store_gb=res.get("object_store_memory", 0) / 2**30,
                        head=any(k.startswith("node:__internal_head__") for k in res)))
    return out
