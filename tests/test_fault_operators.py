"""Hardware Faults at kernel stores: exact rewrites of hand-written kernels, faulty values
checked bit by bit when the kernel runs, reduction updates, and on the quantized MobileNet
fixture's kernels site counts against an independent walk and a real kernel run."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import tirx

import mutatenn_passes as mn
from mutatenn_passes import OperatorError, find_sites, mutation
from tests.campaign_inputs import tiny_classifier
from mutatenn_passes.kernel_ir import kernel_module
from tests.conftest import load_cases

FAULTS = ("store_bit_flip", "store_stuck_at_0", "store_stuck_at_1")




CASES = load_cases("kernel_cases", "faults")


def _mutate(func, op_id, sites="all", **params):
    pass_ = mutation(op_id, sites=sites, **params)
    return pass_(tvm.IRModule({"kernel": func}))["kernel"], pass_.report


def _compile(func: tirx.PrimFunc):
    return tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                       target=tvm.target.Target({"kind": "llvm"}))


def test_fault_operators_are_registered_with_complete_specs():
    for op_id in FAULTS:
        spec = mn.get_operator(op_id)
        assert spec.level == "kernel" and spec.category == "Hardware Faults"
        assert not spec.from_paper and spec.description and spec.finds and spec.rewrites
        assert [p.name for p in spec.params] == ["bit", "element", "seed"]
    assert mn.get_operator("store_bit_flip").resolve_params({})["element"] == "random"
    assert mn.get_operator("store_stuck_at_1").resolve_params({})["element"] == "all"


@pytest.mark.parametrize("op_id,params,sites,before,expected", CASES.CASES,
                         ids=[c[0] for c in CASES.CASES])
def test_fault_rewrite_matches_the_hand_written_kernel(op_id, params, sites, before, expected):
    out, report = _mutate(before, op_id, sites, **params)
    tvm.ir.assert_structural_equal(out.without_attr("global_symbol"),
                                   expected.without_attr("global_symbol"))
    assert tvm.tirx.analysis.verify_well_formed(out)
    assert len(report.applied) == 1 and not report.skipped


def test_sites_are_int_and_float_stores_with_the_choice_in_the_description():
    sites = find_sites("store_bit_flip", tvm.IRModule({"kernel": CASES.stores}), bit=3,
                       element="all")
    assert [(s.id, s.kind) for s in sites] == [("kernel:0", "float32"), ("kernel:1", "int8")]
    assert sites[0].description == "store to B[i, j] (float32): bit 3 of every element"
    seeded = [find_sites("store_bit_flip", tvm.IRModule({"kernel": CASES.stores}), seed=s)
              for s in (1, 1, 2)]
    assert seeded[0] == seeded[1] and seeded[0] != seeded[2]
    chosen = re.search(r"bit (\d+) of element (\d+)", seeded[0][0].description)
    assert int(chosen.group(1)) < 32 and int(chosen.group(2)) < 8


def test_a_flip_changes_exactly_one_element_by_exactly_that_bit():
    a = np.linspace(-3, 3, 8, dtype="float32").reshape(2, 4)
    outputs = {}
    for name, func in (("original", CASES.stores),
                       ("mutant", _mutate(CASES.stores, "store_bit_flip", 0, seed=4)[0])):
        b, c = np.zeros((2, 4), "float32"), np.zeros(8, "int8")
        args = [tvm.runtime.tensor(v) for v in (a, b, c)]
        _compile(func)["main"](*args)
        outputs[name] = args[1].numpy()
    (site,) = find_sites("store_bit_flip", tvm.IRModule({"kernel": CASES.stores}), seed=4)[:1]
    bit, element = map(int, re.search(r"bit (\d+) of element (\d+)", site.description).groups())
    xor = outputs["original"].view("uint32") ^ outputs["mutant"].view("uint32")
    assert np.flatnonzero(xor).tolist() == [element]
    assert xor.flat[element] == 1 << bit


@pytest.mark.parametrize("op_id,bit,check", [
    ("store_stuck_at_1", 31, lambda bits: np.all(bits & (1 << 31))),
    ("store_stuck_at_0", 30, lambda bits: not np.any(bits & (1 << 30)))])
def test_stuck_bits_hold_for_every_element(op_id, bit, check):
    func, _ = _mutate(CASES.stores, op_id, 0, bit=bit)
    a = np.linspace(-3, 3, 8, dtype="float32").reshape(2, 4)
    args = [tvm.runtime.tensor(v) for v in (a, np.zeros((2, 4), "float32"),
                                            np.zeros(8, "int8"))]
    _compile(func)["main"](*args)
    bits = args[1].numpy().view("uint32")
    assert check(bits)
    # the other bits are the original's
    others = ~np.uint32(1 << bit)
    np.testing.assert_array_equal(bits & others, (a * 2).view("uint32") & others)


def test_reduction_updates_are_no_flip_but_can_be_stuck():
    mod = tvm.IRModule({"kernel": CASES.reduction})
    flip = mutation("store_bit_flip", bit=31)
    flip(mod)
    assert [s.id for s in flip.report.applied] == ["kernel:0"]  # the init store
    [(site, reason)] = flip.report.skipped
    assert site.id == "kernel:1" and reason.startswith("the store updates the element it reads")
    stuck = mutation("store_stuck_at_1", bit=31)
    out = stuck(mod)
    assert len(stuck.report.applied) == 2
    assert tvm.s_tir.analysis.verify_well_formed(out["kernel"])


@pytest.mark.parametrize("params,reason", [
    ({"bit": 40}, "bit 40 is out of range: float32 has 32 bits"),
    ({"bit": 1, "element": "8"}, "element 8 is out of range: buffer B has 8")])
def test_out_of_range_choices_are_skipped_with_the_reason(params, reason):
    _, report = _mutate(CASES.stores, "store_stuck_at_0", 0, **params)
    assert report.skipped[0][1] == reason


def test_bad_element_values_are_operator_errors():
    with pytest.raises(OperatorError, match="parameter element='some'"):
        mutation("store_bit_flip", element="some")
    with pytest.raises(OperatorError, match="parameter bit=-3"):
        mutation("store_stuck_at_1", bit=-3)


# --- the quantized MobileNet fixture --------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_model(shared_fixtures):
    return mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")


@pytest.fixture(scope="module")
def fixture_kernels(fixture_model):
    return kernel_module(fixture_model, "llvm-x86-64", "s_tir")


@pytest.fixture(scope="module")
def unfused_fixture_kernels(fixture_model):
    """The fixture's kernels unscheduled and unfused: its bias adds are kernels of their own."""
    return kernel_module(fixture_model, "llvm-x86-64-naive", "s_tir")


