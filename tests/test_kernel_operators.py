"""Kernel-level (TIR) mutation operators: exact rewrites of hand-written PrimFuncs, site
selection, skips with reasons, values that really change, and on ShuffleNet (the default model)
site counts, llvm/c/CUDA builds of mutants and the paper's findings.

The hand-written before/after kernels live in ``tests/kernel_cases`` (TVMScript needs real
source files); every rewrite is checked with ``tvm.ir.assert_structural_equal`` and
``verify_well_formed``.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import tvm

import mutatenn_passes as mn
from mutatenn_passes import OperatorError, Sample, find_sites, mutation
from mutatenn_passes.kernel_ir import kernel_module
from mutatenn_passes.selection import select
from tests.conftest import load_cases

TARGET = "llvm-x86-64"
#: Site-count tables are taken on TVM's own unscheduled lowering, which does not move when
#: mutatenn's schedule rules are tuned; builds and findings use the scheduled default.
NAIVE = "llvm-x86-64-naive"

COND = load_cases("kernel_cases", "conditions")
STORES = load_cases("kernel_cases", "stores_loops")
ARITH = load_cases("kernel_cases", "arith_types")

#: The paper's three kernel categories; the Hardware Faults operators have their own tests
#: (test_fault_operators.py).
KERNEL_OPERATORS = [s.id for s in mn.operators()
                    if s.level == "kernel" and s.category in mn.CATEGORIES[3:6]]
PAPER_OPERATORS = {"cond_lt_to_le", "cond_lt_to_gt", "cond_gt_to_lt", "cond_gt_to_ge",
                   "cond_threshold", "store_sub_epsilon", "store_mul_epsilon",
                   "loop_extent_dec", "loop_extent_inc", "loop_min_inc",
                   "thread_extent_change", "store_f32_to_f16", "store_f32_to_i32",
                   "store_f32_to_i16", "store_f32_to_i8"}


def _mutate(target, op_id, sites="all", **kwargs):
    """Run ``mutation(op_id, ...)`` on a PrimFunc (as module function ``kernel``) or a module;
    return the result and the pass's report."""
    mod = target if isinstance(target, tvm.IRModule) else tvm.IRModule({"kernel": target})
    pass_ = mutation(op_id, sites=sites, **kwargs)
    return pass_(mod), pass_.report


def _assert_same(actual: tvm.tirx.PrimFunc, expected: tvm.tirx.PrimFunc):
    """Structural equality up to the function's own name, and well-formedness (S-TIR's
    verifier for functions with blocks)."""
    tvm.ir.assert_structural_equal(actual.without_attr("global_symbol"),
                                   expected.without_attr("global_symbol"))
    verifier = tvm.s_tir.analysis if "T.sblock" in actual.script() else tvm.tirx.analysis
    assert verifier.verify_well_formed(actual)


# --- the catalogue -------------------------------------------------------------------------

def test_kernel_operators_are_registered_with_complete_specs():
    specs = [mn.get_operator(op_id) for op_id in KERNEL_OPERATORS]
    assert len(specs) == 21
    assert {s.id for s in specs if s.from_paper} == PAPER_OPERATORS
    assert {s.category for s in specs} == {"Conditional Statements",
                                          "Kernel Variables & Stores", "Arithmetic Types"}
    for spec in specs:
        assert spec.description and spec.finds and spec.rewrites, spec.id
        for method in ("find_sites", "apply", "coverage_total"):
            assert callable(getattr(spec.implementation, method)), (spec.id, method)


# --- Conditional Statements ----------------------------------------------------------------

@pytest.mark.parametrize("op_id,params,c1,c2,c3", COND.ALL_SITES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(COND.ALL_SITES)])
def test_condition_operator_rewrites_every_site(op_id, params, c1, c2, c3):
    out, report = _mutate(COND.kernel(), op_id, **params)
    _assert_same(out["kernel"], COND.kernel(c1, c2, c3))
    assert report.applied and not report.skipped
    assert len(report.applied) == len(report.sites_found)


@pytest.mark.parametrize("op_id,params,c1,c2,c3", COND.BY_KIND)
def test_condition_kinds_parameter_restricts_the_holders(op_id, params, c1, c2, c3):
    out, _ = _mutate(COND.kernel(), op_id, **params)
    _assert_same(out["kernel"], COND.kernel(c1, c2, c3))


