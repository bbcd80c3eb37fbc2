"""Campaigns on a real Ray cluster: two nodes of one CPU each on loopback
(`ray.cluster_utils.Cluster`), one per test and shut down after it, with no Ray process left.

The Ray executor gives the local executor's results (same statuses, same output digests for
deterministic mutants); a node removed mid-run loses no mutant (its task is retried on the
other node, and the retry is recorded); a mutant whose build kills its actor is `crashed`
after `ray_executor.TRIES` tries, each actor replaced. The configuration, the command line
and a missing ray are checked without a cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

import psutil
import pytest

from mutatenn_passes.campaign.config.campaign_file import load_config
from mutatenn_passes.campaign.running.faults import FAULT_ENV
from mutatenn_passes.campaign.running.progress import CampaignUI
from mutatenn_passes.campaign.scoring.store import Store
from tests.campaign_inputs import tiny_campaign
from mutatenn_passes.cli import main
from mutatenn_passes.errors import ConfigError
from tests.conftest import missing

# Loopback only, and nothing reported anywhere: Ray reads these when it is first imported
# (by these tests, during the run; collection imports no Ray), and its processes inherit them.
# Without the first, Ray binds to the address of the machine's route out.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

# Deterministic mutants (graph level, and a kernel store rewrite that stays in bounds), as in
# test_campaign_run: two runs of them agree bit for bit.
OPERATORS = """use = ["relu_to_sigmoid", "add_to_subtract", "exp_before_conv2d_dense",
       "store_mul_epsilon", "transpose_dense_input"]
sites = [0]
[operators.store_mul_epsilon]
params = {epsilon = 0.5}
"""
# Fewer, for the test that runs them twice on two targets: graph level, and kernel level.
FEWER_OPERATORS = """use = ["relu_to_sigmoid", "add_to_subtract", "store_mul_epsilon"]
sites = [0]
[operators.store_mul_epsilon]
params = {epsilon = 0.5}
"""


def _ray_children() -> list[psutil.Process]:
    """This test's Ray processes still running (the cluster's are its children)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "ray" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture
