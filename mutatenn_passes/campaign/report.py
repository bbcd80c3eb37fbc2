"""Reports of one analysis (`analysis.analyse`), written together: results.json, mutants.csv,
summary.csv, cross_target.csv, and an offline report.html with one page per mutant under
report_files/mutants/ (which images flipped and to what, and the IR diff the mutant made).

The HTML comes from the Jinja2 templates in ``templates/`` (shipped in the package); CSS and
JavaScript are inlined, so the output folder works offline as it is. The mutants table of
report.html and mutants.csv share one column list, `MUTANT_COLUMNS`.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .analysis import analyse, partial_note
from .gate import threshold_failure
from .ignore import unmatched_warnings
from .run_history import wall_text
from .store import Store

#: Where the per-mutant pages go, relative to the output folder (and to report.html).
MUTANT_PAGES = "report_files/mutants"


@dataclass(frozen=True)
class Column:
    """One column of the mutants table: its key in `mutant_values`, its HTML header, and
    which of report.html and mutants.csv show it."""

    key: str
    label: str
    html: bool = True
    csv: bool = True


MUTANT_COLUMNS = (
    Column("key", "key", html=False),
    Column("operator", "operator"),
    Column("category", "category"),
    Column("model", "model"),
    Column("target", "target"),
    Column("level", "level", html=False),
    Column("phase", "phase", html=False),
    Column("mode", "mode", html=False),
    Column("site_indices", "sites"),
    Column("sites", "site descriptions", html=False),
    Column("status", "status"),
    Column("ignored", "ignored", html=False),  # report.html: in the status cell
    Column("ignore_reason", "ignore reason", html=False),
    Column("killed", "killed"),
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


def _csv_value(key: str, v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return int(v)
    if key == "site_indices":
        return " ".join(map(str, v))
    if key == "sites":
        return v[:500]
    if key == "error":
        return v.splitlines()[0][:300] if v else ""
    return v


def write_reports(result: dict, store: Store, folder: str | Path) -> None:
    """Write every report file of ``result``, the analysis of ``store``'s campaign."""
    folder = Path(folder)
    (folder / "results.json").write_text(json.dumps(_json_safe(result), indent=1,
                                                    default=str))
    columns = [c.key for c in MUTANT_COLUMNS if c.csv]
    _write_csv(folder / "mutants.csv", columns,
               ({k: _csv_value(k, v) for k, v in mutant_values(r).items() if k in columns}
                for r in result["mutants"]))
    summary = result["summary"]
    _write_csv(folder / "summary.csv", SUMMARY_COLUMNS,
               [{"group_by": by, "group": name, **_blank(s),
                 "note": summary_note(s, result["campaign"])}
                for by, name, s in _summary_groups(summary, ("operator", "category", "model",
                                                             "target"))])
    write_cross_target_csv(result["cross_target"], folder / "cross_target.csv")
    meta = store.meta()
    diffs = {t["key"]: t["diff"] for t in store.tasks(meta.get("plan", []))
             if t["kind"] == "mutant" and t["diff"]}
    labels = {m["index"]: m.get("labels_list") for m in meta.get("models", [])}
    pages = _write_mutant_pages(result, diffs, labels, folder)
    (folder / "report.html").write_text(_render_report(result, pages), encoding="utf-8")


def regenerate(folder: str | Path) -> dict:
    """`mutatenn report OUTDIR`: analyse the database again and rewrite every report."""
    store = Store(folder, create=False)
    try:
        result = analyse(store)
        write_reports(result, store, folder)
        return result
    finally:
        store.close()


def _write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
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


def _blank(s: dict) -> dict:
    return {k: ("" if v is None else v) for k, v in s.items() if k in SUMMARY_COLUMNS}


def _summary_groups(summary: dict, order) -> list[tuple[str, str, dict]]:
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


def write_cross_target_csv(cross: dict, path: Path) -> None:
    rows = []
    for r in cross_target_rows(cross):
        row = dict(r, site_indices=" ".join(map(str, r["site_indices"])),
                   top1_differs_images=" ".join(r.get("top1_differs_images") or []),
                   differs=int(bool(r.get("differs"))),
                   bitwise_identical=int(bool(r.get("bitwise_identical"))))
        rows.append({c: ("" if row.get(c) is None else row.get(c)) for c in CROSS_COLUMNS})
    _write_csv(path, CROSS_COLUMNS, rows)


