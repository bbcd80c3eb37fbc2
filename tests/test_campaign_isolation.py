"""A bad mutant never stops a campaign: a kernel loop-bound mutant that segfaults, a worker
killed by a signal, and a hanging mutant under a short timeout are recorded as `crashed` /
`timeout` while the others complete; a CUDA build on a machine without a GPU is
`cannot_run_here`."""

import sqlite3
from pathlib import Path

import pytest

from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.engine import execute_campaign
from mutatenn_passes.campaign.running.progress import CampaignUI
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.remote.farm import LocalFarm
from mutatenn_passes.campaign.running.faults import FAULT_ENV


def test_crash_and_timeout_are_isolated(tmp_path, monkeypatch):
    # loop_extent_inc site 0 is the outermost (batch) loop of the first kernel; growing its
    # extent by 100000 makes the generated code write far past its output buffer.
    path = tiny_campaign(tmp_path, timeout=40, operators="""use = ["loop_extent_inc",
       "relu_to_sigmoid", "add_to_subtract", "exp_before_conv2d_dense"]
sites = [0]
[operators.loop_extent_inc]
params = {amount = 100000}
""")
    # Deliberate faults: the worker hangs while running add_to_subtract, and is killed by
    # SIGSEGV while building exp_before_conv2d_dense.
    monkeypatch.setenv(FAULT_ENV, "hang@run:add_to_subtract,crash@build:exp_before_conv2d_dense")
    import dataclasses

    config = dataclasses.replace(load_config(path), keep_artifacts=True)
    outcome = execute_campaign(config, progress=CampaignUI(quiet=True))
    rows = {m["operator"]: m for m in outcome["analysis"]["mutants"]}
    loop = rows["loop_extent_inc"]
    assert loop["status"] == "crashed", (loop["status"], loop["error"][:500])
    assert loop["stage"] == "run" and loop["signal"] in ("SIGSEGV", "SIGBUS", "SIGABRT")
    assert loop["build_s"] is not None  # it built fine; running it crashed
    # --keep-artifacts keeps what was built, also (above all) for a mutant that crashes
    kept = config.output / "artifacts"
    folder = next(kept.glob("*-loop_extent_inc-*"))
    assert (folder / "model.so").stat().st_size > 0 and (folder / "model.so.json").exists()
    assert (folder / "ir" / "tir-s_tir.py").exists() and (folder / "ir" / "relax.py").exists()
    assert any((folder / "ir").glob("source-*"))
    hang = rows["add_to_subtract"]
    assert hang["status"] == "timeout" and hang["stage"] == "run"
    assert "40 s" in hang["error"]
    killed = rows["exp_before_conv2d_dense"]
    assert killed["status"] == "crashed" and killed["stage"] == "build"
    assert killed["signal"] == "SIGSEGV" and "injected fault" in killed["error"]
    assert rows["relu_to_sigmoid"]["status"] == "ok", rows["relu_to_sigmoid"]["error"][:500]
    assert outcome["analysis"]["originals"][0]["status"] == "ok"
    summary = outcome["analysis"]["summary"]["overall"]
    assert summary["crashed"] == 2 and summary["timeout"] == 1 and summary["ok"] == 1
    # crashes and timeouts are not "killed" by outputs, but count with failures
    assert summary["score_with_failures"] >= 3 / 4
    # Rerun with the faults gone: finished work (crashed included) is not redone, but the
    # timed-out mutant is retried when the timeout is raised.
    monkeypatch.delenv(FAULT_ENV)
    again = execute_campaign(dataclasses.replace(config, timeout=120),
                         progress=CampaignUI(quiet=True))
    assert again["stats"].total - again["stats"].skipped == 1
    rows = {m["operator"]: m for m in again["analysis"]["mutants"]}
    assert rows["add_to_subtract"]["status"] == "ok"
    assert rows["loop_extent_inc"]["status"] == "crashed"


