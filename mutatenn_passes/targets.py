"""Hardware target profiles: one TOML file per target, found in `targets/` folders.

A profile names a TVM target (as the dict TVM 0.27 expects), the device kind it runs on, and how
it runs (``runner = "local"``, or ``"rpc"`` through a TVM RPC tracker). Profiles are searched in
``./targets`` (so a user can drop a file next to their work), then in the ``targets/`` folder
shipped inside the package or in the source checkout; a path to a ``.toml`` file works wherever
a name does.

One bad file must not take every target down with it: `scan_profiles` reads every file, keeps
the good profiles, and reports each bad one once (a `MutateNNWarning`, or a row of `mutatenn
targets`); only using a bad profile by name is an error. An LLVM ``mcpu`` is checked against
LLVM's CPU list, because TVM itself only warns and silently builds generic code.
"""

from __future__ import annotations

import difflib
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import MutateNNWarning, TargetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KNOWN_KEYS = {"name", "description", "device", "runner", "requires_cpu_features", "target",
               "rpc", "schedule"}

#: How a profile's kernels are scheduled. ``default``: CPU kernels fused and scheduled by
#: mutatenn's rules (`mutatenn_passes.schedule`), GPU kernels by TVM's dlight rules, as TVM's
#: GPU pipeline does; ``tuned``: LLVM CPU kernels as ``mutatenn tune`` left them in the
#: tuning cache, the rules' schedule for kernels not tuned (`schedule.tuning`); ``none``: TVM
#: 0.27's default CPU build, naive loops (GPU kernels cannot run unscheduled, so CUDA
#: profiles take ``default`` only).
SCHEDULES = ("default", "tuned", "none")


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
        ./targets or in the installed package keys results identically; for a ``tuned``
        profile, the tuning cache's contents."""
        identity = {"name": self.name, "target": self.target, "device": self.device,
                    "runner": self.runner, "rpc": dict(self.rpc), "schedule": self.schedule}
        if self.schedule == "tuned":  # its kernels are what the tuning cache holds now
            from .schedule.tuning.store import contents_digest

            identity["tuning"] = contents_digest()
        return identity

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


def _check_llvm_cpu(target: dict, where: str) -> None:
    """Reject an ``mcpu`` (of an LLVM target or an LLVM host) that LLVM does not know for the
    target's triple; TVM would log an error and build for a generic CPU instead. Runs before
    TVM sees the target, and asks LLVM with the target less its ``mcpu``, so that TVM's own
    message never reaches the terminal."""
    import tvm
    from tvm.target import codegen

    for part in (target, target.get("host")):
        if not isinstance(part, dict) or part.get("kind") != "llvm" or "mcpu" not in part:
            continue
        if not tvm.runtime.enabled("llvm"):
            return
        generic = tvm.target.Target({k: v for k, v in part.items() if k != "mcpu"})
        known = [str(c) for c in codegen.llvm_get_cpu_archlist(generic)]
        mcpu = str(part["mcpu"])
        if known and mcpu not in known:
            near = difflib.get_close_matches(mcpu, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            triple = part.get("mtriple", "the host's triple")
            raise TargetError(f"{where}: LLVM knows no CPU named {mcpu!r} for {triple}{hint} "
                              f"({len(known)} known, e.g. {', '.join(known[:3])}, ...)")


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
    if schedule == "tuned" and target["kind"] != "llvm":
        raise TargetError(f"{path}: only LLVM CPU kernels are tuned (`mutatenn tune`): use "
                          "schedule = \"default\"")
    profile = TargetProfile(
        name=str(data.get("name", path.stem)), description=str(data.get("description", "")),
        target=target, device=device, runner=runner,
        requires_cpu_features=tuple(data.get("requires_cpu_features", ())), path=str(path),
        rpc=rpc, schedule=schedule)
    try:
        _check_llvm_cpu(target, str(path))
        profile.tvm_target()
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(f"{path}: TVM rejects target {target}: "
                          f"{str(exc).strip().splitlines()[-1]}") from None
    return profile


def _declared_name(path: Path) -> str:
    """The name a profile file claims, read as leniently as possible (for a bad file)."""
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        name = None
    return name if isinstance(name, str) and name else path.stem


@dataclass
class ProfileScan:
    """Every profile file in the search folders, read once.

    ``profiles``: the usable profiles by name; ``bad``: the error of each bad file by the
    name it claims (its stem when unreadable), so that using it fails with its own reason;
    ``shadowed``: (profile, path of the file it hides) for each name found in two folders.
    For a name found twice, the first folder wins, good or bad.
    """

    profiles: dict[str, TargetProfile] = field(default_factory=dict)
    bad: dict[str, TargetError] = field(default_factory=dict)
    shadowed: list[tuple[TargetProfile, str]] = field(default_factory=list)


def scan_profiles() -> ProfileScan:
    """Read every profile in `search_dirs`, keeping bad files apart instead of failing."""
    scan = ProfileScan()
    for d in search_dirs():
        for f in sorted(d.glob("*.toml")):
            try:
                profile, error = parse_profile(f), None
                name = profile.name
            except TargetError as exc:
                profile, error, name = None, exc, _declared_name(f)
            winner = scan.profiles.get(name)
            if winner is not None:
                scan.shadowed.append((winner, str(f)))
                continue
            if name in scan.bad:
                if profile is not None:  # a bad file hides a good one: say which
                    scan.bad[name] = TargetError(f"{scan.bad[name]} (it hides the profile "
                                                 f"{name!r} in {f})")
                continue
            if error is not None:
                scan.bad[name] = error
            else:
                scan.profiles[name] = profile
    return scan


_WARNED: set[str] = set()


def _warn_bad_profiles(scan: ProfileScan, using: str | None = None) -> None:
    """Warn once per process about each bad profile (except the one being used: that one
    raises)."""
    for name, exc in scan.bad.items():
        if name != using and str(exc) not in _WARNED:
            _WARNED.add(str(exc))
            warnings.warn(f"skipping a bad target profile: {exc}", MutateNNWarning,
                          stacklevel=3)


def list_profiles() -> list[TargetProfile]:
    """Every usable profile found, by name (earlier search folders shadow later ones); each
    bad profile file is skipped with a `MutateNNWarning`."""
    scan = scan_profiles()
    _warn_bad_profiles(scan)
    return [scan.profiles[k] for k in sorted(scan.profiles)]


def get_profile(name_or_path) -> TargetProfile:
    """A profile by name, by path to a ``.toml`` file, or passed through if already one.

    A name whose file is bad raises that file's `TargetError`; other bad files only warn.
    """
    if isinstance(name_or_path, TargetProfile):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise TargetError(f"{path}: no such target profile file")
        return parse_profile(path)
    scan = scan_profiles()
    _warn_bad_profiles(scan, using=text)
    if text in scan.bad:
        raise scan.bad[text]
    if text not in scan.profiles:
        near = difflib.get_close_matches(text, [*scan.profiles, *scan.bad], n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise TargetError(f"unknown target {text!r}; {hint}known targets: "
                          f"{', '.join(sorted(scan.profiles)) or 'none'}")
    return scan.profiles[text]
