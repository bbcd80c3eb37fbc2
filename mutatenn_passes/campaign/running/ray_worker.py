"""A campaign worker inside a Ray actor, on one CPU of a cluster node.

`ray_executor` makes one such actor per CPU a node offers (``ray.remote(NodeWorker)``; this
module does not import Ray, so the local executor never needs it). An actor is what a local
worker process is: it keeps the same per-worker state (`worker_cache`: imported models,
preprocessed images, the Relax side lowered per target, the original built and JIT-compiled
per target) and runs each task with the local worker's own code (`worker.task_messages`),
streaming `Started`, `Built` and `Done` back to the driver as a Ray generator. Each mutant's
run happens in a child forked just for it, with the per-mutant timeout enforced here
(`sandbox.run_in_child`), so a run that segfaults or hangs costs a child, never the actor. A
build that kills the actor is the driver's to retry elsewhere.

Input files arrive as bytes through the object store (`shipping.Shipment`) and are written
under ``$TMPDIR/mutatenn-ray/<run>/inputs`` on the node; each actor's output (TVM's messages,
a crash's stack, which Ray's own handler prints) goes to
``$TMPDIR/mutatenn-ray/<run>/logs/actor-N.log`` there; `task_log` reads a dead actor's last
task from it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from pathlib import Path

from .messages import ModelSpec, Prepare, TaskSpec
from .processes import log_excerpt
from .shipping import Shipment
from .worker import prepare, redirect_output, task_messages
from .worker_cache import WorkerCache


def node_root(run_id: str) -> Path:
    """This node's folder for the campaign run ``run_id``."""
    return Path(tempfile.gettempdir()) / "mutatenn-ray" / run_id


class NodeWorker:
    """The body of one Ray actor (number ``number`` of the run ``run_id``); ``env`` is set
    before TVM is imported (threads, deliberate faults)."""

    def __init__(self, number: int, run_id: str, shipment: Shipment, env: dict):
        os.environ.update(env)
        self.number = number
        self.root = node_root(run_id)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.log_path = str(self.root / "logs" / f"actor-{number}.log")
        redirect_output(self.log_path)
        print(f"mutatenn Ray actor {number} (pid {os.getpid()}) started", flush=True)
        self.shipment = shipment
        self.cache = WorkerCache()

    def hello(self) -> dict:
        """Where this actor runs (answered once it has started)."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "log": self.log_path}

    def prepare(self, model: ModelSpec, images: list[str] | None, targets=()) -> None:
        """Import the campaign's first model and its images, and build its originals for
        ``targets``, ahead of its tasks."""
        inputs = self.root / "inputs"
        try:
            model, images = (self.shipment.local_model(model, inputs),
                             self.shipment.local_images(images, inputs))
        except Exception:  # shows again, reported, in the first task
            traceback.print_exc()
            return
        prepare(self.cache, Prepare(model, images, tuple(targets)))

    def run(self, task: TaskSpec):
        """One task's messages, as the driver receives them: a Ray streaming generator."""
        print(f"task {task.key} {task.label}", flush=True)
        local = self.shipment.local_spec(task, self.root / "inputs")
        yield from task_messages(local, self.cache, self.log_path)

    def clean_up(self) -> None:
        """Remove this node's copies of the inputs (the logs stay)."""
        shutil.rmtree(self.root / "inputs", ignore_errors=True)


def task_log(path: str, key: str) -> str:
    """An excerpt of what the actor whose log is ``path`` wrote during its (last) task
    ``key`` (`processes.log_excerpt`)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    start = data.rfind(f"\ntask {key} ".encode())
    if start < 0:
        return ""
    return log_excerpt(path, data.find(b"\n", start + 1) + 1)  # after the task's own line
