"""`mutatenn operators` (the catalogue) and `mutatenn mutants` (sites in a model)."""

from __future__ import annotations

import json

from rich.table import Table

from ..mutation import find_sites
from ..registry import PRESETS, operators, resolve_operator_names
from ..ui import console, step
from .predict import add_model_arguments, model_from_args


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
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m.set_defaults(func=run_mutants)


def run_operators(args) -> int:
    specs = operators()
    if args.json:
        print(json.dumps([s.as_dict() for s in specs], indent=1))
        return 0
    table = Table(title=f"{len(specs)} mutation operators")
    for col in ("id", "level", "category", "paper", "description", "parameters"):
        table.add_column(col)
    for s in specs:
        params = ", ".join(f"{p.name}={p.default}" for p in s.params)
        table.add_row(s.id, s.level, s.category, "yes" if s.from_paper else "",
                      s.description, params)
    console.print(table)
    return 0


def run_mutants(args) -> int:
    from ..kernel_ir import kernel_module

    specs = resolve_operator_names(args.operators)
    model = model_from_args(args)
    kernels = {}  # phase -> the model's kernels at that phase, lowered once each
    for phase in sorted({s.default_phase for s in specs if s.level == "kernel"}):
        with step(f"lowering {model.name} for {args.target} ({phase})"):
            kernels[phase] = kernel_module(model, args.target, phase)
    result = []
    for spec in specs:
        mod = model.mod if spec.level == "graph" else kernels[spec.default_phase]
        sites = find_sites(spec.id, mod)
        result.append({"operator": spec.id, "level": spec.level, "category": spec.category,
                       "sites": [s.as_dict() for s in sites]})
    if args.json:
        print(json.dumps({"model": model.describe(), "operators": result}, indent=1))
        return 0
    table = Table(title=f"mutation sites in {model.name}")
    for col in ("operator", "sites", "first sites"):
        table.add_column(col)
    for r in result:
        first = "; ".join(s["description"] for s in r["sites"][:3])
        table.add_row(r["operator"], str(len(r["sites"])) if r["sites"] else
                      "[dim]0 (not applicable)[/]", first)
    console.print(table)
    return 0
