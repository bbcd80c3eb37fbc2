"""Importing ONNX graphs as exporters write them: dynamic dims, Shape->Gather->Concat reshapes,
the onnxslim fallback, and TVM's console output kept in a log file."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import mutatenn_passes as mn
from mutatenn_passes.cli import main
from mutatenn_passes.onnx_import import pin_input_shape

TVM_LINES = ("Error converting operator", "BlockBuilder destroyed with remaining blocks")


@pytest.fixture(autouse=True)
def log_home(tmp_path, monkeypatch):
    """Logs go to a per-test cache folder, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mutatenn" / "logs"


@pytest.fixture
def chain_file(tmp_path, shape_chain_model):
    path = tmp_path / "chain.onnx"
    onnx.save(shape_chain_model(), str(path))
    return path


def test_direct_import_fails_even_with_the_input_pinned(shape_chain_model):
    from tvm import relax
    import tvm.relax.frontend.onnx  # noqa: F401

    proto = shape_chain_model()
    layout, notes = pin_input_shape(proto, "chain")
    assert layout == "NCHW" and notes == ["input x pinned from [N, 3, 32, 32] to "
                                          "[1, 3, 32, 32] (NCHW)"]
    with pytest.raises(Exception, match="Reshape requires the input new shape to be Shape"):
        relax.frontend.onnx.from_onnx(proto, keep_params_in_input=False)


def test_fallback_simplifies_imports_and_matches_onnxruntime(chain_file):
    import onnxruntime as ort

    model = mn.load_model(chain_file)
    assert model.input.shape == (1, 3, 32, 32) and model.output.shape == (1, 10)
    assert model.simplified_by.startswith("onnxslim ")
    assert len(model.simplified_digest) == 16 and model.simplified_digest != model.digest
    assert model.describe()["simplified"] == {"by": model.simplified_by,
                                              "digest": model.simplified_digest}
    assert any("onnxslim" in note and model.simplified_digest in note for note in model.notes)
    assert "R.reshape" in model.mod.script()

    batch = np.random.default_rng(3).standard_normal((3, 1, 3, 32, 32)).astype(np.float32)
    ours, _ = mn.build(model, "llvm-x86-64").run_array(batch[:, 0])
    session = ort.InferenceSession(chain_file.read_bytes(), providers=["CPUExecutionProvider"])
    theirs = np.concatenate([session.run(None, {"x": x})[0] for x in batch])
    assert theirs.shape == (3, 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert list(ours.argmax(1)) == list(theirs.argmax(1))


def test_a_model_that_imports_directly_is_not_simplified(default_model):
    assert default_model.simplified_by == "" and default_model.describe()["simplified"] is None


@pytest.mark.parametrize("command", ["predict", "mutants"])
def test_tvm_console_output_goes_to_the_log(command, chain_file, tmp_path, capfd, log_home):
    from PIL import Image

    image = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 50, 3), np.uint8)) \
        .save(image)
    args = ["predict", "--model", str(chain_file), str(image), "--top", "1"] \
        if command == "predict" else ["mutants", "--model", str(chain_file),
                                      "--operators", "relu_to_sigmoid"]
    assert main(args) == 0
    out, err = capfd.readouterr()
    assert not [line for line in TVM_LINES if line in out + err]
    logs = list(log_home.glob("import-chain-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert all(line in text for line in TVM_LINES)


def test_a_graph_that_still_fails_names_its_log(tmp_path, capfd, log_home, shape_chain_model):
    bad = tmp_path / "datadep.onnx"
    onnx.save(shape_chain_model(data_dependent=True), str(bad))
    assert main(["predict", "--model", str(bad)]) == 2
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert not [line for line in TVM_LINES if line in out + err]
    assert "Traceback" not in err and "datadep.onnx" in lines[0]
    assert "TVM cannot import this ONNX graph" in err
    assert "also after simplifying with onnxslim" in err
    log = next(log_home.glob("import-datadep-*.log"))
    assert len(lines) == 1 and str(log) in lines[0]
    assert "Error converting operator Reshape" in log.read_text()


def test_dynamic_spatial_dims_need_a_size(tmp_path, shape_chain_model):
    path = tmp_path / "wide.onnx"
    onnx.save(shape_chain_model(width="W"), str(path))
    with pytest.raises(mn.ModelLoadError,
                       match=r"\[N, 3, 32, W\] has a dynamic width.*--size"):
        mn.load_model(path)
    model = mn.load_model(path, height=32, width=32)
    assert model.input.shape == (1, 3, 32, 32)
    assert (model.preprocess.height, model.preprocess.width) == (32, 32)


def test_a_fixed_batch_other_than_one_is_refused(tmp_path, shape_chain_model):
    path = tmp_path / "batch4.onnx"
    onnx.save(shape_chain_model(batch=4), str(path))
    with pytest.raises(mn.ModelLoadError, match="fixed batch of 4"):
        mn.load_model(path)
