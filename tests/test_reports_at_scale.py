"""The analysis and reports of synthetic campaign stores (issue #17): no build, seconds.

`test_report_of_2000_mutants_in_chromium` opens the report of 2000 synthetic mutants in
headless Chromium and reads the filtered, sorted mutants table back from the DOM.

`test_analysis_matches_the_snapshot` pins the analysis: ``tests/data/analysis_snapshot.json.gz``
is `analyse` of `snapshot_store` as the per-mutant code (before issue #17's vectorized
analysis) computed it, written by

    PYTHONPATH=. python -m tests.test_reports_at_scale --write-snapshot

Every field it holds must be equal, floats bit for bit, except Fisher's p-values: SciPy
computed them then, exact integer arithmetic now (`metrics.fisher_exact`), which rounds the
last digit otherwise (equal within 1e-12); fields added since (e.g. the ignore flag of issue
#14) are not in it and not compared.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mutatenn_passes.campaign.scoring.analysis import analyse
from mutatenn_passes.campaign.scoring.report import regenerate
from mutatenn_passes.campaign.scoring.report_rows import json_safe
from tests.conftest import load_bench, missing

fill_store = load_bench("synthetic_store").fill_store

SNAPSHOT = Path(__file__).parent / "data" / "analysis_snapshot.json.gz"

#: Diffs and sites as the planner writes them (from `synthetic.planned_examples` on the tiny
#: model), short: the analysis only records whether a mutant has a diff.
EXAMPLES = [
    {"operator": "relu_to_sigmoid", "level": "graph",
     "diff": "--- original/main\n+++ mutant/main\n@@ -9,1 +9,1 @@\n"
             "-            lv7 = R.nn.relu(lv6)\n+            lv7 = R.sigmoid(lv6)",
     "sites": [{"index": 0, "id": "main/lv7", "function": "main", "kind": "relax.nn.relu",
                "description": "relax.nn.relu call 1 of 2, bound to lv7 in main"}]},
    {"operator": "store_mul_epsilon", "level": "kernel",
     "diff": "--- original/add\n+++ mutant/add\n@@ -12,1 +12,1 @@\n"
             "-    T_add[v0] = a[v0] + b[v0]\n+    T_add[v0] = (a[v0] + b[v0]) * 1.5",
     "sites": [{"index": 0, "id": "add:0", "function": "add", "kind": "float32",
                "description": "store to T_add[v_ax0, v_ax1, v_ax2, v_ax3] (float32)"}]},
]
#: Graph and kernel operators of several categories.
SNAPSHOT_OPERATORS = ("relu_to_sigmoid", "add_to_subtract", "exp_before_conv2d_dense",
                      "weights_gaussian_fuzz", "store_mul_epsilon", "loop_extent_inc",
                      "cond_lt_to_le", "store_f32_to_f16")


def snapshot_store(folder: Path):
    """240 mutant tasks over 3 models x 3 targets, 9 images (more than numpy's 8-wide
    summation blocks), 20 classes, with image labels (the statistical kill's labelled path)."""
    from mutatenn_passes.registry import get_operator

    return fill_store(folder, 240, EXAMPLES, seed=7, images=9, classes=20,
                      operators=[get_operator(o) for o in SNAPSHOT_OPERATORS],
                      image_labels=True)


def comparable(result: dict) -> dict:
    """The analysis as results.json holds it, less what names the store's folder."""
    out = json.loads(json.dumps(json_safe(result), default=str))
    out["campaign"] = {k: v for k, v in out["campaign"].items()
                       if k not in ("config", "config_text")}
    return out


def _same(snapshot, now, where="result") -> list[str]:
    """Where ``now`` differs from ``snapshot`` (keys only in ``now`` are not compared)."""
    if isinstance(snapshot, dict) and isinstance(now, dict):
        return [d for k, v in snapshot.items()
                for d in (_same(v, now[k], f"{where}.{k}") if k in now
                          else [f"{where}.{k}: missing"])]
    if isinstance(snapshot, list) and isinstance(now, list):
        if len(snapshot) != len(now):
            return [f"{where}: {len(snapshot)} items then, {len(now)} now"]
        return [d for i, (a, b) in enumerate(zip(snapshot, now))
                for d in _same(a, b, f"{where}[{i}]")]
    if where.endswith(".p_value") and isinstance(snapshot, float) and isinstance(now, float):
        return [] if math.isclose(snapshot, now, rel_tol=1e-12, abs_tol=0) else \
            [f"{where}: {snapshot!r} then, {now!r} now"]
    return [] if snapshot == now and type(snapshot) is type(now) else \
        [f"{where}: {snapshot!r} then, {now!r} now"]


def test_analysis_matches_the_snapshot(tmp_path):
    store = snapshot_store(tmp_path)
    try:
        now = comparable(analyse(store))
    finally:
        store.close()
    snapshot = json.loads(gzip.decompress(SNAPSHOT.read_bytes()))
    # the store covers what the analysis distinguishes
    statuses = {m["status"] for m in snapshot["mutants"]}
    assert statuses >= {"ok", "equivalent", "not_applicable", "build_failed", "crashed",
                        "timeout"}, statuses
    assert any(m["killed"] for m in snapshot["mutants"])
    assert any(m["status"] == "ok" and not m["killed"] for m in snapshot["mutants"])
    assert any(m["duplicate_of"] for m in snapshot["mutants"])
    assert snapshot["cross_target"]["mutants"] and snapshot["cross_target"]["target_dependent"]
    assert {m["reference"] for m in snapshot["mutants"] if m.get("reference")} == \
        {"image labels"}
    differences = _same(snapshot, now)
    assert not differences, "\n".join(differences[:20])


def _dom(browser: str, page: Path, fragment: str, profile: Path) -> str:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", f"--user-data-dir={profile}", "--dump-dom",
                           page.as_uri() + fragment],
                          capture_output=True, text=True, timeout=120).stdout


