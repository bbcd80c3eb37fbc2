"""Cross-target comparison (the MutateNN paper's device evaluation): the same program, the
original or one mutant, on each target against every other target. See `cross_target`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations

import numpy as np

from .comparison import compare_many, result_key

# Outputs of two targets "differ" beyond floating-point noise when their max |difference| is
# above this (absolute, on the model's output vector; bit-identical outputs are 0).
CROSS_TOLERANCE = 1e-5


def _pair_metrics(pairs: list[tuple[list[dict], list[dict]]]) -> list[dict]:
    """The same program (original or one mutant) on target A (``oa``) vs target B (``ob``),
    for each (oa, ob) of ``pairs`` (``{}`` where either has no outputs)."""
    out = []
    for (oa, ob), m in zip(pairs, compare_many([(ob, oa) for oa, ob in pairs])):
        if not m:
            out.append({})
            continue
        n = m["images"]
        identical = all(a["digest"] == b["digest"] for a, b in zip(oa[:n], ob[:n]))
        max_d = m["max_abs_diff"]  # None when either side has a NaN or infinity
        output_differs = not identical and (max_d is None or max_d > CROSS_TOLERANCE)
        top1_images = [a["image"] for a, d in zip(oa[:n], m["top1_differs"]) if d]
        reasons = (["top-1"] if top1_images else []) + (["output"] if output_differs else [])
        out.append({"images": n, "top1_disagreement": m["top1_disagreement"], "rbo": m["rbo"],
                    "kendall_tau": m["kendall_tau"], "max_abs_diff": max_d,
                    "mean_abs_diff": m["mean_abs_diff"], "bitwise_identical": identical,
                    "top1_differs_images": top1_images, "differs": bool(reasons),
                    "reason": "+".join(reasons)})
    return out


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def cross_target(original_rows, originals, mutants: list[dict], order: dict) -> dict:
    """The paper's device evaluation: the same program compared across targets.

    * ``originals``: per model and target pair, the unmutated model on A vs on B;
    * ``mutants``: per mutant built for several targets, its status/killed per target and the
      pairwise comparison of its outputs (mutant on A vs the same mutant on B);
    * ``pairwise``: per model and target pair, the original's metrics and the mean over the
      mutants compared (top-1 disagreement, RBO p=0.9, Kendall's tau);
    * ``matrices``: per model, targets x targets of the original's top-1 disagreement and the
      mean over mutants (for the report's heatmap);
    * ``discrepancies``: only the (model, original-or-mutant, A, B) pairs that differ (some
      image's top-1, or max |output difference| > ``tolerance``), unmutated models first.

    ``mutants`` are `_measure`'s entries. Targets are ordered as first met (originals, then
    mutants: ``order``); a pair is always (earlier, later) in that order. Everything is paired
    through dictionaries, never by searching.
    """
    names = {}  # model index -> name (original rows are in plan order, like ``originals``)
    for (mi, _), row in zip(originals, original_rows):
        names.setdefault(mi, row["model"])
    targets = defaultdict(list)  # model index -> its targets, in order
    for mi, t in originals:
        targets[mi].append(t)
    targets = {mi: sorted(ts, key=order.__getitem__) for mi, ts in targets.items()}
    pairs = _original_pairs(originals, targets, names)
    pairwise = _pairwise(targets, names, pairs, mutants)
    pairwise_of = defaultdict(list)
    for p in pairwise:
        pairwise_of[p["model"]].append(p)
    matrices = [_matrix(names.get(mi, str(mi)), ts, pairwise_of[names.get(mi, str(mi))])
                for mi, ts in targets.items()]
    discrepancies = _discrepancies(pairs, mutants)
    return {"tolerance": CROSS_TOLERANCE, "targets": list(order), "originals": pairs,
            "mutants": mutants, "pairwise": pairwise, "matrices": matrices,
            "discrepancies": discrepancies,
            "original_discrepancies": sum(1 for d in discrepancies
                                          if d["kind"] == "original"),
            "target_dependent": sum(1 for m in mutants if m["target_dependent"])}


def target_order(originals, rows) -> dict[str, int]:
    """Each target's position: first met among the originals, then among the mutants."""
    order: dict[str, int] = {}
    for t in [t for _, t in originals] + [r["target"] for r in rows]:
        order.setdefault(t, len(order))
    return order


def _original_pairs(originals, targets: dict, names: dict) -> list[dict]:
    """The unmutated model on target A vs on target B, per model and pair with outputs."""
    both = [(mi, ta, tb) for mi, ts in targets.items() for ta, tb in combinations(ts, 2)]
    measured = _pair_metrics([(originals[(mi, ta)], originals[(mi, tb)])
                              for mi, ta, tb in both])
    return [{"model_index": mi, "model": names.get(mi, str(mi)), "target_a": ta,
             "target_b": tb, **m} for (mi, ta, tb), m in zip(both, measured) if m]


def mutants_across_targets(batch: list[list[dict]], order: dict, outs: dict) -> list[dict]:
    """Per mutant (the rows of one ``group``) built for several targets: statuses, kills, and
    the comparison of its outputs (``outs``: by key) on each pair of targets where it ran."""
    mutants, compared = [], []
    for members in batch:
        if len({r["target"] for r in members}) < 2:
            continue
        members = sorted(members, key=lambda r: order[r["target"]])
        first = members[0]
        entry = {"group": first["group"], "operator": first["operator"],
                 "model": first["model"], "model_index": first["model_index"],
                 "site_indices": first["site_indices"],
                 "keys": {r["target"]: r["key"] for r in members},
                 "statuses": {r["target"]: r["status"] for r in members},
                 "killed": {r["target"]: r["killed"] for r in members},
                 "pairs": []}
        compared += [(entry, a, b) for a, b in combinations(members, 2)
                     if a["status"] == "ok" and b["status"] == "ok"]
        entry["target_dependent"] = len(set(entry["killed"].values())) > 1 or \
            len(set(entry["statuses"].values())) > 1
        mutants.append(entry)
    measured = _pair_metrics([(outs.get(result_key(a), []), outs.get(result_key(b), []))
                              for _, a, b in compared])
    for (entry, a, b), m in zip(compared, measured):
        if m:
            entry["pairs"].append({"target_a": a["target"], "target_b": b["target"], **m})
    return mutants


def _pairwise(targets: dict, names: dict, pairs: list, mutants: list) -> list[dict]:
    """Per model and target pair: the original's metrics and the means over its mutants."""
    original = {(p["model_index"], p["target_a"], p["target_b"]): p for p in pairs}
    of_mutants = defaultdict(list)  # (model index, {A, B}) -> the mutants' pairs
    for e in mutants:
        for p in e["pairs"]:
            of_mutants[(e["model_index"], frozenset((p["target_a"], p["target_b"])))] \
                .append(p)
    out = []
    for mi, ts in targets.items():
        for ta, tb in combinations(ts, 2):
            orig = original.get((mi, ta, tb))
            mp = of_mutants.get((mi, frozenset((ta, tb))), [])
            out.append({
                "model": names.get(mi, str(mi)), "target_a": ta, "target_b": tb,
                "original_compared": orig is not None,
                "original_top1_disagreement": orig and orig["top1_disagreement"],
                "original_rbo": orig and orig["rbo"],
                "original_kendall_tau": orig and orig["kendall_tau"],
                "original_max_abs_diff": orig and orig["max_abs_diff"],
                "original_differs": bool(orig and orig["differs"]),
                "mutants_compared": len(mp),
                "mutants_differing": sum(1 for p in mp if p["differs"]),
                "mutants_top1_differing": sum(1 for p in mp if p["top1_differs_images"]),
                "mean_top1_disagreement": _mean([p["top1_disagreement"] for p in mp]),
                "mean_rbo": _mean([p["rbo"] for p in mp]),
                "mean_kendall_tau": _mean([p["kendall_tau"] for p in mp]),
            })
    return out


def _matrix(name: str, targets: list, pairwise: list) -> dict:
    """Targets x targets of one model's original and mean-over-mutants top-1 disagreement,
    from that model's ``pairwise`` rows."""
    index = {t: i for i, t in enumerate(targets)}
    n = len(targets)
    orig = [[0.0 if i == j else None for j in range(n)] for i in range(n)]
    mean = [[None] * n for _ in range(n)]
    for p in pairwise:
        i, j = index[p["target_a"]], index[p["target_b"]]
        orig[i][j] = orig[j][i] = p["original_top1_disagreement"]
        mean[i][j] = mean[j][i] = p["mean_top1_disagreement"]
    return {"model": name, "targets": targets, "original": orig, "mutants_mean": mean}


def _discrepancies(pairs: list, mutants: list) -> list[dict]:
    """Only the pairs that differ: the unmutated models' first, then the mutants', each by
    top-1 disagreement then max |difference|, largest first."""
    out = [{"kind": "original", "model": p["model"], "operator": "", "site_indices": [],
            "key": "", **{k: v for k, v in p.items() if k not in ("model_index", "model")}}
           for p in pairs if p["differs"]]
    out += [{"kind": "mutant", "model": e["model"], "operator": e["operator"],
             "site_indices": e["site_indices"], "key": e["keys"].get(p["target_a"], ""), **p}
            for e in mutants for p in e["pairs"] if p["differs"]]
    out.sort(key=lambda d: (d["kind"] != "original", -(d["top1_disagreement"] or 0),
                            -(math.inf if d["max_abs_diff"] is None else d["max_abs_diff"])))
    return out
