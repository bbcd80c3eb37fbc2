"""Reports of one analysis (`analysis.analyse`), written together: results.json and its
streaming sibling results.jsonl (one mutant a line), mutants.csv, summary.csv,
cross_target.csv, and an offline report.html with one page per mutant under
report_files/mutants/ (which images flipped and to what, and the IR diff the mutant made).

The HTML comes from the Jinja2 templates in ``templates/`` (shipped in the package); CSS and
JavaScript are inlined, so the output folder works offline as it is. report.html stays small
whatever the campaign's size: summaries, heatmaps and score bars are in it; the long tables
(mutants, cross-target discrepancies of mutants, target-dependent mutants) are rows in
``report_files/report-data.js``, which the page loads with a plain ``<script src>`` (a page
opened from file:// may not fetch a JSON file; it may run a script beside it) and shows a page
at a time, sortable and filterable. The mutants table of report.html and mutants.csv share
one column list, `MUTANT_COLUMNS`.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jinja2

from .analysis import analyse, partial_note
from .gate import threshold_failure
from ..config.ignore import unmatched_warnings
from .run_history import wall_text
from .store import Store

#: Where the per-mutant pages go, relative to the output folder (and to report.html).
MUTANT_PAGES = "report_files/mutants"
#: The rows of report.html's long tables, relative to the output folder.
REPORT_DATA = "report_files/report-data.js"
#: Rendered pages waiting for the writer thread at most (bounds their memory).
_PAGES_IN_FLIGHT = 256


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


@contextmanager
def _heap_frozen():
    """The analysis' millions of objects stay alive while the reports are written: frozen, the
    cyclic garbage collector stops rescanning them (1 s of the reports of 10k mutants)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def write_reports(result: dict, store: Store, folder: str | Path) -> None:
    """Write every report file of ``result``, the analysis of ``store``'s campaign."""
    with _heap_frozen():
        _write_reports(result, store, Path(folder))


def _write_reports(result: dict, store: Store, folder: Path) -> None:
    _write_results(result, folder)
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
    names = {m["index"]: _ClassNames(m.get("labels_list"))
             for m in store.meta().get("models", [])}
    pages = _write_mutant_pages(result, store.diffs(), names, folder)
    (folder / REPORT_DATA).write_text(_report_data(result, pages), encoding="utf-8")
    (folder / "report.html").write_text(_render_report(result), encoding="utf-8")


def _write_results(result: dict, folder: Path) -> None:
    """results.jsonl, one mutant a line, and results.json, everything, its mutants one a line
    too: each mutant is encoded once, for both, and written as it is encoded."""
    with open(folder / "results.json", "w", encoding="utf-8") as whole, \
            open(folder / "results.jsonl", "w", encoding="utf-8") as lines:
        whole.write("{")
        for i, (k, v) in enumerate(result.items()):
            whole.write(("" if i == 0 else ",\n") + json.dumps(k) + ": ")
            if k != "mutants":
                whole.write(_dumps(v))
                continue
            whole.write("[")
            for j, r in enumerate(v):
                line = _dumps(r)
                whole.write(("\n" if j == 0 else ",\n") + line)
                lines.write(line + "\n")
            whole.write("\n]")
        whole.write("}\n")


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


def _dumps(obj) -> str:
    """JSON text of ``obj``, non-finite numbers as null (with the C encoder: no indent)."""
    try:
        return json.dumps(obj, allow_nan=False, default=str)
    except ValueError:  # a NaN or infinity somewhere: the rare slow path
        return json.dumps(_json_safe(obj), default=str)


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
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          auto_reload=False)  # shipped templates: no stat per page
_ENV.filters.update(fmt=_fmt, color=_color, sortable=_sortable)


def _heatmap(mutants: list[dict]) -> dict:
    """Operators x targets: the mean top-1 disagreement of the mutants that ran (or their
    statuses), and how many were killed and survived (links to them in the mutants table)."""
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
            where = urlencode({"operator": op, "target": t})
            row.append({"value": sum(values) / len(values) if values else None,
                        "compared": len(values),
                        "statuses": ", ".join(sorted({m["status"] for m in members})),
                        "killed": sum(1 for m in members if m["killed"]),
                        "survived": sum(1 for m in members
                                        if m["status"] == "ok" and not m["killed"]),
                        "all": f"#{where}", "killed_link": f"#{where}&killed=1",
                        "survived_link": f"#{where}&status=ok&killed=0"})
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
    """How a target's kernels are scheduled, in words (the profile's ``schedule``)."""
    if target.get("device") == "cuda":
        return "default: TVM's dlight GPU rules"
    if target.get("schedule", "default") == "default":
        return "default: fused, tiled, vectorized and parallel by mutatenn's CPU rules"
    return "none: TVM's CPU default build, unscheduled naive loops"


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


