"""Mutant schemata (`schemata`): kernel mutants compiled together in one library and run by
switching kernels give bit-identical outputs to the same mutants built one at a time
(`build.build_incremental`), on the embedded default model and the quantized MobileNet fixture,
at both kernel phases; the original's kernels are restored between variants."""

from __future__ import annotations

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes.build import build_incremental, prepare_original
from mutatenn_passes.errors import BuildError
from mutatenn_passes.images import preprocess
from mutatenn_passes.schemata import build_schema

# Deterministic operators: each rewrites stores of one kernel (loop and condition mutants may
# read memory they should not, and differ from run to run: docs/campaign.md).
MUTANTS = [("store_f32_to_i8", 3), ("store_f32_to_f16", 5), ("store_mul_epsilon", 7),
           ("store_f32_to_i16", 1), ("store_f32_to_bf16", 4), ("store_sub_epsilon", 0),
           ("store_f32_to_i8", 9)]


def _check(model, images, phase: str) -> None:
    original = prepare_original(model, "llvm-x86-64")
    batch = preprocess(images, model.preprocess)
    passes = [[mn.mutation(op, sites=[site], phase=phase)] for op, site in MUTANTS]
    schema = build_schema(original, passes)
    assert schema.library is not None and len(schema.switched) >= 2
    reference, _ = original.artifact.run_array(batch)
    for variant, mutant_passes in zip(schema.variants, passes):
        alone = build_incremental(original, tir_passes=mutant_passes)
        assert variant.record.compiled == alone.record.compiled
        expected, _ = alone.run_array(batch)
        got, _ = variant.run_array(batch)
        assert np.array_equal(got, expected)
    assert not all(np.array_equal(v.run_array(batch)[0], reference) for v in schema.variants)


@pytest.mark.parametrize("phase", ["s_tir", "lowered"])
def test_schema_variants_equal_per_mutant_builds_on_the_default_model(default_model,
                                                                      default_images, phase):
    _check(default_model, default_images[:2], phase)


def test_schema_variants_equal_per_mutant_builds_on_the_fixture(shared_fixtures):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
    _check(model, mn.load_images([shared_fixtures / "cat.bmp"]), "s_tir")


def test_a_schema_holds_mutants_of_one_phase(default_model):
    original = prepare_original(default_model, "llvm-x86-64")
    with pytest.raises(BuildError, match="one phase"):
        build_schema(original, [[mn.mutation("store_f32_to_i8", sites=[0])],
                                [mn.mutation("store_f32_to_i8", sites=[0], phase="lowered")]])
