"""Reports, all regenerated from the database: results.json, mutants.csv, summary.csv and a
self-contained offline report.html (inline CSS, SVG and a little JavaScript; no network)."""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path

from .analysis import analyse
from .store import Store

MUTANT_COLUMNS = ("key", "model", "target", "operator", "level", "category", "phase", "mode",
                  "site_indices", "sites", "status", "killed", "stat_killed", "p_value",
                  "top1_disagreement", "top5_overlap", "rbo", "kendall_tau", "max_abs_diff",
                  "mean_abs_diff", "degenerate", "duplicate_of", "stage", "exit_code",
                  "signal", "build_s", "load_s", "run_s", "build_mode", "ir_hash", "error",
                  "note")
CROSS_COLUMNS = ("kind", "model", "operator", "site_indices", "key", "target_a", "target_b",
                 "differs", "reason", "images", "top1_disagreement", "rbo", "kendall_tau",
                 "max_abs_diff", "mean_abs_diff", "bitwise_identical",
                 "top1_differs_images")
SUMMARY_COLUMNS = ("group_by", "group", "mutants", "ok", "not_applicable", "equivalent",
                   "build_failed", "crashed", "timeout", "cannot_run_here", "device_lost",
                   "killed", "survived", "stat_killed", "denominator", "mutation_score",
                   "score_with_failures", "mean_top1_disagreement", "mean_rbo")


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def mutant_csv_row(r: dict) -> dict:
    m = r.get("metrics") or {}
    row = {c: r.get(c, "") for c in MUTANT_COLUMNS}
    for c in ("top1_disagreement", "top5_overlap", "rbo", "kendall_tau", "max_abs_diff",
              "mean_abs_diff", "degenerate"):
        row[c] = m.get(c, "")
    row["site_indices"] = " ".join(map(str, r["site_indices"]))
    row["sites"] = " | ".join(s.get("description", "") for s in r["sites"])[:500]
    row["error"] = (r.get("error") or "").splitlines()[0][:300] if r.get("error") else ""
    for c in ("killed", "stat_killed", "degenerate"):
        if isinstance(row[c], bool):
            row[c] = int(row[c])
    for c, v in list(row.items()):
        if v is None:
            row[c] = ""
    return row