def test_condition_sites_name_kernel_position_and_holder():
    sites = find_sites("cond_lt_to_le", tvm.IRModule({"kernel": COND.kernel()}))
    assert [(s.index, s.id, s.function, s.kind) for s in sites] == [
        (0, "kernel:0", "kernel", "IfThenElse"), (1, "kernel:1", "kernel", "if_then_else")]
    assert "i < 12" in sites[0].description and "IfThenElse" in sites[0].description
    negations = find_sites("cond_negate", tvm.IRModule({"kernel": COND.kernel()}))
    assert [s.kind for s in negations] == ["IfThenElse", "if_then_else", "Select"]


def test_greater_than_is_matched_as_written_not_mirrored():
    mod = tvm.IRModule({"kernel": COND.kernel()})
    # one '>' (A[i] > 0.5); the two '<' are not read as mirrored '>'
    assert [s.description.split(" in ")[0] for s in find_sites("cond_gt_to_lt", mod)] == \
        ["A[i] > T.float32(0.5)"]


@pytest.mark.parametrize("sites,c1,c2", [
    (1, COND.C1, "1 <= i and i <= 15"),
    ([0], "i <= 12 and i != 3", COND.C2),
    (range(0, 2), "i <= 12 and i != 3", "1 <= i and i <= 15"),
])
def test_condition_site_selection_by_index_list_and_range(sites, c1, c2):
    out, report = _mutate(COND.kernel(), "cond_lt_to_le", sites=sites)
    _assert_same(out["kernel"], COND.kernel(c1, c2))
    assert len(report.applied) == len(report.sites_selected)


def test_condition_site_selection_by_seeded_sample():
    out, report = _mutate(COND.kernel(), "cond_negate", sites=Sample(2, seed=7))
    picked = [s.index for s in report.applied]
    assert picked == [s.index for s in select(report.sites_found, Sample(2, seed=7))]
    negated = [f"not ({c})" if i in picked else c
               for i, c in enumerate((COND.C1, COND.C2, COND.C3))]
    _assert_same(out["kernel"], COND.kernel(*negated))
    again, _ = _mutate(COND.kernel(), "cond_negate", sites=Sample(2, seed=7))
    tvm.ir.assert_structural_equal(again, out)


def test_kernels_glob_filters_before_indexing():
    mod = tvm.IRModule({"conv2d_a": COND.kernel(), "relu_b": COND.kernel()})
    out, report = _mutate(mod, "cond_lt_to_le", sites=1, kernels="*relu*")
    assert {s.function for s in report.sites_found} == {"relu_b"}
    _assert_same(out["relu_b"], COND.kernel(COND.C1, "1 <= i and i <= 15"))
    tvm.ir.assert_structural_equal(out["conv2d_a"], mod["conv2d_a"])


def test_block_predicate_is_a_condition_before_lowering():
    mod = tvm.IRModule({"kernel": COND.tiled})
    (site,) = find_sites("cond_lt_to_le", mod)
    assert site.kind == "where"
    out, _ = _mutate(COND.tiled, "cond_lt_to_le")
    _assert_same(out["kernel"], COND.tiled_le)
    # every block also has the constant predicate True: not a decision to negate
    assert [s.kind for s in find_sites("cond_negate", mod)] == ["where"]
    assert find_sites("cond_lt_to_le", mod, kinds="if_then_else") == []


def test_threshold_moves_a_float_comparison_by_a_float_constant():
    before, after = COND.FLOAT_LT
    out, _ = _mutate(COND.kernel(c3=before), "cond_threshold", amount=0.25, kinds="Select")
    _assert_same(out["kernel"], COND.kernel(c3=after))


def test_threshold_skips_comparisons_without_a_threshold():
    out, report = _mutate(COND.kernel(c1="(i < 12) < (i < 3)"), "cond_threshold", sites=0,
                          kinds="IfThenElse")
    assert "type bool have no threshold" in report.skipped[0][1]
    tvm.ir.assert_structural_equal(out["kernel"], COND.kernel(c1="(i < 12) < (i < 3)"))


