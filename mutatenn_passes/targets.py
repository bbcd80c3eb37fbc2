"""Hardware target profiles: one TOML file per target, found in `targets/` folders.

A profile names a TVM target (as the dict TVM 0.27 expects), the device kind it runs on, and how
it runs (``runner = "local"``, or ``"rpc"`` through a TVM RPC tracker). Profiles are searched in ``./targets`` (so a user can drop
a file next to their work), then in the ``targets/`` folder shipped inside the package or in
the source checkout; a path to a ``.toml`` file works wherever a name does.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import TargetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KNOWN_KEYS = {"name", "description", "device", "runner", "requires_cpu_features", "target",
               "rpc", "schedule"}

#: How a profile's kernels are scheduled. ``default``: CPU kernels fused and scheduled by
#: mutatenn's rules (`mutatenn_passes.schedule`), GPU kernels by TVM's dlight rules, as TVM's
#: GPU pipeline does; ``none``: TVM 0.27's default CPU build, naive loops (GPU kernels cannot
#: run unscheduled, so CUDA profiles take ``default`` only).
SCHEDULES = ("default", "none")


@dataclass(frozen=True)
class TargetProfile:
    """One build-and-run target."""

    name: str
    description: str
    target: dict
    device: str = "cpu"  # "cpu" or "cuda"
    runner: str = "local"
    requires_cpu_features: tuple[str, ...] = ()
    path: str = ""
    rpc: dict = field(default_factory=dict)
    schedule: str = "default"

    def tvm_target(self):
        import tvm

        return tvm.target.Target(self.target)

    @property
    def kind(self) -> str:
        return self.target["kind"]

    def can_build(self) -> tuple[bool, str]:
        """Whether this machine can compile for the profile, and why not."""
        import tvm

        if self.kind == "llvm" or self.target.get("host", {}).get("kind") == "llvm":
            if not tvm.runtime.enabled("llvm"):
                return False, "this TVM build has no LLVM"
        if self.kind == "c" and not (shutil.which("cc") or shutil.which("gcc")):
            return False, "no C compiler (cc/gcc) on PATH"
        if self.kind == "cuda" and not _find_nvcc():
            return False, "nvcc not found (install the CUDA toolkit)"
        return True, ""

    def can_run(self) -> tuple[bool, str]:
        """Whether this machine can execute what the profile builds, and why not."""
        ok, why = self.can_build()
        if not ok:
            return False, why
        if self.runner == "rpc":
            # never True: Artifact.run would then run it here; the campaign sends it remote
            return False, (f"runs remotely: tracker {self.rpc.get('tracker', '?')}, "
                           f"key {self.rpc.get('key', '?')} (see `mutatenn devices`)")
        if self.device == "cuda":
            import tvm

            if not tvm.cuda().exist:
                return False, "no CUDA GPU on this machine"
            return True, ""
        missing = [f for f in self.requires_cpu_features if f not in cpu_features()]
        if missing:
            return False, f"CPU lacks {', '.join(missing)}"
        return True, ""

    def identity(self) -> dict:
        """What decides the code built and where it runs: the part of a profile that results
        are keyed by. Not the file's location or description, so the same profile found in
        ./targets or in the installed package keys results identically."""
        return {"name": self.name, "target": self.target, "device": self.device,
                "runner": self.runner, "rpc": dict(self.rpc), "schedule": self.schedule}

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "target": self.target,
                "device": self.device, "runner": self.runner,
                "requires_cpu_features": list(self.requires_cpu_features), "path": self.path,
                "rpc": dict(self.rpc), "schedule": self.schedule}


def _find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    cuda = Path("/usr/local/cuda/bin/nvcc")
    return str(cuda) if cuda.exists() else None


@lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """CPU feature flags of this machine (from /proc/cpuinfo on Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def search_dirs() -> list[Path]:
    """Folders searched for profiles, first match wins."""
    package = Path(__file__).resolve().parent
    dirs = [Path.cwd() / "targets", package / "targets", package.parent / "targets"]
    unique = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def parse_profile(path: Path) -> TargetProfile:
    """Read and validate one profile file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path}: cannot read target profile ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: malformed target profile: {exc}") from None
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise TargetError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    target = data.get("target")
    if not isinstance(target, dict) or "kind" not in target:
        raise TargetError(f"{path}: a profile needs a [target] table with a 'kind'")
    device = data.get("device", "cuda" if target["kind"] == "cuda" else "cpu")
    if device not in ("cpu", "cuda"):
        raise TargetError(f"{path}: device must be 'cpu' or 'cuda', not {device!r}")
    from .remote.config import validate_rpc_table

    runner = str(data.get("runner", "local"))
    if runner not in ("local", "rpc"):
        raise TargetError(f"{path}: runner must be 'local' or 'rpc', not {runner!r}")
    rpc = validate_rpc_table(data.get("rpc"), runner, device, str(path))
    schedule = data.get("schedule", "default")
    if schedule not in SCHEDULES:
        raise TargetError(f"{path}: schedule must be one of {', '.join(SCHEDULES)}, "
                          f"not {schedule!r}")
    if schedule == "none" and device == "cuda":
        raise TargetError(f"{path}: CUDA kernels cannot run unscheduled: use "
                          "schedule = \"default\"")
    profile = TargetProfile(
        name=str(data.get("name", path.stem)), description=str(data.get("description", "")),
        target=target, device=device, runner=runner,
        requires_cpu_features=tuple(data.get("requires_cpu_features", ())), path=str(path),
        rpc=rpc, schedule=schedule)
    try:
        profile.tvm_target()
    except Exception as exc:
        raise TargetError(f"{path}: TVM rejects target {target}: "
                          f"{str(exc).strip().splitlines()[-1]}") from None
    return profile


def list_profiles() -> list[TargetProfile]:
    """Every profile found, by name (earlier search folders shadow later ones)."""
    found: dict[str, TargetProfile] = {}
    for d in search_dirs():
        for f in sorted(d.glob("*.toml")):
            profile = parse_profile(f)
            found.setdefault(profile.name, profile)
    return [found[k] for k in sorted(found)]


def get_profile(name_or_path) -> TargetProfile:
    """A profile by name, by path to a ``.toml`` file, or passed through if already one."""
    if isinstance(name_or_path, TargetProfile):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise TargetError(f"{path}: no such target profile file")
        return parse_profile(path)
    profiles = {p.name: p for p in list_profiles()}
    if text not in profiles:
        raise TargetError(f"unknown target {text!r}; known targets: "
                          f"{', '.join(profiles) or 'none'}")
    return profiles[text]