# --- HTML ---------------------------------------------------------------------------------

def _fmt(v, digits=3) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) \
            else f"{v:.{digits}f}"
    return str(v)


def _color(v: float) -> str:
    """White (0) to red (1)."""
    g = int(255 - 175 * max(0.0, min(1.0, v)))
    return f"rgb(255,{g},{g})"


def _sortable(v):
    """A cell's ``data-v``: the raw value the page's script sorts by."""
    return "" if v is None else int(v) if isinstance(v, bool) else v


_ENV = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)
_ENV.filters.update(fmt=_fmt, color=_color, sortable=_sortable)


def _heatmap(mutants: list[dict]) -> dict:
    """Operators x targets: the mean top-1 disagreement of the mutants that ran, or their
    statuses."""
    targets = sorted({r["target"] for r in mutants})
    cells: dict[tuple, list] = {}
    for r in mutants:
        cells.setdefault((r["operator"], r["target"]), []).append(r)
    rows = []
    for op in dict.fromkeys(r["operator"] for r in mutants):
        row = []
        for t in targets:
            members = cells.get((op, t), [])
            values = [m["metrics"]["top1_disagreement"] for m in members if m.get("metrics")]
            row.append({"value": sum(values) / len(values) if values else None,
                        "compared": len(values),
                        "statuses": ", ".join(sorted({m["status"] for m in members}))})
        rows.append((op, row))
    return {"targets": targets, "rows": rows}


def _bars(categories: dict) -> dict:
    """The per-category mutation score bar chart's geometry."""
    width, bar_h, label_w = 760, 22, 260
    scale = width - label_w - 120
    rows = []
    for i, (cat, s) in enumerate(categories.items()):
        score = s["mutation_score"]
        rows.append({"category": cat, "y": 10 + i * bar_h,
                     "width": 0 if score is None else score * scale,
                     "text": "n/a" if score is None
                     else f"{score:.2f} ({s['killed']}/{s['denominator']})"})
    return {"width": width, "height": bar_h * len(categories) + 30, "bar_h": bar_h,
            "label_w": label_w, "scale": scale, "rows": rows}


#: What the report's chips count, defined beside them.
DEFINITIONS = (
    ("killed", "built, ran on every image, and some image's top-1 class differs from the "
               "original's on the same target"),
    ("survived", "built, ran on every image, and every image's top-1 class equals the "
                 "original's: the images did not detect the mutation"),
    ("equivalent", "the mutated IR is structurally equal to the original's: nothing to "
                   "detect; not built, left out of the score"),
    ("not applicable", "the operator finds no site in the model; not built, left out of the "
                       "score"),
    ("failures", "the mutant failed to build, crashed or timed out (score_with_failures "
                 "counts them as killed)"),
    ("pending", "planned, not finished yet (a partial campaign): left out of the score"),
)


def _schedule(target: dict) -> str:
    """How a target's kernels are scheduled: the profile's ``schedule`` where it has one,
    else what TVM's default pipeline does for its device."""
    if target.get("schedule"):
        return target["schedule"]
    if target.get("device") == "cuda":
        return "dlight default rules (TVM's GPU pipeline)"
    return "none (TVM's CPU default pipeline leaves kernels unscheduled)"


def _tested(result: dict) -> dict:
    """The report's opening section: the models (weights synthetic or from the file,
    labels, outputs that ignore the input), images, targets and operators tested."""
    c = result["campaign"]
    flags: dict[int, list[str]] = {}
    for o in result["originals"]:
        if o.get("ignores_input"):
            flags.setdefault(o["model_index"], []).append(
                f"on {o['target']}: {o['ignores_input']}")
    models = [{"name": m["name"], "source": m.get("source", ""), "format": m.get("format", ""),
               "weights": "synthetic (seeded, not trained)" if m.get("synthetic_weights")
               else "from the file", "classes": m.get("classes"),
               "labels": m.get("labels_source") or ("yes" if m.get("labels") else "none"),
               "label_offset": m.get("label_offset") or 0,
               "label_mismatch": m.get("label_mismatch") or "",
               "flags": flags.get(m.get("index"), [])} for m in c["models"]]
    images = c["images"]
    return {"models": models, "images": images[:20], "more_images": max(0, len(images) - 20),
            "image_count": len(images),
            "image_notes": [(i["name"], "; ".join(i["notes"])) for i in images
                            if i.get("notes")],
            "skipped": c.get("images_skipped", []),
            "targets": [{"name": t["name"], "description": t.get("description", ""),
                         "schedule": _schedule(t)} for t in c["targets"]],
            "operators": c["config"].get("operators", [])}


