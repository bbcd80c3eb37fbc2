"""`mutatenn devices`: the device keys an RPC tracker knows, their servers, and which target
profiles (``runner = "rpc"``) can use them."""

from __future__ import annotations

import json
import socket

from rich.markup import escape
from rich.table import Table

from ..errors import MutateNNError
from ..remote.config import parse_tracker
from ..remote.errors import TrackerUnreachable
from ..remote.tracker import list_devices
from ..targets import list_profiles
from ..ui import console


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "devices", help="list the remote devices an RPC tracker knows",
        description="Ask a TVM RPC tracker which device keys it knows and how many servers "
                    "each has free, in use and waited for, and show which target profiles "
                    "(runner = \"rpc\") use each key. Without --tracker, every tracker named "
                    "by a profile is asked.")
    p.add_argument("--tracker", metavar="HOST:PORT", action="append",
                   help="tracker to ask (repeatable); default: the trackers of rpc profiles")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for a tracker's answer (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def _same(a: tuple[str, int], b: tuple[str, int]) -> bool:
    return a[1] == b[1] and (a[0] == b[0] or _resolve(a[0]) == _resolve(b[0]))


def collect(trackers: list[str] | None, timeout: float = 5.0) -> list[dict]:
    """One row per (tracker, key): counts, servers and the profiles using the key.

    Keys that rpc profiles name but that have no server on an answering tracker get a row
    with zero servers. A tracker named with ``trackers`` that does not answer raises
    `TrackerUnreachable`; one taken from the profiles gets a row with its ``error``.
    """
    profiles = [p for p in list_profiles() if p.runner == "rpc" and p.rpc.get("tracker")]
    explicit = bool(trackers)
    if not trackers:
        trackers = []
        for p in profiles:
            if p.rpc["tracker"] not in trackers:
                trackers.append(p.rpc["tracker"])
        if not trackers:
            raise MutateNNError("no --tracker given and no target profile has runner = 'rpc' "
                                "(see `mutatenn devices --help`)")
    rows = []
    for tracker in trackers:
        address = parse_tracker(tracker)
        users = [p for p in profiles if _same(parse_tracker(p.rpc["tracker"]), address)]
        try:
            devices = list_devices(address, timeout=timeout)
        except TrackerUnreachable as exc:
            if explicit:
                raise
            rows.append({"tracker": tracker, "key": None, "error": str(exc),
                         "profiles": sorted(p.name for p in users)})
            continue
        keys = {d.key: d for d in devices}
        for key in sorted(set(keys) | {p.rpc["key"] for p in users}):
            device = keys.get(key)
            rows.append({
                "tracker": tracker, "key": key,
                "total": device.total if device else 0,
                "free": device.free if device else 0,
                "in_use": device.in_use if device else 0,
                "pending": device.pending if device else 0,
                "servers": list(device.servers) if device else [],
                "profiles": sorted(p.name for p in users if p.rpc["key"] == key),
            })
    if all(r.get("error") for r in rows):
        raise TrackerUnreachable(rows[0]["error"])
    return rows


def run(args) -> int:
    rows = collect(args.tracker, args.timeout)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    trackers = sorted({r["tracker"] for r in rows})
    table = Table(title="remote devices" + (f" at {trackers[0]}" if len(trackers) == 1 else ""))
    if len(trackers) > 1:
        table.add_column("tracker")
    for col in ("key", "servers", "free", "in use", "pending", "profiles"):
        table.add_column(col, justify="right" if col in ("servers", "free", "in use",
                                                         "pending") else "left")
    for r in rows:
        lead = [r["tracker"]] if len(trackers) > 1 else []
        if r.get("error"):
            table.add_row(*lead, "[red]unreachable[/]", "", "", "", "",
                          escape(", ".join(r["profiles"]) or "-"))
            continue
        free = str(r["free"]) if r["total"] else "[red]0[/]"
        table.add_row(*lead, escape(r["key"]), str(r["total"]), free, str(r["in_use"]),
                      str(r["pending"]), escape(", ".join(r["profiles"]) or "-"))
    console.print(table)
    if not rows:
        console.print("the tracker knows no device key (no server has registered)")
    for r in rows:
        if r.get("error"):
            console.print(f"[red]{escape(r['tracker'])}[/]: {escape(r['error'])}",
                          soft_wrap=True)
    return 0