def _walk_count(mod: tvm.IRModule) -> int:
    """Stores of an integer or float value, counted by walking every PrimFunc whole (at the
    s_tir phase there is no packed-API wrapper to leave out)."""
    count = [0]

    def store(node):
        dtype = node.value.ty.dtype
        count[0] += dtype.is_float or dtype.is_integer
        return None

    for _, func in mod.functions_items():
        tvm_ffi.structural_walk(func.body, (tirx.BufferStore, store))
    return count[0]


def test_site_counts_on_the_fixture_match_an_independent_walk(fixture_kernels):
    expected = _walk_count(fixture_kernels)
    assert expected > 0
    print(f"\nmobilenet s_tir: {expected} store sites")
    for op_id in FAULTS:
        pass_ = mutation(op_id)
        out = pass_(fixture_kernels)
        report = pass_.report
        assert len(report.sites_found) == expected, op_id
        assert len(report.applied) + len(report.skipped) == expected, op_id
        assert all("reduction" in reason for _, reason in report.skipped), op_id
        assert tvm.s_tir.analysis.verify_well_formed(out), op_id
        print(f"  {op_id}: {len(report.sites_found)} / {len(report.applied)}")


def test_a_flip_in_a_real_fixture_kernel(unfused_fixture_kernels):
    """Bit 30 of element 3 of the first bias add's output, run on inputs of its real shapes."""
    pass_ = mutation("store_bit_flip", 0, kernels="add", bit=30, element="3")
    mutated = pass_(unfused_fixture_kernels)
    assert [s.function for s in pass_.report.applied] == ["add"]
    shapes = [[int(e) for e in p.ty.shape] for p in unfused_fixture_kernels["add"].params]
    inputs = [np.random.default_rng(i).normal(0, 1, shape).astype("float32")
              for i, shape in enumerate(shapes[:-1])]
    results = []
    for func in (unfused_fixture_kernels["add"], mutated["add"]):
        args = [tvm.runtime.tensor(x) for x in inputs] + \
            [tvm.runtime.tensor(np.zeros(shapes[-1], "float32"))]
        _compile(func)["main"](*args)
        results.append(args[-1].numpy())
    xor = results[0].view("uint32") ^ results[1].view("uint32")
    assert np.flatnonzero(xor).tolist() == [3] and xor.flat[3] == 1 << 30


def test_a_constant_store_gets_its_faulty_constant():
    """An accumulator's 0.0 init: the faulty value is computed, not a reinterpret of a literal
    (which TVM's C and CUDA code generators print as the address of a literal)."""
    out, report = _mutate(CASES.reduction, "store_stuck_at_1", 0, bit=31)
    stores = []
    tvm_ffi.structural_walk(out.body, (tirx.BufferStore, lambda s: stores.append(s)))
    init = stores[0].value
    assert isinstance(init, tvm.ir.prim.FloatImm) and np.signbit(np.float32(init.value))
    assert "reinterpret" not in out.script().split("T.init()")[1].split("\n")[1]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_fault_mutants_compile_for_cuda(tmp_path):
    """The generated CUDA of a flip (one element) and a stuck bit (a constant init, vector
    stores after lowering) is accepted by nvcc."""
    model = mn.load_model(tiny_classifier(tmp_path / "tiny.onnx"))
    for phase in ("s_tir", "lowered"):
        passes = [mutation("store_bit_flip", sites=0, bit=30, element="5", phase=phase),
                  mutation("store_stuck_at_1", sites=1, bit=31, phase=phase)]
        artifact = mn.build(model, "cuda-sm90", tir_passes=passes)
        assert all(len(p.report.applied) == 1 for p in passes), phase
        (source,) = [text for key, text in artifact.sources().items() if key.endswith("cuda")]
        assert "^ (uint)1073741824" in source
        cu = tmp_path / f"{phase}.cu"
        cu.write_text(source)
        done = subprocess.run(["nvcc", "-arch=sm_90", "-ptx", str(cu), "-o",
                               str(tmp_path / f"{phase}.ptx")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
