"""Campaign results do not depend on how cheaply mutants are built: the quantized MobileNet
fixture's campaign (the paper's operators, graph and kernel level, scheduled kernels) gives the same status and the same top-1 class per image for every
mutant as built by default (lowering caches, incremental builds, kernel mutants in schemata)
as with ``MUTATENN_LOWERING_CACHE=0`` and ``incremental = false``: a full TVM build per mutant
in which every call is legalized and every kernel scheduled afresh, as before any of those
existed. Loop and condition mutants may read or leave memory
they should not (docs/campaign.md, nondeterministic mutants): for them only the status is
compared."""

from __future__ import annotations

from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.engine import execute_campaign
from mutatenn_passes.campaign.running.progress import CampaignUI
from mutatenn_passes.schedule.pipeline import CACHE_ENV

NONDETERMINISTIC = ("loop_", "cond_")


def _run(fixtures, folder, incremental: bool):
    folder.mkdir()
    path = folder / "campaign.toml"
    path.write_text(f"""[campaign]
name = "caches"
output = "out"
incremental = {str(incremental).lower()}
targets = ["llvm-x86-64"]

[[models]]
path = "{fixtures / 'mobilenet_v1_0.25_128_quant.tflite'}"

[images]
paths = ["{fixtures / 'cat.bmp'}", "{fixtures / 'parrot.jpg'}"]

[operators]
use = ["paper"]
sample = 1
""")
    analysis = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))["analysis"]
    return {m["key"]: (m["status"], [] if m["operator"].startswith(NONDETERMINISTIC) else
                       [im["classes"][0] for im in m["images"]])
            for m in analysis["mutants"]}, analysis


def test_mutant_results_are_the_same_as_full_builds_without_caches(
        shared_fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "0")  # read by the workers, fresh processes
    reference, _ = _run(shared_fixtures, tmp_path / "full", incremental=False)
    monkeypatch.delenv(CACHE_ENV)
    fast, analysis = _run(shared_fixtures, tmp_path / "default", incremental=True)
    assert fast == reference
    built = [m for m in analysis["mutants"] if m["status"] == "ok"]
    assert {m["level"] for m in built} == {"graph", "kernel"}
    assert all(m["images"] for m in built)
    modes = {m["build_mode"].split(" ")[0] for m in built}
    assert "schema" in modes
