"""How many threads TVM's CPU kernels run on: one per physical core this process may use.

TVM sizes its thread pool once per calling thread, when the first parallel kernel runs, from
``TVM_NUM_THREADS`` (else ``OMP_NUM_THREADS``), else from ``std::thread::hardware_concurrency()``
**halved on x86-64**, on the assumption that every core runs two hyper-threads. On a machine
without SMT that halves the cores: on this project's 2-core VM a plain ``build()`` then ``run()``
ran every kernel on one thread, while the bench (which set ``TVM_NUM_THREADS``) ran on two, so a
user measured 1.4x the bench's ResNet50 latency. `use_physical_cores` sets ``TVM_NUM_THREADS``
to the number of physical cores in this process's CPU affinity before the pool exists, unless
the user (or the campaign, which gives each worker its share) already set either variable.
The runtime's ``runtime.config_threadpool`` cannot do this later: it never raises the pool
above the size it was created with.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VARS = ("TVM_NUM_THREADS", "OMP_NUM_THREADS")


def physical_cores() -> int:
    """Distinct physical cores among the CPUs this process may run on (Linux sysfs topology;
    the CPU count where that is not readable)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(),
                       topology.joinpath("core_id").read_text().strip()))
        except OSError:
            return len(cpus) or 1
    return len(cores) or 1


def use_physical_cores() -> int:
    """Set ``TVM_NUM_THREADS`` to `physical_cores` unless a thread count is already set in the
    environment; return the count TVM will use for a pool created from now on."""
    for var in ENV_VARS:
        value = os.environ.get(var, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    cores = physical_cores()
    os.environ["TVM_NUM_THREADS"] = str(cores)
    return cores
