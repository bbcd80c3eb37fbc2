"""Campaigns on a Ray cluster (``executor = "ray"``): one actor per CPU of every node.

The engine plans, stores and reports as with the local executor; this executor only hands
the tasks to Ray actors (`ray_worker.NodeWorker`) and reports each result to the engine's
`engine.ResultSink` as it streams back, so the driver writes every result to the SQLite store
as it arrives and a rerun resumes as usual. Before planning it connects (`ray_cluster`), puts
the campaign's input files in the object store (`shipping`) and starts one actor per CPU of
each alive node, pinned to its node; each imports the first model while the campaign plans.
It looks at the cluster every few seconds, so a node that joins gets actors too.

Faults. A run that crashes or hangs is recorded by the actor itself (``crashed``/``timeout``:
the run happens in a forked child). An actor that dies — its node lost, or a build that
killed it — has its task retried on another actor, on another node when one is idle, up to
`TRIES` tries in all, each recorded (`describe`, in the database's ``executor`` meta); a
task that kills its actor on every try is recorded ``crashed`` with the reasons and the end
of the last actor's log. The dead actor is replaced while its node lives. An actor still
busy `GRACE` seconds past the per-mutant timeout (a hanging build) is killed, its task
recorded ``timeout``, and replaced. A driver that is killed leaves the store as the local
executor does: a rerun resumes.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from dataclasses import dataclass, field

from ...errors import MutateNNError
from .faults import FAULT_ENV
from .messages import Built, Done, Started, TaskResult
from .pool import PREPARE_TIMEOUT, SINGLE_THREAD_ENV
from .ray_cluster import connect, disconnect, import_ray, nodes

#: Tries of a task whose actor dies under it (a lost node, or a build that kills its actor).
TRIES = 3
#: Seconds past the per-mutant timeout before the driver kills a busy actor; the actor
#: itself stops a run at the timeout, so this catches only a hanging build.
GRACE = 10.0
#: Seconds between looks at the cluster's nodes (for new ones).
SYNC_EVERY = 5.0
#: Seconds the campaign waits for a node with a CPU when none is left.
NO_NODE_WAIT = 60.0


@dataclass(eq=False)
class _Actor:
    """One actor and the task it works on."""

    number: int  # the store's `worker` column
    handle: object
    node_id: str
    node: str  # the node's label
    ready: object  # the ObjectRef of its `hello` until it answers, then None
    log: str = ""
    task: object = None  # plan.Task
    stream: object = None  # the ObjectRefGenerator of its task's messages
    stage: str = ""
    deadline: float | None = None
    prepare_s: float | None = None
    build_s: float | None = None

    @property
    def label(self) -> str:
        return f"actor {self.number} on {self.node}"


@dataclass
class _Record:
    """What the database keeps about the executor (`RayExecutor.describe`)."""

    address: str
    nodes: dict = field(default_factory=dict)  # label -> {"cpus", "hostname"}
    actors_started: int = 0
    actors_lost: int = 0
    retries: dict = field(default_factory=dict)  # task key -> reasons, one per lost try


class RayExecutor:
    """Run a campaign's tasks on the Ray cluster ``config.ray_address`` names."""

    def __init__(self, config):
        self.ray = import_ray()
        self.config = config
        self.timeout = config.timeout
        self.record = _Record(config.ray_address or
                              f"private instance of {config.workers} CPU(s) on this machine")
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.actors: list[_Actor] = []
        self.numbers = itertools.count()
        self.next_sync = 0.0
        self.alive: set[str] = set()
        self.connected = False
        self.actor_class = None
        self.profiles: dict = {}  # target name or file -> TargetProfile
        self.shipment = None
        self.first = None

    def describe(self) -> dict:
        """What ran the campaign (recorded in the database)."""
        r = self.record
        return {"kind": "ray", "address": r.address, "nodes": r.nodes,
                "actors_started": r.actors_started, "actors_lost": r.actors_lost,
                "tries": TRIES, "retries": r.retries}

    # -- start and stop ---------------------------------------------------------------------
    def start(self, first, images, targets=()) -> None:
        """Connect, ship the inputs, start the actors (they import ``first`` and build its
        original for each of ``targets`` meanwhile)."""
        from ...targets import get_profile
        from .ray_worker import NodeWorker
        from .shipping import pack

        self.connected = connect(self.config.ray_address, self.config.workers)
        try:
            self.profiles = {t: get_profile(t) for t in self.config.targets}
            self.shipment = pack(self.config)
            # profiles travel as data: a node cannot read the driver's profile files
            self.first = (first, self.shipment.images,
                          tuple(self.profiles[t] for t in targets))
            self.actor_class = self.ray.remote(NodeWorker)
            self._sync(force=True)
            if not self.actors:
                raise MutateNNError(f"the Ray cluster ({self.record.address}) has no alive "
                                    "node with a CPU")
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """End of the campaign: remove the inputs' copies, stop the actors, disconnect."""
        by_node = {a.node_id: a for a in self.actors if a.ready is None}
        try:
            self.ray.get([a.handle.clean_up.remote() for a in by_node.values()], timeout=30)
        except self.ray.exceptions.RayError:
            pass  # a node lost at the very end keeps its copies
        self.abort()

    def abort(self) -> None:
        """Kill the actors and disconnect (the campaign ended or was interrupted)."""
        for a in self.actors:
            self._kill(a)
        self.actors = []
        if self.connected:
            disconnect()
            self.connected = False

    def _kill(self, a: _Actor) -> None:
        try:
            self.ray.kill(a.handle, no_restart=True)
        except Exception:  # pragma: no cover - already gone with its node
            pass

    # -- actors -----------------------------------------------------------------------------
    def _sync(self, force: bool = False) -> None:
        """Start an actor for every CPU of an alive node that has none (new nodes, and the
        replacements of dead actors)."""
        now = time.monotonic()
        if not force and now < self.next_sync:
            return
        self.next_sync = now + SYNC_EVERY
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        env = dict(SINGLE_THREAD_ENV, TVM_NUM_THREADS="1")
        if os.environ.get(FAULT_ENV):  # deliberate faults reach the actors as local workers
            env[FAULT_ENV] = os.environ[FAULT_ENV]
        found = nodes()
        self.alive = {node.id for node in found if node.alive}
        for a in [a for a in self.actors if a.task is None and a.node_id not in self.alive]:
            self.actors.remove(a)  # idle on a lost node: nothing to retry
            self.record.actors_lost += 1
        for node in found:
            if not node.alive:
                continue
            self.record.nodes.setdefault(node.label, {"cpus": node.cpus,
                                                      "hostname": node.hostname})
            have = sum(a.node_id == node.id for a in self.actors)
            for _ in range(node.cpus - have):
                number = next(self.numbers)
                handle = self.actor_class.options(
                    num_cpus=1, max_restarts=0, max_task_retries=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.id, soft=False),
                ).remote(number, self.run_id, self.shipment, env)
                handle.prepare.remote(*self.first)  # runs before any task it is given
                self.actors.append(_Actor(number, handle, node.id, node.label,
                                          ready=handle.hello.remote()))
                self.record.actors_started += 1

    def _lose(self, a: _Actor) -> None:
        """Forget a dead actor and start its replacement (when its node lives)."""
        if a in self.actors:
            self.actors.remove(a)
            self.record.actors_lost += 1
        self._kill(a)
        self._sync(force=True)

    def _hello(self, a: _Actor) -> None:
        """An actor answered (it has started) or failed to start."""
        try:
            a.log = self.ray.get(a.ready)["log"]
            a.ready = None
        except self.ray.exceptions.RayError as exc:
            if isinstance(exc, self.ray.exceptions.RayActorError) and exc.actor_init_failed:
                # not a lost node: every actor would fail the same way
                raise MutateNNError(f"a Ray actor cannot start on node {a.node}: "
                                    f"{_ray_reason(exc)} (is the same mutatenn installed "
                                    "there?)") from None
            self._lose(a)

    # -- the scheduling loop ----------------------------------------------------------------
    def run(self, tasks: list, spec_of, sink, affinity=None) -> None:
        """Build and run ``tasks`` (originals first); ``spec_of(task)`` is its `TaskSpec`.
        ``affinity`` is not used: Ray places each task, so an actor may compile a schema
        group another actor compiles too (`schema_groups`)."""
        queue = deque(sorted(tasks, key=lambda t: t.kind != "original"))
        tried_on: dict[str, set] = {}  # task key -> nodes where an actor died under it
        no_node_since = None
        while queue or any(a.task is not None for a in self.actors):
            self._sync()
            idle = [a for a in self.actors if a.ready is None and a.task is None]
            while queue and idle:
                task = queue.popleft()
                avoid = tried_on.get(task.key, set())
                a = next((x for x in idle if x.node_id not in avoid), idle[0])
                idle.remove(a)
                self._assign(a, task, spec_of(task), sink)
            if not self.actors:
                no_node_since = no_node_since or time.monotonic()
                if time.monotonic() - no_node_since > NO_NODE_WAIT:
                    raise MutateNNError(f"no Ray node with a CPU for {NO_NODE_WAIT:g} s; "
                                        f"{len(queue)} task(s) not done (rerun to resume)")
                time.sleep(1)
                self.next_sync = 0.0
                continue
            no_node_since = None
            waiting = [(a.ready, a) for a in self.actors if a.ready is not None]
            waiting += [(a.stream, a) for a in self.actors if a.stream is not None]
            now = time.monotonic()
            deadlines = [a.deadline - now for a in self.actors if a.deadline is not None]
            wait_for = max(0.05, min([1.0, *deadlines]))
            ready, _ = self.ray.wait([w for w, _ in waiting], num_returns=1, timeout=wait_for)
            if ready:  # and whatever else is ready now
                ready, _ = self.ray.wait([w for w, _ in waiting], num_returns=len(waiting),
                                         timeout=0)
            for w, a in waiting:
                if not any(w is r or w == r for r in ready):
                    continue
                if w is a.ready:
                    self._hello(a)
                else:
                    self._advance(a, sink, queue, tried_on)
            for a in list(self.actors):
                if a.task is not None and a.deadline is not None \
                        and time.monotonic() > a.deadline:
                    self._time_out(a, sink)
            sink.update()

    def _assign(self, a: _Actor, task, spec, sink) -> None:
        a.task, a.stage = task, "prepare"
        a.deadline = time.monotonic() + PREPARE_TIMEOUT
        a.prepare_s = a.build_s = None
        a.stream = a.handle.run.remote(self.shipment.remote_spec(spec, self.profiles,
                                                                 self.timeout))
        sink.assigned(a.label, task)

    def _advance(self, a: _Actor, sink, queue, tried_on) -> None:
        """Act on the next message of ``a``'s task, or on its death."""
        try:
            msg = self.ray.get(next(a.stream))
        except StopIteration:  # pragma: no cover - `Done` always ends a task's stream
            msg = Done(a.task.key, TaskResult("crashed", stage=a.stage,
                                              error="the actor ended the task without a "
                                                    "result"))
        except self.ray.exceptions.RayError as exc:
            self._died(a, exc, sink, queue, tried_on)
            return
        if isinstance(msg, Started):
            a.prepare_s, a.stage = msg.prepare_s, "build"
            a.deadline = time.monotonic() + self.timeout + GRACE
        elif isinstance(msg, Built):
            a.build_s, a.stage = msg.build_s, "run"
            sink.built()
        elif isinstance(msg, Done):
            if msg.result.status == "build_failed":
                sink.built()
            self._finish(a, sink, msg.result)

    def _finish(self, a: _Actor, sink, result: TaskResult) -> None:
        if result.prepare_s is None:
            result.prepare_s = a.prepare_s
        if result.build_s is None:
            result.build_s = a.build_s
        sink.finished(a.task, result, worker=a.number, label=a.label, ran=a.stage == "run",
                      node=a.node)
        a.task = a.stream = a.deadline = None

    def _died(self, a: _Actor, exc, sink, queue, tried_on) -> None:
        """``a`` died under its task: retry the task elsewhere, or record it ``crashed``."""
        task, stage = a.task, "build" if a.stage == "prepare" else a.stage
        self._lose(a)
        lost_node = a.node_id not in self.alive
        reason = (f"node {a.node} was lost" if lost_node else
                  f"actor {a.number} on {a.node} died") + f" during {stage}"
        reasons = self.record.retries.setdefault(task.key, [])
        reasons.append(reason)
        tried_on.setdefault(task.key, set()).add(a.node_id)
        sink.released(a.label)
        if len(reasons) < TRIES:
            sink.note(f"{task.label}: {reason}; retrying on another actor "
                      f"(try {len(reasons) + 1} of {TRIES})")
            queue.appendleft(task)
            return
        tail = "" if lost_node else self._task_log(a, task.key)
        error = (f"killed its Ray actor on each of {TRIES} tries ({'; '.join(reasons)}); "
                 f"Ray: {_ray_reason(exc)}") + (f"\n{tail}" if tail else "")
        a.stage = stage
        self._finish(a, sink, TaskResult("crashed", stage=stage, error=error))

    def _task_log(self, dead: _Actor, key: str) -> str:
        """What a dead actor wrote during task ``key``, read on its node by a Ray task that
        needs no CPU (so that it runs beside busy actors)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from .ray_worker import task_log

        if not dead.log:
            return ""
        reader = self.ray.remote(task_log).options(
            num_cpus=0, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(dead.node_id, soft=False))
        try:
            return self.ray.get(reader.remote(dead.log, key), timeout=60)
        except self.ray.exceptions.RayError:
            return ""  # the node went too

    def _time_out(self, a: _Actor, sink) -> None:
        """``a`` is past its deadline: kill it, record ``timeout``, replace it."""
        stage = a.stage
        limit = PREPARE_TIMEOUT if stage == "prepare" else self.timeout
        self._finish(a, sink, TaskResult("timeout", stage=stage, signal="SIGKILL",
                                         error=f"killed after {limit:g} s in the {stage} "
                                               "stage"))
        self._lose(a)


def _ray_reason(exc: BaseException) -> str:
    """What Ray says happened, in one line: the first line of its message that is neither
    its generic heading nor one of its tab-indented fields (class name, actor ID, pid)."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.startswith("\t")]
    text = next((line for line in lines[1:]), lines[0] if lines else type(exc).__name__)
    return text.split(". ")[0][:300]
