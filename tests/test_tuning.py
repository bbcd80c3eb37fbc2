"""Opt-in tuning (`mutatenn tune`, ``schedule = "tuned"``): sampled schedules compute what the
unscheduled kernel computes, a rerun finds its kernels in the cache, a tuned profile builds
the rules' kernels until a kernel is tuned and the tuned kernel once it is, and a candidate
that crashes or fails in the worker costs that candidate only. Real builds, real worker
processes; one kernel of the default model, a few candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tvm
import tvm_ffi

import mutatenn_passes as mn
from mutatenn_passes.cli import main
from mutatenn_passes.errors import TargetError
from mutatenn_passes.kernel_ir import kernel_module
from mutatenn_passes.mutation import find_sites
from mutatenn_passes.schedule.tuning.measure import (Job, Measurer, mismatch,
                                                     random_arguments)
from mutatenn_passes.schedule.tuning.space import Candidate, DesignSpace
from mutatenn_passes.schedule.tuning.store import DIR_ENV, TuningRecord, TuningStore
from mutatenn_passes.schedule.tuning.tuner import (Baseline, Kernel, Progress, model_kernels,
                                                   parse_budget, tune_kernel, tune_model)
from mutatenn_passes.targets import parse_profile

TARGET = "llvm-x86-64"
TUNED = "llvm-x86-64-tuned"
TRIALS = 3


@pytest.fixture(scope="module")
def kernel(default_model):
    """The default model's first convolution kernel."""
    kernels = model_kernels(default_model, mn.get_profile(TARGET).tvm_target())
    return next(k for k in kernels if "conv2d" in k.name)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return TuningStore(tmp_path_factory.mktemp("tuning"))


@pytest.fixture(scope="module")
def first_run(default_model, kernel, store):
    return tune_model(default_model, mn.get_profile(TARGET), budget_s=300, trials=TRIALS,
                      seed=3, store=store, pattern=kernel.name)


def test_tuning_measures_the_candidates_and_records_the_kernel(first_run, kernel, store):
    [report] = first_run
    assert (report.name, report.tried, report.cached, report.error) == \
        (kernel.name, TRIALS, False, "")
    assert report.failed < TRIALS and 0 < report.tuned_ms <= report.rules_ms
    record = store.get(kernel.key)
    assert (record.kernel, record.seed, record.tried, record.tvm_version) == \
        (kernel.name, 3, TRIALS, tvm.__version__)
    json.loads(store.path(kernel.key).read_text())  # a plain JSON file


def test_a_second_run_hits_the_cache_and_tries_nothing(first_run, default_model, kernel,
                                                       store):
    [again] = tune_model(default_model, mn.get_profile(TARGET), budget_s=300, trials=TRIALS,
                         seed=3, store=store, pattern=kernel.name)
    assert (again.cached, again.tried, again.rules_ms) == (True, 0, first_run[0].rules_ms)


def _run(func, target, arrays):
    lib = tvm.compile(tvm.IRModule({"main": func}), target=target)
    args = [tvm.runtime.tensor(a) for a in arrays]
    lib["main"](*args)
    return [a.numpy() for a in args]


def _samples(kernel) -> list[Candidate]:
    """One sample of each of the kernel's design spaces."""
    space = DesignSpace(kernel.func, mn.get_profile(TARGET).tvm_target())
    samples = [space.sample(i, 1 + i) for i in range(len(space.spaces))]
    assert samples and all(s is not None for s in samples)
    return samples


def test_sampled_schedules_compute_what_the_unscheduled_kernel_does(kernel):
    target = mn.get_profile(TARGET).tvm_target()
    arrays = random_arguments(kernel.func, seed=5)
    expected = _run(kernel.func.with_attr("global_symbol", "main"), target, arrays)
    for sample in _samples(kernel):
        func = tvm.script.from_source(sample.script)
        assert not tvm_ffi.structural_equal(func, kernel.func)  # it was scheduled
        assert mismatch(_run(func, target, arrays), expected) == ""


def _kernels(profile: str, model, phase="s_tir") -> dict:
    return {gv.name_hint: f for gv, f in kernel_module(model, profile, phase).functions_items()}


def test_a_tuned_profile_with_an_empty_cache_builds_the_rules_kernels(default_model,
                                                                       monkeypatch, tmp_path):
    monkeypatch.setenv(DIR_ENV, str(tmp_path / "empty"))
    assert mn.get_profile(TUNED).schedule == "tuned"
    tuned, rules = _kernels(TUNED, default_model), _kernels(TARGET, default_model)
    assert tuned.keys() == rules.keys()
    for name, func in rules.items():
        tvm.ir.assert_structural_equal(tuned[name], func)


