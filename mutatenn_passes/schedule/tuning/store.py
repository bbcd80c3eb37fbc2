"""The tuning cache: one JSON record per (unscheduled kernel, target), in a folder.

A record is keyed like `schedule.cache` keys its in-process schedules: by the structural hash
of the kernel's unscheduled PrimFunc (under the name ``main``, so that the same body fused
under another name in another model or mutant shares it) and the target's JSON. It holds the
schedule that won as the TVMScript text of the scheduled PrimFunc: ``tvm.ir.save_json`` of a
PrimFunc segfaults in TVM 0.27's wheel, and a MetaSchedule trace's JSON keeps typed integers
(``IntImm``) that JSON cannot hold, while the text parses back to a structurally equal
PrimFunc (checked on every record written, and by the scheduled hash on every record read).
A record whose winner is the rules' own schedule has no text: the pipeline then applies the
rules, and a later ``tune`` knows the kernel was tried.

Records live in ``$XDG_CACHE_HOME/mutatenn/tuning`` (``~/.cache/mutatenn/tuning``), or in the
folder ``MUTATENN_TUNING_DIR`` names (``mutatenn tune --cache-dir`` writes there), like the
native logs (`native_log.log_dir`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import tvm
import tvm_ffi
from tvm import tirx

from ...user_cache import cache_root, write_atomically

#: Environment variable naming the tuning folder builds read (and ``tune`` writes by default).
DIR_ENV = "MUTATENN_TUNING_DIR"

#: Bumped when a record's fields change meaning; records of another format are ignored.
FORMAT = 1


def default_folder() -> Path:
    """``$MUTATENN_TUNING_DIR``, else ``$XDG_CACHE_HOME/mutatenn/tuning``."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    return cache_root() / "tuning"


def contents_digest(folder: Path | None = None) -> str:
    """A digest of every record in ``folder`` (the default folder): results built with
    ``schedule = "tuned"`` are keyed by it (`targets.TargetProfile.identity`), so tuning again
    between two runs of a campaign gives its tuned builds new keys instead of changing their
    kernels under the old ones. Empty when there is no record."""
    folder = Path(folder or default_folder())
    try:
        stamp = folder.stat().st_mtime_ns  # renaming a record into place changes it
    except OSError:
        return ""
    return _digest(str(folder), stamp)


@functools.lru_cache(maxsize=8)
def _digest(folder: str, _stamp: int) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.json")):
        try:
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        except OSError:
            continue
    return h.hexdigest()[:16]


def as_kernel(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """``func`` under the name ``main``: what is hashed, tuned and measured (a fused
    kernel's name says where it sits in one model, not what it computes)."""
    return func.with_attr("global_symbol", "main")


def kernel_key(func: tirx.PrimFunc, target: tvm.target.Target) -> str:
    """The record key of an unscheduled kernel for ``target``."""
    text = f"{target}\n{tvm_ffi.structural_hash(as_kernel(func))}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TuningRecord:
    """The outcome of tuning one kernel for one target.

    ``script`` is the winning schedule's TVMScript ('' when the rules' schedule won) and
    ``scheduled_hash`` its structural hash; ``space`` and ``schedule_seed`` say which
    design space and which ``Schedule`` seed sampled it (-1 for the rules). Times are the
    medians measured in the child process, ``tried`` / ``failed`` count sampled candidates
    (the rules' schedule not included)."""

    key: str
    kernel: str
    target: str
    seed: int
    rules_ms: float
    tuned_ms: float
    tried: int
    failed: int
    script: str = ""
    scheduled_hash: int = 0
    space: int = -1
    schedule_seed: int = -1
    threads: int = 0
    tvm_version: str = tvm.__version__
    format: int = FORMAT

    @property
    def tuned(self) -> bool:
        """Whether a sampled schedule beat the rules' one."""
        return bool(self.script)

    def scheduled(self) -> tirx.PrimFunc | None:
        """The winning PrimFunc (named ``main``), None when the rules won or the text no
        longer parses to the function that was measured (another TVM version)."""
        if not self.script:
            return None
        try:
            func = tvm.script.from_source(self.script)
        except Exception:  # TVMScript from another TVM version: treat as not tuned
            return None
        if not isinstance(func, tirx.PrimFunc) or \
                tvm_ffi.structural_hash(func) != self.scheduled_hash:
            return None
        return func


class TuningStore:
    """The records in one folder (see the module doc); created on first write."""

    def __init__(self, folder: Path | str | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> TuningRecord | None:
        """The record of ``key``, None when absent, unreadable or of another format."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fields = {f.name for f in dataclasses.fields(TuningRecord)}
        if not isinstance(data, dict) or data.get("format") != FORMAT or \
                not fields >= set(data) or data.get("key") != key:
            return None
        try:
            return TuningRecord(**data)
        except TypeError:  # a required field missing
            return None

    def put(self, record: TuningRecord) -> Path:
        """Write ``record`` atomically (a reader never sees half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(record.key)
        write_atomically(path, json.dumps(dataclasses.asdict(record), indent=1).encode())
        return path
