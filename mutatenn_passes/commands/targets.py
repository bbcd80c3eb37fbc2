"""`mutatenn targets`: list target profiles and whether each can build and run here.

It also says what else the search folders hold: each bad profile file once, one line each
(skipped; only using it fails), and each profile that hides another of the same name (a
``./targets`` file shadowing a shipped one).
"""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from ..targets import scan_profiles, search_dirs
from ..ui import console, key_column


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "targets", help="list target profiles and what this machine can do with them",
        description="List the target profiles found in "
                    + ", ".join(str(d) for d in search_dirs())
                    + " (first folder wins) with whether each can build and run on this "
                      "machine, the bad profile files that were skipped, and the profiles "
                      "that hide another of the same name.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    scan = scan_profiles()
    hidden = {profile.name: path for profile, path in scan.shadowed}
    rows = []
    for name in sorted(scan.profiles):
        profile = scan.profiles[name]
        build_ok, build_why = profile.can_build()
        run_ok, run_why = profile.can_run()
        rows.append({**profile.as_dict(), "can_build": build_ok, "build_reason": build_why,
                     "can_run": run_ok, "run_reason": run_why, "error": None,
                     "shadows": hidden.get(name)})
    bad = [{"name": name, "error": str(exc), "can_build": False, "can_run": False}
           for name, exc in scan.bad.items()]
    if args.json:
        print(json.dumps(rows + bad, indent=1))
        return 0
    table = Table(title="target profiles")
    key_column(table, "name", [r["name"] for r in rows])
    for col in ("description", "schedule", "build here", "run here"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(escape(r["name"]), escape(r["description"]), r["schedule"],
                      "yes" if r["can_build"] else f"[red]no[/]: {escape(r['build_reason'])}",
                      "yes" if r["can_run"] else f"[yellow]no[/]: {escape(r['run_reason'])}")
    console.print(table)
    for r in rows:
        if r["shadows"]:
            console.print(f"[yellow]note:[/] {escape(r['path'])} shadows the profile "
                          f"{escape(r['name'])!r} in {escape(r['shadows'])}", soft_wrap=True)
    for b in bad:
        console.print(f"[bold red]bad profile, skipped:[/] {escape(b['error'])}",
                      soft_wrap=True)
    return 0