def test_a_tuned_kernel_is_what_is_built_and_mutated(default_model, kernel, monkeypatch,
                                                     tmp_path, default_images):
    sample = _samples(kernel)[-1]
    func = tvm.script.from_source(sample.script)
    TuningStore(tmp_path).put(TuningRecord(
        kernel.key, kernel.name, str(mn.get_profile(TARGET).tvm_target()), seed=0,
        rules_ms=1.0, tuned_ms=0.5, tried=1, failed=0, script=sample.script,
        scheduled_hash=tvm_ffi.structural_hash(func), space=sample.space,
        schedule_seed=sample.seed))
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    tuned, rules = _kernels(TUNED, default_model), _kernels(TARGET, default_model)
    tvm.ir.assert_structural_equal(tuned[kernel.name].body, func.body)
    assert not tvm_ffi.structural_equal(rules[kernel.name].body, func.body)
    for name in set(rules) - {kernel.name}:
        tvm.ir.assert_structural_equal(tuned[name], rules[name])
    tuned_module = kernel_module(default_model, TUNED)
    for op in ("store_f32_to_i8", "loop_extent_dec"):
        assert find_sites(op, tuned_module, kernels=kernel.name), op
    images = default_images[:2]
    got = mn.build(default_model, TUNED).run(images).outputs
    want = mn.build(default_model, TARGET).run(images).outputs
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


KERNEL_HEAD = '''# from tvm.script import tirx as T
@T.prim_func(s_tir=True)
def main(A: T.Buffer((16,), "float32"), B: T.Buffer((16,), "float32")):
    T.func_attr({"tirx.noalias": True, "global_symbol": "main"})
'''
BODY = '''{loops}
            with T.sblock("B"):
                v_i = T.axis.spatial(16, {index})
                T.reads(A[v_i])
                T.writes(B[v_i])
                B[v_i] = A[v_i] * T.float32(2.0){extra}
'''


def _tiny(loops="    for i in range(16):\n        for j in range(1):", index="i + j", extra=""):
    return KERNEL_HEAD + BODY.format(loops=loops, index=index, extra=extra)


def test_a_candidate_that_crashes_or_fails_costs_only_itself():
    good = _tiny()
    # abort() in the generated code kills the worker; nested parallel loops make TVM's code
    # generation raise ("Nested parallel loop is not supported by threadpool")
    crash = _tiny(extra=' + T.Cast("float32", T.call_extern("int32", "abort"))')
    nested = _tiny(loops="    for i in T.parallel(4):\n        for j in T.parallel(4):",
                   index="i * 4 + j")
    func = tvm.script.from_source(good)
    job = Job(good, {"kind": "llvm"}, input_seed=1)
    with Measurer() as measurer:
        rules = measurer.measure(job, timeout=60)
        assert rules.ok, rules.error
        base = Baseline(Kernel("tiny", func, "tiny"), Candidate(good), rules, round_trip=1.0)
        candidates = [Candidate(crash, 0, 1), Candidate(nested, 0, 2), None,
                      Candidate(_tiny(loops="    for i in T.vectorized(16):\n"
                                            "        for j in range(1):"), 0, 3)]
        best, rules_s, best_s, tried, failed = tune_kernel(
            base, candidates, measurer, job, deadline=float("inf"), progress=Progress())
        assert (tried, failed, measurer.restarts) == (4, 3, 1)
        assert best is None or best.seed == 3
        assert 0 < best_s <= rules_s
        outcome = measurer.measure(Job(nested, {"kind": "llvm"}, 1, rules.arguments), 60)
        assert "Nested parallel loop" in outcome.error


def test_budgets_parse_and_bad_ones_are_refused():
    assert [parse_budget(t) for t in ("10m", "90s", "1.5h", "600")] == [600, 90, 5400, 600]
    for bad in ("10x", "", "-1m", "0"):
        with pytest.raises(mn.MutateNNError, match="--budget"):
            parse_budget(bad)


@pytest.mark.parametrize("argv, message", [
    (["--budget", "ten minutes"], "--budget 'ten minutes'"),
    (["--target", "llvm-avx3"], "unknown target 'llvm-avx3'; did you mean"),
    (["--target", "c"], "only scheduled LLVM CPU profiles are tuned"),
    (["--target", "llvm-x86-64-naive"], "only scheduled LLVM CPU profiles are tuned"),
    (["--trials", "0"], "--trials must be at least 1"),
])
def test_tune_refuses_bad_input_in_one_line(argv, message, capsys):
    assert main(["tune", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_tune_command_prints_the_table(first_run, kernel, store, capsys):
    assert main(["tune", "--target", TARGET, "--kernels", kernel.name, "--trials", "3",
                 "--seed", "3", "--cache-dir", str(store.folder)]) == 0
    out = capsys.readouterr().out
    assert "cached" in out and "rules ms" in out and "--target llvm-x86-64-tuned" in out


def test_only_llvm_profiles_take_the_tuned_schedule(tmp_path):
    bad = tmp_path / "c-tuned.toml"
    bad.write_text('name = "c-tuned"\nschedule = "tuned"\n[target]\nkind = "c"\n')
    with pytest.raises(TargetError, match="only LLVM CPU kernels are tuned"):
        parse_profile(bad)


def test_tuned_results_are_keyed_by_the_tuning_cache(tmp_path, monkeypatch):
    """Tuning again changes a tuned profile's identity (what campaign results are keyed by),
    never a rules-scheduled one's."""
    import os
    import time

    from mutatenn_passes.targets import get_profile

    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    tuned, rules = get_profile("llvm-x86-64-tuned"), get_profile("llvm-x86-64")
    before = tuned.identity()
    (tmp_path / "k1.json").write_text("{}")
    os.utime(tmp_path, ns=(time.time_ns(), time.time_ns() + 1))
    after = tuned.identity()
    assert after["tuning"] and after != before
    assert "tuning" not in rules.identity()
