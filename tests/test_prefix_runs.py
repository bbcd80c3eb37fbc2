"""Runs from the first changed cut (`prefix_runs`, the campaign's ``prefix_reuse``): a mutant
built to start at the first of the original's cuts where it differs, fed the original's
activations there, gives bit-identical outputs to the same mutant run whole — graph mutants
and kernel mutants, built alone and in a schema — and a campaign with ``prefix_reuse = true``
gives the same statuses and output vectors as one without, mutants reading memory they should
not (loop and condition mutants: their outputs depend on what lies there) aside."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.build import build_incremental, prepare_original
from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.engine import execute_campaign
from mutatenn_passes.campaign.running.progress import CampaignUI
from mutatenn_passes.errors import MutateNNError
from mutatenn_passes.images import preprocess
from mutatenn_passes.prefix_runs import cut_activations, run_from_cut
from mutatenn_passes.schemata import build_schema

GRAPH = [("relu_to_sigmoid", 30), ("relu_to_sigmoid", 4), ("add_to_subtract", 1),
         ("max_pool_to_avg_pool", 0)]
KERNEL = [("store_sub_epsilon", 30), ("store_f32_to_i16", 40), ("store_sub_epsilon", 0)]


@pytest.fixture(scope="module")
def original(default_model):
    return prepare_original(default_model, "llvm-x86-64")


def test_mutants_run_from_their_first_changed_cut_as_whole_runs(original, default_model,
                                                                default_images):
    batch = preprocess(default_images[:2], default_model.preprocess)
    activations = cut_activations(original, batch)
    assert len(activations) == original.segmented_lowering().segment_count - 1 >= 10
    assert all(a.shape[0] == 2 for a in activations)
    reference, _ = original.artifact.run_array(batch)
    mutants = [{"relax_passes": [mn.mutation(op, sites=[site])]} for op, site in GRAPH]
    mutants += [{"tir_passes": [mn.mutation(op, sites=[site])]} for op, site in KERNEL]
    kernel_mutants = mutants[len(GRAPH):]
    schema = build_schema(original, kernel_mutants, from_cut=True)
    variants = [None] * len(GRAPH) + schema.variants
    cuts = []
    for mutant, variant in zip(mutants, variants):
        whole, _ = build_incremental(original, **mutant).run_array(batch)
        assert not np.array_equal(whole, reference)
        for art in [build_incremental(original, **mutant, from_cut=True), variant]:
            if art is None:
                continue
            assert (f"from cut {art.cut}" in art.record.mode) == (art.cut > 0)
            got, _ = run_from_cut(art, batch, activations)
            assert np.array_equal(got, whole, equal_nan=True), (mutant, art.cut)
            cuts.append(art.cut)
            if art.cut:  # its program takes an activation: images are refused, clearly
                with pytest.raises(MutateNNError, match=f"starts at the original's cut {art.cut}"):
                    art.run(default_images[:1])
    assert max(cuts) >= 10 and 0 in cuts and len(set(cuts)) >= 3, cuts


#: Run in a fresh interpreter: a worker forks the child that computes the activations before
#: it has run any generated code (TVM's thread pool does not survive a fork), which the test
#: process, having run mutants above, no longer is.
CAPTURE = """
import sys
from pathlib import Path

import numpy as np

import mutatenn_passes as mn
from mutatenn_passes.build import prepare_original
from mutatenn_passes.campaign.running.activations import load_or_capture
from mutatenn_passes.images import preprocess
from mutatenn_passes.prefix_runs import cut_activations

model = mn.load_model()
original = prepare_original(model, "llvm-x86-64")
batch = preprocess(mn.default_images()[:1], model.preprocess)
root = Path(sys.argv[1])
kept = load_or_capture(original, batch, root / "activations")
(root / "a-file").write_text("")
assert load_or_capture(original, batch, root / "a-file" / "activations") is None
expected = cut_activations(original, batch)
assert len(kept) == len(expected) > 0
assert all(np.array_equal(a, b) for a, b in zip(kept, expected))
print("same")
"""


def test_a_campaign_keeps_the_activations_in_files_or_runs_from_the_images(tmp_path):
    """A worker's copy (computed in a forked child, read memory-mapped) equals the
    activations computed in process; a folder that cannot be written leaves the mutants to
    run from the images (None), and the worker goes on."""
    done = subprocess.run([sys.executable, "-c", CAPTURE, str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "same", done.stderr[-2000:]
    assert "activations at its cuts could not be computed ([Errno 20] Not a directory" \
        in done.stdout  # the worker's log says why its mutants run from the images


def test_an_original_that_cannot_be_cut_has_no_activations(default_model, default_images):
    naive = prepare_original(default_model, "llvm-x86-64-naive")
    assert cut_activations(naive, preprocess(default_images[:1],
                                             default_model.preprocess)) is None


def _campaign(folder, fixtures, prefix_reuse: bool) -> dict:
    folder.mkdir()
    path = folder / "campaign.toml"
    path.write_text(f"""[campaign]
output = "out"
prefix_reuse = {str(prefix_reuse).lower()}

[images]
paths = ["{fixtures / 'cat.bmp'}", "{fixtures / 'parrot.jpg'}"]

[operators]
use = ["paper"]
sample = 1
""")
    return execute_campaign(load_config(path), progress=CampaignUI(quiet=True))["analysis"]


def test_a_campaign_with_prefix_reuse_gives_the_same_results(shared_fixtures, tmp_path):
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("mutatenn-activations-*"))
    whole = _campaign(tmp_path / "whole", shared_fixtures, False)
    from_cuts = _campaign(tmp_path / "cuts", shared_fixtures, True)
    assert set(Path(tempfile.gettempdir()).glob("mutatenn-activations-*")) == before

    def results(analysis) -> dict:
        return {m["key"]: (m["status"], [im["digest"] for im in m["images"]])
                for m in analysis["mutants"]
                if not m["operator"].startswith(("loop_", "cond_"))}

    assert results(from_cuts) == results(whole)
    modes = [m["build_mode"] or "" for m in from_cuts["mutants"]]
    started = sum("from cut" in mode for mode in modes)
    assert started >= len(modes) // 3, modes
    assert not any("from cut" in (m["build_mode"] or "") for m in whole["mutants"])