@pytest.mark.parametrize("op_id,params", [
    ("cond_lt_to_le", {"kinds": "while"}), ("cond_threshold", {"amount": 0}),
    ("store_sub_epsilon", {"epsilon": 0}), ("loop_extent_dec", {"amount": 0}),
    ("thread_extent_change", {"delta": 0}),
])
def test_bad_parameters_are_operator_errors_at_mutation(op_id, params):
    with pytest.raises(OperatorError, match=f"parameter {next(iter(params))}="):
        mutation(op_id, **params)


def test_a_kernel_operator_on_a_relax_module_says_to_use_tir_passes(default_model):
    relax_only = tvm.IRModule({"main": default_model.mod["main"]})
    with pytest.raises(OperatorError, match="cond_lt_to_gt is a kernel-level operator and this "
                                            "module holds only Relax functions: pass it in "
                                            r"build\(tir_passes="):
        mutation("cond_lt_to_gt", sites=[0, 3])(relax_only)
    with pytest.raises(OperatorError, match="cond_lt_to_gt is a kernel-level operator: pass it "
                                            "in tir_passes, not relax_passes"):
        mn.build(default_model, TARGET, relax_passes=[mutation("cond_lt_to_gt", 0)])


def test_explicit_indices_beyond_kernel_sites_stay_an_error():
    with pytest.raises(OperatorError, match=r"site index 9 is out of range: this operator "
                                            r"found \d+ site\(s\)"):
        _mutate(COND.kernel(), "cond_lt_to_le", sites=[0, 9])
    out, report = _mutate(COND.kernel(), "cond_lt_to_le", sites=[0, 9], kernels="nothing*")
    assert not report.applicable and "in kernels matching 'nothing*'" in report.note


# --- Kernel Variables & Stores: stores -----------------------------------------------------

@pytest.mark.parametrize("op_id,params,expected", [
    ("store_sub_epsilon", {}, STORES.store_sub_epsilon),
    ("store_mul_epsilon", {}, STORES.store_mul_epsilon),
    ("store_mul_epsilon", {"epsilon": 0.5}, STORES.store_mul_big_epsilon),
])
def test_store_epsilon_rewrites_float_stores_only(op_id, params, expected):
    out, report = _mutate(STORES.store, op_id, **params)
    _assert_same(out["kernel"], expected)
    assert [s.kind for s in report.sites_found] == ["float32"]  # the int32 store is no site
    assert report.coverage_total == 2


def _run_identity(op_id, values, **params):
    out, _ = _mutate(STORES.identity, op_id, **params)
    func = out["kernel"].with_attr("global_symbol", "main")
    lib = tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target({"kind": "llvm"}))
    a = np.asarray(values, dtype="float32")
    b = tvm.runtime.tensor(np.zeros_like(a))
    lib["main"](tvm.runtime.tensor(a), b)
    return a, b.numpy()


STORED = [0.0, 1e-6, 1e-40, 0.1, 1.0, 3.0, -2.5, 1e6]


def test_store_sub_epsilon_really_changes_the_stored_value():
    # the paper's float32 x - 1e-8 leaves x unchanged for most x ...
    assert np.float32(1.0) - np.float32(1e-8) == np.float32(1.0)
    a, b = _run_identity("store_sub_epsilon", STORED)
    # ... ours changes every value, and where 1e-8 is representable next to x it is exact
    assert np.all(b < a), (a, b)
    eps = np.float32(1e-8)
    np.testing.assert_array_equal(b[:3], a[:3] - eps)
    assert np.all(a[3:] - b[3:] <= 2 * np.spacing(np.abs(a[3:])))


def test_store_mul_epsilon_really_changes_every_nonzero_value():
    assert np.float32(1.00000001) == np.float32(1.0)  # the paper's factor, in float32
    values = [2.0 if v == 1e-40 else v for v in STORED]  # subnormals are too small to grow
    a, b = _run_identity("store_mul_epsilon", values)
    assert b[0] == 0.0  # no factor changes zero
    assert np.all(np.abs(b[1:]) > np.abs(a[1:])), (a, b)
    np.testing.assert_array_equal(b[1:], a[1:] * np.float32(1 + 2.0 ** -23))


# --- Kernel Variables & Stores: loops ------------------------------------------------------

