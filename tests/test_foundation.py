"""Foundation: import, build for every CPU target, run on real images, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tvm
from tvm import relax

import mutatenn_passes as mn
from mutatenn_passes import default_model as dm
from mutatenn_passes.cli import main
from mutatenn_passes.images import preprocess


@pytest.fixture(scope="module")
def onnxruntime_outputs(default_model, default_images):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(dm.default_onnx_bytes(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: preprocess([img], default_model
                                                               .preprocess)})[0]
                           for img in default_images])


_SEEN_BY_PHASE = {}


@tvm.transform.module_pass(opt_level=0, name="test.CountKernels")
class CountKernels:
    """A real TVM module pass that records what the TIR looks like at its phase."""

    def __init__(self, phase):
        self.phase = phase

    def transform_module(self, mod, _ctx):
        funcs = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
        _SEEN_BY_PHASE[self.phase] = ("T.sblock" in mod.script(), len(funcs))
        return mod


@pytest.fixture(scope="module")
def x86_artifact(default_model):
    """The default model for llvm-x86-64, built through the seam with real TVM passes."""
    return mn.build(default_model, "llvm-x86-64",
                    relax_passes=[relax.transform.FoldConstant()],
                    tir_passes=[CountKernels("s_tir"), CountKernels("lowered")])


@pytest.mark.parametrize("target", ["llvm-x86-64", "llvm-avx2", "llvm-avx512", "c"])
def test_default_model_matches_onnxruntime(target, default_model, default_images,
                                           onnxruntime_outputs, x86_artifact):
    profile = mn.get_profile(target)
    ok, why = profile.can_run()
    if not ok:
        pytest.skip(f"{target} cannot run here: {why}")
    artifact = x86_artifact if target == "llvm-x86-64" else mn.build(default_model, target)
    preds = artifact.run(default_images)
    assert preds.top1() == [int(v) for v in onnxruntime_outputs.argmax(axis=1)]
    rel = np.abs(preds.outputs - onnxruntime_outputs).max() / np.abs(onnxruntime_outputs).max()
    assert rel <= 1e-3


def test_reference_runtime_agrees_on_the_default_model(x86_artifact, default_model,
                                                       default_images, tmp_path, monkeypatch):
    from mutatenn_passes.reference import compare

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    preds = x86_artifact.run(default_images)
    result = compare(default_model, preds.inputs, preds.outputs,
                     names=[p.image for p in preds.images])
    assert json.loads(json.dumps(result)) == result  # plain JSON, storable as it is
    assert result["runtime"].startswith("ONNX Runtime") and result["unit"] == "output units"
    summary = result["summary"]
    assert summary["agree"] and summary["top1_agree"] == len(default_images) == 5
    assert summary["top5_overlap_mean"] == 5.0
    assert summary["max_rel_diff"] <= 1e-5  # 1.4e-6 measured
    assert [i["image"] for i in result["images"]] == [p.image for p in preds.images]
    assert [i["tvm_classes"][0] for i in result["images"]] == preds.top1()


def test_default_model_is_deterministic_and_varied(x86_artifact, default_images):
    assert len(set(x86_artifact.run(default_images).top1())) >= 3
    # the generation itself (not the user-cache copy): same seed, same fitted weights
    assert dm.generate_onnx_bytes() == dm.default_onnx_bytes()


def test_default_model_is_kept_in_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dm.default_onnx_bytes.cache_clear()
    try:
        data = dm.default_onnx_bytes()
        (entry,) = (tmp_path / "mutatenn" / dm.CACHE_KIND).iterdir()
        assert entry.read_bytes() == data
        entry.write_bytes(b"x" * 100)  # a foreign file there: overwritten, not imported
        dm.default_onnx_bytes.cache_clear()
        assert dm.default_onnx_bytes() == data and entry.read_bytes() == data
        assert len(list(entry.parent.iterdir())) == 1  # no temporary file left beside it
    finally:
        dm.default_onnx_bytes.cache_clear()


def test_default_model_says_its_weights_are_synthetic(default_model, capsys):
    assert default_model.synthetic_weights
    assert main(["predict", "--top", "1"]) == 0
    assert "synthetic" in capsys.readouterr().out


def test_fixture_tflite_classifies_photos(shared_fixtures, capsys):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
    assert model.format == "tflite" and model.input.layout == "NHWC"
    assert model.preprocess.raw and model.labels[283] == "tiger cat"
    files = [str(shared_fixtures / f) for f in
             ["cat.bmp", "bird.bmp", "parrot.jpg", "grace_hopper.bmp"]]
    assert main(["predict", "--model", str(shared_fixtures /
                 "mobilenet_v1_0.25_128_quant.tflite"), *files, "--json", "--top", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["classes"][0] for line in lines] == [283, 20, 89, 401]
    assert lines[0]["labels"][0] == "tiger cat"


def test_format_is_detected_by_content_not_suffix(shared_fixtures, tmp_path):
    misnamed = tmp_path / "model.onnx"
    shutil.copy(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite", misnamed)
    assert mn.load_model(misnamed).format == "tflite"
    onnx_as_bin = tmp_path / "model.bin"
    onnx_as_bin.write_bytes(dm.default_onnx_bytes())
    assert mn.load_model(onnx_as_bin).format == "onnx"


def test_overrides_replace_inferred_preprocessing(tmp_path):
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(dm.default_onnx_bytes())
    labels = tmp_path / "names.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(1000)))
    model = mn.load_model(model_file, channel_order="BGR", mean=[0, 0, 0], labels=labels)
    assert model.preprocess.channel_order == "BGR" and model.preprocess.mean == (0, 0, 0)
    assert model.label(7) == "class 7"
    with pytest.raises(mn.ModelLoadError, match="unknown model override"):
        mn.load_model(model_file, colour="red")


def test_build_slots_relax_and_tir_passes(x86_artifact):
    assert _SEEN_BY_PHASE["s_tir"][0] and not _SEEN_BY_PHASE["lowered"][0]  # blocks lowered
    assert _SEEN_BY_PHASE["s_tir"][1] > 10
    assert "R.nn.conv2d" in x86_artifact.record.relax_input.script()


def test_export_load_and_dump(x86_artifact, default_images, tmp_path):
    path = x86_artifact.export(tmp_path / "lib" / "model.so")
    meta = json.loads((tmp_path / "lib" / "model.so.json").read_text())
    assert meta["input"]["shape"] == [1, 3, 224, 224]
    loaded = mn.load_artifact(path)
    np.testing.assert_array_equal(loaded.run(default_images).outputs,
                                  x86_artifact.run(default_images).outputs)
    written = {p.name for p in x86_artifact.dump(tmp_path / "dump")}
    assert {"relax.py", "tir-s_tir.py", "tir-lowered.py"} <= written
    assert any(name.startswith("source-") and name.endswith(".ll") for name in written)


def test_cuda_profile_builds_and_cannot_run_without_gpu(default_model, default_images):
    profile = mn.get_profile("cuda-sm90")
    ok, why = profile.can_build()
    if not ok:
        pytest.skip(why)
    artifact = mn.build(default_model, profile)
    cuda = [text for name, text in artifact.sources().items() if name.endswith("cuda")]
    assert cuda and "__global__" in cuda[0]
    if not profile.can_run()[0]:
        with pytest.raises(mn.TargetError, match="no CUDA GPU"):
            artifact.run(default_images)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello, I am not a model\n", "unsupported or corrupt"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "unsupported or corrupt"),
])
def test_bad_model_files(tmp_path, content, message):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(mn.ModelLoadError, match=message):
        mn.load_model(bad)


def test_truncated_model_files(tmp_path, shared_fixtures):
    onnx_cut = tmp_path / "cut.onnx"
    onnx_cut.write_bytes(dm.default_onnx_bytes()[:5000])
    with pytest.raises(mn.ModelLoadError, match="cut.onnx"):
        mn.load_model(onnx_cut)
    tfl_cut = tmp_path / "cut.tflite"
    tfl_cut.write_bytes((shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
                        .read_bytes()[:4000])
    with pytest.raises(mn.ModelLoadError, match="cut.tflite"):
        mn.load_model(tfl_cut)


def test_missing_inputs_and_unknown_target(tmp_path):
    with pytest.raises(mn.ModelLoadError, match="no such model file"):
        mn.load_model(tmp_path / "nope.onnx")
    with pytest.raises(mn.ImageLoadError, match="no such image file"):
        mn.load_images([tmp_path / "nope.jpg"])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(mn.ImageLoadError, match="cannot decode"):
        mn.load_images([broken])
    with pytest.raises(mn.TargetError, match="known targets: .*llvm-x86-64"):
        mn.get_profile("llvm-x87")


def test_malformed_profiles(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[target\n")
    with pytest.raises(mn.TargetError, match="malformed"):
        mn.get_profile(bad)
    bad.write_text("name = 'x'\ncolour = 1\n[target]\nkind = 'llvm'\n")
    with pytest.raises(mn.TargetError, match="unknown key"):
        mn.get_profile(bad)
    bad.write_text("name = 'x'\n[target]\nkind = 'no-such-kind'\n")
    with pytest.raises(mn.TargetError, match="TVM rejects"):
        mn.get_profile(bad)


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    assert main(["predict", "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.onnx" in err and "Traceback" not in err
    assert main(["predict", "--target", "nope"]) == 2
    assert main(["predict", str(tmp_path / "missing.png")]) == 2


def test_cli_targets(capsys):
    assert main(["targets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"llvm-x86-64", "llvm-avx2", "llvm-avx512", "c", "cuda-sm80", "cuda-sm90"} <= set(rows)
    assert rows["llvm-x86-64"]["can_run"]
    if not tvm.cuda().exist:
        assert not rows["cuda-sm90"]["can_run"] and "GPU" in rows["cuda-sm90"]["run_reason"]


def test_profile_identity_ignores_where_the_file_was_found(tmp_path):
    copy = tmp_path / "llvm-x86-64.toml"
    shutil.copy(mn.get_profile("llvm-x86-64").path, copy)
    assert mn.get_profile(copy).path != mn.get_profile("llvm-x86-64").path
    assert mn.get_profile(copy).identity() == mn.get_profile("llvm-x86-64").identity()
