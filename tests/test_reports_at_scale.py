"""The analysis and reports of synthetic campaign stores (issue #17): no build, seconds.

`test_analysis_matches_the_snapshot` pins the analysis: ``tests/data/analysis_snapshot.json.gz``
is `analyse` of `snapshot_store` as the per-mutant code (before issue #17's vectorized
analysis) computed it, written by

    PYTHONPATH=. python -m tests.test_reports_at_scale --write-snapshot

Every field it holds must be equal, floats bit for bit; fields added since (e.g. the ignore
flag of issue #14) are not in it and not compared.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from mutatenn_passes.campaign.analysis import analyse
from mutatenn_passes.campaign.report import _json_safe
from mutatenn_passes.campaign.synthetic import fill_store

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
    out = json.loads(json.dumps(_json_safe(result), default=str))
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


if __name__ == "__main__" and sys.argv[1:] == ["--write-snapshot"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = snapshot_store(Path(tmp))
        result = comparable(analyse(store))
        store.close()
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_bytes(gzip.compress(json.dumps(result, sort_keys=True).encode(), mtime=0))
    print(f"wrote {SNAPSHOT} ({SNAPSHOT.stat().st_size} bytes)")