@pytest.mark.parametrize("op_id,expected", [
    ("loop_extent_dec", STORES.loops_extent_dec),
    ("loop_extent_inc", STORES.loops_extent_inc),
    ("loop_min_inc", STORES.loops_min_inc),
])
def test_loop_bound_operators_rewrite_every_loop(op_id, expected):
    out, report = _mutate(STORES.loops, op_id)
    _assert_same(out["kernel"], expected)
    assert [s.description for s in report.sites_found] == [
        "for i in [0, 0 + 8) (serial)", "for j in [1, 1 + 3) (serial)"]


def test_loop_amount_and_skip_when_a_loop_is_too_short():
    out, _ = _mutate(STORES.loops, "loop_extent_dec", sites=1, amount=2)
    _assert_same(out["kernel"], STORES.loops_inner_dec_by_2)
    out, report = _mutate(STORES.loops, "loop_min_inc", amount=4)
    assert [s.index for s in report.applied] == [0]
    ((site, reason),) = report.skipped
    assert site.index == 1 and "runs 3 time(s)" in reason


def test_loop_min_inc_on_a_parallel_loop_shifts_its_body_and_builds():
    """A parallel loop must start at 0 (code generation fails otherwise, seen on a scheduled
    kernel's fused tile loop): it runs one iteration fewer and its body reads i + 1; the
    first row is skipped, as for a serial loop."""
    out, report = _mutate(STORES.parallel_rows, "loop_min_inc", sites=0)
    _assert_same(out["kernel"], STORES.parallel_rows_min_inc)
    assert report.applied[0].description == "for i in [0, 0 + 8) (parallel)"
    lib = tvm.compile(tvm.IRModule({"main": out["kernel"].with_attr("global_symbol", "main")}),
                      target=mn.get_profile(TARGET).tvm_target())
    a = tvm.runtime.tensor(np.ones((8, 4), "float32"))
    lib["main"](a)
    np.testing.assert_array_equal(a.numpy(), np.r_[np.ones((1, 4)), np.zeros((7, 4))])


@pytest.mark.parametrize("op_id", ["loop_extent_dec", "loop_min_inc"])
def test_a_vectorized_loop_keeps_one_iteration(op_id):
    """TVM cannot vectorize an empty loop, so emptying a vector loop is a mutant known not to
    build: skipped with the reason; the serial loop around it is still a site."""
    out, report = _mutate(STORES.vector_lane, op_id)
    assert [s.index for s in report.applied] == [0]
    ((site, reason),) = report.skipped
    assert site.kind == "vectorized" and "cannot lose them all" in reason


def test_thread_bindings_are_not_loop_sites():
    sites = find_sites("loop_extent_dec", tvm.IRModule({"kernel": STORES.bound}))
    assert [s.description for s in sites] == ["for k in [0, 0 + 4) (serial)"]
    out, report = _mutate(STORES.bound, "loop_extent_inc")
    assert report.coverage_total == 2 and len(report.applied) == 1
    assert "range(5)" in out["kernel"].script()


def test_thread_extent_change_resizes_kernel_and_launch():
    sites = find_sites("thread_extent_change", STORES.Launch)
    assert [(s.function, s.kind) for s in sites] == [("zero_kernel", "blockIdx.x"),
                                                    ("zero_kernel", "threadIdx.x")]
    out, report = _mutate(STORES.Launch, "thread_extent_change", sites=1)
    tvm.ir.assert_structural_equal(out, STORES.LaunchFewerThreads)
    assert [s.kind for s in report.applied] == ["threadIdx.x"]


def test_thread_extent_below_one_is_skipped():
    out, report = _mutate(STORES.Launch, "thread_extent_change", sites=0, delta=-2)
    assert "would launch 0" in report.skipped[0][1]
    tvm.ir.assert_structural_equal(out, STORES.Launch)


# --- Arithmetic Types ----------------------------------------------------------------------

ARITH_OPERATORS = ["store_f32_to_f16", "store_f32_to_i32", "store_f32_to_i16",
                   "store_f32_to_i8", "store_f32_to_bf16"]


@pytest.mark.parametrize("op_id", ARITH_OPERATORS)
def test_arith_type_operator_round_trips_float32_stores(op_id):
    out, report = _mutate(ARITH.store, op_id)
    _assert_same(out["kernel"], getattr(ARITH, op_id))
    assert [s.kind for s in report.sites_found] == ["float32"]  # the float16 store is no site
    assert report.coverage_total == 2


