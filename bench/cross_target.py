"""Figures of docs/campaign.md's cross-target comparison, measured again.

    python bench/cross_target.py [--campaign FILE] [--output DIR] [--json FILE]
    python bench/cross_target.py --existing DIR   # figures of a finished run

Runs the campaign (default: bench/cross_target.toml: the embedded default model and
photographs, one sampled site per `paper` operator, targets llvm-x86-64, llvm-avx2 and c) from
scratch into a fresh folder and prints what the docs quote: the wall time; per pair of targets,
the original's top-1 disagreement, max |output difference| and whether its outputs are
bit-identical, and over the mutants compared on that pair how many there are, how many
change some image's top-1, how many are not bit-identical and the largest max |difference|
(with the operators it comes from); the smallest top-5 RBO and Kendall's tau of any of them;
the discrepancy list's length at the analysis's tolerance; and the target-dependent mutants
with their status per target. ``--existing`` prints the same figures from a campaign already
run (its wall time from the database's run history) without running anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pair_figures(cross: dict) -> list[dict]:
    """Per target pair: the original's comparison and a summary of the mutants'."""
    mutants: dict[tuple, list] = {}
    for e in cross["mutants"]:
        for p in e["pairs"]:
            mutants.setdefault((p["target_a"], p["target_b"]), []).append((e["operator"], p))
    rows = []
    for o in cross["originals"]:
        pairs = mutants.get((o["target_a"], o["target_b"]), [])
        diffs = [p["max_abs_diff"] for _, p in pairs if p["max_abs_diff"] is not None]
        largest = max(diffs, default=None)
        every = [o] + [p for _, p in pairs]
        rows.append({
            "model": o["model"], "target_a": o["target_a"], "target_b": o["target_b"],
            "min_rbo": min(p["rbo"] for p in every),
            "min_kendall_tau": min(p["kendall_tau"] for p in every),
            "original_top1_disagreement": o["top1_disagreement"],
            "original_max_abs_diff": o["max_abs_diff"],
            "original_bitwise_identical": o["bitwise_identical"],
            "mutants_compared": len(pairs),
            "mutants_top1_differ": sum(1 for _, p in pairs if p["top1_differs_images"]),
            "mutants_not_bitwise_identical": sum(1 for _, p in pairs
                                                 if not p["bitwise_identical"]),
            "mutants_max_abs_diff": largest,
            "mutants_max_abs_diff_operators": sorted({op for op, p in pairs
                                                      if p["max_abs_diff"] == largest})
            if largest else [],
        })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", default=str(HERE / "cross_target.toml"),
                        help="campaign file (default: bench/cross_target.toml)")
    parser.add_argument("--output", help="output folder (default: a fresh temporary one)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--existing", metavar="DIR",
                        help="print the figures of the campaign already in DIR; run nothing")
    args = parser.parse_args()

    import dataclasses

    from mutatenn_passes.campaign.config.campaign_file import load_config
    from mutatenn_passes.campaign.running.engine import execute_campaign
    from mutatenn_passes.campaign.running.progress import CampaignUI

    tmp = None
    if args.existing:
        from mutatenn_passes import open_campaign

        result = open_campaign(args.existing).analysis
        report(result, result["campaign"]["wall_time"]["total_s"], args.json)
        return 0
    if args.output:
        out = Path(args.output).resolve()
        if (out / "results.db").exists():
            parser.error(f"{out} holds a campaign already; the benchmark needs a fresh folder")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mutatenn-cross-")
        out = Path(tmp.name) / "campaign"
    config = dataclasses.replace(load_config(args.campaign), output=out)
    print(f"== campaign {config.name!r}: targets {', '.join(config.targets)}, "
          f"{config.workers} worker(s), output {out}", flush=True)
    t0 = time.perf_counter()
    outcome = execute_campaign(config, progress=CampaignUI(quiet=True))
    report(outcome["analysis"], time.perf_counter() - t0, args.json)
    if tmp is not None:
        tmp.cleanup()
    return 0


def report(result: dict, wall: float, json_path: str | None) -> None:
    """Print (and with ``json_path`` write) the figures of one campaign's analysis."""
    cross = result["cross_target"]
    targets = result["cross_target"]["targets"]
    pairs = pair_figures(cross)
    statuses: dict[str, int] = {}
    for m in result["mutants"]:
        statuses[m["status"]] = statuses.get(m["status"], 0) + 1
    dependent = [{"operator": e["operator"], "sites": e["site_indices"],
                  "statuses": e["statuses"], "killed": e["killed"]}
                 for e in cross["mutants"] if e["target_dependent"]]

    def num(v):
        return "n/a" if v is None else f"{v:.2g}"

    print(f"wall time {wall:.0f} s; {len(result['mutants'])} mutants over "
          f"{len(targets)} targets: "
          + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    for p in pairs:
        print(f"{p['target_a']} vs {p['target_b']}: original top-1 disagreement "
              f"{p['original_top1_disagreement']:.2f}, max |d| {num(p['original_max_abs_diff'])}"
              f", bit-identical {p['original_bitwise_identical']}; mutants compared "
              f"{p['mutants_compared']}, top-1 differs {p['mutants_top1_differ']}, not "
              f"bit-identical {p['mutants_not_bitwise_identical']}, largest max |d| "
              f"{num(p['mutants_max_abs_diff'])} "
              f"({', '.join(p['mutants_max_abs_diff_operators']) or '-'}); smallest RBO "
              f"{p['min_rbo']:.3f}, Kendall's tau {p['min_kendall_tau']:.3f}")
    print(f"discrepancies at tolerance {cross['tolerance']:g}: {len(cross['discrepancies'])} "
          f"({cross['original_discrepancies']} of the unmutated model)")
    for d in dependent:
        print(f"target-dependent: {d['operator']} {d['sites']}: "
              + ", ".join(f"{t} {s}{' killed' if d['killed'][t] else ''}"
                          for t, s in d["statuses"].items()))
    if json_path:
        Path(json_path).write_text(json.dumps(
            {"wall_s": wall, "statuses": statuses, "pairs": pairs,
             "tolerance": cross["tolerance"], "discrepancies": len(cross["discrepancies"]),
             "target_dependent": dependent}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
