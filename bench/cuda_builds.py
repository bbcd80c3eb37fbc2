"""Benchmark: build the paper's mutants for CUDA targets and check the GPU build figures.

    python bench/cuda_builds.py [--model default|PATH]... [--target NAME]...
        [--sample 0] [--operators paper] [--mode each|together] [--phase s_tir|lowered]
        [--workers 2] [--timeout 600] [--output DIR] [--explain]

Runs one campaign over the models (``default``: the embedded ShuffleNet; repeat ``--model``
for several) and CUDA targets (default ``cuda-sm90``; repeat ``--target``) with the paper's
operators (``--operators``: IDs, categories or presets, e.g. ``kernel``). Site selection:
``--sample 0`` (the default) takes the first site of every operator (``sites = [0]``);
``--sample N`` the campaign's seeded sample of N sites per operator. ``--mode together``
makes one mutant per operator rewriting all its sites at once (every site's code then meets
nvcc); ``--phase`` runs every kernel operator at that phase instead of its default one.
Every mutant is built here: TVM's CUDA code generation, then nvcc compiling the
kernels (`mutatenn_passes.device_code`). With no GPU, running is refused and each built mutant
is recorded ``cannot_run_here`` (its build time is kept); a mutant TVM or nvcc rejects is
``build_failed``.

Per model and target it prints one line per operator (sites found, mutants, built,
equivalent, failed) and checks three figures:

- ``build_failed``: 0 among the paper's operators;
- every kernel category (Conditional Statements, Kernel Variables & Stores, Arithmetic Types)
  has built mutants;
- ``thread_extent_change`` finds sites on every GPU kernel (the device kernels of the
  ``lowered`` phase).

Exit code 0 when every model and target meets all three, 3 otherwise. TVM shortens long error
messages, so ``--explain`` rebuilds each failed mutant once in this process and prints the
first line of TVM's own message.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

KERNEL_CATEGORIES = ("Conditional Statements", "Kernel Variables & Stores", "Arithmetic Types")
BUILT = ("cannot_run_here", "ok")
FAILED = ("build_failed", "timeout", "crashed")


def campaign_text(args, output: Path) -> str:
    from mutatenn_passes.registry import resolve_operator_names

    sites = '"all"' if args.sample or args.mode == "together" else "[0]"
    tables = "".join("\n[[models]]\n" if m == "default"  # no path: the embedded model
                     else f"\n[[models]]\npath = {json.dumps(str(Path(m).resolve()))}\n"
                     for m in args.model)
    phases = "".join(f"\n[operators.{spec.id}]\nphase = {json.dumps(args.phase)}\n"
                     for spec in resolve_operator_names(args.operators)
                     if args.phase and spec.level == "kernel")
    return f"""[campaign]