def cluster(monkeypatch):
    """A two-node loopback cluster (head + one worker node, one CPU each); yields it and the
    worker node. Ray's files and the actors' go to a fresh TMPDIR, removed afterwards (a
    short path: Ray's socket paths must fit in 107 bytes)."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        missing("ray is not installed (pip install '.[cluster]')")
    tmp = tempfile.mkdtemp(prefix="mn-ray-", dir="/tmp")
    monkeypatch.setenv("TMPDIR", tmp)
    node_args = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    c = Cluster(initialize_head=True, head_node_args=node_args | {"include_dashboard": False})
    try:
        worker = c.add_node(**node_args)
        yield c, worker
        assert not ray.is_initialized(), "the campaign left its driver connected"
    finally:
        c.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    deadline = time.monotonic() + 15
    while _ray_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _ray_children(), [p.cmdline()[:3] for p in _ray_children()]


def _results(out) -> dict:
    """Per task key: status and the digests of its outputs."""
    store = Store(out, create=False)
    try:
        return {k: (r["status"], [o["digest"] for o in store.outputs(k)])
                for k, r in store.results().items()}
    finally:
        store.close()


def _executor(out) -> dict:
    return json.loads(sqlite3.connect(out / "results.db").execute(
        "SELECT value FROM meta WHERE key = 'executor'").fetchone()[0])


def test_results_equal_the_local_executor(cluster, tmp_path, capsys):
    """Also for an RPC target: the cluster builds, the runs go to the tracker's server."""
    from mutatenn_passes import run_campaign
    from mutatenn_passes.remote.farm import LocalFarm

    c, worker = cluster
    path = tiny_campaign(tmp_path, operators=FEWER_OPERATORS)
    with LocalFarm(key="ray-test", servers=1) as farm:
        rpc = farm.write_profile(tmp_path / "rpc-loop.toml", timeout_s=60, wait_s=2)
        targets = ["llvm-x86-64", str(rpc)]
        local = run_campaign(path, quiet=True, output=str(tmp_path / "local"),
                             targets=targets)
        on_ray = run_campaign(path, quiet=True, output=str(tmp_path / "ray"), targets=targets,
                              executor="ray", ray_address=c.address)
    expected = _results(local.folder)
    assert _results(on_ray.folder) == expected
    statuses = [status for status, _ in expected.values()]
    assert statuses.count("ok") >= 6 and set(statuses) <= {"ok", "equivalent",
                                                          "not_applicable"}
    by_target = {m["target"] for m in on_ray.mutants if m["status"] == "ok"}
    assert by_target == {"llvm-x86-64", "rpc-loop"}
    record = _executor(on_ray.folder)
    assert record["kind"] == "ray" and record["address"] == c.address
    assert sorted(n["cpus"] for n in record["nodes"].values()) == [1, 1]
    assert record["retries"] == {} and record["actors_lost"] == 0
    workers = {r[0] for r in sqlite3.connect(on_ray.folder / "results.db").execute(
        "SELECT worker FROM results WHERE build_s IS NOT NULL")}
    assert len(workers) == 2, workers  # both nodes' actors built mutants
    # `mutatenn cluster` lists the two nodes and their CPUs
    capsys.readouterr()
    assert main(["cluster", "--ray", c.address, "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)
    assert [(n["alive"], n["cpus"], n["address"]) for n in nodes] == [(True, 1, "127.0.0.1")] * 2
    assert sum(n["head"] for n in nodes) == 1


class _RemoveNodeWhenBusy(CampaignUI):
    """Removes ``node`` from ``cluster`` as soon as one result is in and that node's actor is
    working on a task (from inside the campaign's loop, so exactly then)."""

    def __init__(self, cluster, node):
        super().__init__(quiet=True)
        self.cluster, self.node, self.removed = cluster, node, False

    def update(self, stats) -> None:
        mine = f"/{self.node.node_id[:6]}"
        if not self.removed and stats.done >= 1 and any(mine in w for w in stats.current):
            self.cluster.remove_node(self.node)
            self.removed = True


def test_a_node_removed_mid_run_loses_no_mutant(cluster, tmp_path):
    from mutatenn_passes import run_campaign

    c, worker = cluster
    path = tiny_campaign(tmp_path, operators=OPERATORS)
    ui = _RemoveNodeWhenBusy(c, worker)
    result = run_campaign(path, progress=ui, executor="ray", ray_address=c.address)
    assert ui.removed
    config = load_config(path)
    store = Store(config.output, create=False)
    planned = {t["key"] for t in store.tasks() if t["planned_status"] is None
               and t["duplicate_of"] is None}
    results = store.results()
    store.close()
    assert planned and planned <= set(results)
    assert {results[k]["status"] for k in planned} == {"ok"}
    record = _executor(result.folder)
    lost = [r for reasons in record["retries"].values() for r in reasons]
    assert lost and all("was lost" in r for r in lost), lost
    assert record["actors_lost"] >= 1


def test_a_mutant_that_kills_its_actor_is_crashed_after_its_tries(cluster, tmp_path,
                                                                  monkeypatch, capsys):
    from mutatenn_passes.campaign.running.ray_executor import TRIES

    c, _ = cluster
    path = tiny_campaign(tmp_path, operators='use = ["relu_to_sigmoid", "add_to_subtract"]\n'
                                             "sites = [0]")
    monkeypatch.setenv(FAULT_ENV, "crash@build:add_to_subtract")
    assert main(["run", str(path), "-q", "--ray", c.address]) == 0
    store = Store(tmp_path / "out", create=False)
    rows = {t["operator"] or "original": store.results()[t["key"]] for t in store.tasks()}
    store.close()
    crashed = rows["add_to_subtract"]
    assert crashed["status"] == "crashed" and crashed["stage"] == "build"
    assert f"killed its Ray actor on each of {TRIES} tries" in crashed["error"]
    assert "injected fault crash@build for add_to_subtract" in crashed["error"]
    assert rows["relu_to_sigmoid"]["status"] == "ok" and rows["original"]["status"] == "ok"
    record = _executor(tmp_path / "out")
    assert record["actors_lost"] == TRIES
    assert record["actors_started"] == 2 + TRIES  # each dead actor was replaced
    assert len(record["retries"]) == 1


def test_executor_keys_are_checked_with_their_lines(tmp_path):
    path = tiny_campaign(tmp_path, extra="")
    text = path.read_text().replace('output = "out"',
                                    'output = "out"\nexecutor = "dask"\nray_address = "nohost"')
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert any(':4: executor must be "local" or "ray"' in line for line in lines), lines
    assert any(":5: ray_address must be a Ray cluster address" in line for line in lines)
    path.write_text(text.replace('executor = "dask"', 'executor = "local"')
                    .replace('"nohost"', '"127.0.0.1:6379"'))
    with pytest.raises(ConfigError, match=r":5: ray_address applies to executor = \"ray\""):
        load_config(path)
    path.write_text(text.replace('executor = "dask"', 'executor = "ray"')
                    .replace('"nohost"', '"auto"'))
    assert (load_config(path).executor, load_config(path).ray_address) == ("ray", "auto")


def test_without_ray_the_ray_executor_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    path = tiny_campaign(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["run", str(path), "-q", "--ray", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "pip install" in err and "mutatenn[cluster]" in err
    assert len(err.splitlines()) == 1
    assert main(["cluster"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_an_address_where_nothing_answers_is_one_line_and_exit_2(tmp_path, capsys):
    path = tiny_campaign(tmp_path)
    assert main(["run", str(path), "-q", "--ray", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot connect to the Ray cluster at 127.0.0.1:1")
    assert len(err.splitlines()) == 1
