"""Benchmark: campaigns on Ray vs the local executor, and a simulated scale-out, in one run.

    python bench/cluster.py [--campaign FILE] [--repeat 2] [--nodes 1,2,3]
                            [--scale-sample 2] [--json out.json]

1. Overhead: the campaign (the embedded default unless --campaign) from scratch on the local
   executor (``workers`` processes) and from scratch on Ray on this machine (a private Ray
   instance of ``workers`` CPUs: one actor per CPU), ``--repeat`` times each, alternated
   (local, ray, ray, local, ...) so that a drift in the machine's load biases neither side.
   All runs must give the same statuses; it prints each wall time (start to reports, Ray's
   start-up included) and Ray's overhead, median against median, as a share of the local
   wall time (the goal: at most 15%).
2. Scale-out: the same model with ``--scale-sample`` sites per operator on N Ray nodes of one
   CPU each, all on this machine (`ray.cluster_utils.Cluster` on loopback), for each N of
   --nodes: builds per second of the execution phase (planning runs once on the driver and
   does not scale), and the speedup over one node. On one machine, nodes beyond its cores
   share them: the curve flattens there, as it would on a cluster at its core count.

Everything stays on 127.0.0.1 (Ray is told to bind there; usage reporting is off). Ray's
workers run at the local workers' priority (``RAY_worker_niceness=0``; Ray's default, 15,
would make them yield to every other process of a shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Before Ray is imported: loopback only, nothing reported, and Ray's workers at the priority
# of the local executor's (Ray lowers its workers' by default, niceness 15: on a machine shared
# with other work, that measures the scheduler, not Ray).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_worker_niceness"] = "0"


def statuses(outcome) -> dict:
    out: dict[str, int] = {}
    for m in outcome["analysis"]["mutants"]:
        out[m["status"]] = out.get(m["status"], 0) + 1
    return out


def timed(config) -> dict:
    """Run ``config`` from scratch; its wall times, builds and statuses."""
    from mutatenn_passes.campaign.running.engine import execute_campaign
    from mutatenn_passes.campaign.running.progress import CampaignUI

    t0 = time.perf_counter()
    outcome = execute_campaign(config, progress=CampaignUI(quiet=True))
    wall = time.perf_counter() - t0
    builds = outcome["stats"].total - outcome["stats"].skipped
    return {"wall_s": wall, "execute_s": outcome["seconds"]["execute_wall"],
            "plan_s": outcome["seconds"]["plan_wall"], "builds": builds,
            "statuses": statuses(outcome)}


def overhead(config, root: Path, repeat: int) -> dict:
    """Local and Ray runs alternated (local, ray, ray, local, ...) so that a drift in the
    machine's load biases neither side; the overhead compares the medians."""
    print(f"== overhead: {config.name!r}, {config.workers} worker(s) / CPU(s), "
          f"{repeat} run(s) each", flush=True)
    runs: dict[str, list] = {"local": [], "ray": []}
    for i in range(repeat):
        for kind in ("local", "ray") if i % 2 == 0 else ("ray", "local"):
            changes = {"executor": kind, "ray_address": None}
            run = timed(dataclasses.replace(config, output=root / f"{kind}-{i}", **changes))
            runs[kind].append(run)
            print(f"  {kind:<5} {run['wall_s']:6.1f} s wall ({run['execute_s']:.1f} s "
                  f"executing), {run['builds']} builds, load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    statuses_seen = {json.dumps(r["statuses"], sort_keys=True)
                     for r in runs["local"] + runs["ray"]}
    if len(statuses_seen) != 1:
        raise SystemExit(f"statuses differ between runs: {statuses_seen}")
    local = statistics.median(r["wall_s"] for r in runs["local"])
    on_ray = statistics.median(r["wall_s"] for r in runs["ray"])
    share = (on_ray - local) / local
    print(f"  median wall: local {local:.1f} s, ray {on_ray:.1f} s; Ray overhead "
          f"{100 * share:+.1f}% of the local wall time (goal: <= 15%); statuses "
          f"{runs['local'][0]['statuses']}", flush=True)
    return {"runs": runs, "median_local_s": local, "median_ray_s": on_ray,
            "overhead_share": share}


def scale_out(config, root: Path, counts: list[int]) -> list[dict]:
    import ray
    from ray.cluster_utils import Cluster

    rows = []
    for n in counts:
        print(f"== scale-out: {n} node(s) of 1 CPU on this machine", flush=True)
        args = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
        cluster = Cluster(initialize_head=True, head_node_args=args | {
            "include_dashboard": False})
        try:
            for _ in range(n - 1):
                cluster.add_node(**args)
            cluster.wait_for_nodes()
            run = timed(dataclasses.replace(config, output=root / f"scale-{n}",
                                            executor="ray", ray_address=cluster.address))
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()
        run["nodes"] = n
        run["builds_per_s"] = run["builds"] / run["execute_s"]
        rows.append(run)
        print(f"  {run['builds']} builds in {run['execute_s']:.1f} s executing: "
              f"{run['builds_per_s']:.2f} builds/s "
              f"(x{run['builds_per_s'] / rows[0]['builds_per_s']:.2f} of 1 node)", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", help="campaign file (default: the embedded default)")
    parser.add_argument("--nodes", default="1,2,3",
                        help="node counts of the scale-out (default 1,2,3; empty: skip it)")
    parser.add_argument("--scale-sample", type=int, default=2, metavar="K",
                        help="sites per operator in the scale-out campaign (default 2)")
    parser.add_argument("--repeat", type=int, default=2, metavar="R",
                        help="runs of each executor for the overhead, alternated "
                             "(default 2)")
    parser.add_argument("--skip-overhead", action="store_true",
                        help="only the scale-out")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    from mutatenn_passes.campaign.config.campaign_file import load_config

    config = load_config(args.campaign)
    load_before = os.getloadavg()[0]
    figures = {"campaign": config.name, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="mn-bench-", dir="/tmp") as tmp:
        os.environ["TMPDIR"] = tmp  # Ray's session files and the actors' go here
        tempfile.tempdir = None
        root = Path(tmp)
        if not args.skip_overhead:
            figures["overhead"] = overhead(config, root, args.repeat)
        counts = [int(x) for x in args.nodes.split(",") if x.strip()]
        if counts:
            sampled = dataclasses.replace(config, operators=[
                dataclasses.replace(o, sample=args.scale_sample) for o in config.operators])
            figures["scale_out"] = scale_out(sampled, root, counts)
    figures["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    print(f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
