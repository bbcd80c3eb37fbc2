"""Remote devices through TVM RPC: a real tracker and real servers on 127.0.0.1.

One farm (a tracker, two stock TVM servers of key ``cpu``, one crash-tolerant mutatenn server
of key ``tough``) serves the whole module; the tests that stop, kill or crash servers run
last, in file order. Every process is started in its own process group and killed with it.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import mutatenn_passes as mn
from mutatenn_passes import remote
from mutatenn_passes.cli import main as cli_main
from mutatenn_passes.errors import MutateNNError, TargetError
from mutatenn_passes.remote.farm import CRASH_TOLERANT_SERVER, LocalFarm, free_port

KEY, TOUGH = "cpu", "tough"


def write_toml(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


RPC_PROFILE = """name = "{name}"
description = "test"
runner = "rpc"
device = "cpu"

[target]
kind = "llvm"
mcpu = "x86-64"

[rpc]
{rpc}
"""


# -- profiles (no network) -----------------------------------------------------------------

def test_rpc_profile_is_validated(tmp_path):
    good = mn.get_profile(write_toml(tmp_path / "a.toml", RPC_PROFILE.format(
        name="a", rpc='tracker = "127.0.0.1:9190"\nkey = "cpu-farm"\ntries = 2')))
    assert good.runner == "rpc"
    assert good.rpc["tracker"] == "127.0.0.1:9190" and good.rpc["key"] == "cpu-farm"
    assert good.rpc["tries"] == 2 and good.rpc["timing"] == "remote"
    ok, why = good.can_run()
    assert not ok and "tracker 127.0.0.1:9190" in why and "key cpu-farm" in why
    cfg = remote.RemoteConfig.from_profile(good, timeout_s=5)
    assert (cfg.host, cfg.port, cfg.key, cfg.tries, cfg.timeout_s) == \
        ("127.0.0.1", 9190, "cpu-farm", 2, 5)

    bad = {
        "no key": 'tracker = "127.0.0.1:9190"',
        "no port": 'tracker = "127.0.0.1"\nkey = "k"',
        "bad port": 'tracker = "h:99999"\nkey = "k"',
        "unknown": 'tracker = "h:1"\nkey = "k"\nretries = 3',
        "tries": 'tracker = "h:1"\nkey = "k"\ntries = 0',
        "timing": 'tracker = "h:1"\nkey = "k"\ntiming = "wall"',
        "device": 'tracker = "h:1"\nkey = "k"\nremote_device = "cuda"',
        "spaces": 'tracker = "h:1"\nkey = "a b"',
    }
    for label, rpc in bad.items():
        with pytest.raises(TargetError):
            mn.get_profile(write_toml(tmp_path / f"{label}.toml",
                                      RPC_PROFILE.format(name="x", rpc=rpc)))
    no_table = RPC_PROFILE.format(name="x", rpc="").replace("[rpc]\n", "")
    with pytest.raises(TargetError, match=r"needs an \[rpc\] table"):
        mn.get_profile(write_toml(tmp_path / "none.toml", no_table))
    local = RPC_PROFILE.format(name="x", rpc='tracker = "h:1"\nkey = "k"').replace(
        'runner = "rpc"', 'runner = "local"')
    with pytest.raises(TargetError, match="only meaningful"):
        mn.get_profile(write_toml(tmp_path / "local.toml", local))
    with pytest.raises(TargetError, match="not 'rpc'"):
        remote.RemoteConfig.from_profile(mn.get_profile("llvm-x86-64"))
    arm = mn.get_profile(write_toml(tmp_path / "arm.toml", RPC_PROFILE.format(
        name="arm", rpc='tracker = "h:1"\nkey = "rasp4"').replace(
        'mcpu = "x86-64"', 'mtriple = "aarch64-linux-gnu"')))
    assert remote.library_suffix(arm) == ".tar"  # cross-compiled: the device links it
    assert remote.library_suffix(good) == ".so"


def test_unreachable_tracker_is_a_clear_error_before_any_work(tmp_path, capsys):
    port = free_port()  # nothing listens there
    profile = write_toml(tmp_path / "gone.toml", RPC_PROFILE.format(
        name="gone", rpc=f'tracker = "127.0.0.1:{port}"\nkey = "cpu"'))
    lib = write_toml(tmp_path / "x.so", "not run")
    start = time.monotonic()
    with pytest.raises(remote.TrackerUnreachable, match=f"127.0.0.1:{port}") as info:
        remote.run_exported(str(profile), lib, np.zeros((1, 4), "float32"))
    assert isinstance(info.value, TargetError)
    with pytest.raises(remote.TrackerUnreachable):
        remote.RemotePool(str(profile)).start()
    with pytest.raises(remote.TrackerUnreachable):
        remote.servers_free(str(profile))
    with pytest.raises(remote.TrackerUnreachable):
        remote.check(str(profile))
    assert time.monotonic() - start < 10
    assert cli_main(["devices", "--tracker", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the RPC tracker" in err and len(err.strip().splitlines()) == 1


# -- a real farm ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def farm():
    """Two stock TVM servers of key ``cpu`` and two crash-tolerant ones of key ``tough``."""
    f = LocalFarm(key=KEY, servers=2, extra_servers=((TOUGH, CRASH_TOLERANT_SERVER),) * 2)
    try:
        f.start(background=True)  # the processes start while the models build
        yield f
    finally:
        f.close()
        assert all(proc.poll() is not None for proc in f.servers)


@pytest.fixture(scope="module")
def jobs(farm, default_model, default_images, tmp_path_factory):
    """The default model and a relu_to_sigmoid mutant, exported, with local outputs."""
    out = tmp_path_factory.mktemp("remote-libs")
    arts = {"original": mn.build(default_model, "llvm-x86-64"),
            "mutant": mn.build(default_model, "llvm-x86-64",
                               relax_passes=[mn.mutation("relu_to_sigmoid", sites=0)])}
    batch = mn.images.preprocess(default_images[:4], arts["original"].preprocess)
    libs, local = {}, {}
    for name, art in arts.items():
        libs[name] = art.export(out / f"{name}.so")
        local[name] = art.run_array(batch)
    libs["original.tar"] = arts["original"].export(out / "original.tar")  # linked remotely
    assert not np.array_equal(local["original"][0], local["mutant"][0])
    farm.ready()
    return {"libs": libs, "local": local, "batch": batch}


@pytest.fixture(scope="module")
def profiles(farm, jobs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rpc-profiles")
    return {
        "cpu": farm.write_profile(folder / "targets" / "rpc-farm.toml", timeout_s=30,
                                  wait_s=2),
        "tough": farm.write_profile(folder / "targets" / "rpc-tough.toml", key=TOUGH,
                                    timeout_s=30, wait_s=2, timing="roundtrip"),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def abort_library(tmp_path_factory):
    """A library whose ``main`` calls abort(): a mutant that crashes the process."""
    import tvm
    from tvm.script import ir as I
    from tvm.script import relax as R
    from tvm.script import tirx as T

    @I.ir_module
    class Crash:
        @T.prim_func
        def boom(A: T.Buffer((1, 4), "float32"), B: T.Buffer((1, 4), "float32")):
            T.evaluate(T.call_extern("int32", "abort"))
            for i in range(4):
                B[0, i] = A[0, i]

        @R.function
        def main(x: R.Tensor((1, 4), "float32")):
            cls = Crash
            y = R.call_tir(cls.boom, (x,), out_ty=R.Tensor((1, 4), "float32"))
            return y

    path = tmp_path_factory.mktemp("crash") / "abort.so"
    tvm.compile(Crash, "llvm").export_library(str(path))
    return path


def plan_jobs(jobs_, count, size=2):
    """``count`` jobs alternating original and mutant, each on a slice of the batch."""
    plan = []
    for i in range(count):
        lo = (i * size) % len(jobs_["batch"])
        plan.append((("original", "mutant")[i % 2], slice(lo, lo + size)))
    return plan


def submit_all(pool, jobs_, plan):
    return [pool.submit(jobs_["libs"][name], jobs_["batch"][rows]) for name, rows in plan]


def check_results(jobs_, plan, results):
    for (name, rows), (outputs, latencies) in zip(plan, results):
        expected = jobs_["local"][name][0][rows]
        np.testing.assert_array_equal(outputs, expected)
        assert len(latencies) == len(expected) and all(l > 0 for l in latencies)


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def busy_server(farm, pool) -> int:
    """Index (in the farm) of a server whose job has just started (so it is surely mid-job
    for a while)."""
    before = set(pool.running())
    fresh = wait_until(lambda: {j: s for j, s in pool.running().items() if j not in before})
    address = next(iter(fresh.values()))
    return farm.server_ports.index(int(address.rsplit(":", 1)[1]))


def key_total(farm, key) -> int:
    return {d.key: d for d in remote.list_devices(farm.address)}.get(
        key, remote.DeviceKey(key)).total


def test_devices_command_lists_keys_and_profiles(farm, profiles, monkeypatch, capsys):
    monkeypatch.chdir(profiles["folder"])  # its targets/ folder is searched first
    assert cli_main(["devices", "--tracker", farm.address, "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[KEY]["total"] == 2 and rows[KEY]["free"] == 2 and rows[KEY]["in_use"] == 0
    assert rows[KEY]["profiles"] == ["rpc-farm"]
    assert rows[TOUGH]["total"] == 2 and rows[TOUGH]["profiles"] == ["rpc-tough"]
    assert cli_main(["devices"]) == 0  # asks the trackers the rpc profiles name
    table = capsys.readouterr().out
    assert KEY in table and TOUGH in table and "rpc-farm" in table
    assert remote.servers_free(str(profiles["cpu"])) == 2
    assert remote.check(str(profiles["tough"])).total == 2
    assert {d.key for d in remote.list_devices(farm.address)} == {KEY, TOUGH}


def test_pool_spreads_jobs_over_all_servers_and_matches_local_runs(jobs, profiles):
    plan = plan_jobs(jobs, 6)
    with remote.RemotePool(str(profiles["cpu"])) as pool:
        assert len(pool._threads) == 2  # one worker per server of the key
        results = pool.map([(jobs["libs"][n], jobs["batch"][rows]) for n, rows in plan])
    check_results(jobs, plan, results)
    assert [a.outcome for a in pool.attempts] == ["ok"] * 6
    assert len({a.server for a in pool.attempts}) == 2
    outputs, _ = remote.run_exported(str(profiles["cpu"]), jobs["libs"]["original.tar"],
                                     jobs["batch"][:1], timing="roundtrip")
    np.testing.assert_array_equal(outputs, jobs["local"]["original"][0][:1])


def test_hung_server_times_out_and_its_job_moves_on(farm, jobs, profiles):
    plan = plan_jobs(jobs, 4)
    with remote.RemotePool(str(profiles["tough"]), timeout_s=5) as pool:
        futures = submit_all(pool, jobs, plan)
        victim = busy_server(farm, pool)
        farm.stop_server(victim)  # SIGSTOP: its connections stay open, nothing answers
        try:
            results = [f.result(timeout=120) for f in futures]
        finally:
            farm.resume_server(victim)
    check_results(jobs, plan, results)
    timeouts = [a for a in pool.attempts if a.outcome == "timeout"]
    assert timeouts and {a.server for a in timeouts} == {farm.server_address(victim)}
    farm.wait(2, key=TOUGH)  # resumed, it ends the broken session and serves again


def test_crashing_job_is_not_retried_and_the_server_survives(farm, jobs, profiles,
                                                             abort_library):
    with remote.RemotePool(str(profiles["tough"])) as pool:
        with pytest.raises(remote.RemoteCrash) as info:
            pool.submit(abort_library, np.ones((2, 4), "float32")).result(timeout=60)
        assert [a.outcome for a in info.value.attempts] == ["crash"]
        farm.wait(2, key=TOUGH)  # mutatenn's server serves on after the crash
        outputs, _ = pool.submit(jobs["libs"]["original"], jobs["batch"][:1]).result(60)
    np.testing.assert_array_equal(outputs, jobs["local"]["original"][0][:1])


def test_killed_server_fails_over_and_every_job_completes(farm, jobs, profiles):
    plan = plan_jobs(jobs, 6)
    with remote.RemotePool(str(profiles["cpu"]), timing="roundtrip") as pool:
        futures = submit_all(pool, jobs, plan)
        wait_until(lambda: any(f.done() for f in futures))
        done_before = {i: f.result() for i, f in enumerate(futures) if f.done()}
        victim = busy_server(farm, pool)
        farm.kill_server(victim)  # SIGKILL to its process group, mid-job
        results = [f.result(timeout=120) for f in futures]
    check_results(jobs, plan, results)
    lost = [a for a in pool.attempts if a.outcome == "lost"]
    assert lost and {a.server for a in lost} == {farm.server_address(victim)}
    assert sum(a.outcome == "ok" for a in pool.attempts) == len(plan)
    assert all(results[i] is done_before[i] for i in done_before)  # nothing redone
    wait_until(lambda: key_total(farm, KEY) == 1)


def test_stock_server_crash_is_told_from_a_lost_server(farm, profiles, abort_library):
    # TVM's stock server stops serving after a crashed session but keeps its port open:
    # the crash is still told apart from a dead server, so it is not retried elsewhere
    with pytest.raises(remote.RemoteCrash) as info:
        remote.run_exported(str(profiles["cpu"]), abort_library, np.ones((1, 4), "float32"))
    assert [a.outcome for a in info.value.attempts] == ["crash"]
    assert isinstance(info.value, MutateNNError)
    wait_until(lambda: key_total(farm, KEY) == 0)


def test_no_servers_is_clear_and_losing_all_servers_is_device_lost(farm, jobs, profiles):
    with pytest.raises(remote.NoServers, match="no server with key 'cpu'"):
        remote.RemotePool(str(profiles["cpu"]), wait_s=0.5).start()
    with remote.RemotePool(str(profiles["tough"]), wait_s=1, tries=2) as pool:
        first = pool.submit(jobs["libs"]["original"], jobs["batch"][:1])
        first.result(timeout=60)
        for index in farm.alive_servers(TOUGH):
            farm.kill_server(index)
        start = time.monotonic()
        results = pool.map([(jobs["libs"]["original"], jobs["batch"][:1])] * 3,
                           return_exceptions=True)
    assert all(isinstance(r, remote.DeviceLost) for r in results), results
    assert time.monotonic() - start < 20
    np.testing.assert_array_equal(first.result()[0], jobs["local"]["original"][0][:1])


def test_a_server_answering_shutdown_is_a_broken_connection():
    """A server killed mid-job may answer the call with RPCCode::kShutdown (1) before its
    socket closes: that is a connection lost (retried elsewhere), not the job's own error."""
    from mutatenn_passes.remote.session import classify

    shutdown = RuntimeError("Check failed: (code == RPCCode::kReturn) is false: code=1")
    assert classify(shutdown) == "connection"
    assert classify(RuntimeError("Error caught from RPC call: ValueError: bad")) == "error"
    assert classify(RuntimeError("Check failed: (code == RPCCode::kReturn) is false: "
                                 "code=5")) == "error"
