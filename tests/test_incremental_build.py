"""Incremental builds (`build.prepare_original` + `build.build_incremental`) on a tiny ONNX
model: only the changed kernels are compiled, outputs are bit-identical to a full `build`, and
a target whose library cannot be linked against falls back to a full build and says so."""

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.build import build, build_incremental, prepare_original
from tests.campaign_inputs import tiny_classifier

TARGET = "llvm-x86-64"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return mn.load_model(tiny_classifier(tmp_path_factory.mktemp("tiny") / "tiny.onnx"))


@pytest.fixture(scope="module")
def original(tiny):
    return prepare_original(tiny, TARGET)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype("float32")


# Deterministic mutants: a graph-level one, a kernel-level one at each phase, with the fused
# kernel each one changes in the scheduled build.
MUTANTS = [
    ("relax_passes", "relu_to_sigmoid", {"sites": [0]},
     ["fused_conv2d_add_subtract_divide_multiply_add_tir_sigmoid"]),
    ("tir_passes", "store_mul_epsilon", {"sites": [0], "epsilon": 0.5},
     ["fused_conv2d1_add_relu_add1"]),
    ("tir_passes", "loop_min_inc", {"sites": [3], "phase": "lowered"},
     ["fused_conv2d1_add_relu_add1"]),
]


@pytest.mark.parametrize("where, op_id, kwargs, compiled", MUTANTS)
def test_incremental_equals_full_build_bit_for_bit(tiny, original, batch, where, op_id,
                                                  kwargs, compiled):
    assert len(original.libraries) == 1 and original.unavailable == ""
    incremental = build_incremental(original, **{where: [mn.mutation(op_id, **kwargs)]})
    assert incremental.record.mode.startswith("incremental (1 kernel(s) compiled")
    assert incremental.record.compiled == compiled
    full = build(tiny, TARGET, **{where: [mn.mutation(op_id, **kwargs)]})
    assert full.record.mode == "full"
    got, _ = incremental.run_array(batch)
    want, _ = full.run_array(batch)
    unmutated, _ = original.artifact.run_array(batch)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, unmutated)  # the mutant really is another program
    # the record holds the mutated IR at the mutation's phase, as a full build's does
    phase = "relax" if where == "relax_passes" else kwargs.get("phase", "s_tir")
    ir = incremental.record.relax_input if phase == "relax" else incremental.record.tir[phase]
    other = full.record.relax_input if phase == "relax" else full.record.tir[phase]
    assert ir.script() == other.script()


def test_a_target_without_a_linkable_library_falls_back_to_a_full_build(tiny, batch):
    original = prepare_original(tiny, "c")
    assert original.libraries == [] and "not an LLVM CPU target" in original.unavailable
    mutant = build_incremental(original, tir_passes=[mn.mutation("store_mul_epsilon", sites=[0],
                                                                 epsilon=0.5)])
    assert mutant.record.mode == "full (c is not an LLVM CPU target)"
    assert mutant.record.compiled == []
    got, _ = mutant.run_array(batch)
    unmutated, _ = original.artifact.run_array(batch)
    assert got.shape == unmutated.shape and not np.array_equal(got, unmutated)


def test_kernels_that_fusion_renamed_are_reused_not_compiled():
    """Replacing ShuffleNet's first ReLU renumbers every later fused ReLU kernel
    (``fused_add4_relu2`` becomes ``fused_add4_relu1``): those are called from the original's
    library under their old names, and only the changed kernel is compiled."""
    model = mn.load_model()
    original = prepare_original(model, TARGET)
    mutation = dict(sites=[0])
    incremental = build_incremental(original,
                                    relax_passes=[mn.mutation("relu_to_sigmoid", **mutation)])
    assert incremental.record.compiled == [
        "fused_conv2d_add_subtract_divide_multiply_add_tir_sigmoid"]
    images = mn.load_images()
    full = build(model, TARGET, relax_passes=[mn.mutation("relu_to_sigmoid", **mutation)])
    got = incremental.run(images).outputs
    assert np.array_equal(got, full.run(images).outputs)
    assert not np.array_equal(got, original.artifact.run(images).outputs)


# Run in a fresh interpreter: `prepare_original(jobs=2)` forks, which is safe only before the
# process has run generated code (the test session's TVM thread pool would be inherited).
_PARALLEL = """
import json, sys
import numpy as np
import mutatenn_passes as mn
from mutatenn_passes.build import build_incremental, prepare_original
from mutatenn_passes.schemata import build_schema
model = mn.load_model(sys.argv[1])
parallel = prepare_original(model, "llvm-x86-64", jobs=2)
single = prepare_original(model, "llvm-x86-64")
batch = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype("float32")
mutants = [{"relax_passes": [mn.mutation("relu_to_sigmoid", sites=[0])]},
           {"tir_passes": [mn.mutation("store_mul_epsilon", sites=[0], epsilon=0.5)]},
           {"tir_passes": [mn.mutation("loop_min_inc", sites=[3], phase="lowered")]}]
runs = {}
for name, original in (("parallel", parallel), ("single", single)):
    arts = [original.artifact] + [build_incremental(original, **m) for m in mutants]
    arts += build_schema(original, mutants[:2]).variants
    runs[name] = [a.run_array(batch)[0].tobytes().hex() for a in arts]
print(json.dumps({"libraries": len(parallel.libraries), "mode": parallel.artifact.record.mode,
                  "runs": runs}))
"""


def test_kernels_compiled_in_two_processes_give_the_same_outputs(tmp_path):
    import json
    import subprocess
    import sys

    model = tiny_classifier(tmp_path / "tiny.onnx")
    out = subprocess.run([sys.executable, "-c", _PARALLEL, str(model)], capture_output=True,
                         text=True, cwd=tmp_path, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["libraries"] == 2 and got["mode"] == "full (kernels compiled in 2 processes)"
    parallel, single = got["runs"]["parallel"], got["runs"]["single"]
    assert parallel == single  # original, 3 incremental mutants, 2 schema variants
    assert len(set(parallel[:4])) == 4  # and each mutant is another program