def write_reports(result: dict, store: Store, folder: str | Path) -> None:
    """Write every report file of the analysis ``result`` of ``store``'s campaign."""
    folder = Path(folder)
    (folder / "results.json").write_text(json.dumps(_json_safe(result), indent=1,
                                                    default=str))
    with open(folder / "mutants.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=MUTANT_COLUMNS)
        w.writeheader()
        for r in result["mutants"]:
            w.writerow(mutant_csv_row(r))
    with open(folder / "summary.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        w.writeheader()
        w.writerow({"group_by": "overall", "group": "all",
                    **_blank(result["summary"]["overall"])})
        for group_by in ("operator", "category", "model", "target"):
            for name, s in result["summary"][group_by].items():
                w.writerow({"group_by": group_by, "group": name, **_blank(s)})
    write_cross_target_csv(result["cross_target"], folder / "cross_target.csv")
    diffs = {t["key"]: t["diff"] for t in store.tasks(store.meta().get("plan", []))
             if t["kind"] == "mutant" and t["diff"]}
    (folder / "report.html").write_text(render_html(result, diffs), encoding="utf-8")


def cross_target_rows(cross: dict) -> list[dict]:
    """Every cross-target pair, originals first then mutants (``differs`` marks the
    discrepancies)."""
    rows = []
    for p in cross["originals"]:
        rows.append({"kind": "original", "operator": "", "site_indices": [], "key": "", **p})
    for e in cross["mutants"]:
        for p in e["pairs"]:
            rows.append({"kind": "mutant", "model": e["model"], "operator": e["operator"],
                         "site_indices": e["site_indices"],
                         "key": e["keys"].get(p["target_a"], ""), **p})
    return rows


def write_cross_target_csv(cross: dict, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CROSS_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in cross_target_rows(cross):
            row = dict(r)
            row["site_indices"] = " ".join(map(str, r["site_indices"]))
            row["top1_differs_images"] = " ".join(r.get("top1_differs_images") or [])
            for c in ("differs", "bitwise_identical"):
                row[c] = int(bool(r.get(c)))
            w.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in CROSS_COLUMNS})


def _blank(s: dict) -> dict:
    return {k: ("" if v is None else v) for k, v in s.items() if k in SUMMARY_COLUMNS}


# --- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1500px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px}
th{background:#f3f3f3;position:sticky;top:0}th.sortable{cursor:pointer;user-select:none}
th.sortable:after{content:" \\2195";color:#999}th.asc:after{content:" \\2191"}
th.desc:after{content:" \\2193"}
.num{text-align:right;font-variant-numeric:tabular-nums}
.st-ok{color:#176}.st-crashed,.st-timeout,.st-build_failed{color:#b00;font-weight:600}
.st-equivalent,.st-not_applicable{color:#888}.st-cannot_run_here,.st-device_lost{color:#a60}
.killed{background:#fde8e8}.hm td{width:90px;height:26px;text-align:center}
pre.diff{background:#fafafa;border:1px solid #ddd;padding:6px;overflow:auto;max-height:480px;
font-size:11px}.add{color:#070;background:#efe}.del{color:#a00;background:#fee}
.hunk{color:#55a}.muted{color:#777}details{margin:4px 0}code{font-size:12px}
.cards span{display:inline-block;border:1px solid #ddd;border-radius:4px;padding:4px 10px;
margin:2px}
"""

_JS = """
function cellValue(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
var n=parseFloat(v);return (v!==''&&!isNaN(n)&&isFinite(v))?n:v.toLowerCase();}
function sortTable(table,col,dir){var tb=table.tBodies[0];var rows=Array.from(tb.rows);
rows.sort(function(a,b){var x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
var tx=typeof x,ty=typeof y;if(tx!==ty){return (tx==='number'?-1:1)*dir;}
return (x<y?-1:x>y?1:0)*dir;});rows.forEach(function(r){tb.appendChild(r);});
Array.from(table.tHead.rows[0].cells).forEach(function(th,i){th.classList.remove('asc','desc');
if(i===col)th.classList.add(dir>0?'asc':'desc');});table.setAttribute('data-sorted',
table.tHead.rows[0].cells[col].getAttribute('data-col')+':'+(dir>0?'asc':'desc'));}
function makeSortable(table){Array.from(table.tHead.rows[0].cells).forEach(function(th,i){
th.classList.add('sortable');th.addEventListener('click',function(){
var dir=th.classList.contains('asc')?-1:1;sortTable(table,i,dir);});});}
function openDiff(){var h=location.hash;if(h.indexOf('#diff-')===0){var d=document.getElementById(h.slice(1));
if(d){d.open=true;d.scrollIntoView();}}}
document.addEventListener('DOMContentLoaded',function(){
document.querySelectorAll('table.sortable').forEach(makeSortable);
var m=/sort=([A-Za-z0-9_]+)(?::(asc|desc))?/.exec(location.hash);
if(m){var t=document.getElementById('mutants');var ths=Array.from(t.tHead.rows[0].cells);
ths.forEach(function(th,i){if(th.getAttribute('data-col')===m[1])sortTable(t,i,m[2]==='desc'?-1:1);});}
openDiff();window.addEventListener('hashchange',openDiff);});
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


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
    v = max(0.0, min(1.0, v))
    g = int(255 - 175 * v)
    return f"rgb(255,{g},{g})"


def _heatmap(result) -> str:
    rows = result["mutants"]
    targets = sorted({r["target"] for r in rows})
    ops = list(dict.fromkeys(r["operator"] for r in rows))
    cells = {}
    for r in rows:
        cells.setdefault((r["operator"], r["target"]), []).append(r)
    out = ["<table class='hm'><thead><tr><th>operator \\ target</th>"]
    out += [f"<th>{_e(t)}</th>" for t in targets]
    out.append("</tr></thead><tbody>")
    for op in ops:
        out.append(f"<tr><th style='text-align:left'>{_e(op)}</th>")
        for t in targets:
            members = cells.get((op, t), [])
            vals = [m["metrics"]["top1_disagreement"] for m in members if m.get("metrics")]
            if vals:
                v = sum(vals) / len(vals)
                out.append(f"<td style='background:{_color(v)}' data-v='{v:.4f}' "
                           f"title='{len(vals)} mutant(s) compared'>{v:.2f}</td>")
            else:
                statuses = sorted({m["status"] for m in members})
                out.append(f"<td class='muted' title='no outputs to compare'>"
                           f"{_e(', '.join(statuses)) or '—'}</td>")
        out.append("</tr>")
    out.append("</tbody></table><p class='muted'>Cell: mean top-1 disagreement with the "
               "original on the same target, over the mutants of that operator that ran "
               "(0 = same top-1 on every image, 1 = different on every image).</p>")
    return "".join(out)


def _bars(result) -> str:
    cats = result["summary"]["category"]
    if not cats:
        return "<p class='muted'>no mutants</p>"
    width, bar_h, label_w = 760, 22, 260
    h = bar_h * len(cats) + 30
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{h}' "
             f"role='img' aria-label='mutation score per category'>"]
    scale = width - label_w - 120
    for i, (cat, s) in enumerate(cats.items()):
        y = 10 + i * bar_h
        score = s["mutation_score"]
        w = 0 if score is None else score * scale
        parts.append(f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end' "
                     f"font-size='12'>{_e(cat)}</text>")
        parts.append(f"<rect x='{label_w}' y='{y + 3}' width='{scale}' height='{bar_h - 6}' "
                     f"fill='#eee'/>")
        parts.append(f"<rect class='bar' data-category='{_e(cat)}' x='{label_w}' y='{y + 3}' "
                     f"width='{w:.1f}' height='{bar_h - 6}' fill='#c33'/>")
        text = "n/a" if score is None else f"{score:.2f} ({s['killed']}/{s['denominator']})"
        parts.append(f"<text x='{label_w + scale + 6}' y='{y + 15}' font-size='12'>"
                     f"{_e(text)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _summary_table(result) -> str:
    cols = ("mutants", "ok", "killed", "survived", "equivalent", "not_applicable",
            "build_failed", "crashed", "timeout", "cannot_run_here", "mutation_score",
            "score_with_failures", "stat_killed", "mean_top1_disagreement")
    out = ["<table class='sortable'><thead><tr><th data-col='by'>by</th>"
           "<th data-col='group'>group</th>"]
    out += [f"<th data-col='{c}'>{c.replace('_', ' ')}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    groups = [("overall", "all", result["summary"]["overall"])]
    for by in ("category", "operator", "model", "target"):
        groups += [(by, k, v) for k, v in result["summary"][by].items()]
    for by, name, s in groups:
        out.append(f"<tr><td>{_e(by)}</td><td>{_e(name)}</td>")
        out += [f"<td class='num' data-v='{'' if s.get(c) is None else s.get(c)}'>"
                f"{_fmt(s.get(c))}</td>" for c in cols]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _mutants_table(result, diffs) -> str:
    cols = [("operator", "operator"), ("category", "category"), ("model", "model"),
            ("target", "target"), ("sites", "sites"), ("status", "status"),
            ("killed", "killed"), ("top1_disagreement", "top-1 disagr."),
            ("top5_overlap", "top-5 overlap"), ("rbo", "RBO"), ("kendall_tau", "Kendall τ"),
            ("max_abs_diff", "max |Δ|"), ("mean_abs_diff", "mean |Δ|"),
            ("degenerate", "degenerate"), ("p_value", "Fisher p"),
            ("build_s", "build s"), ("run_s", "run s"), ("detail", "detail")]
    out = ["<table id='mutants' class='sortable'><thead><tr>"]
    out += [f"<th data-col='{c}'>{_e(label)}</th>" for c, label in cols]
    out.append("</tr></thead><tbody>")
    for r in result["mutants"]:
        m = r.get("metrics") or {}
        vals = {**r, **{k: m.get(k) for k in ("top1_disagreement", "top5_overlap", "rbo",
                                              "kendall_tau", "max_abs_diff",
                                              "mean_abs_diff", "degenerate")}}
        cls = " class='killed'" if r.get("killed") else ""
        out.append(f"<tr{cls} data-key='{_e(r['key'])}'>")
        for c, _ in cols:
            if c == "sites":
                desc = "; ".join(s.get("description", "") for s in r["sites"])
                idx = ",".join(map(str, r["site_indices"]))
                out.append(f"<td title='{_e(desc)}' data-v='{_e(idx)}'>{_e(idx) or '—'}"
                           f"<span class='muted'> / {r['sites_found']}</span></td>")
            elif c == "status":
                extra = f" ({r['signal'] or r['exit_code']})" if r["status"] == "crashed" \
                    else ""
                out.append(f"<td class='st-{_e(r['status'])}' title='{_e(r['error'][:400])}'>"
                           f"{_e(r['status'] + extra)}"
                           f"{' <span class=muted>dup</span>' if r['duplicate_of'] else ''}"
                           "</td>")
            elif c == "detail":
                link = f"<a href='#diff-{_e(r['key'])}'>IR diff</a>" if r["key"] in diffs \
                    else "<span class='muted'>—</span>"
                out.append(f"<td>{link}</td>")
            else:
                v = vals.get(c)
                num = isinstance(v, (int, float)) and not isinstance(v, bool)
                dv = "" if v is None else (int(v) if isinstance(v, bool) else v)
                out.append(f"<td class='{'num' if num else ''}' data-v='{_e(dv)}'>"
                           f"{_e(_fmt(v))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _diff_html(text: str) -> str:
    out = []
    for line in text.splitlines():
        cls = "add" if line.startswith("+") and not line.startswith("+++") else \
            "del" if line.startswith("-") and not line.startswith("---") else \
            "hunk" if line.startswith("@@") else ""
        out.append(f"<span class='{cls}'>{_e(line)}</span>" if cls else _e(line))
    return "\n".join(out)


def _diffs(result, diffs) -> str:
    out = []
    for r in result["mutants"]:
        text = diffs.get(r["key"])
        if not text:
            continue
        sites = "; ".join(s.get("description", "") for s in r["sites"])
        out.append(f"<details id='diff-{_e(r['key'])}'><summary><code>{_e(r['operator'])}"
                   f"</code> sites {_e(','.join(map(str, r['site_indices'])))} on "
                   f"{_e(r['model'])}@{_e(r['target'])} — {_e(r['status'])}"
                   f"<span class='muted'> {_e(sites[:200])}</span></summary>"
                   f"<pre class='diff'>{_diff_html(text)}</pre></details>")
    return "".join(out) or "<p class='muted'>no IR diffs (no mutant changed the IR)</p>"


def _originals(result) -> str:
    out = ["<table><thead><tr><th>model</th><th>target</th><th>status</th><th>build s</th>"
           "<th>top-1 per image</th><th>accuracy vs labels</th></tr></thead><tbody>"]
    for o in result["originals"]:
        top1 = ", ".join(f"{i['image']}: {i['classes'][0]}" for i in o["images"])
        out.append(f"<tr><td>{_e(o['model'])}</td><td>{_e(o['target'])}</td>"
                   f"<td class='st-{_e(o['status'])}' title='{_e(o['error'][:400])}'>"
                   f"{_e(o['status'])}</td><td class='num'>{_fmt(o['build_s'])}</td>"
                   f"<td>{_e(top1)}</td><td class='num'>{_fmt(o['accuracy'])}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _cross_heatmap(matrix: dict) -> str:
    targets = matrix["targets"]
    out = [f"<table class='hm cross-hm' data-model='{_e(matrix['model'])}'><thead><tr>"
           f"<th>{_e(matrix['model'])}: A \\ B</th>"]
    out += [f"<th>{_e(t)}</th>" for t in targets]
    out.append("</tr></thead><tbody>")
    for i, ta in enumerate(targets):
        out.append(f"<tr><th style='text-align:left'>{_e(ta)}</th>")
        for j, tb in enumerate(targets):
            v = matrix["original"][i][j]
            mv = matrix["mutants_mean"][i][j]
            if i == j:
                out.append("<td class='muted'>—</td>")
            elif v is None:
                out.append("<td class='muted' title='original not compared (no outputs on "
                           "one of the targets)'>n/a</td>")
            else:
                sub = "" if mv is None else f"<br><span class='muted'>mutants {mv:.2f}</span>"
                out.append(f"<td style='background:{_color(v)}' data-v='{v:.4f}' "
                           f"title='{_e(ta)} vs {_e(tb)}'>{v:.2f}{sub}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _pair_table(rows, mutant: bool, table_id: str) -> str:
    cols = ([("operator", "operator"), ("sites", "sites")] if mutant else []) + [
        ("model", "model"), ("target_a", "target A"), ("target_b", "target B"),
        ("reason", "differs in"), ("top1_disagreement", "top-1 disagr."), ("rbo", "RBO"),
        ("kendall_tau", "Kendall τ"), ("max_abs_diff", "max |Δ|"),
        ("mean_abs_diff", "mean |Δ|"), ("top1_differs_images", "images with other top-1")]
    out = [f"<table id='{table_id}' class='sortable'><thead><tr>"]
    out += [f"<th data-col='{c}'>{_e(label)}</th>" for c, label in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append(f"<tr data-kind='{_e(r['kind'])}'>")
        for c, _ in cols:
            if c == "sites":
                v = ",".join(map(str, r["site_indices"]))
                out.append(f"<td>{_e(v)}</td>")
            elif c == "top1_differs_images":
                out.append(f"<td>{_e(', '.join(r.get(c) or []))}</td>")
            elif c == "operator" and r.get("key"):
                out.append(f"<td><a href='#diff-{_e(r['key'])}'>{_e(r['operator'])}</a></td>")
            else:
                v = r.get(c)
                num = isinstance(v, (int, float)) and not isinstance(v, bool)
                out.append(f"<td class='{'num' if num else ''}' "
                           f"data-v='{_e('' if v is None else v)}'>{_e(_fmt(v))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _cross_target_section(result) -> str:
    cross = result["cross_target"]
    if len(cross.get("targets", [])) < 2:
        return ("<p class='muted'>One target only: run the campaign with several targets to "
                "compare them.</p>")
    tol = cross["tolerance"]
    out = ["<p class='muted'>The same program on two targets: the unmutated model on A vs on "
           "B, and each mutant on A vs the same mutant on B (the paper's device evaluation). "
           "Top-1 disagreement = share of images with another top-1 class; RBO (p = 0.9) and "
           "Kendall's τ of the top-5 rankings. A pair <i>differs</i> when some image's top-1 "
           f"differs or the outputs' max |Δ| exceeds {tol:g} (absolute).</p>"]
    out.append("<h3>Top-1 disagreement, targets × targets</h3><div class='cards'>")
    for m in cross["matrices"]:
        out.append(f"<div style='display:inline-block;margin:0 1em 1em 0;vertical-align:top'>"
                   f"{_cross_heatmap(m)}</div>")
    out.append("</div><p class='muted'>Cell: the original's top-1 disagreement between the "
               "row's and the column's target; below it, the mean over the mutants compared "
               "on both.</p>")
    out.append("<h3>Pairwise summary</h3><table class='sortable'><thead><tr><th>model</th>"
               "<th>target A</th><th>target B</th><th>original top-1 disagr.</th>"
               "<th>original RBO</th><th>original τ</th><th>original max |Δ|</th>"
               "<th>mutants compared</th><th>mutants differing</th>"
               "<th>mean top-1 disagr.</th><th>mean RBO</th><th>mean τ</th></tr></thead>"
               "<tbody>")
    for p in cross["pairwise"]:
        vals = (p["original_top1_disagreement"], p["original_rbo"],
                p["original_kendall_tau"], p["original_max_abs_diff"],
                p["mutants_compared"], p["mutants_differing"], p["mean_top1_disagreement"],
                p["mean_rbo"], p["mean_kendall_tau"])
        out.append(f"<tr><td>{_e(p['model'])}</td><td>{_e(p['target_a'])}</td>"
                   f"<td>{_e(p['target_b'])}</td>"
                   + "".join(f"<td class='num' data-v='{_e('' if v is None else v)}'>"
                             f"{_e(_fmt(v))}</td>" for v in vals) + "</tr>")
    out.append("</tbody></table>")
    orig = [d for d in cross["discrepancies"] if d["kind"] == "original"]
    mut = [d for d in cross["discrepancies"] if d["kind"] == "mutant"]
    out.append(f"<h3>Unmutated models: discrepancies ({len(orig)})</h3>")
    out.append("<p class='muted'>A difference here is a compiler or numerics discrepancy "
               "between the targets, before any mutation.</p>")
    out.append(_pair_table(orig, False, "cross-originals") if orig else
               "<p>none: the original gives the same outputs (within the tolerance) on "
               "every pair of targets compared.</p>")
    out.append(f"<h3>Mutants: discrepancies ({len(mut)})</h3>")
    out.append(_pair_table(mut, True, "cross-mutants") if mut else
               "<p>none: every mutant compared gives the same outputs on every pair of "
               "targets.</p>")
    dep = [m for m in cross["mutants"] if m["target_dependent"]]
    out.append(f"<p>{len(dep)} of {len(cross['mutants'])} mutants built for several targets "
               "have a target-dependent status or kill.</p>")
    if dep:
        out.append("<table><thead><tr><th>operator</th><th>sites</th><th>status per target"
                   "</th><th>killed per target</th></tr></thead><tbody>")
        for m in dep:
            out.append(f"<tr><td>{_e(m['operator'])}</td>"
                       f"<td>{_e(','.join(map(str, m['site_indices'])))}</td>"
                       f"<td>{_e(', '.join(f'{k}: {v}' for k, v in m['statuses'].items()))}"
                       f"</td><td>{_e(', '.join(f'{k}: {v}' for k, v in m['killed'].items()))}"
                       "</td></tr>")
        out.append("</tbody></table>")
    return "".join(out)


def render_html(result: dict, diffs: dict) -> str:
    c = result["campaign"]
    overall = result["summary"]["overall"]
    score = overall["mutation_score"]
    versions = ", ".join(f"{k} {v}" for k, v in c["versions"].items() if v)
    seconds = c.get("seconds") or {}
    cards = [("mutants", overall["mutants"]), ("killed", overall["killed"]),
             ("survived", overall["survived"]), ("equivalent", overall["equivalent"]),
             ("not applicable", overall["not_applicable"]),
             ("failures", overall["build_failed"] + overall["crashed"] + overall["timeout"]),
             ("mutation score", "n/a" if score is None else f"{score:.3f}"),
             ("wall time", f"{seconds['total_wall']:.0f} s" if seconds.get("total_wall")
              else "—")]
    sampling = "; ".join(f"{k}: {v['mode']} sites={v['sites']}"
                         + (f" sample={v['sample']} (seed {v['seed']})" if v.get("sample")
                            else "")
                         for k, v in c["sampling"].items())
    body = [
        f"<h1>mutatenn campaign “{_e(c['name'])}”</h1>",
        f"<p class='muted'>{_e(versions)} · seed {_e(c['seed'])} · state {_e(c['state'])} · "
        f"reference labelling: {_e(c['reference'])}</p>",
        "<div class='cards'>" + "".join(f"<span><b>{_e(v)}</b> {_e(k)}</span>"
                                         for k, v in cards) + "</div>",
        "<h2>Top-1 disagreement: operators × targets</h2>", _heatmap(result),
        "<h2>Mutation score per category</h2>", _bars(result),
        "<p class='muted'>Mutation score = killed / (mutants − equivalent − not applicable − "
        "not assessed here); killed = some image's top-1 differs from the original's.</p>",
        "<h2>Summary</h2>", _summary_table(result),
        "<h2>Mutants</h2><p class='muted'>Click a column header to sort.</p>",
        _mutants_table(result, diffs),
        "<h2>Originals</h2>", _originals(result),
        "<h2 id='cross-target'>Cross-target comparison</h2>", _cross_target_section(result),
        "<h2>IR diffs (mutated functions only)</h2>", _diffs(result, diffs),
        "<h2>Campaign</h2>",
        f"<p>Models: {_e(', '.join(m['name'] for m in c['models']))}; images: "
        f"{_e(', '.join(i['name'] for i in c['images']))}; targets: "
        f"{_e(', '.join(t['name'] for t in c['targets']))}.</p>",
        f"<p class='muted'>Site selection: {_e(sampling)}</p>",
        f"<details><summary>campaign file ({_e(c['config'].get('source'))})</summary>"
        f"<pre class='diff'>{_e(c['config_text'])}</pre></details>",
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>mutatenn campaign {_e(c['name'])}</title><style>{_CSS}</style>"
            f"<script>{_JS}</script></head><body>{''.join(body)}</body></html>")


def regenerate(folder: str | Path) -> dict:
    """`mutatenn report OUTDIR`: rebuild every report file from the database."""
    store = Store(folder, create=False)
    try:
        result = analyse(store)
        write_reports(result, store, folder)
        return result
    finally:
        store.close()
