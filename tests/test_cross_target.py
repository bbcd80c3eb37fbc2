"""Cross-target comparison (issue #6): real builds of a tiny model on three local CPU targets
and one RPC target on a loopback farm; the original and each mutant compared across them."""

from __future__ import annotations

import csv
import json
from itertools import combinations

import pytest

from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.engine import execute_campaign
from mutatenn_passes.campaign.running.progress import CampaignUI
from mutatenn_passes.campaign.scoring.report_rows import json_safe
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.remote.farm import LocalFarm

LOCAL = ["llvm-x86-64", "llvm-avx2", "c"]


def test_cross_target_comparison(tmp_path, monkeypatch):
    from mutatenn_passes.targets import get_profile

    for name in LOCAL:
        ok, why = get_profile(name).can_run()
        if not ok:
            pytest.skip(f"{name} cannot run here: {why}")
    path = tiny_campaign(tmp_path, workers=2, images=2,
                         operators='use = ["relu_to_sigmoid", "add_to_subtract", '
                                   '"loop_extent_inc"]\nsites = [0]')
    with LocalFarm(key="cross-test", servers=1) as farm:
        profile = farm.write_profile(tmp_path / "rpc-loop.toml", timeout_s=60, wait_s=2)
        targets = ", ".join(f'"{t}"' for t in [*LOCAL, str(profile)])
        path.write_text(path.read_text().replace('targets = ["llvm-x86-64"]',
                                                 f"targets = [{targets}]"))
        outcome = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))
    names = [*LOCAL, "rpc-loop"]
    out = tmp_path / "out"
    result = json.loads((out / "results.json").read_text())
    assert {(o["target"], o["status"]) for o in result["originals"]} == \
        {(t, "ok") for t in names}, result["originals"]
    cross = result["cross_target"]
    # results.json holds the analysis the run returned (non-finite numbers as null)
    assert cross == json.loads(json.dumps(json_safe(outcome["analysis"]["cross_target"]),
                                          default=str))
    assert sorted(cross["targets"]) == sorted(names)
    tol = cross["tolerance"]
    assert 0 < tol < 1e-3

    # the originals: every pair of targets compared; CPU targets agree on top-1
    want = {frozenset(p) for p in combinations(names, 2)}
    assert {frozenset((p["target_a"], p["target_b"])) for p in cross["originals"]} == want
    assert len(cross["originals"]) == len(want)
    for p in cross["originals"]:
        assert p["top1_disagreement"] == 0, p
        assert p["images"] == 2 and 0.99 <= p["rbo"] <= 1.0 + 1e-9
    rpc_vs_local = next(p for p in cross["originals"]
                        if {p["target_a"], p["target_b"]} == {"llvm-x86-64", "rpc-loop"})
    assert rpc_vs_local["bitwise_identical"] and rpc_vs_local["max_abs_diff"] == 0
    assert {frozenset((p["target_a"], p["target_b"])) for p in cross["pairwise"]} == want
    matrix = cross["matrices"][0]
    assert sorted(matrix["targets"]) == sorted(names)
    assert all(v == 0 for row in matrix["original"] for v in row)

    # each mutant across the targets where it ran
    assert len(cross["mutants"]) == 3
    for e in cross["mutants"]:
        assert set(e["statuses"]) == set(names)
        ok = [t for t, s in e["statuses"].items() if s == "ok"]
        assert {frozenset((p["target_a"], p["target_b"])) for p in e["pairs"]} == \
            {frozenset(p) for p in combinations(ok, 2)}
        for p in e["pairs"]:
            assert p["reason"] == "+".join(
                (["top-1"] if p["top1_disagreement"] > 0 else [])
                + (["output"] if not p["bitwise_identical"] and
                   (p["max_abs_diff"] is None or p["max_abs_diff"] > tol) else []))

    # discrepancies: only the differing pairs, unmutated first
    every = [("original", p) for p in cross["originals"]] + \
        [("mutant", p) for e in cross["mutants"] for p in e["pairs"]]
    differing = [p for _, p in every if p["differs"]]
    assert len(cross["discrepancies"]) == len(differing)
    kinds = [d["kind"] for d in cross["discrepancies"]]
    assert kinds == sorted(kinds, key=lambda k: k != "original")
    for d in cross["discrepancies"]:
        assert d["top1_disagreement"] > 0 or d["max_abs_diff"] is None \
            or d["max_abs_diff"] > tol, d
    assert cross["original_discrepancies"] == sum(1 for k in kinds if k == "original")

    # cross_target.csv: every pair, the differing ones marked
    rows = list(csv.DictReader(open(out / "cross_target.csv", encoding="utf-8")))
    assert len(rows) == len(every)
    assert sum(int(r["differs"]) for r in rows) == len(differing)
    assert [r["kind"] for r in rows][:len(want)] == ["original"] * len(want)

    # report.html: the section, a heatmap per model, both discrepancy lists; offline
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "id='cross-target'" in page and "cross-hm" in page
    assert "Unmutated models: discrepancies" in page and "Mutants: discrepancies" in page
    assert page.index("Unmutated models: discrepancies") < page.index("Mutants: discrepancies")
    for t in names:
        assert f"<th>{t}</th>" in page
    for ref in ("src='http", 'src="http', "<link", "@import"):
        assert ref not in page

    # with a zero tolerance (bit-exact), the list holds exactly the pairs that are not
    # bit-identical (llvm-avx2 contracts to FMA: ~1e-8 differences), originals first
    from mutatenn_passes.campaign.scoring import cross_target
    from mutatenn_passes.campaign.scoring.report import regenerate

    monkeypatch.setattr(cross_target, "CROSS_TOLERANCE", 0.0)
    strict = regenerate(out)["cross_target"]
    assert strict["tolerance"] == 0.0
    every = [p for p in strict["originals"]] + [p for e in strict["mutants"] for p in e["pairs"]]
    not_identical = [p for p in every if not p["bitwise_identical"]]
    assert len(strict["discrepancies"]) == len(not_identical)
    assert all(not d["bitwise_identical"] for d in strict["discrepancies"])
    orig = [d for d in strict["discrepancies"] if d["kind"] == "original"]
    assert strict["original_discrepancies"] == len(orig)
    assert [d["kind"] for d in strict["discrepancies"]][:len(orig)] == ["original"] * len(orig)
    for d in orig:
        assert "output" in d["reason"] and d["top1_disagreement"] == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    if orig:
        assert "id='cross-originals'" in page
        assert page.index("id='cross-originals'") < page.index("Mutants: discrepancies")