def _render_report(result: dict) -> str:
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
        result=result, cards=cards, sampling=sampling,
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
        data_file=REPORT_DATA, tables=_TABLES)


# --- report-data.js: the long tables' rows --------------------------------------------------
# A table is a list of (key, label, kind, filterable) columns and one list of cell values per
# row (a value after the last cell is the row's key). The page's script renders a cell by its
# kind: "text", "num" (formatted like `_fmt`), "bool" (yes / blank), "sites" ([indices, sites
# found, descriptions]), "status" ([status, error, detail, duplicate?, ignore reason or null,
# survived?]), "link" ([text, href]).

def _num(v):
    """A float as the page needs it: 6 significant digits, None when not finite."""
    if isinstance(v, float):
        return float(f"{v:.6g}") if math.isfinite(v) else None
    return v


def _sites(r: dict) -> list:
    return [",".join(map(str, r["site_indices"])), r.get("sites_found"),
            " | ".join(s.get("description", "") for s in r.get("sites") or [])[:500]]


def _status(r: dict) -> list:
    detail = f" ({r.get('signal') or r.get('exit_code')})" if r["status"] == "crashed" else ""
    survived = r["status"] == "ok" and not r.get("killed") and not r.get("ignored")
    return [r["status"], (r.get("error") or "")[:400], detail, bool(r.get("duplicate_of")),
            r.get("ignore_reason") if r.get("ignored") else None, survived]


def _mutant_cells(r: dict, pages: dict) -> list:
    values = mutant_values(r)
    special = {"site_indices": lambda: _sites(r), "status": lambda: _status(r),
               "detail": lambda: ["view", pages.get(r["key"], "")]}
    return [special[c.key]() if c.key in special else _num(values[c.key])
            for c in _MUTANT_HTML] + [r["key"]]


def _cross_cells(d: dict, pages: dict) -> list:
    return [[d["operator"], pages.get(d["key"], "")], ",".join(map(str, d["site_indices"])),
            d["model"], d["target_a"], d["target_b"], d["reason"],
            *(_num(d[k]) for k in ("top1_disagreement", "rbo", "kendall_tau", "max_abs_diff",
                                   "mean_abs_diff")),
            ", ".join(d.get("top1_differs_images") or [])]


def _dependent_cells(m: dict, pages: dict) -> list:
    first = next(iter(m["keys"].values()), "")
    return [[m["operator"], pages.get(first, "")], ",".join(map(str, m["site_indices"])),
            m["model"], ", ".join(f"{k}: {v}" for k, v in m["statuses"].items()),
            ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in m["killed"].items())]


def _kind(key: str) -> str:
    return {"site_indices": "sites", "status": "status", "detail": "link",
            "killed": "bool", "degenerate": "bool"}.get(
        key, "num" if key in METRICS or key in ("p_value", "build_s", "run_s") else "text")


_MUTANT_HTML = [col for col in MUTANT_COLUMNS if col.html]
_CROSS = [("operator", "operator", "link", True), ("sites", "sites", "text", False),
          ("model", "model", "text", True), ("target_a", "target A", "text", True),
          ("target_b", "target B", "text", True), ("reason", "differs in", "text", True),
          ("top1_disagreement", "top-1 disagr.", "num", False), ("rbo", "RBO", "num", False),
          ("kendall_tau", "Kendall τ", "num", False), ("max_abs_diff", "max |Δ|", "num", False),
          ("mean_abs_diff", "mean |Δ|", "num", False),
          ("top1_differs_images", "images with other top-1", "text", False)]
_DEPENDENT = [("operator", "operator", "link", True), ("sites", "sites", "text", False),
              ("model", "model", "text", True), ("statuses", "status per target", "text", False),
              ("kills", "killed per target", "text", False)]
#: report-data.js's tables and their columns: (key, label, kind, filterable).
_TABLES = {"mutants": [(c.key, c.label, _kind(c.key), c.filter) for c in _MUTANT_HTML],
           "cross-mutants": _CROSS, "target-dependent": _DEPENDENT}


