"""The lowering caches (`schedule.legalize_cache`, `schedule.cache`, the constant memos of
`FoldConstants` and `PackConvWeights`) change only the cost of a
lowering, never its result: a graph mutant lowered after its original (the caches warm) is
structurally equal to the same mutant lowered with nothing cached, on the embedded default
model and on the quantized MobileNet fixture, and the caches were really used."""

from __future__ import annotations

import pytest
import tvm
import tvm_ffi

import mutatenn_passes as mn
from mutatenn_passes.schedule import cache, fold_constants, legalize_cache, weight_layout
from mutatenn_passes.schedule import scheduled_cpu_pipeline
from mutatenn_passes.targets import get_profile

TARGET = "llvm-x86-64"


def _lower(mod: tvm.IRModule, cached: bool = True) -> tvm.IRModule:
    """The scheduled CPU lowering, with every cache or none."""
    target = get_profile(TARGET).tvm_target()
    with pytest.MonkeyPatch.context() as env:
        if not cached:
            env.setenv(legalize_cache.CACHE_ENV, "0")
        with tvm.transform.PassContext(opt_level=3), target:
            return scheduled_cpu_pipeline(target)(mod)


def _memoized() -> int:
    return len(fold_constants._folded) + len(weight_layout._packed)


def _check(model, op_id: str, site: int) -> None:
    cache.clear()
    legalize_cache.clear()
    fold_constants._folded.clear()
    weight_layout._packed.clear()
    original = _lower(model.mod)
    assert legalize_cache.cached_calls() > 0 and cache.cached_kernels() > 0
    assert _memoized() > 0
    assert tvm_ffi.structural_equal(original, _lower(model.mod, cached=False))

    mutated = mn.mutation(op_id, sites=[site])(model.mod)
    calls, kernels, memoized = legalize_cache.cached_calls(), cache.cached_kernels(), _memoized()
    cached = _lower(mutated)
    # the mutant added what it changed, not the whole model again
    assert 0 < legalize_cache.cached_calls() - calls < calls / 4
    assert 0 < cache.cached_kernels() - kernels < kernels / 4
    assert _memoized() - memoized < memoized / 4  # its constants are its original's
    assert not tvm_ffi.structural_equal(cached, original)
    tvm.ir.assert_structural_equal(cached, _lower(mutated, cached=False))


@pytest.mark.parametrize("op_id, site", [("relu_to_sigmoid", 3), ("transpose_conv2d_input", 1),
                                         ("exp_before_batch_norm", 2)])
def test_cached_lowering_of_a_graph_mutant_equals_an_uncached_one(default_model, op_id, site):
    _check(default_model, op_id, site)


@pytest.mark.parametrize("op_id", ["add_to_subtract", "avg_pool_to_max_pool"])
def test_cached_lowering_equals_uncached_on_the_quantized_fixture(shared_fixtures, op_id):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
    _check(model, op_id, 0)


@pytest.mark.parametrize("op_id", [None, "relu_to_sigmoid"])
def test_unscheduled_lowering_with_cached_legalization_equals_tvms(default_model, monkeypatch,
                                                                    op_id):
    """Unscheduled profiles lower with TVM's default build pipeline; legalizing first through
    the cache leaves it the same module."""
    from mutatenn_passes.kernel_ir import lower_relax
    from mutatenn_passes.schedule.legalize_cache import CACHE_ENV

    profile = get_profile("llvm-x86-64-naive")
    mod = default_model.mod if op_id is None else mn.mutation(op_id, sites=[3])(default_model.mod)
    legalize_cache.clear()
    with tvm.transform.PassContext(opt_level=3):
        lower_relax(default_model.mod, profile)  # the original fills the cache
        cached = lower_relax(mod, profile)
        assert legalize_cache.cached_calls() > 0
        monkeypatch.setenv(CACHE_ENV, "0")
        plain = lower_relax(mod, profile)
    tvm.ir.assert_structural_equal(cached, plain)
