"""A campaign with ``use = ["all"]`` on the quantized MobileNet fixture, one sampled site per
operator and one image: every category of the catalogue, old and new, is built, run and
reported end to end."""

from __future__ import annotations

import json

import mutatenn_passes as mn
from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.engine import execute_campaign
from mutatenn_passes.campaign.running.progress import CampaignUI


def test_all_operators_campaign_on_the_fixture(shared_fixtures, tmp_path):
    path = tmp_path / "campaign.toml"
    path.write_text(f"""[campaign]
name = "all-operators"
output = "out"
workers = 2
timeout = 120
targets = ["llvm-x86-64"]

[[models]]
path = "{shared_fixtures / 'mobilenet_v1_0.25_128_quant.tflite'}"
labels = "{shared_fixtures / 'imagenet_labels.txt'}"

[images]
paths = ["{shared_fixtures / 'cat.bmp'}"]

[operators]
use = ["all"]
sample = 1
""")
    outcome = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))
    mutants = outcome["analysis"]["mutants"]
    assert {m["operator"] for m in mutants} == {s.id for s in mn.operators()}
    assert outcome["analysis"]["originals"][0]["images"][0]["classes"][0] == 283  # tiger cat
    [ref] = outcome["analysis"]["reference"]  # the original held against LiteRT
    assert ref["runtime"].startswith("LiteRT") and ref["agree"], ref["verdict"]
    assert ref["unit"] == "quantization steps" and ref["max_abs_diff"] <= 6

    # every category has at least one mutant that was built and run
    ran = {m["category"] for m in mutants if m["status"] == "ok"}
    assert ran == set(mn.CATEGORIES), set(mn.CATEGORIES) - ran
    broken = [(m["operator"], m["status"], (m["error"] or "")[:200]) for m in mutants
              if m["status"] not in ("ok", "equivalent", "not_applicable")]
    assert not broken

    # the seeded operators' parameters are recorded with the results
    weights = {m["operator"]: m for m in mutants if m["category"] == "Weights"}
    assert weights["weights_gaussian_fuzz"]["params"] == {"ratio": 0.1, "sigma": 1.0,
                                                          "seed": 0}
    flip = next(m for m in mutants if m["operator"] == "store_bit_flip")
    assert "bit" in flip["sites"][0]["description"]

    # and every category is in the reports
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    html = (tmp_path / "out" / "report.html").read_text()
    for category in mn.CATEGORIES:
        assert any(m["category"] == category for m in results["mutants"]), category
        assert category.replace("&", "&amp;") in html, category
