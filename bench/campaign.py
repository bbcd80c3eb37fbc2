"""Benchmark: the default campaign, scheduled vs unscheduled vs a naive per-mutant baseline.

    python bench/campaign.py [--images 5] [--naive 4] [--workers 2] [--campaign FILE]
                             [--no-unscheduled] [--full] [--json out.json]

1. Runs the campaign (the embedded default unless --campaign) from scratch into a fresh
   output folder on its targets, whose kernels are scheduled (``schedule = "default"``), and
   reports its wall time split into import, planning, build, library load, run and analysis.
   Build/load/run are sums over the worker processes (CPU-seconds of work), so with several
   workers they exceed the wall time they fit into.
2. Runs the same campaign with each target replaced by its ``-naive`` twin (TVM 0.27's
   unscheduled CPU build; same operators, same sampling), unless --no-unscheduled, and prints
   the ratio of the two wall times. ``--images N`` runs both on N images (the default
   photographs repeated under distinct names when N exceeds them), which is where scheduled
   kernels pay: running images is most of an unscheduled campaign's time.
3. Runs a naive baseline doing, per mutant, what the MutateNN paper's tool did: import the
   model again, do a full build with the mutation, export the library to disk, load it back,
   run the images. It re-imports in the same process (the cheapest way to re-import; a fresh
   process per mutant would also pay TVM's start-up). It is sequential and costs several
   times our per-mutant work, so it is measured on a subset of ``--naive`` mutants (spread
   over the operators; half before our runs and half after, so a change in the machine's load
   biases neither side) and extrapolated:
   naive total = mean naive seconds per mutant x mutants it would build (every mutant with a
   site: it has no equivalence or duplicate detection) + the original builds.
   It builds for the same (scheduled) targets as ours, so the ratio is not flattered by slow
   naive kernels.

It imports the installed mutatenn, as a user runs it after ``pip install .``.
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
    from mutatenn_passes.campaign.planning.plan import load_campaign_model

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


def replicate_images(images, count: int, folder: Path) -> list[str]:
    """``count`` image files in ``folder``: the given images in turn, under distinct names."""
    from PIL import Image as PILImage

    paths = []
    for i in range(count):
        image = images[i % len(images)]
        path = folder / f"{i:03d}-{image.name}.png"
        PILImage.fromarray(image.pixels).save(path)
        paths.append(str(path))
    return paths


def run_ours(config, label: str) -> dict:
    """Run ``config`` from scratch; the figures of one campaign run."""
    from mutatenn_passes.campaign.running.engine import execute_campaign
    from mutatenn_passes.campaign.running.progress import CampaignUI
    from mutatenn_passes.campaign.scoring.store import Store

    print(f"== ours, {label}: campaign {config.name!r} on {', '.join(config.targets)}, "
          f"{config.workers} worker(s), {'incremental' if config.incremental else 'full'} "
          f"builds, output {config.output}", flush=True)
    t0 = time.perf_counter()
    outcome = execute_campaign(config, progress=CampaignUI(quiet=True))
    wall = time.perf_counter() - t0
    result, secs = outcome["analysis"], outcome["seconds"]
    store = Store(config.output)
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
    for k, v in split.items():
        print(f"  {k:<52} {v:8.1f} s")
    print(f"  {'total wall':<52} {wall:8.1f} s")
    print(f"  mutants {len(result['mutants'])}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(statuses.items())) +
        f"; builds {len(built)} (originals included)")
    print("  mutation score per category: " + ", ".join(
        f"{k}: {'n/a' if v['mutation_score'] is None else format(v['mutation_score'], '.2f')}"
        f" ({v['killed']}/{v['denominator']})"
        for k, v in result["summary"]["category"].items()), flush=True)
    return {"targets": list(config.targets), "wall_s": wall, "split_s": split,
            "statuses": statuses, "mutants": len(result["mutants"]), "builds": len(built),
            "originals": len(result["originals"]),
            "would_build": sum(1 for m in result["mutants"] if m["status"] != "not_applicable")
            + len(result["originals"]),
            "work_per_build_s": (split["build (sum over workers)"] + split["library load (sum)"]
                                 + split["run (sum)"]) / max(1, len(built)),
            "category_scores": {k: v["mutation_score"]
                                for k, v in result["summary"]["category"].items()}}


def unscheduled_targets(targets) -> list[str]:
    """Each target's ``-naive`` twin (TVM's unscheduled build of the same target)."""
    from mutatenn_passes.targets import get_profile

    twins = []
    for ref in targets:
        profile = get_profile(ref)
        twins.append(f"{profile.name}-naive" if profile.schedule == "default" and
                     profile.device == "cpu" else ref)
    return twins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", help="campaign file (default: the embedded default)")
    parser.add_argument("--images", type=int, metavar="N",
                        help="run on N images (default: the campaign's own images)")
    parser.add_argument("--naive", type=int, default=4, metavar="N",
                        help="mutants to measure the naive baseline on (default 4; 0: skip)")
    parser.add_argument("--workers", type=int, help="override the campaign's workers")
    parser.add_argument("--no-unscheduled", action="store_true",
                        help="skip the run on the targets' unscheduled (-naive) twins")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--full", action="store_true",
                        help="ours with incremental = false (a full TVM build per mutant)")
    args = parser.parse_args()

    import dataclasses
    import os

    from mutatenn_passes.campaign.config.campaign_file import load_config
    from mutatenn_passes.campaign.planning.plan import load_campaign_images, make_plan

    config = load_config(args.campaign)
    tmp = tempfile.TemporaryDirectory(prefix="mutatenn-bench-")
    root = Path(tmp.name)
    changes = {"output": root / "scheduled"}
    if args.workers:
        changes["workers"] = args.workers
    if args.full:
        changes["incremental"] = False
    if args.images:
        folder = root / "images"
        folder.mkdir()
        changes["images"] = replicate_images(load_campaign_images(config), args.images, folder)
    config = dataclasses.replace(config, **changes)

    load_before = os.getloadavg()
    images = load_campaign_images(config)
    print(f"== {len(images)} image(s); planning once to pick the naive subset (load average "
          f"{load_before[0]:.1f})", flush=True)
    buildable = [t for t in make_plan(config).mutants() if t.needs_build]
    subset = pick_subset(buildable, args.naive)
    first, second = subset[:len(subset) // 2], subset[len(subset) // 2:]
    naive = []

    def run_naive(tasks, when):
        if not tasks:
            return
        print(f"== naive baseline, {when}: {len(tasks)} mutant(s) (re-import, full build, "
              "export + reload library, run; sequential)", flush=True)
        for task in tasks:
            times = naive_mutant(task, config, images)
            naive.append(times)
            print(f"  {task.label:<60} " + " ".join(f"{k} {v:.1f}" for k, v in times.items()),
                  flush=True)

    run_naive(first, "before ours")
    runs = {"scheduled": run_ours(config, "scheduled kernels")}
    if not args.no_unscheduled:
        unscheduled = dataclasses.replace(config, output=root / "unscheduled",
                                          targets=unscheduled_targets(config.targets))
        runs["unscheduled"] = run_ours(unscheduled, "unscheduled kernels (-naive twins)")
    run_naive(second, "after ours")
    load_after = os.getloadavg()

    ours = runs["scheduled"]
    per = statistics.mean(t["total"] for t in naive) if naive else float("nan")
    naive_total = per * ours["would_build"]
    figures = {
        "campaign": config.name, "images": len(images), "workers": config.workers,
        "incremental": config.incremental, "runs": runs,
        "naive_subset": len(subset), "naive_per_mutant_s": per,
        "naive_steps_mean_s": {k: statistics.mean(t[k] for t in naive) for k in naive[0]}
        if naive else {},
        "naive_would_build": ours["would_build"], "naive_total_est_s": naive_total,
        "ratio_naive_over_ours": naive_total / ours["wall_s"],
        "ratio_naive_same_builds": per * ours["builds"] / ours["wall_s"],
        "load_average_before_after": [load_before[0], load_after[0]],
    }
    print(f"\n== {len(images)} image(s), {config.workers} worker(s), load average "
          f"{load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs")
    for label, run in runs.items():
        print(f"   ours, {label:<12} {run['wall_s']:7.0f} s wall, {run['builds']} builds, "
              f"{run['work_per_build_s']:.2f} s of work per build ({', '.join(run['targets'])})")
    if "unscheduled" in runs:
        figures["ratio_unscheduled_over_scheduled"] = \
            runs["unscheduled"]["wall_s"] / ours["wall_s"]
        print(f"   unscheduled/scheduled = {figures['ratio_unscheduled_over_scheduled']:.2f}x")
    if naive:
        print(f"   naive: {per:.1f} s per mutant x {ours['would_build']} builds = "
              f"{naive_total:.0f} s (extrapolated from {len(subset)})")
        print(f"   naive/ours (scheduled) = {figures['ratio_naive_over_ours']:.2f}x (charging "
              f"naive only for our {ours['builds']} builds: "
              f"{figures['ratio_naive_same_builds']:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
