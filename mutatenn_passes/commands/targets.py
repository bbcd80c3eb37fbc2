"""`mutatenn targets`: list target profiles and whether each can build and run here."""

from __future__ import annotations

import json

from rich.table import Table

from ..targets import list_profiles, search_dirs
from ..ui import console


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "targets", help="list target profiles and what this machine can do with them",
        description="List the target profiles found in "
                    + ", ".join(str(d) for d in search_dirs())
                    + " with whether each can build and run on this machine.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = []
    for profile in list_profiles():
        build_ok, build_why = profile.can_build()
        run_ok, run_why = profile.can_run()
        rows.append({**profile.as_dict(), "can_build": build_ok, "build_reason": build_why,
                     "can_run": run_ok, "run_reason": run_why})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="target profiles")
    for col in ("name", "description", "schedule", "build here", "run here"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["description"], r["schedule"],
                      "yes" if r["can_build"] else f"[red]no[/]: {r['build_reason']}",
                      "yes" if r["can_run"] else f"[yellow]no[/]: {r['run_reason']}")
    console.print(table)
    return 0
