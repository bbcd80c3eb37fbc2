"""Benchmark: build every applicable paper mutant of the default model for CUDA (sm_90).

    PYTHONPATH=. python bench/cuda_builds.py [--target cuda-sm90] [--sample 0] [--workers 2]
                                             [--timeout 600] [--output DIR]

Runs a campaign over the embedded default model and images with ``targets = [TARGET]`` and the
paper's operators. Site selection: ``--sample 0`` (the default) takes the first site of every
paper operator (``sites = [0]``); ``--sample N`` uses the default campaign's seeded sampling of
N sites per operator. Every mutant is built here with TVM's CUDA code generator and nvcc; with
no GPU on this machine, running is refused and each built mutant is recorded
``cannot_run_here`` (its build time is kept). A mutant whose CUDA build fails is
``build_failed``. Prints one line per mutant (operator, sites, status, build seconds) and the
counts built OK / failed / not applicable / equivalent.

TVM shortens long error messages ("(... N lines skipped ...)"), so the campaign's recorded
error of a failed build may not name the cause; ``--explain`` rebuilds each failed mutant once
in this process and prints the first line of TVM's own message (the cause).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def campaign_text(target: str, sample: int, workers: int, timeout: float, output: Path) -> str:
    sites = '"all"' if sample else "[0]"
    return f"""[campaign]
name = "cuda-builds-{target}"
output = "{output}"
seed = 0
workers = {workers}
timeout = {timeout}
incremental = true
targets = ["{target}"]

[operators]
use = ["paper"]
mode = "each"
sites = {sites}
sample = {sample}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--target", default="cuda-sm90")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--output", default=None)
    ap.add_argument("--explain", action="store_true",
                    help="rebuild each failed mutant here and print the cause TVM gives")
    args = ap.parse_args(argv)

    from mutatenn_passes.campaign.config import parse_config
    from mutatenn_passes.campaign.engine import execute_campaign
    from mutatenn_passes.campaign.progress import CampaignUI
    from mutatenn_passes.targets import get_profile

    profile = get_profile(args.target)
    can_build, why = profile.can_build()
    can_run, why_not_run = profile.can_run()
    print(f"target {args.target}: can build here: {can_build} {why or ''}; "
          f"can run here: {can_run} {why_not_run or ''}")
    if not can_build:
        return 1
    output = Path(args.output or tempfile.mkdtemp(prefix="mutatenn-cuda-builds-"))
    text = campaign_text(args.target, args.sample, args.workers, args.timeout, output)
    config = parse_config(text, source="<bench/cuda_builds.py>", base_dir=Path.cwd())
    t0 = time.perf_counter()
    outcome = execute_campaign(config, progress=CampaignUI(quiet=True))
    wall = time.perf_counter() - t0
    result = outcome["analysis"]

    print(f"\ncampaign output: {output} (report.html, results.json)")
    for o in result["originals"]:
        print(f"original {o['model']}@{o['target']}: {o['status']}, build "
              f"{o['build_s'] or 0:.1f} s  {(o['error'] or '').splitlines()[0][:100] if o['error'] else ''}")
    print(f"\n{'operator':32} {'sites':>6} {'status':18} {'build s':>8}  note")
    for m in result["mutants"]:
        sites = ",".join(map(str, m["site_indices"])) or "-"
        note = (m["error"] or m["note"] or "").splitlines()
        note = note[0][:70] if note else ""
        b = "" if m["build_s"] is None else f"{m['build_s']:.1f}"
        print(f"{m['operator']:32} {sites:>6} {m['status']:18} {b:>8}  {note}")
    counts = Counter(m["status"] for m in result["mutants"])
    built = [m for m in result["mutants"] if m["build_s"] is not None
             and m["status"] in ("cannot_run_here", "ok")]
    failed = counts.get("build_failed", 0) + counts.get("timeout", 0) + counts.get("crashed", 0)
    total_build = sum(m["build_s"] for m in built)
    print(f"\nmutants: {len(result['mutants'])}; built OK: {len(built)} "
          f"(of which cannot_run_here: {counts.get('cannot_run_here', 0)}); failed: {failed} "
          f"(build_failed {counts.get('build_failed', 0)}, timeout {counts.get('timeout', 0)}, "
          f"crashed {counts.get('crashed', 0)}); not_applicable: "
          f"{counts.get('not_applicable', 0)}; equivalent: {counts.get('equivalent', 0)}")
    if built:
        print(f"build seconds: sum {total_build:.0f} s, mean {total_build / len(built):.1f} s "
              f"per mutant (recorded); this run's wall time {wall:.0f} s with {args.workers} "
              f"workers{' (planning + resumed: nothing left to build)' if not outcome['stats'].total - outcome['stats'].skipped else ''}")
    if args.explain and counts.get("build_failed"):
        explain(config, output, result)
    return 0 if failed == 0 else 3


def explain(config, output: Path, result: dict) -> None:
    from mutatenn_passes.build import BuildError, build
    from mutatenn_passes.campaign.plan import load_campaign_model
    from mutatenn_passes.campaign.store import Store
    from mutatenn_passes.campaign.definition import MutantDefinition

    store = Store(output, create=False)
    try:
        tasks = {t["key"]: t for t in store.tasks()}
    finally:
        store.close()
    model = load_campaign_model(config.models[0])
    print("\ncauses of the failed builds (rebuilt here):")
    for m in result["mutants"]:
        if m["status"] != "build_failed":
            continue
        t = tasks[m["key"]]
        try:
            build(model, m["target"], **MutantDefinition.of_task_row(t).build_arguments())
            cause = "built this time (nondeterministic failure?)"
        except BuildError as exc:
            text = str(exc.__cause__ or exc)
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            cause = lines[0][:160] if lines else type(exc).__name__
        print(f"  {m['operator']:30} {cause}")


if __name__ == "__main__":
    sys.exit(main())
