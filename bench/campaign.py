"""Benchmark: the default campaign vs a naive per-mutant baseline, in the same run.

    PYTHONPATH=. python bench/campaign.py [--naive 4] [--workers 2] [--campaign FILE]
                                          [--output DIR] [--json out.json]

1. Runs the campaign (the embedded default unless --campaign) from scratch into a fresh
   output folder and reports its wall time split into import, planning, build, library load,
   run and analysis. Build/load/run are sums over the worker processes (CPU-seconds of work),
   so with several workers they exceed the wall time they fit into.
2. Runs a naive baseline doing, per mutant, what the MutateNN paper's tool did: import the
   model again, do a full build with the mutation, export the library to disk, load it back,
   run the images. It re-imports in the same process (the cheapest way to re-import; a fresh
   process per mutant would also pay TVM's start-up). It is sequential and costs several
   times our per-mutant work, so it is measured on a subset of ``--naive`` mutants (spread
   over the operators; half before our run and half after, so a change in the machine's load
   biases neither side) and extrapolated:
   naive total = mean naive seconds per mutant x mutants it would build (every mutant with a
   site: it has no equivalence or duplicate detection) + the original builds.
3. Prints naive/ours for the whole campaign, and a conservative ratio that charges the naive
   tool only for the builds we actually did.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def naive_mutant(task, config, images) -> dict:
    """One mutant the naive way; returns the seconds of each step."""
    from mutatenn_passes.artifact import load_artifact
    from mutatenn_passes.build import build
    from mutatenn_passes.campaign.plan import load_campaign_model

    times = {}
    t0 = time.perf_counter()
    model = load_campaign_model(config.models[task.model_index])  # re-import
    times["import"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    art = build(model, task.target_ref, **task.definition().build_arguments())
    times["build"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="mutatenn-naive-") as tmp:
        t0 = time.perf_counter()
        lib = art.export(Path(tmp) / "mutant.so")
        loaded = load_artifact(lib)
        times["export_load"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded.run(images)
        times["run"] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    return times


def pick_subset(tasks, n: int):
    """``n`` buildable mutants, round-robin over the operators (deterministic)."""
    by_op: dict[str, list] = {}
    for t in tasks:
        by_op.setdefault(t.operator, []).append(t)
    chosen, round_ = [], 0
    while len(chosen) < n and any(len(v) > round_ for v in by_op.values()):
        for op in by_op:
            if len(chosen) < n and len(by_op[op]) > round_:
                chosen.append(by_op[op][round_])
        round_ += 1
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", help="campaign file (default: the embedded default)")
    parser.add_argument("--naive", type=int, default=4, metavar="N",
                        help="mutants to measure the naive baseline on (default 4)")
    parser.add_argument("--workers", type=int, help="override the campaign's workers")
    parser.add_argument("--output", help="output folder (default: a fresh temporary one)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--full", action="store_true",
                        help="ours with incremental = false (a full TVM build per mutant)")
    args = parser.parse_args()

    import dataclasses

    from mutatenn_passes.campaign.config import load_config
    from mutatenn_passes.campaign.engine import execute_campaign
    from mutatenn_passes.campaign.plan import load_campaign_images
    from mutatenn_passes.campaign.progress import CampaignUI
    from mutatenn_passes.campaign.store import Store

    config = load_config(args.campaign)
    tmp = None
    if args.output:
        out = Path(args.output).resolve()
        if (out / "results.db").exists():
            parser.error(f"{out} holds a campaign already; the benchmark needs a fresh folder")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mutatenn-bench-")
        out = Path(tmp.name) / "campaign"
    changes = {"output": out}
    if args.workers:
        changes["workers"] = args.workers
    if args.full:
        changes["incremental"] = False
    config = dataclasses.replace(config, **changes)

    from mutatenn_passes.campaign.plan import make_plan

    import os

    load_before = os.getloadavg()
    print(f"== planning once to pick the naive subset (load average {load_before[0]:.1f})",
          flush=True)
    plan = make_plan(config)
    buildable = [t for t in plan.mutants() if t.needs_build]
    subset = pick_subset(buildable, args.naive)
    first, second = subset[:len(subset) // 2], subset[len(subset) // 2:]
    images = load_campaign_images(config)
    naive = []

    def run_naive(tasks, when):
        print(f"== naive baseline, {when}: {len(tasks)} mutant(s) (re-import, full build, "
              "export + reload library, run; sequential)", flush=True)
        for task in tasks:
            times = naive_mutant(task, config, images)
            naive.append(times)
            print(f"  {task.label:<60} " + " ".join(f"{k} {v:.1f}" for k, v in times.items()),
                  flush=True)

    # Half of the naive subset before our run and half after, so that a change in the
    # machine's load during the benchmark biases neither side.
    run_naive(first, "before ours")
    print(f"== ours: campaign {config.name!r}, {config.workers} worker(s), "
          f"{'incremental' if config.incremental else 'full'} builds, output {out}",
          flush=True)
    t0 = time.perf_counter()
    outcome = execute_campaign(config, progress=CampaignUI(quiet=True))
    ours_wall = time.perf_counter() - t0
    run_naive(second, "after ours")
    load_after = os.getloadavg()
    result = outcome["analysis"]
    secs = outcome["seconds"]
    store = Store(out)
    results = store.results()
    store.close()
    built = [r for r in results.values() if r["build_s"] is not None]
    split = {
        "import (main process)": secs["plan_import"],
        "plan (sites, mutate, hash, diff)": secs["plan_wall"] - secs["plan_import"],
        "worker prepare (import, lower; overlaps planning)": sum(
            r["prepare_s"] or 0 for r in results.values()),
        "build (sum over workers)": sum(r["build_s"] or 0 for r in built),
        "library load (sum)": sum(r["load_s"] or 0 for r in built),
        "run (sum)": sum(r["run_s"] or 0 for r in built),
        "execute (wall)": secs["execute_wall"],
        "analysis (wall)": secs["analysis"],
    }
    statuses: dict[str, int] = {}
    for m in result["mutants"]:
        statuses[m["status"]] = statuses.get(m["status"], 0) + 1
    n_mutants = len(result["mutants"])
    n_builds = len(built)
    n_originals = len(result["originals"])
    print("== ours")
    for k, v in split.items():
        print(f"  {k:<52} {v:8.1f} s")
    print(f"  {'total wall':<52} {ours_wall:8.1f} s")
    print(f"  mutants {n_mutants}: " + ", ".join(f"{k} {v}" for k, v in sorted(
        statuses.items())) + f"; builds {n_builds} (originals included)")
    print("  mutation score per category: " + ", ".join(
        f"{k}: {'n/a' if v['mutation_score'] is None else format(v['mutation_score'], '.2f')}"
        f" ({v['killed']}/{v['denominator']})"
        for k, v in result["summary"]["category"].items()))
    per = statistics.mean(t["total"] for t in naive) if naive else float("nan")
    would_build = sum(1 for m in result["mutants"] if m["status"] != "not_applicable") \
        + n_originals
    naive_total = per * would_build
    naive_same = per * n_builds
    ours_per_build = (split["build (sum over workers)"] + split["library load (sum)"]
                      + split["run (sum)"]) / max(1, n_builds)
    figures = {
        "campaign": config.name, "workers": config.workers, "incremental": config.incremental,
        "ours_wall_s": ours_wall,
        "split_s": split, "statuses": statuses, "mutants": n_mutants, "builds": n_builds,
        "category_scores": {k: v["mutation_score"]
                            for k, v in result["summary"]["category"].items()},
        "naive_subset": len(subset), "naive_per_mutant_s": per,
        "naive_steps_mean_s": {k: statistics.mean(t[k] for t in naive) for k in naive[0]}
        if naive else {},
        "naive_would_build": would_build, "naive_total_est_s": naive_total,
        "ratio_naive_over_ours": naive_total / ours_wall,
        "ratio_same_builds": naive_same / ours_wall,
        "ours_work_per_build_s": ours_per_build,
        "load_average_before_after": [load_before[0], load_after[0]],
    }
    print(f"== naive: {per:.1f} s per mutant x {would_build} builds = {naive_total:.0f} s "
          f"(extrapolated from {len(subset)})")
    print(f"   ours: {ours_wall:.0f} s wall, {ours_per_build:.1f} s of work per build")
    print(f"   naive/ours = {figures['ratio_naive_over_ours']:.2f}x "
          f"(charging naive only for our {n_builds} builds: "
          f"{figures['ratio_same_builds']:.2f}x); load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
