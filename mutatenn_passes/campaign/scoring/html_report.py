"""report.html and the per-mutant pages, rendered from the Jinja2 templates in ``templates/``
(see `report` for what the page holds and why its long tables are in report-data.js).
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import jinja2

from ..config.ignore import unmatched_warnings
from .gate import threshold_failure
from .report_rows import (HTML_SUMMARY_COLUMNS, METRICS, MUTANT_COLUMNS, dumps, mutant_values,
                          summary_groups)
from .run_history import wall_text

#: Where the per-mutant pages go, relative to the output folder (and to report.html).
MUTANT_PAGES = "report_files/mutants"
#: The rows of report.html's long tables, relative to the output folder.
REPORT_DATA = "report_files/report-data.js"
#: Rendered pages waiting for the writer thread at most (bounds their memory).
_PAGES_IN_FLIGHT = 256


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


def render_report(result: dict) -> str:
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
        summary_rows=summary_groups(result["summary"], ("category", "operator", "model",
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


def report_data(result: dict, pages: dict[str, str]) -> str:
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
    return "window.MUTATENN_DATA = " + dumps(data) + ";\n"


def write_mutant_pages(result: dict, diffs: dict, names: dict, folder: Path
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
                            names.get(r["model_index"]) or ClassNames(None))
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


class ClassNames(dict):
    """Class index -> "index label" (the index alone without labels), made once per class."""

    def __init__(self, labels: list | None):
        super().__init__()
        self.labels = labels

    def __missing__(self, c: int) -> str:
        labels = self.labels
        self[c] = name = f"{c} {labels[c]}" if labels and 0 <= c < len(labels) else str(c)
        return name


def _flips(mutant: list[dict], original: list[dict], names: ClassNames) -> list[dict]:
    """Per image: the original's and the mutant's top-1 (with labels when known), whether it
    flipped, and both top-5 lists (as text)."""
    return [{"image": m["image"], "original": names[o["classes"][0]],
             "mutant": names[m["classes"][0]], "flipped": m["classes"][0] != o["classes"][0],
             "original_top5": ", ".join([names[c] for c in o["classes"]]),
             "mutant_top5": ", ".join([names[c] for c in m["classes"]])}
            for m, o in zip(mutant, original)]
