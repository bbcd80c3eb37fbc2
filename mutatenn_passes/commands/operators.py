"""`mutatenn operators` (the catalogue) and `mutatenn mutants` (sites in a model).

Operator IDs and category names are what users type into campaign files, so the tables never
cut them, whatever the terminal width (`ui.key_column`, `ui.words_column`); descriptions wrap.
"""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table

from ..mutation import find_sites
from ..registry import PRESETS, operators, resolve_operator_names
from ..targets import get_profile
from ..ui import console, key_column, step, words_column
from .predict import add_model_arguments, model_from_args

#: Sites listed per operator by `mutatenn mutants` without ``--all``.
FIRST_SITES = 3


def register(subparsers) -> None:
    p = subparsers.add_parser("operators", help="list the mutation operators",
                              description="List every mutation operator: stable ID, level, "
                                          "category, description and parameters.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_operators)

    m = subparsers.add_parser(
        "mutants", help="list the sites each operator finds in a model, without building",
        description="List, without building, every site each selected operator finds in the "
                    "model (graph-level sites in the Relax graph; kernel-level sites in the "
                    "TIR of the chosen target at each operator's default phase).")
    add_model_arguments(m)
    m.add_argument("--operators", default="all", metavar="IDS|CATEGORY|PRESET",
                   help="comma-separated operator IDs, category names, or presets: "
                        + ", ".join(PRESETS) + " (default: all)")
    m.add_argument("--target", default="llvm-x86-64",
                   help="target whose kernels kernel-level operators inspect")
    m.add_argument("--all", action="store_true",
                   help=f"list every site (default: the first {FIRST_SITES} per operator; "
                        "--json always lists every site)")
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m.set_defaults(func=run_mutants)


def run_operators(args) -> int:
    specs = operators()
    if args.json:
        print(json.dumps([s.as_dict() for s in specs], indent=1))
        return 0
    table = Table(title=f"{len(specs)} mutation operators")
    key_column(table, "id", [s.id for s in specs])
    words_column(table, "category (level)", [s.category for s in specs])
    table.add_column("description (parameters)", overflow="fold")
    for s in specs:
        params = ", ".join(f"{p.name} = {p.default}" for p in s.params)
        level = f"{s.level} level" + (", from the paper" if s.from_paper else "")
        text = escape(s.description) + (f"\n[dim]{escape(params)}[/]" if params else "")
        table.add_row(s.id, f"{escape(s.category)}\n[dim]{level}[/]", text)
    console.print(table)
    return 0


def run_mutants(args) -> int:
    from ..kernel_ir import kernel_module

    specs = resolve_operator_names(args.operators)
    profile = get_profile(args.target)  # a bad target fails before the slow import
    model = model_from_args(args)
    kernels = {}  # phase -> the model's kernels at that phase, lowered once each
    for phase in sorted({s.default_phase for s in specs if s.level == "kernel"}):
        with step(f"lowering {model.name} for {profile.name} ({phase})"):
            kernels[phase] = kernel_module(model, profile, phase)
    result = []
    for spec in specs:
        mod = model.mod if spec.level == "graph" else kernels[spec.default_phase]
        sites = find_sites(spec.id, mod)
        result.append({"operator": spec.id, "level": spec.level, "category": spec.category,
                       "sites": [s.as_dict() for s in sites]})
    if args.json:
        print(json.dumps({"model": model.describe(), "operators": result}, indent=1))
        return 0
    console.print(sites_table(model.name, profile.name, result, every=args.all))
    return 0


def sites_table(model: str, target: str, result: list[dict], every: bool) -> Table:
    """One row per site (the first `FIRST_SITES` per operator unless ``every``), with the
    Relax function or kernel holding it, and a row saying how many more there are."""
    limit = None if every else FIRST_SITES
    shown = "every site" if every else f"first {FIRST_SITES} per operator; --all for every site"
    table = Table(title=f"mutation sites in {model}, kernels for {target} ({shown})")
    key_column(table, "operator", [r["operator"] for r in result])
    table.add_column("sites", justify="right")
    table.add_column("#", justify="right")
    table.add_column("function / kernel", overflow="fold")
    table.add_column("site", overflow="fold")
    for r in result:
        sites = r["sites"]
        if not sites:
            table.add_row(r["operator"], "0", "", "", "[dim]not applicable: no site[/]",
                          end_section=True)
            continue
        listed = sites[:limit]
        for i, site in enumerate(listed):
            last = i == len(listed) - 1 and len(listed) == len(sites)
            table.add_row(r["operator"] if i == 0 else "", str(len(sites)) if i == 0 else "",
                          str(site["index"]), escape(site["function"]),
                          escape(site["description"]), end_section=last)
        if len(listed) < len(sites):
            table.add_row("", "", "", "", f"[dim]first {len(listed)} of {len(sites)}; "
                                          "--all for every site[/]", end_section=True)
    return table