def _report_data(result: dict, pages: dict[str, str]) -> str:
    """report-data.js: ``window.MUTATENN_DATA`` = per table its columns and rows."""
    cross = result["cross_target"]
    rows = {"mutants": [_mutant_cells(r, pages) for r in result["mutants"]],
            "cross-mutants": [_cross_cells(d, pages) for d in cross["discrepancies"]
                              if d["kind"] == "mutant"],
            "target-dependent": [_dependent_cells(m, pages) for m in cross["mutants"]
                                 if m["target_dependent"]]}
    data = {name: {"columns": [{"key": k, "label": label, "kind": kind, "filter": f}
                               for k, label, kind, f in columns], "rows": rows[name]}
            for name, columns in _TABLES.items()}
    return "window.MUTATENN_DATA = " + _dumps(data) + ";\n"


def _write_mutant_pages(result: dict, diffs: dict, names: dict, folder: Path
                        ) -> dict[str, str]:
    """One page per mutant; returns each mutant's page, relative to the output folder.
    Pages of mutants no longer planned are removed. Each distinct IR diff is rendered once (a
    graph-level mutant has the same diff on every target). A thread writes the pages while
    the next ones render: creating a file costs about as much as rendering it, mostly in the
    kernel, which runs beside the interpreter."""
    pages_dir = folder / MUTANT_PAGES
    pages_dir.mkdir(parents=True, exist_ok=True)
    back = "../" * len(Path(MUTANT_PAGES).parts) + "report.html"
    originals = {(o["model_index"], o["target"]): o["images"] for o in result["originals"]}
    template = _ENV.get_template("mutant.html.j2")
    css = _ENV.get_template("report.css").render()
    render_diff = _ENV.get_template("macros.html.j2").module.diff
    rendered: dict[str, str] = {}
    pages = {}
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: deque = deque()
        for r in result["mutants"]:
            images = _flips(r["images"], originals.get((r["model_index"], r["target"])) or [],
                            names.get(r["model_index"]) or _ClassNames(None))
            text = diffs.get(r["key"], "")
            if text not in rendered:
                rendered[text] = render_diff(text) if text else ""
            pending.append(writer.submit(
                _write_if_changed, pages_dir / f"{r['key']}.html", template.render(
                    r=r, images=images, flipped=sum(i["flipped"] for i in images),
                    diff_html=rendered[text], back=back, css=css, metric_rows=_metric_rows)))
            pages[r["key"]] = f"{MUTANT_PAGES}/{r['key']}.html"
            while len(pending) > _PAGES_IN_FLIGHT:
                pending.popleft().result()
        for done in pending:
            done.result()
    for stale in set(os.listdir(pages_dir)) - {f"{k}.html" for k in pages}:
        (pages_dir / stale).unlink()
    return pages


def _metric_rows(r: dict) -> list[tuple[str, object]]:
    """A mutant page's metrics: (label, value), the Fisher test's p last."""
    return [(k.replace("_", " "), r["metrics"][k]) for k in METRICS] + \
        [(f"Fisher p ({r.get('reference')})", r["p_value"])]


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already: `mutatenn report` rewrites thousands
    of pages, mostly unchanged, and replacing a file's content (or deleting the file) costs
    ~3 ms on a file system that discards freed blocks (ext4 ``-o discard``), reading it 0.05 ms."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except FileNotFoundError:
        pass
    path.write_text(text, encoding="utf-8")


class _ClassNames(dict):
    """Class index -> "index label" (the index alone without labels), made once per class."""

    def __init__(self, labels: list | None):
        super().__init__()
        self.labels = labels

    def __missing__(self, c: int) -> str:
        labels = self.labels
        self[c] = name = f"{c} {labels[c]}" if labels and 0 <= c < len(labels) else str(c)
        return name


def _flips(mutant: list[dict], original: list[dict], names: _ClassNames) -> list[dict]:
    """Per image: the original's and the mutant's top-1 (with labels when known), whether it
    flipped, and both top-5 lists (as text)."""
    return [{"image": m["image"], "original": names[o["classes"][0]],
             "mutant": names[m["classes"][0]], "flipped": m["classes"][0] != o["classes"][0],
             "original_top5": ", ".join([names[c] for c in o["classes"]]),
             "mutant_top5": ", ".join([names[c] for c in m["classes"]])}
            for m, o in zip(mutant, original)]