def test_workers_are_forked_from_the_zygote_or_fresh_when_it_dies(tmp_path, monkeypatch):
    import dataclasses

    path = tiny_campaign(tmp_path, workers=2, operators='use = ["relu_to_sigmoid", '
                         '"add_to_subtract", "loop_extent_dec"]\nsites = [0]')
    config = load_config(path)
    forked = execute_campaign(config, progress=CampaignUI(quiet=True))
    logs = config.output / "logs"
    zygote_log = (logs / "zygote.log").read_text()
    assert "prepared in" in zygote_log
    pid = zygote_log.split("(pid ")[1].split(")")[0]
    workers = [w.read_text() for w in sorted(logs.glob("worker-*.log"))]
    assert len(workers) == 2
    assert all(f"forked from the zygote (pid {pid})" in w for w in workers)
    meta = dict(sqlite3.connect(config.output / "results.db").execute("SELECT * FROM meta"))
    assert '"forked": 2' in meta["executor"]
    # The zygote dies while preparing: fresh workers run the same campaign.
    monkeypatch.setenv(FAULT_ENV, "crash@prepare:zygote")
    fresh = execute_campaign(dataclasses.replace(config, output=tmp_path / "fresh"),
                             progress=CampaignUI(quiet=True))
    workers = [w.read_text() for w in sorted((tmp_path / "fresh/logs").glob("worker-*.log"))]
    assert workers and not any("forked" in w for w in workers)
    assert all(" started, " in w for w in workers)
    statuses = lambda outcome: {(m["operator"], m["target"]): m["status"]
                                for m in outcome["analysis"]["mutants"]}
    assert statuses(fresh) == statuses(forked)
    assert set(statuses(forked).values()) == {"ok"}


def test_cuda_builds_but_cannot_run_here(tmp_path):
    from mutatenn_passes.targets import get_profile

    profile = get_profile("cuda-sm80")
    can_build, why = profile.can_build()
    if not can_build:
        pytest.skip(f"cannot build CUDA here: {why}")
    if profile.can_run()[0]:
        pytest.skip("this machine has a GPU: cuda runs here")
    path = tiny_campaign(tmp_path, workers=1, operators='use = ["relu_to_sigmoid"]\n'
                                                         'sites = [0]')
    path.write_text(path.read_text().replace('targets = ["llvm-x86-64"]',
                                             'targets = ["cuda-sm80"]'))
    outcome = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))
    result = outcome["analysis"]
    assert result["originals"][0]["status"] == "cannot_run_here"
    m = result["mutants"][0]
    assert m["status"] == "cannot_run_here" and m["build_s"] is not None
    assert "GPU" in m["error"]
    assert result["summary"]["overall"]["denominator"] == 0
    # it really was built, in full (CUDA cannot link against an original's library), from
    # the IR the plan hashed
    assert m["build_mode"] == "full" and m["ir_verified"] is True


