"""The reference runtime: the unmutated model in ONNX Runtime / LiteRT against TVM's build.

The default model against ONNX Runtime is in test_foundation.py, beside its build."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.cli import main
from mutatenn_passes.images import preprocess
from mutatenn_passes.reference import compare_outputs, run_reference

MOBILENET = "mobilenet_v1_0.25_128_quant.tflite"
FIXTURE_IMAGES = ["cat.bmp", "bird.bmp", "parrot.jpg", "grace_hopper.bmp"]


@pytest.fixture(autouse=True)
def log_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mobilenet(shared_fixtures):
    model = mn.load_model(shared_fixtures / MOBILENET)
    images = mn.load_images([shared_fixtures / f for f in FIXTURE_IMAGES])
    return model, images, preprocess(images, model.preprocess)


def test_mobilenet_tvm_vs_litert_cli(shared_fixtures, capfd):
    """TVM (llvm-x86-64) and LiteRT (XNNPACK) on the quantized MobileNet: top-1 agrees on all
    four photos; the uint8 outputs differ by at most 6 quantization steps (6, 3, 2, 2 measured
    with ai-edge-litert 2.3.0 on x86-64)."""
    args = ["predict", "--reference", "--json", "--model", str(shared_fixtures / MOBILENET),
            *[str(shared_fixtures / f) for f in FIXTURE_IMAGES]]
    assert main(args) == 0
    out, err = capfd.readouterr()
    assert "XNNPACK" not in out + err  # LiteRT's console chatter goes to the log
    lines = [json.loads(line) for line in out.splitlines()]
    images, summary = lines[:-1], lines[-1]["reference_summary"]
    assert [line["classes"][0] for line in images] == [283, 20, 89, 401]
    assert [line["reference"]["reference_classes"][0] for line in images] == [283, 20, 89, 401]
    assert all(line["reference"]["runtime"].startswith("LiteRT ") for line in images)
    steps = [line["reference"]["max_abs_diff"] for line in images]
    assert all(isinstance(s, int) and 0 < s <= 6 for s in steps), steps
    assert min(line["reference"]["top5_overlap"] for line in images) >= 4
    assert summary["unit"] == "quantization steps" and summary["agree"]
    assert summary["top1_agree"] == 4 and summary["max_abs_diff"] == max(steps)
    assert summary["verdict"].startswith("TVM agrees with LiteRT")


def test_a_disagreement_is_flagged(mobilenet):
    """TVM's rows shifted by one image: every top-1 differs, and the verdict says so."""
    model, images, batch = mobilenet
    ref = run_reference(model, batch)
    shifted = np.roll(ref.outputs, 1, axis=0)
    result = compare_outputs(shifted, ref, names=[i.name for i in images])
    summary = result["summary"]
    assert not summary["agree"] and summary["top1_agree"] == 0
    assert "DISAGREES" in summary["verdict"] and "possible compiler fault" in summary["verdict"]
    assert all(i["reference_margin"] > 0 for i in result["images"])
    same = compare_outputs(ref.outputs, ref)
    assert same["summary"]["agree"] and same["summary"]["max_abs_diff"] == 0


def test_a_missing_runtime_is_one_clear_line(mobilenet, monkeypatch):
    model, _images, batch = mobilenet
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(mn.ReferenceUnavailableError, match=r"pip install ai-edge-litert"):
        run_reference(model, batch)


def test_predict_goes_on_without_a_missing_runtime(tmp_path, monkeypatch, capfd,
                                                   shape_chain_model):
    import onnx

    path = tmp_path / "chain.onnx"
    onnx.save(shape_chain_model(), str(path))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert main(["predict", "--reference", "--top", "1", "--model", str(path)]) == 0
    out, err = capfd.readouterr()
    assert "reference unavailable:" in out and "pip install onnxruntime" in out
    assert "Traceback" not in out + err and "hubble_deep_field" in out
