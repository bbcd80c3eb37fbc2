"""TVM's thread pool: a plain build() then run() uses one thread per physical core (TVM's
own default is half the cores on x86-64), and a thread count set by the user is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from mutatenn_passes.threads import ENV_VARS, physical_cores, use_physical_cores


def test_physical_cores_are_counted_within_the_affinity():
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_an_unset_thread_count_becomes_the_physical_cores(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert use_physical_cores() == physical_cores()
    assert os.environ["TVM_NUM_THREADS"] == str(physical_cores())


def test_a_thread_count_the_user_set_is_kept(monkeypatch):
    monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert use_physical_cores() == 1
    assert "TVM_NUM_THREADS" not in os.environ


RUN_DEFAULT = """
import mutatenn_passes as mn, tvm
from mutatenn_passes.threads import physical_cores
model = mn.load_model(None)
mn.build(model, "llvm-x86-64").run(mn.default_images()[:1])
print(tvm.get_global_func("runtime.NumThreads")(), physical_cores())
"""


def test_build_then_run_uses_every_physical_core():
    """In a fresh process without a thread count in its environment, as a user starts."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    out = subprocess.run([sys.executable, "-c", RUN_DEFAULT], env=env, cwd="/",
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    pool, cores = map(int, out.stdout.split()[-2:])
    assert pool == cores
