"""What a campaign's reports show, shared by the CSV files and report.html (`report`,
`html_report`): the mutants table's columns (`MUTANT_COLUMNS`) and a mutant's values in them,
the summary and cross-target columns and rows, summary notes, and JSON text without NaNs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .analysis import partial_note


@dataclass(frozen=True)
class Column:
    """One column of the mutants table: its key in `mutant_values`, its HTML header, which
    of report.html and mutants.csv show it, and whether report.html can filter on it."""

    key: str
    label: str
    html: bool = True
    csv: bool = True
    filter: bool = False


MUTANT_COLUMNS = (
    Column("key", "key", html=False),
    Column("operator", "operator", filter=True),
    Column("category", "category", filter=True),
    Column("model", "model", filter=True),
    Column("target", "target", filter=True),
    Column("level", "level", html=False),
    Column("phase", "phase", html=False),
    Column("mode", "mode", html=False),
    Column("site_indices", "sites"),
    Column("sites", "site descriptions", html=False),
    Column("status", "status", filter=True),
    Column("ignored", "ignored", html=False),  # report.html: in the status cell
    Column("ignore_reason", "ignore reason", html=False),
    Column("killed", "killed", filter=True),
    Column("stat_killed", "stat. killed", html=False),
    Column("top1_disagreement", "top-1 disagr."),
    Column("top5_overlap", "top-5 overlap"),
    Column("rbo", "RBO"),
    Column("kendall_tau", "Kendall τ"),
    Column("max_abs_diff", "max |Δ|"),
    Column("mean_abs_diff", "mean |Δ|"),
    Column("degenerate", "degenerate"),
    Column("p_value", "Fisher p"),
    Column("duplicate_of", "duplicate of", html=False),
    Column("stage", "stage", html=False),
    Column("exit_code", "exit code", html=False),
    Column("signal", "signal", html=False),
    Column("build_s", "build s"),
    Column("load_s", "load s", html=False),
    Column("run_s", "run s"),
    Column("build_mode", "build mode", html=False),
    Column("ir_hash", "IR hash", html=False),
    Column("error", "error", html=False),
    Column("note", "note", html=False),
    Column("detail", "detail", csv=False),
)
METRICS = ("top1_disagreement", "top5_overlap", "rbo", "kendall_tau", "max_abs_diff",
           "mean_abs_diff", "degenerate")
CROSS_COLUMNS = ("kind", "model", "operator", "site_indices", "key", "target_a", "target_b",
                 "differs", "reason", "images", "top1_disagreement", "rbo", "kendall_tau",
                 "max_abs_diff", "mean_abs_diff", "bitwise_identical",
                 "top1_differs_images")
SUMMARY_COLUMNS = ("group_by", "group", "mutants", "ok", "not_applicable", "equivalent",
                   "build_failed", "crashed", "timeout", "cannot_run_here", "device_lost",
                   "ignored", "killed", "survived", "stat_killed", "denominator",
                   "mutation_score", "score_with_failures", "mean_top1_disagreement",
                   "mean_rbo", "pending", "note")
#: The summary columns report.html shows.
HTML_SUMMARY_COLUMNS = ("mutants", "ok", "killed", "survived", "equivalent", "not_applicable",
                        "ignored", "build_failed", "crashed", "timeout", "cannot_run_here",
                        "mutation_score", "score_with_failures", "stat_killed",
                        "mean_top1_disagreement")


def mutant_values(r: dict) -> dict:
    """A mutant row of the analysis flattened to one value per `MUTANT_COLUMNS` key."""
    values = {c.key: r.get(c.key) for c in MUTANT_COLUMNS}
    values.update({k: (r.get("metrics") or {}).get(k) for k in METRICS})
    values["sites"] = " | ".join(s.get("description", "") for s in r["sites"])
    return values



def dumps(obj) -> str:
    """JSON text of ``obj``, non-finite numbers as null (with the C encoder: no indent)."""
    try:
        return json.dumps(obj, allow_nan=False, default=str)
    except ValueError:  # a NaN or infinity somewhere: the rare slow path
        return json.dumps(json_safe(obj), default=str)


def json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def summary_note(scores: dict, campaign: dict) -> str:
    """A summary row's note: ``partial: N of M finished`` when some of its mutants are
    pending, and why ``stat_killed`` is empty when the test cannot decide."""
    notes = [partial_note(scores)]
    if scores.get("stat_killed") is None and scores.get("mutants"):
        statistics = campaign.get("statistics") or {}
        notes.append(f"stat_killed not assessed: Fisher's test needs at least "
                     f"{statistics.get('min_images')} reference images")
    return "; ".join(n for n in notes if n)


def summary_groups(summary: dict, order) -> list[tuple[str, str, dict]]:
    """(group by, group, scores): overall first, then each grouping in ``order``."""
    return [("overall", "all", summary["overall"])] + \
        [(by, name, s) for by in order for name, s in summary[by].items()]


def cross_target_rows(cross: dict) -> list[dict]:
    """Every cross-target pair, originals first then mutants (``differs`` marks the
    discrepancies)."""
    rows = [{"kind": "original", "operator": "", "site_indices": [], "key": "", **p}
            for p in cross["originals"]]
    rows += [{"kind": "mutant", "model": e["model"], "operator": e["operator"],
              "site_indices": e["site_indices"], "key": e["keys"].get(p["target_a"], ""), **p}
             for e in cross["mutants"] for p in e["pairs"]]
    return rows
