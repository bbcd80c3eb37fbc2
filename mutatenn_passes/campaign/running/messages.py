"""The campaign ↔ worker protocol: one typed, picklable record per message kind.

Campaign to worker: `Prepare` (import a model and its images, and build its originals, ahead
of its tasks; no reply),
`Assign` (one task), `Stop`. Worker to campaign, per task: `Started` when its inputs are ready
(the per-mutant timeout starts then), `Built` when the build finished, `Done` with the
`TaskResult`. Campaign to the zygote (`zygote`): `Prepare`, `Fork` (followed by the new
worker's end of its socket pair, passed as a file descriptor), `Stop`; zygote to campaign:
`Forked` with the new worker's process ID, `Exited` when a worker it forked has ended. Both
sides import this module, so a field renamed here is renamed everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from ..planning.definition import MutantDefinition

if TYPE_CHECKING:
    from ...targets import TargetProfile


@dataclass(frozen=True)
class ModelSpec:
    """A campaign model as a worker imports it; ``cache_key`` names it in worker caches."""

    index: int
    path: str | None
    overrides: dict
    cache_key: str


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs for one task; ``definition`` is None for an original.

    ``target_ref`` is a profile's name or file, or the `targets.TargetProfile` itself (a
    cluster node cannot read the campaign's files). ``timeout``, when given, is enforced by
    the worker on the run (it kills the run's child and lives on); without it the campaign
    enforces the timeout by killing the worker.
    """

    key: str
    label: str
    model: ModelSpec
    target_ref: str | TargetProfile
    images: list[str] | None
    definition: MutantDefinition | None = None
    ir_hash: str = ""
    incremental: bool = True
    keep_dir: str | None = None
    top_k: int = 5
    timeout: float | None = None
    #: Mutants compiled together with this one (`schema_groups`): the key of the
    #: group and the definitions of its members, this one among them; empty: on its own.
    schema_key: str = ""
    schema: tuple[MutantDefinition, ...] = ()
    #: The folder of the originals' activations at their cuts (`activations`): the mutant
    #: runs from its first changed cut (prefix reuse); None: from the images.
    activations: str | None = None

    @property
    def operator(self) -> str:
        return self.definition.operator if self.definition else "original"


@dataclass
class TaskResult:
    """One finished task, as `store.Store.record` stores it (besides key, worker, timeout)."""

    status: str
    error: str = ""
    stage: str = ""
    exit_code: int | None = None
    signal: str = ""
    prepare_s: float | None = None
    build_s: float | None = None
    load_s: float | None = None
    run_s: float | None = None
    ir_verified: bool | None = None
    build_mode: str = ""
    artifact: str = ""
    outputs: list[dict] | None = None  # per image: image, classes, scores, latency_ms, vector

    def as_record(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- campaign -> worker --------------------------------------------------------------------

@dataclass(frozen=True)
class Prepare:
    model: ModelSpec
    images: list[str] | None = None
    #: Target profile refs whose original build to make ahead (while the campaign plans).
    targets: tuple[str, ...] = ()
    #: Processes that compile each original's kernels (`build.prepare_original`).
    jobs: int = 1
    #: Where to compute the originals' activations at their cuts (`TaskSpec.activations`).
    activations: str | None = None


@dataclass(frozen=True)
class Assign:
    task: TaskSpec


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Fork:
    """Fork a worker (zygote only): its ID and log file; its socket follows the message."""

    worker_id: int
    log_path: str


# --- worker -> campaign --------------------------------------------------------------------

@dataclass(frozen=True)
class Started:
    key: str
    prepare_s: float


@dataclass(frozen=True)
class Built:
    key: str
    build_s: float


@dataclass(frozen=True)
class Done:
    key: str
    result: TaskResult = field(compare=False)


# --- zygote -> campaign --------------------------------------------------------------------

@dataclass(frozen=True)
class Forked:
    pid: int


@dataclass(frozen=True)
class Exited:
    """A forked worker ended: ``code`` as `subprocess.Popen.returncode` gives it (negative:
    the signal that killed it)."""

    pid: int
    code: int