def test_rpc_target_runs_through_the_remote_runner(tmp_path, capsys):
    """A profile with runner = "rpc" builds here, exports, and runs on a loopback TVM RPC
    server; its outputs equal the local target's (same code, same CPU). Without any server
    the campaign stops before any work with one error."""
    path = tiny_campaign(tmp_path, workers=1, operators='use = ["relu_to_sigmoid"]\n'
                                                         'sites = [0]')
    with LocalFarm(key="campaign-test", servers=1) as farm:
        profile = farm.write_profile(tmp_path / "rpc-loop.toml", timeout_s=60, wait_s=2)
        path.write_text(path.read_text().replace(
            'targets = ["llvm-x86-64"]', f'targets = ["llvm-x86-64", "{profile}"]'))
        outcome = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))
    result = outcome["analysis"]
    statuses = {(o["target"], o["status"]) for o in result["originals"]}
    assert statuses == {("llvm-x86-64", "ok"), ("rpc-loop", "ok")}, result["originals"]
    mutants = {m["target"]: m for m in result["mutants"]}
    assert mutants["rpc-loop"]["status"] == "ok"
    assert [i["digest"] for i in mutants["rpc-loop"]["images"]] == \
        [i["digest"] for i in mutants["llvm-x86-64"]["images"]]
    pair = result["cross_target"]["originals"][0]
    assert pair["top1_disagreement"] == 0 and pair["max_abs_diff"] == 0
    cross = result["cross_target"]["mutants"][0]
    assert cross["statuses"] == {"llvm-x86-64": "ok", "rpc-loop": "ok"}
    assert not cross["target_dependent"]
    # the farm is gone: the campaign refuses to start, naming the problem
    from mutatenn_passes.cli import main

    path.write_text(path.read_text().replace('output = "out"', 'output = "out2"'))
    capsys.readouterr()
    assert main(["run", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "cannot reach the RPC tracker" in err, err
    assert len(err.strip().splitlines()) == 1
    db = sqlite3.connect(tmp_path / "out2" / "results.db")  # refused before any planning
    assert db.execute("SELECT COUNT(*) FROM tasks").fetchone() == (0,)


def test_a_real_compiler_failure_is_recorded_with_its_reason(tmp_path, monkeypatch):
    """nvcc rejects an architecture it does not know: each CUDA build (the original's and every
    mutant's) is `build_failed` with nvcc's own reason, and the CPU target's builds go on. (TVM
    0.27 now builds every mutant mutatenn makes for CUDA, so the compiler that fails is nvcc.)"""
    from mutatenn_passes.targets import get_profile

    can_build, why = get_profile("cuda-sm80").can_build()
    if not can_build:
        pytest.skip(f"cannot build CUDA here: {why}")
    (tmp_path / "targets").mkdir()
    shipped = Path(get_profile("cuda-sm80").path).read_text()
    (tmp_path / "targets" / "cuda-sm10.toml").write_text(
        shipped.replace("cuda-sm80", "cuda-sm10").replace('"sm_80"', '"sm_10"'))
    monkeypatch.chdir(tmp_path)
    path = tiny_campaign(tmp_path, workers=1, operators='use = ["store_f32_to_i8", '
                                                         '"relu_to_sigmoid"]\nmode = "together"')
    path.write_text(path.read_text().replace('targets = ["llvm-x86-64"]',
                                             'targets = ["cuda-sm10", "llvm-x86-64"]'))
    outcome = execute_campaign(load_config(path), progress=CampaignUI(quiet=True))
    rows = {(m["operator"], m["target"]): m for m in outcome["analysis"]["mutants"]}
    assert len(rows) == 4
    for op in ("store_f32_to_i8", "relu_to_sigmoid"):
        failed = rows[(op, "cuda-sm10")]
        assert failed["status"] == "build_failed" and failed["stage"] == "build"
        assert "Unsupported gpu architecture 'compute_10'" in failed["error"], failed["error"]
        assert rows[(op, "llvm-x86-64")]["status"] == "ok"
    originals = {o["target"]: o for o in outcome["analysis"]["originals"]}
    assert originals["cuda-sm10"]["status"] == "build_failed"
    assert "nvcc rejects" in originals["cuda-sm10"]["error"]
    assert originals["llvm-x86-64"]["status"] == "ok"


def test_a_run_over_its_timeout_is_killed_and_its_worker_lives_on():
    """Given a timeout (as a Ray actor gives it), the sandbox kills a hanging run's child
    itself and reports ``timeout``; the calling process goes on, and a run that ends in time
    is unaffected."""
    import os
    import time

    from mutatenn_passes.campaign.running.sandbox import RunOutcome, run_in_child

    t0 = time.monotonic()
    hung = run_in_child(lambda: time.sleep(60) or RunOutcome("ok"), timeout=0.5)
    assert hung.status == "timeout" and hung.signal == "SIGKILL"
    assert "0.5 s" in hung.error and time.monotonic() - t0 < 10
    done = run_in_child(lambda: RunOutcome("ok", outputs=os.getpid()), timeout=30)
    assert done.status == "ok" and done.outputs != os.getpid()  # it ran in a child