def test_arith_type_skips_out_of_range_constants_for_float16():
    out, report = _mutate(ARITH.pool_init, "store_f32_to_f16")
    ((site, reason),) = report.skipped
    assert site.index == 0 and "constant" in reason
    _assert_same(out["kernel"], ARITH.pool_init_f16)


def test_arith_type_bf16_rounds_a_stored_constant_at_mutation_time_for_cuda():
    # a literal has no address for CUDA to read its bits through: the constant is rounded here
    cuda = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    out, report = _mutate(ARITH.pool_init.with_attr("target", cuda), "store_f32_to_bf16",
                          sites=0)
    _assert_same(out["kernel"], ARITH.pool_init_bf16.with_attr("target", cuda))
    assert [s.index for s in report.applied] == [0]
    # elsewhere the constant stays a round trip (TVM's C backend cannot print -inf)
    out, _ = _mutate(ARITH.pool_init, "store_f32_to_bf16", sites=0)
    assert "T.reinterpret" in out["kernel"].script()
    bits = np.float32(-ARITH.FLT_MAX).view(np.uint32)
    rounded = np.uint32((int(bits) + 0x7FFF + ((int(bits) >> 16) & 1)) & 0xFFFF0000)
    assert rounded.view(np.float32) == -np.inf  # the same rounding on the bits, by numpy


def test_arith_type_vector_store_and_second_application():
    out, _ = _mutate(ARITH.vector, "store_f32_to_f16")
    _assert_same(out["kernel"], ARITH.vector_f16)
    again, report = _mutate(out, "store_f32_to_f16")
    assert "already round-trips through float16" in report.skipped[0][1]
    tvm.ir.assert_structural_equal(again, out)


def test_arith_type_values_truncate_and_saturate():
    values = [2.7, -2.7, 1e10, -1e10, np.nan, 200.5, 65519.0, 1e-3]
    out, _ = _mutate(STORES.identity, "store_f32_to_i8")
    i8 = _compile_identity(out)(values)
    np.testing.assert_array_equal(i8, [2, -2, 127, -128, 0, 127, 127, 0])
    out, _ = _mutate(STORES.identity, "store_f32_to_f16")
    f16 = _compile_identity(out)(values)
    np.testing.assert_array_equal(f16[[0, 5, 7]], np.float32(np.float16(np.float32(
        [2.7, 200.5, 1e-3]))))
    assert np.isinf(f16[2]) and np.isnan(f16[4]) and f16[6] == 65504.0


def _compile_identity(mod):
    func = mod["kernel"].with_attr("global_symbol", "main")
    lib = tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target({"kind": "llvm"}))

    def run(values):
        a = np.asarray(values, dtype="float32")
        b = tvm.runtime.tensor(np.zeros_like(a))
        lib["main"](tvm.runtime.tensor(a), b)
        return b.numpy()

    return run


# --- the default model (ShuffleNet) ---------------------------------------------------------

def _counts(specs: str):
    """``"op=n op=n ..."`` as a dict (the tables below stay one line per category)."""
    return {op: int(n) for op, n in (item.split("=") for item in specs.split())}


_ARITH_AND_STORES = ("store_f32_to_f16=202 store_f32_to_i32=202 store_f32_to_i16=202 "
                     "store_f32_to_i8=202 store_f32_to_bf16=202 "
                     "store_sub_epsilon=202 store_mul_epsilon=202 thread_extent_change=0 ")
_COMPARISONS = ("cond_lt_to_le=22 cond_lt_to_gt=22 cond_threshold=22 cond_le_to_lt=25 "
                "cond_gt_to_lt=0 cond_gt_to_ge=0 cond_ge_to_gt=0 cond_ne_to_eq=0 ")
#: Sites on ShuffleNet for llvm-x86-64-naive, per phase (TVM 0.27's unscheduled CPU build).
SITES = {
    "s_tir": _counts(_ARITH_AND_STORES + _COMPARISONS + "cond_eq_to_ne=3 cond_negate=17 "
                     "loop_extent_dec=709 loop_extent_inc=709 loop_min_inc=709"),
    "lowered": _counts(_ARITH_AND_STORES + _COMPARISONS + "cond_eq_to_ne=41 cond_negate=42 "
                       "loop_extent_dec=427 loop_extent_inc=427 loop_min_inc=427"),
}


