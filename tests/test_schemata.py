"""Mutant schemata (`schemata`): mutants whose changed kernels are compiled together in one
library give bit-identical outputs to the same mutants built one at a time
(`build.build_incremental`), graph-level and kernel-level ones, on the embedded default model
and the quantized MobileNet fixture, at both kernel phases."""

from __future__ import annotations

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.build import build_incremental, prepare_original
from mutatenn_passes.errors import BuildError
from mutatenn_passes.images import preprocess
from mutatenn_passes.schemata import build_schema

# Deterministic kernel operators: each rewrites stores of one kernel (loop and condition
# mutants may read memory they should not, and differ from run to run: docs/campaign.md).
KERNEL_MUTANTS = [("store_f32_to_i8", 3), ("store_f32_to_f16", 5), ("store_mul_epsilon", 7),
                  ("store_f32_to_i16", 1), ("store_f32_to_bf16", 4), ("store_sub_epsilon", 0),
                  ("store_f32_to_i8", 9)]
GRAPH_MUTANTS = [("relu_to_sigmoid", 2), ("transpose_conv2d_input", 1),
                 ("add_to_subtract", 0)]


def _check(model, images, phase: str, graph=()) -> None:
    original = prepare_original(model, "llvm-x86-64")
    batch = preprocess(images, model.preprocess)
    mutants = [{"tir_passes": [mn.mutation(op, sites=[site], phase=phase)]}
               for op, site in KERNEL_MUTANTS]
    mutants += [{"relax_passes": [mn.mutation(op, sites=[site])]} for op, site in graph]
    schema = build_schema(original, mutants)
    assert schema.library is not None and len(schema.variants) == len(mutants)
    reference, _ = original.artifact.run_array(batch)
    for variant, mutant in zip(schema.variants, mutants):
        alone = build_incremental(original, **mutant)
        assert alone.record.mode.startswith("incremental")
        assert variant.record.mode.startswith("schema")
        assert variant.record.compiled == alone.record.compiled
        expected, _ = alone.run_array(batch)
        got, _ = variant.run_array(batch)
        assert np.array_equal(got, expected)
    assert not all(np.array_equal(v.run_array(batch)[0], reference) for v in schema.variants)


@pytest.mark.parametrize("phase", ["s_tir", "lowered"])
def test_schema_variants_equal_per_mutant_builds_on_the_default_model(default_model,
                                                                      default_images, phase):
    _check(default_model, default_images[:2], phase,
           graph=GRAPH_MUTANTS if phase == "s_tir" else ())


def test_schema_variants_equal_per_mutant_builds_on_the_fixture(shared_fixtures):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
    _check(model, mn.load_images([shared_fixtures / "cat.bmp"]), "s_tir",
           graph=[("add_to_subtract", 3), ("avg_pool_to_max_pool", 0)])


def test_kernels_of_equal_bodies_are_compiled_once_per_schema(default_model, default_images):
    """ReLUs 11 and 15 sit in two blocks of one ShuffleNet stage: replacing either changes
    its fused kernel into the same body, which the schema's library holds once."""
    original = prepare_original(default_model, "llvm-x86-64")
    batch = preprocess(default_images[:2], default_model.preprocess)
    mutants = [{"relax_passes": [mn.mutation("relu_to_sigmoid", sites=[site])]}
               for site in (11, 15)]
    schema = build_schema(original, mutants)
    changed = [v.record.compiled for v in schema.variants]
    assert len(changed[0]) == len(changed[1]) == 1
    symbols = [name for name in _library_functions(schema.library) if "__mutant" in name]
    # one body, compiled for the first mutant (its packed entry and its compute function),
    # called by both
    assert symbols and all("__mutant0" in name for name in symbols)
    for variant, mutant in zip(schema.variants, mutants):
        expected, _ = build_incremental(original, **mutant).run_array(batch)
        assert np.array_equal(variant.run_array(batch)[0], expected)


def _library_functions(library) -> list[str]:
    """The kernels a JIT-compiled LLVM library exports (from its LLVM IR)."""
    import re

    return re.findall(r"define [^@]*@([\w.]+)\(", library.inspect_source("ll"))


def test_a_schema_holds_mutants_of_one_phase(default_model):
    original = prepare_original(default_model, "llvm-x86-64")
    with pytest.raises(BuildError, match="one kernel phase"):
        build_schema(original, [
            {"tir_passes": [mn.mutation("store_f32_to_i8", sites=[0])]},
            {"tir_passes": [mn.mutation("store_f32_to_i8", sites=[0], phase="lowered")]}])


def test_a_worker_helping_with_another_workers_group_builds_its_tasks_alone():
    """At the end of a campaign an idle worker takes tasks of a group another worker owns:
    those come marked as shared (built on their own, not by compiling the group again)."""
    from mutatenn_passes.campaign.running.local_executor import _TaskQueue

    tasks = ["a1", "a2", "a3", "a4", "b1", "c1"]
    queue = _TaskQueue(tasks, lambda task: task[0] if task[0] != "c" else None)
    taken = [(0, *queue.next_for(0)), (1, *queue.next_for(1)), (1, *queue.next_for(1)),
             (1, *queue.next_for(1)), (0, *queue.next_for(0)), (1, *queue.next_for(1))]
    assert taken == [(0, "a1", False), (1, "b1", False), (1, "c1", False), (1, "a2", True),
                     (0, "a3", False), (1, "a4", True)]
    assert not queue
