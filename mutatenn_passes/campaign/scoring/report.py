"""Reports of one analysis (`analysis.analyse`), written together: results.json and its
streaming sibling results.jsonl (one mutant a line), mutants.csv, summary.csv,
cross_target.csv, and an offline report.html with one page per mutant under
report_files/mutants/ (which images flipped and to what, and the IR diff the mutant made).

This module writes the files; `report_rows` holds what the CSV files and the HTML share (the
columns, a mutant's values, summary notes), and `html_report` renders the HTML from the Jinja2
templates in ``templates/`` (shipped in the package). CSS and JavaScript are inlined, so the output folder works offline as it is. report.html stays small
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
from contextlib import contextmanager
from pathlib import Path

from .analysis import analyse
from .html_report import (REPORT_DATA, ClassNames, render_report, report_data,
                          write_mutant_pages)
from .report_rows import (CROSS_COLUMNS, MUTANT_COLUMNS, SUMMARY_COLUMNS, cross_target_rows,
                          dumps, mutant_values, summary_groups, summary_note)
from .store import Store


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
                for by, name, s in summary_groups(summary, ("operator", "category", "model",
                                                             "target"))])
    write_cross_target_csv(result["cross_target"], folder / "cross_target.csv")
    names = {m["index"]: ClassNames(m.get("labels_list"))
             for m in store.meta().get("models", [])}
    pages = write_mutant_pages(result, store.diffs(), names, folder)
    (folder / REPORT_DATA).write_text(report_data(result, pages), encoding="utf-8")
    (folder / "report.html").write_text(render_report(result), encoding="utf-8")


def _write_results(result: dict, folder: Path) -> None:
    """results.jsonl, one mutant a line, and results.json, everything, its mutants one a line
    too: each mutant is encoded once, for both, and written as it is encoded."""
    with open(folder / "results.json", "w", encoding="utf-8") as whole, \
            open(folder / "results.jsonl", "w", encoding="utf-8") as lines:
        whole.write("{")
        for i, (k, v) in enumerate(result.items()):
            whole.write(("" if i == 0 else ",\n") + json.dumps(k) + ": ")
            if k != "mutants":
                whole.write(dumps(v))
                continue
            whole.write("[")
            for j, r in enumerate(v):
                line = dumps(r)
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


def _blank(s: dict) -> dict:
    return {k: ("" if v is None else v) for k, v in s.items() if k in SUMMARY_COLUMNS}


def write_cross_target_csv(cross: dict, path: Path) -> None:
    rows = []
    for r in cross_target_rows(cross):
        row = dict(r, site_indices=" ".join(map(str, r["site_indices"])),
                   top1_differs_images=" ".join(r.get("top1_differs_images") or []),
                   differs=int(bool(r.get("differs"))),
                   bitwise_identical=int(bool(r.get("bitwise_identical"))))
        rows.append({c: ("" if row.get(c) is None else row.get(c)) for c in CROSS_COLUMNS})
    _write_csv(path, CROSS_COLUMNS, rows)
