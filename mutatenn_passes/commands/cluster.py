"""`mutatenn cluster`: the nodes of a Ray cluster and the CPUs each offers a campaign (a
campaign with ``executor = "ray"`` runs one actor per CPU of every alive node)."""

from __future__ import annotations

import dataclasses
import json

from rich.markup import escape
from rich.table import Table

from ..campaign.config.schema import is_ray_address
from ..errors import MutateNNError
from ..ui import console


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cluster", help="list the nodes and CPUs of a Ray cluster",
        description="Connect to a Ray cluster and list its nodes: address, alive or not, "
                    "CPUs (a campaign run with --ray starts one actor per CPU of every alive "
                    "node), memory and object store. See docs/cluster.md.")
    p.add_argument("--ray", metavar="ADDRESS", default="auto",
                   help='the cluster: "auto" (the one this machine belongs to) or HOST:PORT '
                        "(what `ray start --head` prints)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..campaign.running.ray_cluster import connect, disconnect, nodes

    if not is_ray_address(args.ray):
        raise MutateNNError(f'--ray: a Ray cluster address is "auto" or HOST:PORT, not '
                            f"{args.ray!r}")
    connected = connect(args.ray, cpus=1)
    try:
        found = nodes()
    finally:
        if connected:
            disconnect()
    alive = [n for n in found if n.alive]
    if args.json:
        print(json.dumps([dataclasses.asdict(n) | {"label": n.label} for n in found],
                         indent=1))
        return 0
    table = Table(title=f"Ray cluster at {args.ray}")
    for col in ("node", "hostname", "state", "CPUs (actors)", "memory GiB",
                "object store GiB"):
        table.add_column(col, justify="left" if col in ("node", "hostname", "state")
                         else "right")
    for n in found:
        state = ("alive" if n.alive else "[red]dead[/]") + (", head" if n.head else "")
        table.add_row(escape(n.label), escape(n.hostname), state, str(n.cpus),
                      f"{n.memory_gb:.1f}", f"{n.object_store_gb:.1f}")
    console.print(table)
    console.print(f"{len(alive)} alive node(s), {sum(n.cpus for n in alive)} CPU(s): a "
                  "campaign runs that many actors", highlight=False)
    return 0