@pytest.fixture(scope="module")
def kernels(default_model):
    return {phase: kernel_module(default_model, NAIVE, phase) for phase in SITES}


@pytest.mark.parametrize("phase", list(SITES))
def test_site_counts_on_the_default_model(kernels, phase):
    counts = {op: len(find_sites(op, kernels[phase])) for op in KERNEL_OPERATORS}
    assert counts == SITES[phase]


@pytest.mark.parametrize("phase", list(SITES))
def test_every_site_of_every_operator_keeps_the_model_well_formed(kernels, phase):
    verify = tvm.s_tir.analysis if phase == "s_tir" else tvm.tirx.analysis
    for op in KERNEL_OPERATORS:
        if SITES[phase][op]:
            pass_ = mutation(op, phase=phase)
            mutated = pass_(kernels[phase])
            assert not mutated.same_as(kernels[phase]), op
            assert verify.verify_well_formed(mutated), op


def test_native_and_python_number_the_same_stores(kernels):
    for phase, mod in kernels.items():
        python = [(s.id, s.kind, s.description) for s in find_sites("store_sub_epsilon", mod)]
        native_ = [(s.id, s.kind, s.description) for s in find_sites("store_f32_to_i8", mod)]
        assert python == native_, phase


def _loop_range(description: str) -> tuple[int, int]:
    low, high = description.split("[")[1].split(")")[0].split(", ")
    return int(low), int(high.split(" + ")[1])


@pytest.mark.parametrize("phase", list(SITES))
def test_one_site_mutants_of_every_operator_build_for_llvm(default_model, kernels, phase):
    """One build per phase holds a one-site mutant of every operator with sites in the
    scheduled kernels there."""
    scheduled = kernel_module(default_model, TARGET, phase)
    ops = [op for op in KERNEL_OPERATORS if find_sites(op, scheduled)]
    passes = [mutation(op, sites=Sample(1, seed=i), phase=phase) for i, op in enumerate(ops)]
    artifact = mn.build(default_model, TARGET, tir_passes=passes)
    assert artifact.executable is not None
    for p in passes:
        assert len(p.report.applied) + len(p.report.skipped) == 1, p.spec.id
        assert all(reason for _, reason in p.report.skipped), p.spec.id
    # loop mutants are not run (an extra iteration may write out of bounds): check the IR
    mutated = artifact.record.tir[phase]
    expected = {"loop_extent_dec": (0, -1), "loop_extent_inc": (0, 1), "loop_min_inc": (1, -1)}
    for p in passes:
        if p.spec.id in expected:
            (site,) = p.report.applied
            low, extent = _loop_range(site.description)
            after = find_sites(p.spec.id, mutated)[site.index]
            d_low, d_extent = expected[p.spec.id]
            if "(parallel)" in site.description:  # starts at 0, its body shifts (MinInc)
                d_low = 0
            assert _loop_range(after.description) == (low + d_low, extent + d_extent)


def test_mutants_build_for_the_c_target(default_model, tmp_path):
    cond = mutation("cond_lt_to_le", sites=0)
    bf16 = mutation("store_f32_to_bf16", sites=range(0, 202, 7), phase="lowered")
    sub = mutation("store_sub_epsilon", sites=Sample(3, seed=1))
    f16 = mutation("store_f32_to_f16", sites=[5, 6])
    artifact = mn.build(default_model, "c", tir_passes=[cond, bf16, sub, f16])
    assert cond.report.applied and bf16.report.applied and sub.report.applied
    # C has no half type: TVM's C backend cannot express a float16 round trip
    assert not f16.report.applied
    assert all("C backend" in reason for _, reason in f16.report.skipped)
    assert artifact.export(tmp_path / "mutant.so").is_file()  # the C compiler accepts it