name = "cuda-builds"
output = {json.dumps(str(output))}
seed = 0
workers = {args.workers}
timeout = {args.timeout}
incremental = true
targets = {json.dumps(args.target)}
{tables}
[operators]
use = {json.dumps(args.operators.split(","))}
mode = "{args.mode}"
sites = {sites}
sample = {args.sample}
{phases}"""


def kernels_without_launch_sites(model, target: str) -> tuple[int, list[str]]:
    """(device kernels, those where thread_extent_change finds no site) at ``lowered``."""
    from mutatenn_passes import find_sites
    from mutatenn_passes.kernel_ir import kernel_module

    mod = kernel_module(model, target, "lowered")
    device = sorted(gv.name_hint for gv, f in mod.functions_items()
                    if f.attrs and "target" in f.attrs and f.attrs["target"].kind.name == "cuda")
    with_sites = {s.function for s in find_sites("thread_extent_change", mod)}
    return len(device), [k for k in device if k not in with_sites]


def report(rows: list[dict], model, target: str) -> bool:
    """Print one model x target; return whether it meets the three figures."""
    print(f"\n== {model.name} @ {target}")
    by_op = defaultdict(list)
    for r in rows:
        by_op[r["operator"]].append(r)
    print(f"{'operator':32} {'level':6} {'sites':>6} {'mutants':>7} {'built':>5} "
          f"{'equiv':>5} {'n/a':>4} {'failed':>6}  build s (mean)")
    for op, group in by_op.items():
        counts = Counter(r["status"] for r in group)
        built = [r for r in group if r["status"] in BUILT and r["build_s"] is not None]
        mean = f"{sum(r['build_s'] for r in built) / len(built):.1f}" if built else "-"
        print(f"{op:32} {group[0]['level']:6} {group[0]['sites_found']:>6} {len(group):>7} "
              f"{len(built):>5} {counts['equivalent']:>5} {counts['not_applicable']:>4} "
              f"{sum(counts[s] for s in FAILED):>6}  {mean}")
        for r in group:
            if r["status"] in FAILED:
                error = (r["error"] or "").splitlines()
                print(f"    {r['status']} sites {r['site_indices']}: "
                      f"{error[0][:110] if error else ''}")
    failed = [r for r in rows if r["status"] in FAILED]
    by_category = Counter(r["category"] for r in rows if r["status"] in BUILT)
    n_device, missing = kernels_without_launch_sites(model, target)
    print(f"build_failed/timeout/crashed: {len(failed)} of {len(rows)} mutants")
    print("built per kernel category: " + ", ".join(f"{c} {by_category[c]}"
                                                   for c in KERNEL_CATEGORIES))
    print(f"thread_extent_change: sites on {n_device - len(missing)} of {n_device} GPU kernels"
          + (f" (none on {', '.join(missing[:5])})" if missing else ""))
    return not failed and all(by_category[c] for c in KERNEL_CATEGORIES) and not missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None,
                    help="'default' (embedded ShuffleNet) or a model file; repeatable")
    ap.add_argument("--target", action="append", default=None,
                    help="a CUDA target profile (default cuda-sm90); repeatable")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--operators", default="paper",
                    help="comma list of operator IDs, categories or presets (default paper)")
    ap.add_argument("--mode", choices=("each", "together"), default="each")
    ap.add_argument("--phase", choices=("s_tir", "lowered"), default=None,
                    help="run every kernel operator at this phase")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--output", default=None)
    ap.add_argument("--explain", action="store_true",
                    help="rebuild each failed mutant here and print the cause TVM gives")
    args = ap.parse_args(argv)
    args.model = args.model or ["default"]
    args.target = args.target or ["cuda-sm90"]

    from mutatenn_passes.campaign.config.campaign_file import parse_config
    from mutatenn_passes.campaign.running.engine import execute_campaign
    from mutatenn_passes.campaign.planning.plan import load_campaign_model
    from mutatenn_passes.campaign.running.progress import CampaignUI
    from mutatenn_passes.targets import get_profile

    for target in args.target:
        profile = get_profile(target)
        can_build, why = profile.can_build()
        can_run, why_not_run = profile.can_run()
        print(f"target {target}: can build here: {can_build} {why or ''}; "
              f"can run here: {can_run} {why_not_run or ''}")
        if not can_build:
            return 1
    output = Path(args.output or tempfile.mkdtemp(prefix="mutatenn-cuda-builds-"))
    text = campaign_text(args, output)
    config = parse_config(text, source="<bench/cuda_builds.py>", base_dir=Path.cwd())
    t0 = time.perf_counter()
    result = execute_campaign(config, progress=CampaignUI(quiet=True))["analysis"]
    wall = time.perf_counter() - t0

    print(f"\ncampaign output: {output} (report.html, results.json); wall time {wall:.0f} s "
          f"with {args.workers} workers")
    for o in result["originals"]:
        error = (o["error"] or "").splitlines()
        print(f"original {o['model']}@{o['target']}: {o['status']}, build "
              f"{o['build_s'] or 0:.1f} s {error[0][:100] if error else ''}")
    ok = True
    for model_config in config.models:
        model = load_campaign_model(model_config)
        for target in args.target:
            rows = [r for r in result["mutants"]
                    if r["model"] == model.name and r["target"] == target]
            ok &= report(rows, model, target)
    if args.explain:
        explain(config, output, result)
    print(f"\nall figures met: {ok}")
    return 0 if ok else 3


def explain(config, output: Path, result: dict) -> None:
    from mutatenn_passes.build import BuildError, build
    from mutatenn_passes.campaign.planning.plan import load_campaign_model
    from mutatenn_passes.campaign.planning.definition import MutantDefinition
    from mutatenn_passes.campaign.scoring.store import Store

    failed = [m for m in result["mutants"] if m["status"] == "build_failed"]
    if not failed:
        return
    store = Store(output, create=False)
    try:
        tasks = {t["key"]: t for t in store.tasks()}
    finally:
        store.close()
    models = {model.name: model for model in map(load_campaign_model, config.models)}
    print("\ncauses of the failed builds (rebuilt here):")
    for m in failed:
        t = tasks[m["key"]]
        try:
            build(models[m["model"]], m["target"],
                  **MutantDefinition.of_task_row(t).build_arguments())
            cause = "built this time (nondeterministic failure?)"
        except BuildError as exc:
            text = str(exc.__cause__ or exc)
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            cause = lines[0][:160] if lines else type(exc).__name__
        print(f"  {m['model']}@{m['target']} {m['operator']:30} {cause}")


if __name__ == "__main__":
    sys.exit(main())