def _mutants_table(dom: str) -> tuple[list[str], list[list[str]], dict]:
    """The mutants table in a dumped DOM: headers, each row's cells' data-v, the counts."""
    table = dom[dom.index('id="mutants"'):]
    count = re.search(r'class="dt-count" data-shown="(\d+)" data-total="(\d+)"', table)
    table = table[:table.index("</table>")]
    headers = re.findall(r'<th[^>]*data-col="([^"]*)"', table)
    rows = [re.findall(r'<td[^>]*data-v="([^"]*)"', row)
            for row in re.findall(r"<tr[^>]*data-key[^>]*>(.*?)</tr>", table, re.S)]
    return headers, rows, {"shown": int(count.group(1)), "total": int(count.group(2))}


def test_report_of_2000_mutants_in_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")
    if not browser:
        missing("no Chromium installed (apt-get install -y chromium)")
    fill_store(tmp_path, 2000, EXAMPLES, seed=3, classes=100).close()
    result = regenerate(tmp_path)
    page = tmp_path / "report.html"
    html = page.read_text(encoding="utf-8")
    # the page does not carry the mutants: their rows are in the data file beside it
    assert page.stat().st_size < 500_000 < (tmp_path / "report_files/report-data.js").stat().st_size
    mutants = result["mutants"]
    op, target = mutants[0]["operator"], mutants[0]["target"]
    killed = [m for m in mutants if m["operator"] == op and m["killed"]]
    assert 0 < len(killed) < 100
    # filtered by the address, sorted, counted
    headers, rows, count = _mutants_table(_dom(
        browser, page, f"#operator={op}&killed=1&sort=top1_disagreement:desc",
        tmp_path / "profile"))
    assert count == {"shown": len(killed), "total": 2000}
    assert len(rows) == len(killed) and all(len(r) == len(headers) == 18 for r in rows)
    col = headers.index
    assert {r[col("operator")] for r in rows} == {op} and {r[col("killed")] for r in rows} == {"1"}
    shown = [float(r[col("top1_disagreement")]) for r in rows]
    assert shown == sorted(shown, reverse=True)
    assert sorted(shown) == sorted(round(m["metrics"]["top1_disagreement"], 6) for m in killed)
    # a heatmap cell links to its operator's killed mutants on its target
    link = f"#operator={op}&amp;target={target}&amp;killed=1"
    assert f"href='{link}'" in html
    _, rows, count = _mutants_table(_dom(browser, page, link.replace("&amp;", "&"),
                                         tmp_path / "profile"))
    assert count["shown"] == sum(1 for m in killed if m["target"] == target) == len(rows)
    # pages of 100 rows: the second page of the survivors
    survived = [m for m in mutants if m["status"] == "ok" and not m["killed"]]
    assert len(survived) > 200
    headers, rows, count = _mutants_table(_dom(browser, page, "#status=ok&killed=0&page=2",
                                               tmp_path / "profile"))
    assert count["shown"] == len(survived) and len(rows) == 100
    assert [r[headers.index("status")] for r in rows] == ["ok"] * 100


if __name__ == "__main__" and sys.argv[1:] == ["--write-snapshot"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = snapshot_store(Path(tmp))
        result = comparable(analyse(store))
        store.close()
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_bytes(gzip.compress(json.dumps(result, sort_keys=True).encode(), mtime=0))
    print(f"wrote {SNAPSHOT} ({SNAPSHOT.stat().st_size} bytes)")