def _render_report(result: dict, pages: dict[str, str]) -> str:
    c, overall = result["campaign"], result["summary"]["overall"]
    score = overall["mutation_score"]
    cards = [
        ("mutants", overall["mutants"]), ("killed", overall["killed"]),
        ("survived", overall["survived"]), ("equivalent", overall["equivalent"]),
        ("not applicable", overall["not_applicable"]),
        ("ignored", overall["ignored"]),
        ("failures", overall["build_failed"] + overall["crashed"] + overall["timeout"])] + (
        [("pending", overall["pending"])] if overall.get("pending") else []) + [
        ("mutation score" + (" (finished mutants)" if c.get("partial") else ""),
         "n/a" if score is None else f"{score:.3f}"),
        ("wall time", wall_text(c) or "—")]
    sampling = "; ".join(f"{k}: {v['mode']} sites={v['sites']}"
                         + (f" sample={v['sample']} (seed {v['seed']})" if v.get("sample")
                            else "")
                         for k, v in c["sampling"].items())
    return _ENV.get_template("report.html.j2").render(
        result=result, cards=cards, sampling=sampling, pages=pages,
        threshold=c["config"].get("fail_under"),
        gate=threshold_failure(overall, c["config"].get("fail_under")),
        ignore=result["ignore"], ignore_warnings=unmatched_warnings(result["ignore"]),
        versions=", ".join(f"{k} {v}" for k, v in c["versions"].items() if v),
        heatmap=_heatmap(result["mutants"]), bars=_bars(result["summary"]["category"]),
        summary_columns=HTML_SUMMARY_COLUMNS + (("pending",) if overall.get("pending")
                                                else ()),
        definitions=DEFINITIONS, tested=_tested(result),
        summary_rows=_summary_groups(result["summary"], ("category", "operator", "model",
                                                         "target")),
        columns=[col for col in MUTANT_COLUMNS if col.html],
        mutants=[(r, mutant_values(r)) for r in result["mutants"]])


def _write_mutant_pages(result: dict, diffs: dict, labels: dict, folder: Path
                        ) -> dict[str, str]:
    """One page per mutant; returns each mutant's page, relative to the output folder.
    Pages of mutants no longer planned are removed."""
    pages_dir = folder / MUTANT_PAGES
    shutil.rmtree(pages_dir, ignore_errors=True)
    pages_dir.mkdir(parents=True)
    back = "../" * len(Path(MUTANT_PAGES).parts) + "report.html"
    originals = {(o["model_index"], o["target"]): o["images"] for o in result["originals"]}
    template = _ENV.get_template("mutant.html.j2")
    pages = {}
    for r in result["mutants"]:
        images = _flips(r["images"], originals.get((r["model_index"], r["target"])) or [],
                        labels.get(r["model_index"]))
        (pages_dir / f"{r['key']}.html").write_text(template.render(
            r=r, images=images, flipped=sum(i["flipped"] for i in images),
            diff_text=diffs.get(r["key"], ""), back=back), encoding="utf-8")
        pages[r["key"]] = f"{MUTANT_PAGES}/{r['key']}.html"
    return pages


def _flips(mutant: list[dict], original: list[dict], labels: list | None) -> list[dict]:
    """Per image: the original's and the mutant's top-1 (with labels when known), whether it
    flipped, and both top-5 lists."""
    def name(c: int) -> str:
        return f"{c} {labels[c]}" if labels and 0 <= c < len(labels) else str(c)

    return [{"image": m["image"], "original": name(o["classes"][0]),
             "mutant": name(m["classes"][0]), "flipped": m["classes"][0] != o["classes"][0],
             "original_top5": [name(c) for c in o["classes"]],
             "mutant_top5": [name(c) for c in m["classes"]]}
            for m, o in zip(mutant, original)]
