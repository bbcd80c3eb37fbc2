"""Graph-level (Relax) mutation operators: exact rewrites on hand-written modules, site
counts, builds and changed outputs on ShuffleNet (the default model) and the quantized TFLite
MobileNet fixture, composition with TVM pipelines, and errors for bad input.

The hand-written before/after modules live in ``tests/graph_cases`` (TVMScript needs real
source files); every rewrite is checked with ``tvm.ir.assert_structural_equal``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import relax

import mutatenn_passes as mn
from mutatenn_passes import CATEGORIES, OperatorError, Sample, find_sites, mutation
from mutatenn_passes.graph_operators.base import coverage_total
from mutatenn_passes.images import preprocess
from tests.conftest import load_cases

TARGET = "llvm-x86-64"

LAYER = load_cases("graph_cases", "layer_replacement")
ARITHMETIC = load_cases("graph_cases", "arithmetic_replacement")
IO = load_cases("graph_cases", "io_modifications")
STRUCTURE = load_cases("graph_cases", "structure")
CASES = LAYER.CASES + ARITHMETIC.CASES + IO.CASES

#: The graph-level operators this file covers: the paper's three categories as first released.
#: The activation, quantization, weight and fault operators added later have their own test
#: files (test_activation_operators.py, test_model_operators.py).
GRAPH_OPERATORS = [s.id for s in mn.operators() if s.level == "graph" and s.id in {
    "relu_to_sigmoid", "relu_to_tanh", "sigmoid_to_relu", "max_pool_to_avg_pool",
    "avg_pool_to_max_pool", "add_to_subtract", "subtract_to_add", "multiply_to_divide",
    "divide_to_multiply", "transpose_conv2d_input", "transpose_dense_input",
    "transpose_conv2d_dense_input", "transpose_conv2d_dense_weight",
    "transpose_batch_norm_input", "exp_before_conv2d_dense", "exp_after_conv2d_dense",
    "exp_before_batch_norm", "round_before_batch_norm"}]
PAPER_OPERATORS = {"relu_to_sigmoid", "add_to_subtract", "transpose_conv2d_input",
                   "transpose_dense_input", "transpose_conv2d_dense_input",
                   "transpose_conv2d_dense_weight", "transpose_batch_norm_input",
                   "exp_before_conv2d_dense", "exp_after_conv2d_dense",
                   "exp_before_batch_norm", "round_before_batch_norm"}


# --- the catalogue -------------------------------------------------------------------------

def test_graph_operators_are_registered_with_complete_specs():
    specs = [mn.get_operator(op_id) for op_id in GRAPH_OPERATORS]
    assert len(specs) == 18
    assert {s.id for s in specs if s.from_paper} == PAPER_OPERATORS
    for spec in specs:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", spec.id), spec.id
        assert spec.category in CATEGORIES[:3], spec.id
        assert spec.description and "\n" not in spec.description, spec.id
        assert "relax." in spec.finds and spec.rewrites, spec.id


def test_every_graph_operator_has_a_hand_written_case():
    assert {case[0] for case in CASES} == set(GRAPH_OPERATORS)


# --- exact rewrites on hand-written modules -------------------------------------------------

@pytest.mark.parametrize("op_id,params,sites,before,expected", CASES,
                         ids=[f"{c[0]}-{c[2]}" + "".join(f"-{k}={v}" for k, v in c[1].items())
                              for c in CASES])
def test_rewrite_matches_the_hand_written_module(op_id, params, sites, before, expected):
    assert not tvm_ffi.structural_equal(before, expected)  # the case can fail
    pass_ = mutation(op_id, sites, **params)
    mutant = pass_(before)
    tvm.ir.assert_structural_equal(mutant, expected)
    relax.analysis.well_formed(mutant)
    assert pass_.report.applied and not pass_.report.skipped


@pytest.mark.parametrize("sites,expected,indices", [
    (2, STRUCTURE.ThirdRelu, [2]),
    (range(1, 3), STRUCTURE.SecondAndThirdRelu, [1, 2]),
    (Sample(2, seed=7), STRUCTURE.FirstAndThirdRelu, [0, 2]),
], ids=["index", "range", "sample"])
def test_site_selection(sites, expected, indices):
    pass_ = mutation("relu_to_sigmoid", sites)
    tvm.ir.assert_structural_equal(pass_(STRUCTURE.FourRelus), expected)
    assert len(pass_.report.sites_found) == 4
    assert [s.index for s in pass_.report.applied] == indices


def test_sites_follow_graph_order_across_functions_and_branches():
    sites = find_sites("relu_to_sigmoid", STRUCTURE.Scopes)
    assert [s.id for s in sites] == ["helper/y", "main/a", "main/t", "main/s"]
    assert [s.index for s in sites] == [0, 1, 2, 3]
    assert {s.kind for s in sites} == {"relax.nn.relu"}
    assert [s.function for s in sites] == ["helper", "main", "main", "main"]
    assert sites[2].description.startswith("relax.nn.relu call 3 of 4, bound to t in main")
    # TVMScript records where each call was written; the description names it.
    assert re.search(r"structure\.py:\d+\)$", sites[2].description)
    tvm.ir.assert_structural_equal(mutation("relu_to_sigmoid", 2)(STRUCTURE.Scopes),
                                   STRUCTURE.ScopesInnerMutated)


def test_rebound_names_get_distinct_site_ids():
    assert [s.id for s in find_sites("relu_to_sigmoid", STRUCTURE.Rebound)] == \
        ["main/a", "main/a#2"]
    tvm.ir.assert_structural_equal(mutation("relu_to_sigmoid", 1)(STRUCTURE.Rebound),
                                   STRUCTURE.ReboundSecondMutated)


@pytest.mark.parametrize("op_id,module,reason", [
    ("relu_to_sigmoid", LAYER.IntegerRelu, "operand is int8"),
    ("relu_to_tanh", LAYER.IntegerRelu, "operand is int8"),
    ("multiply_to_divide", ARITHMETIC.IntegerMultiply, "operand is int32: integer division"),
    ("transpose_dense_input", IO.NoEqualAxes, r"argument 0 has shape \[3, 5\]"),
    ("transpose_conv2d_dense_weight", IO.NoEqualAxes, r"argument 1 has shape \[5, 2\]"),
    ("exp_before_conv2d_dense", IO.IntegerConv, "argument 0 is int8"),
    ("exp_after_conv2d_dense", IO.IntegerConv, "the result is int32"),
])
def test_ill_typed_or_empty_mutations_are_skipped_with_a_reason(op_id, module, reason):
    pass_ = mutation(op_id)
    tvm.ir.assert_structural_equal(pass_(module), module)
    report = pass_.report
    assert len(report.sites_found) == 1 and not report.applied
    [(site, why)] = report.skipped
    assert site == report.sites_found[0]
    assert re.search(reason, why), why


def test_an_operator_without_sites_finds_nothing_and_changes_nothing():
    pass_ = mutation("sigmoid_to_relu")
    assert find_sites("sigmoid_to_relu", STRUCTURE.FourRelus) == []
    tvm.ir.assert_structural_equal(pass_(STRUCTURE.FourRelus), STRUCTURE.FourRelus)
    assert not pass_.report.applicable and pass_.report.coverage_total == 4


def test_explicit_indices_on_a_module_without_sites_are_not_applicable():
    pass_ = mutation("sigmoid_to_relu", sites=[0, 3])
    assert pass_.report is None  # until the pass runs
    tvm.ir.assert_structural_equal(pass_(STRUCTURE.FourRelus), STRUCTURE.FourRelus)
    report = pass_.report
    assert not report.applicable and report.sites_selected == [] and report.applied == []
    assert report.note.startswith("not applicable: sigmoid_to_relu finds no site")
    assert report.as_dict()["applicable"] is False and report.as_dict()["note"] == report.note
    assert repr(report) == "MutationReport(sigmoid_to_relu, sites=[0,3]: not applicable)"


def test_report_repr_counts_found_applied_and_skipped():
    pass_ = mutation("relu_to_sigmoid", sites=[1, 2])
    pass_(STRUCTURE.FourRelus)
    assert repr(pass_.report) == ("MutationReport(relu_to_sigmoid, sites=[1,2]: 4 found, "
                                  "2 applied, 0 skipped)")
    skipping = mutation("relu_to_sigmoid")
    skipping(LAYER.IntegerRelu)
    assert repr(skipping.report).endswith(": 1 found, 0 applied, 1 skipped)")


def test_coverage_total_counts_relax_op_calls():
    assert coverage_total(IO.Layers) == 6  # conv2d, batch_norm, reshape, permute, 2 matmuls
    assert coverage_total(STRUCTURE.Scopes) == 5  # 4 relu and 1 add, across both functions


# --- composition ----------------------------------------------------------------------------

def test_two_mutations_in_one_sequential_apply_both():
    first, second = mutation("relu_to_sigmoid", 0), mutation("add_to_subtract", 0)
    mutant = tvm.transform.Sequential([first, second])(STRUCTURE.ReluAdd)
    tvm.ir.assert_structural_equal(mutant, STRUCTURE.SigmoidSubtract)
    assert [s.id for s in first.report.applied] == ["main/a"]
    assert [s.id for s in second.report.applied] == ["main/b"]


def test_mutation_inside_a_user_pipeline_with_fold_constant_and_legalize_ops():
    tail = [relax.transform.FoldConstant(), relax.transform.LegalizeOps()]
    mutant = tvm.transform.Sequential([mutation("add_to_subtract"), *tail])(
        STRUCTURE.ConstantAdd)
    expected = tvm.transform.Sequential(tail)(STRUCTURE.ConstantSubtract)
    tvm.ir.assert_structural_equal(mutant, expected)
    assert not tvm_ffi.structural_equal(mutant, tvm.transform.Sequential(tail)(
        STRUCTURE.ConstantAdd))
    # After FoldConstant the add is gone: order in the pipeline decides what is a site.
    late = mutation("add_to_subtract")
    tvm.transform.Sequential([relax.transform.FoldConstant(), late])(STRUCTURE.ConstantAdd)
    assert not late.report.applicable

    vm = relax.VirtualMachine(tvm.compile(mutant, tvm.target.Target({"kind": "llvm"})),
                              tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(np.array([1.0, -1.0], "float32"))).numpy()
    np.testing.assert_allclose(out, [0.0, 3.0])  # relu(x * ([1, 2] - [3, 5]))


# --- bad input ------------------------------------------------------------------------------

def test_unknown_operator_names_near_matches():
    with pytest.raises(OperatorError, match="did you mean relu_to_sigmoid"):
        mutation("relu_to_sigmod")


def test_bad_site_index_names_the_valid_range():
    # Raised inside the pass, it crosses TVM's FFI and must still arrive as OperatorError.
    with pytest.raises(OperatorError, match=r"site index 7 is out of range: this operator found "
                                        r"4 site\(s\) \(0\.\.3\)"):
        mutation("relu_to_sigmoid", 7)(STRUCTURE.FourRelus)
    with pytest.raises(OperatorError, match="unknown site selection"):
        mutation("relu_to_sigmoid", "first")
    with pytest.raises(OperatorError, match="bad site index 'a': site indices are integers"):
        mutation("sigmoid_to_relu", ["a"])(STRUCTURE.FourRelus)  # even without sites


def test_a_graph_operator_on_kernels_says_where_it_belongs(default_model):
    from mutatenn_passes.kernel_ir import kernel_module

    kernels = kernel_module(STRUCTURE.FourRelus, TARGET)
    with pytest.raises(OperatorError, match="relu_to_sigmoid is a graph-level operator and "
                                            "this module holds only TIR PrimFuncs: pass it in "
                                            r"build\(relax_passes="):
        mutation("relu_to_sigmoid", [0])(kernels)
    with pytest.raises(OperatorError, match="relu_to_sigmoid is a graph-level operator: pass "
                                            "it in relax_passes, not tir_passes"):
        mn.build(default_model, TARGET, tir_passes=[mutation("relu_to_sigmoid", 0)])


def test_bad_parameter_values_are_operator_errors():
    with pytest.raises(OperatorError, match="axes='middle' must be one of last, first"):
        mutation("transpose_conv2d_input", axes="middle")
    with pytest.raises(OperatorError, match="count_include_pad='maybe' must be one of"):
        mutation("max_pool_to_avg_pool", count_include_pad="maybe")
    with pytest.raises(OperatorError, match=r"unknown parameter\(s\) axes \(valid: none\)"):
        mutation("relu_to_sigmoid", axes="last")


# --- real models ----------------------------------------------------------------------------

#: Sites found and sites rewritten when all are selected (transposes skip axes with no
#: equal-length partner: the dense input [1, 544], 1x1 kernels, the TFLite [1, 1, 1, 256]).
SHUFFLENET_SITES = {
    "relu_to_sigmoid": (33, 33), "relu_to_tanh": (33, 33), "sigmoid_to_relu": (0, 0),
    "max_pool_to_avg_pool": (1, 1), "avg_pool_to_max_pool": (4, 4),
    "add_to_subtract": (2, 2), "subtract_to_add": (0, 0), "multiply_to_divide": (0, 0),
    "divide_to_multiply": (0, 0),
    "transpose_conv2d_input": (49, 49), "transpose_dense_input": (1, 0),
    "transpose_conv2d_dense_input": (50, 49), "transpose_conv2d_dense_weight": (50, 17),
    "transpose_batch_norm_input": (49, 49), "exp_before_conv2d_dense": (50, 50),
    "exp_after_conv2d_dense": (50, 50), "exp_before_batch_norm": (49, 49),
    "round_before_batch_norm": (49, 49),
}
TFLITE_SITES = {
    "relu_to_sigmoid": (0, 0), "relu_to_tanh": (0, 0), "sigmoid_to_relu": (0, 0),
    "max_pool_to_avg_pool": (0, 0), "avg_pool_to_max_pool": (1, 1),
    "add_to_subtract": (28, 28), "subtract_to_add": (0, 0), "multiply_to_divide": (0, 0),
    "divide_to_multiply": (0, 0),
    "transpose_conv2d_input": (28, 27), "transpose_dense_input": (0, 0),
    "transpose_conv2d_dense_input": (28, 27), "transpose_conv2d_dense_weight": (28, 22),
    "transpose_batch_norm_input": (0, 0), "exp_before_conv2d_dense": (28, 28),
    "exp_after_conv2d_dense": (28, 28), "exp_before_batch_norm": (0, 0),
    "round_before_batch_norm": (0, 0),
}
@pytest.fixture(scope="module")
def tflite_model(shared_fixtures):
    return mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")


def _op_calls_in_text(mod: tvm.IRModule) -> int:
    """An independent count of op calls: ``R.<op>(`` in the printed module, less the
    constructs that are not op calls."""
    calls = re.findall(r"= (R\.[a-z_.0-9]+)\(", mod.script())
    return sum(name not in ("R.shape", "R.const") for name in calls)


def _site_table(mod: tvm.IRModule) -> dict:
    table = {}
    for op_id in GRAPH_OPERATORS:
        pass_ = mutation(op_id)
        mutant = pass_(mod)
        if pass_.report.applied:
            relax.analysis.well_formed(mutant)
        table[op_id] = (len(pass_.report.sites_found), len(pass_.report.applied))
    return table


def _print_table(name: str, table: dict, coverage: int) -> None:
    print(f"\n{name}: {coverage} Relax op calls")
    for op_id, (found, applied) in table.items():
        print(f"  {op_id:32s} {found:3d} sites, {applied:3d} rewritten with sites='all'")


def test_site_counts_on_shufflenet(default_model):
    table = _site_table(default_model.mod)
    _print_table("shufflenet", table, coverage_total(default_model.mod))
    assert table == SHUFFLENET_SITES
    assert coverage_total(default_model.mod) == _op_calls_in_text(default_model.mod)
    first_relu = find_sites("relu_to_sigmoid", default_model.mod)[0]
    assert first_relu.kind == "relax.nn.relu"
    assert first_relu.description == \
        f"relax.nn.relu call 1 of 33, bound to {first_relu.id.split('/')[1]} in main"


def test_site_counts_on_the_tflite_fixture(tflite_model):
    table = _site_table(tflite_model.mod)
    _print_table("mobilenet_v1_0.25_128_quant", table, coverage_total(tflite_model.mod))
    assert table == TFLITE_SITES
    assert coverage_total(tflite_model.mod) == _op_calls_in_text(tflite_model.mod)


class MutantBank:
    """The first-site mutant of each operator, built together for llvm and run on images.

    Each mutant's ``main`` becomes a function named after its operator in one IRModule beside
    the original ``main``, so one ``tvm.compile`` builds them all: kernels the mutants share
    are legalized once, which makes building every mutant of a real model affordable.
    """

    def __init__(self, model, op_ids, images):
        assert [gv.name_hint for gv in model.mod.get_global_vars()] == ["main"]
        functions, self.reports, self.equivalent = {"main": model.mod["main"]}, {}, {}
        for op_id in op_ids:
            pass_ = mutation(op_id, 0)
            mutant = pass_(model.mod)
            self.reports[op_id] = pass_.report
            self.equivalent[op_id] = tvm_ffi.structural_equal(mutant, model.mod)
            functions[op_id] = relax.utils.copy_with_new_vars(mutant["main"]) \
                .with_attr("global_symbol", op_id)
        executable = tvm.compile(tvm.IRModule(functions), tvm.target.Target({"kind": "llvm"}))
        self.vm = relax.VirtualMachine(executable, tvm.cpu())
        self.batch = preprocess(images, model.preprocess)
        self._outputs: dict[str, np.ndarray] = {}

    def outputs(self, name: str) -> np.ndarray:
        """Function ``name``'s output rows for the images (computed once)."""
        if name not in self._outputs:
            self._outputs[name] = np.stack([
                self.vm[name](tvm.runtime.tensor(x[None])).numpy().reshape(-1)
                for x in self.batch])
        return self._outputs[name]


def _rewritten(table: dict) -> list[str]:
    """Operators that rewrite at least one site of the model: mutants worth building."""
    return [op_id for op_id, (_, applied) in table.items() if applied]


def _check_first_site_mutant(bank: MutantBank, op_id: str, expect_change: bool):
    assert [s.index for s in bank.reports[op_id].applied] == [0]
    original, mutant = bank.outputs("main"), bank.outputs(op_id)
    changed = int((original.argmax(axis=1) != mutant.argmax(axis=1)).sum())
    print(f"{op_id}: top-1 changed on {changed}/{len(original)} image(s)")
    differs = not np.allclose(mutant.astype(np.float64), original.astype(np.float64),
                              rtol=0, atol=1e-6)
    # A paper operator's first mutant changes the outputs; any other operator's changes them
    # too unless its rewrite left the module structurally equal (an equivalent mutant).
    assert differs if expect_change else (differs or bank.equivalent[op_id]), op_id


@pytest.fixture(scope="module")
def shufflenet_bank(default_model, default_images):
    return MutantBank(default_model, _rewritten(SHUFFLENET_SITES), default_images[:1])


@pytest.fixture(scope="module")
def tflite_bank(tflite_model, shared_fixtures):
    images = mn.load_images([shared_fixtures / "cat.bmp"])
    return MutantBank(tflite_model, _rewritten(TFLITE_SITES), images)


@pytest.mark.parametrize("op_id", _rewritten(SHUFFLENET_SITES))
def test_first_site_mutant_builds_and_runs_on_shufflenet(shufflenet_bank, op_id):
    _check_first_site_mutant(shufflenet_bank, op_id, expect_change=op_id in PAPER_OPERATORS)


@pytest.mark.parametrize("op_id", _rewritten(TFLITE_SITES))
def test_first_site_mutant_builds_and_runs_on_the_tflite_fixture(tflite_bank, op_id):
    _check_first_site_mutant(tflite_bank, op_id, expect_change=op_id in PAPER_OPERATORS)


def test_a_mutation_pass_slots_into_build(default_model, shufflenet_bank):
    """The same mutant through the project's build seam computes what the bank's does."""
    pass_ = mutation("relu_to_sigmoid", 0)
    artifact = mn.build(default_model, TARGET, relax_passes=[pass_])
    assert [s.index for s in pass_.report.applied] == [0]
    outputs, _ = artifact.run_array(shufflenet_bank.batch)
    np.testing.assert_allclose(outputs, shufflenet_bank.outputs("relu_to_sigmoid"),
                               rtol=1e-4, atol=1e-6)


def test_the_first_dense_site_of_shufflenet_is_skipped_not_built(default_model):
    pass_ = mutation("transpose_dense_input", 0)
    tvm.ir.assert_structural_equal(pass_(default_model.mod), default_model.mod)
    [(site, reason)] = pass_.report.skipped
    assert site.kind == "relax.matmul" and "[1, 544]" in reason
