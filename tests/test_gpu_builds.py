"""CUDA builds of kernel mutants: TVM's code generation, then nvcc compiling the kernels (nothing
runs: no GPU is needed, only nvcc).

A tiny ONNX model made here (convolution, max pooling, global average pooling, softmax) holds
the GPU cases that used to fail: cross-thread reductions (the mean, softmax's maximum and sum),
whose stores and predicates TVM's ``LowerCrossThreadReduction`` only recognises unmutated, and
vectorized stores after lowering.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tvm

import mutatenn_passes as mn
from mutatenn_passes import BuildError, Sample, find_sites, mutation
from mutatenn_passes.device_code import compile_device_code
from mutatenn_passes.kernel_ir import (bind_target, kernel_module, lower_cross_thread_reductions,
                                       lower_relax, tir_part)
from mutatenn_passes.targets import get_profile

NVCC, NO_NVCC = get_profile("cuda-sm90").can_build()
needs_nvcc = pytest.mark.skipif(not NVCC, reason=NO_NVCC)
ALLREDUCE = "T.tvm_thread_allreduce"


def _tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["m"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Softmax", ["f"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return mn.load_model(_tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx"))


@pytest.fixture(scope="module")
def s_tir(tiny):
    return kernel_module(tiny, "cuda-sm90", "s_tir")


def _cuda_source(artifact) -> str:
    (source,) = [text for key, text in artifact.sources().items() if key.endswith("cuda")]
    return source


def test_gpu_kernels_reach_s_tir_with_cross_thread_reductions_lowered(tiny, s_tir):
    assert ALLREDUCE in s_tir["softmax"].script() and ALLREDUCE in s_tir["mean"].script()
    assert ALLREDUCE not in kernel_module(tiny, "llvm-x86-64", "s_tir").script()
    # TVM's lowering of what s_tir passes see is exactly its lowering of the scheduled kernels
    profile = get_profile("cuda-sm90")
    lower, _, _ = tvm.tirx.get_default_tir_pipeline(profile.tvm_target())
    with tvm.transform.PassContext(opt_level=3):
        scheduled = bind_target(tir_part(lower_relax(tiny.mod, profile)), profile)
        tvm.ir.assert_structural_equal(
            lower(lower_cross_thread_reductions(scheduled, profile.tvm_target())),
            lower(scheduled))


def test_a_reduction_store_mutated_before_that_lowering_is_rejected_by_tvm(tiny):
    """Why the phase moved: TVM finds no reducer in a mutated cross-thread reduction."""
    profile = get_profile("cuda-sm90")
    lower, _, _ = tvm.tirx.get_default_tir_pipeline(profile.tvm_target())
    with tvm.transform.PassContext(opt_level=3):
        scheduled = bind_target(tir_part(lower_relax(tiny.mod, profile)), profile)
        mutated = mutation("store_sub_epsilon", kernels="softmax")(scheduled)
        with pytest.raises(Exception, match="No matched reducer"):
            lower(tvm.IRModule({gv: f for gv, f in mutated.functions_items()
                                if gv.name_hint == "softmax"}))


@needs_nvcc
def test_reduction_stores_predicates_and_loops_are_handled_for_cuda(tiny, s_tir):
    """The issue's failures, now sites that build: every store of softmax's and the mean's
    cross-thread reductions (in-thread init and update, write-back), the predicates of
    softmax's reduction blocks, and the loops around the mean's allreduce (kept rolled)."""
    stores = find_sites("store_f32_to_i8", s_tir, kernels="softmax")
    assert [s.description.split(" (")[0] for s in stores[:3]] == [
        "store to in_thread_T_softmax_maxelem_shared[0]",
        "store to in_thread_T_softmax_maxelem_shared[0]",
        "store to T_softmax_maxelem_shared[T.int64(0)]"]
    loops = find_sites("loop_extent_inc", s_tir, kernels="mean")
    passes = [mutation("store_f32_to_i8", kernels="softmax"),
              mutation("store_sub_epsilon", kernels="mean"),
              mutation("cond_threshold", kernels="softmax", sites=[0]),  # maximum's predicate
              mutation("cond_lt_to_le", kernels="softmax", sites=[1]),   # sum's predicate
              mutation("loop_extent_inc", kernels="mean")]
    artifact = mn.build(tiny, "cuda-sm90", tir_passes=passes)
    assert [len(p.report.applied) for p in passes] == [7, 4, 1, 1, len(loops)]
    assert not any(p.report.skipped for p in passes)
    source = _cuda_source(artifact)
    assert "(double)" in source and "signed char" in source  # float64 threshold, int8 stores
    # the loop around the allreduce runs twice, rolled: unrolled, TVM could not lower it
    mean = artifact.record.tir["s_tir"]["mean"].script()
    assert re.search(r"for ax1_fused in T.serial\(T.int64\(2\), annotations="
                     r"\{\"pragma_auto_unroll_max_step\": 0\}\)", mean), mean


#: One operator of each kernel category, and where it runs.
CATEGORIES = [
    ("cond_lt_to_gt", "s_tir", "cuda-sm80"),        # Conditional Statements
    ("store_mul_epsilon", "s_tir", "cuda-sm90"),    # Kernel Variables & Stores
    ("thread_extent_change", "lowered", "cuda-sm80"),
    ("store_f32_to_f16", "s_tir", "cuda-sm90"),     # Arithmetic Types
]


@pytest.fixture(scope="module")
def original_source(tiny):
    """The CUDA source of the unmutated tiny model per target, built once."""
    return functools.cache(lambda target: _cuda_source(mn.build(tiny, target)))


@needs_nvcc
@pytest.mark.parametrize("op_id,phase,target", CATEGORIES)
def test_a_cuda_mutant_of_each_kernel_category_builds_with_nvcc(tiny, original_source, op_id,
                                                               phase, target):
    p = mutation(op_id, sites=Sample(2, seed=1), phase=phase)
    source = _cuda_source(mn.build(tiny, target, tir_passes=[p]))
    assert p.report.applied
    assert source != original_source(target)  # the mutation reached the compiled kernels


@needs_nvcc
def test_vector_stores_of_cuda_kernels_skip_the_nan_tested_round_trips(tiny):
    lowered = kernel_module(tiny, "cuda-sm80", "lowered")
    i8 = mutation("store_f32_to_i8", phase="lowered")
    f16 = mutation("store_f32_to_f16", phase="lowered")
    mn.build(tiny, "cuda-sm80", tir_passes=[i8, f16])
    vectors = {s.index for s in find_sites("store_f32_to_i8", lowered) if "x" in s.kind}
    assert vectors and {s.index for s, _ in i8.report.skipped} == vectors
    assert all("CUDA's vector types" in reason for _, reason in i8.report.skipped)
    assert vectors <= {s.index for s in f16.report.applied}  # a float16 cast has no NaN test


def _load_cuda_cases():
    path = Path(__file__).parent / "kernel_cases" / "cuda.py"
    spec = importlib.util.spec_from_file_location("kernel_cases_cuda", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # TVMScript reads the source
    spec.loader.exec_module(module)
    return module


@needs_nvcc
def test_cuda_code_nvcc_rejects_is_a_build_error():
    """TVM generates this kernel without complaint; only nvcc sees that it is not CUDA."""
    target = get_profile("cuda-sm80").tvm_target()
    executable = tvm.compile(_load_cuda_cases().VectorNaN, target=target)
    with pytest.raises(BuildError, match=r"nvcc rejects .*: tvm_kernels.cu\(\d+\): error: "
                                         r"no operator \"!=\""):
        compile_device_code(executable, target)