def _cuda_kernel_text(artifact, name: str) -> str:
    """The body of CUDA kernel ``name`` in the artifact's generated device source."""
    (source,) = [text for key, text in artifact.sources().items() if key.endswith("cuda")]
    return re.search(r"__global__ void[^\n]*\b%s\([^\n]*\) \{\n(.*?)\n\}\n" % name, source,
                     re.S).group(1)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_cuda_mutants_show_the_mutation_in_the_generated_source(default_model):
    # the first site of conv2d2 is the bounds guard `fused < 87808` of its init block
    cond = mutation("cond_lt_to_le", sites=0, kernels="conv2d2")
    artifact = mn.build(default_model, "cuda-sm90", tir_passes=[cond])
    assert cond.report.applied[0].kind == "where"
    assert "+ ((int)threadIdx.x)) <= 87808)" in _cuda_kernel_text(artifact, "conv2d2_kernel")

    # launch sizes exist only in the lowered CUDA kernels
    lowered = artifact.record.tir["lowered"]
    sites = find_sites("thread_extent_change", lowered, kernels="conv2d2_kernel")
    assert [(s.kind, s.description) for s in sites] == [
        ("blockIdx.x", "blockIdx.x launches 86"), ("threadIdx.x", "threadIdx.x launches 1024")]
    resized, report = _mutate(lowered, "thread_extent_change", sites=0,
                              kernels="conv2d2_kernel")
    assert "blockIdx.x\", 85)" in resized["conv2d2_kernel"].script()
    assert "85, 1024, launch_params" in resized["conv2d2"].script()

    # the first store that is not of a constant (those round-trip to themselves)
    stores = find_sites("store_f32_to_i8", kernel_module(default_model, "cuda-sm90", "s_tir"),
                        kernels="conv2d2")
    first = next(i for i, s in enumerate(stores) if "constant" not in s.description)
    i8 = mutation("store_f32_to_i8", sites=first, kernels="conv2d2")
    text = _cuda_kernel_text(mn.build(default_model, "cuda-sm90", tir_passes=[i8]),
                             "conv2d2_kernel")
    assert "((float)((signed char)((v != v) ? 0x0p+0f" in text  # NaN to 0, then saturate
    assert "min(max(v, -0x1p+7f" in text


# --- the quantized MobileNet fixture --------------------------------------------------------

#: Sites on mobilenet_v1_0.25_128_quant.tflite for llvm-x86-64-naive at s_tir (float32 kernels: dequantize,
#: float convolutions, requantize; the integer stores are no store sites).
FIXTURE_SITES = _counts(
    "store_f32_to_f16=146 store_f32_to_i32=146 store_f32_to_i16=146 store_f32_to_i8=146 "
    "store_f32_to_bf16=146 store_sub_epsilon=146 store_mul_epsilon=146 thread_extent_change=0 "
    "cond_lt_to_le=20 cond_lt_to_gt=20 cond_threshold=20 cond_le_to_lt=20 cond_gt_to_lt=0 "
    "cond_gt_to_ge=0 cond_ge_to_gt=0 cond_ne_to_eq=0 cond_eq_to_ne=0 cond_negate=10 "
    "loop_extent_dec=568 loop_extent_inc=568 loop_min_inc=568")


def test_site_counts_and_a_mutant_build_on_the_quantized_fixture(shared_fixtures):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
    mod = kernel_module(model, NAIVE, "s_tir")
    assert {op: len(find_sites(op, mod)) for op in KERNEL_OPERATORS} == FIXTURE_SITES
    passes = [mutation("store_f32_to_i8", sites=Sample(4, seed=2)),
              mutation("cond_le_to_lt", sites=Sample(2, seed=2))]
    assert mn.build(model, TARGET, tir_passes=passes).executable is not None
    assert [len(p.report.applied) for p in passes] == [4, 2]


# --- the paper's findings -------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline_predictions(default_model, default_images):
    return mn.build(default_model, TARGET).run(default_images)


def test_int8_stores_everywhere_collapse_predictions_to_one_class(
        default_model, default_images, baseline_predictions):
    assert len(set(baseline_predictions.top1())) > 1
    mutant = mn.build(default_model, TARGET, tir_passes=[mutation("store_f32_to_i8")])
    assert len(set(mutant.run(default_images).top1())) == 1


def test_a_conditional_mutant_changes_outputs(default_model, default_images,
                                              baseline_predictions):
    mutant = mn.build(default_model, TARGET, tir_passes=[mutation("cond_lt_to_le")])
    outputs = mutant.run(default_images).outputs
    assert np.abs(outputs - baseline_predictions.outputs).max() > 1e-4
