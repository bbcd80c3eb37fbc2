"""Campaign files: parse a TOML campaign, validate all of it, report every problem at once.

A campaign names the models, images, targets and mutation operators to test, how each
operator's sites become mutants, and how the work runs (workers, per-mutant timeout, seed,
output folder). `load_config` reads and checks the whole file before any work starts: unknown
keys, unknown operators or targets, missing files and bad values are collected and raised
together as one `ConfigError`, one line per problem, each with its line number in the file.
Relative paths are resolved against the campaign file's folder (the embedded default campaign
resolves them against the current folder).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, MutateNNError
from .tomllines import KeyLines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CAMPAIGN = "default_campaign.toml"
EMBEDDED = "embedded:default"

#: How an operator's selected sites become mutants.
MODES = ("each", "together")
_TOP_KEYS = {"campaign", "models", "images", "operators"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _nonempty_str(v) -> bool:
    return isinstance(v, str) and bool(v)


def _count(v) -> bool:
    return _is_int(v) and v >= 0


def _positive_int(v) -> bool:
    return _is_int(v) and v >= 1


def _positive_number(v) -> bool:
    return _is_number(v) and v > 0


def _three_numbers(v) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v)


def _one_of(*choices):
    return lambda v: isinstance(v, str) and v in choices


@dataclass(frozen=True)
class Key:
    """One key of a campaign table: its default and what a given value must be.

    ``ok`` checks a value; a value it rejects is reported as "<name> must be <must>, not
    <value>". Keys without ``ok`` are checked by the code that reads them (paths, targets,
    operator names, site selections).
    """

    name: str
    default: Any = None
    ok: Callable[[Any], bool] | None = None
    must: str = ""


CAMPAIGN_KEYS = (
    Key("name", "campaign", _nonempty_str, "a non-empty string"),
    Key("output", "mutatenn-campaign", _nonempty_str, "a folder path"),
    Key("seed", 0, _count, "a non-negative integer"),
    Key("workers", 2, _positive_int, "an integer >= 1"),
    Key("timeout", 300.0, _positive_number, "a positive number of seconds (per mutant)"),
    Key("keep_artifacts", False, lambda v: isinstance(v, bool), "true or false"),
    Key("incremental", True, lambda v: isinstance(v, bool), "true or false"),
    Key("targets", ["llvm-x86-64"]),
)
MODEL_KEYS = (
    Key("path"),
    Key("name", None, _nonempty_str, "a non-empty string"),
    Key("labels"),
    Key("preprocess", {}, lambda v: isinstance(v, dict), "a table"),
)
#: Checks of `images.Preprocess` fields (any field of it may be given).
PREPROCESS_KEYS = (
    Key("height", ok=_positive_int, must="a positive integer"),
    Key("width", ok=_positive_int, must="a positive integer"),
    Key("layout", ok=_one_of("NCHW", "NHWC"), must='"NCHW" or "NHWC"'),
    Key("channel_order", ok=_one_of("RGB", "BGR"), must='"RGB" or "BGR"'),
    Key("raw", ok=lambda v: isinstance(v, bool), must="true or false"),
    Key("scale", ok=_positive_number, must="a positive number"),
    Key("mean", ok=_three_numbers, must="three numbers"),
    Key("std", ok=lambda v: _three_numbers(v) and 0 not in v, must="three numbers (non-zero)"),
    Key("resample", ok=_one_of("bicubic", "bilinear", "nearest", "lanczos"),
        must="one of bicubic, bilinear, nearest, lanczos"),
    Key("dtype", ok=_one_of("float32", "float16", "uint8", "int8"),
        must="float32, float16, uint8 or int8"),
)
IMAGES_KEYS = (Key("paths"), Key("labels"))
_MODE = Key("mode", "each", _one_of(*MODES), "one of " + ", ".join(MODES))
_SAMPLE = Key("sample", 0, _count, "a non-negative integer (0 = every selected site)")
#: [operators] itself; any other key of it names an operator (a table of `PER_OPERATOR_KEYS`).
OPERATORS_KEYS = (Key("use", ["paper"]), Key("exclude", []), _MODE, Key("sites", "all"),
                  _SAMPLE)
PER_OPERATOR_KEYS = (
    _MODE, Key("sites"), _SAMPLE,
    Key("kernels", None, _nonempty_str, "a glob over kernel names"),
    Key("phase", None, _one_of("s_tir", "lowered"), "one of s_tir, lowered"),
    Key("params", {}, lambda v: isinstance(v, dict), "a table"),
)


@dataclass(frozen=True)
class ModelConfig:
    """One model of the campaign: a file, or the embedded default when ``path`` is None."""

    path: str | None = None
    name: str | None = None
    labels: str | None = None
    preprocess: dict = field(default_factory=dict)

    def overrides(self) -> dict:
        out = dict(self.preprocess)
        if self.name:
            out["name"] = self.name
        if self.labels:
            out["labels"] = self.labels
        return out

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OperatorConfig:
    """How one operator's sites become mutants.

    ``mode = "each"`` makes one first-order mutant per selected site; ``"together"`` one mutant
    rewriting every selected site at once (the MutateNN paper's site ranges). ``sites`` is
    ``"all"``, a list of indices or a `range`; ``sample`` (when > 0) then keeps a seeded
    sample of that many of the selected sites.
    """

    id: str
    level: str
    category: str
    mode: str = "each"
    sites: Any = "all"
    sample: int = 0
    kernels: str | None = None
    phase: str | None = None
    params: dict = field(default_factory=dict)

    def sample_seed(self, campaign_seed: int) -> int:
        """The sample's seed: the campaign seed mixed with the operator ID, so adding or
        removing another operator never changes which sites this one samples."""
        digest = hashlib.sha256(f"{campaign_seed}:{self.id}".encode()).hexdigest()
        return int(digest[:8], 16)

    def sites_text(self) -> str:
        s = self.sites
        if isinstance(s, range):
            return f"range({s.start},{s.stop},{s.step})"
        if isinstance(s, list):
            return "[" + ",".join(map(str, s)) + "]"
        return str(s)

    def as_dict(self) -> dict:
        return {"id": self.id, "level": self.level, "category": self.category,
                "mode": self.mode, "sites": self.sites_text(), "sample": self.sample,
                "kernels": self.kernels, "phase": self.phase, "params": self.params}


@dataclass
class CampaignConfig:
    """A validated campaign."""

    name: str
    source: str
    text: str
    base_dir: Path
    output: Path
    seed: int
    workers: int
    timeout: float
    keep_artifacts: bool
    targets: list[str]
    models: list[ModelConfig]
    images: list[str] | None
    image_labels: str | None
    operators: list[OperatorConfig]
    operator_names: list[str]
    incremental: bool = True

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "output": str(self.output),
                "seed": self.seed, "workers": self.workers, "timeout": self.timeout,
                "keep_artifacts": self.keep_artifacts, "incremental": self.incremental,
                "targets": list(self.targets),
                "models": [m.as_dict() for m in self.models],
                "images": self.images, "image_labels": self.image_labels,
                "operator_names": list(self.operator_names),
                "operators": [o.as_dict() for o in self.operators]}


def default_campaign_text() -> str:
    """The embedded default campaign (also what `mutatenn init` writes)."""
    return resources.files(__package__).joinpath(DEFAULT_CAMPAIGN).read_text(encoding="utf-8")


class _Problems:
    """Every problem found in a campaign file, each with its line."""

    def __init__(self, source: str, lines: KeyLines):
        self.source = source
        self.lines = lines
        self.items: list[tuple[int, str]] = []

    def add(self, path, message: str, line: int | None = None) -> None:
        self.items.append((line or self.lines.line_of(path), message))

    def unknown_keys(self, table: dict, known, path: tuple, where: str) -> None:
        for key in table:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else \
                    f" (known: {', '.join(sorted(known))})"
                self.add(path + (key,), f"unknown key {key!r} in {where}{hint}")

    def read(self, table: dict, keys, path: tuple, where: str, *, known=None,
             defaults: bool = True) -> dict:
        """The values of ``keys`` in ``table``: checked (a rejected value is reported and
        replaced by its default), and, with ``defaults``, defaults for the missing ones.
        Keys outside ``known`` (default: ``keys``) are reported as unknown."""
        self.unknown_keys(table, known or {k.name for k in keys}, path, where)
        out = {}
        for key in keys:
            if key.name not in table:
                if defaults:
                    out[key.name] = key.default
                continue
            value = table[key.name]
            if key.ok is not None and not key.ok(value):
                self.add(path + (key.name,), f"{key.name} must be {key.must}, not {value!r}")
                value = key.default
            out[key.name] = value
        return out

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda item: item[0])
        head = f"{self.source}: {len(self.items)} problem(s) in the campaign file"
        body = "\n".join(f"  {self.source}:{line}: {msg}" for line, msg in self.items)
        raise ConfigError(f"{head}\n{body}")


def _parse_sites(value, path, problems: _Problems):
    """``"all"``, an index, a list of indices, or ``{start, stop, step}`` -> selection."""
    if value == "all":
        return "all"
    if _is_int(value):
        if value < 0:
            problems.add(path, f"site index {value} is negative")
        return [value]
    if isinstance(value, list):
        bad = [v for v in value if not _is_int(v) or v < 0]
        if bad or not value:
            problems.add(path, "sites must be \"all\", an index, a non-empty list of "
                               f"non-negative indices or {{start, stop[, step]}}, not {value!r}")
            return "all"
        return list(value)
    if isinstance(value, dict):
        unknown = set(value) - {"start", "stop", "step"}
        start, stop, step = value.get("start", 0), value.get("stop"), value.get("step", 1)
        if unknown or not all(_is_int(v) for v in (start, stop, step)) or start < 0 \
                or step < 1 or stop <= start:
            problems.add(path, "a site range is {start = A, stop = B[, step = C]} with "
                               f"0 <= A < B and C >= 1, not {value!r}")
            return "all"
        return range(start, stop, step)
    problems.add(path, f"sites must be \"all\", an index, a list of indices or "
                       f"{{start, stop[, step]}}, not {value!r}")
    return "all"


def _as_list(value):
    return [value] if isinstance(value, str) else value


class _Reader:
    """Reads one campaign document table by table into a `CampaignConfig`."""

    def __init__(self, text: str, source: str, base: Path):
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        self.lines = KeyLines(text)
        self.problems = _Problems(source, self.lines)
        self.base = base
        self.problems.unknown_keys(self.data, _TOP_KEYS, (), "the campaign file")

    def table(self, key: str) -> dict:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.problems.add((key,), f"{key} must be a table ([{key}])")
            return {}
        return value

    def file(self, where: tuple, value, what: str) -> str | None:
        """An existing file's path, resolved against the campaign file's folder."""
        if not _nonempty_str(value):
            self.problems.add(where, f"{what} must be a non-empty string path, not {value!r}")
            return None
        p = self.resolve(value)
        if not p.is_file():
            self.problems.add(where, f"{what} {value!r}: no such file ({p})")
        return str(p)

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p

    def value_problem(self, path: tuple, value: str, message: str) -> None:
        """A problem with one element of a (possibly multi-line) array, at its own line."""
        self.problems.add(None, message, self.lines.value_line(path, f'"{value}"'))

    def campaign(self) -> dict:
        values = self.problems.read(self.table("campaign"), CAMPAIGN_KEYS, ("campaign",),
                                    "[campaign]")
        values["targets"] = self.targets(values["targets"])
        return values

    def targets(self, targets) -> list[str]:
        """Profile names or files that exist and can be built here, each once."""
        from ..targets import get_profile

        path, good, names = ("campaign", "targets"), [], []
        targets = _as_list(targets)
        if not isinstance(targets, list) or not targets:
            self.problems.add(path, f"targets must be a non-empty list of target profile "
                                    f"names, not {targets!r}")
            return good
        for t in targets:
            if not isinstance(t, str):
                self.problems.add(path, f"target {t!r} is not a string")
                continue
            ref = str(self.resolve(t)) if t.endswith(".toml") or "/" in t else t
            try:
                profile = get_profile(ref)
            except MutateNNError as exc:
                self.value_problem(path, t, str(exc))
                continue
            can, why = profile.can_build()
            if not can:
                self.value_problem(path, t, f"target {t!r} cannot be built on this machine: "
                                            f"{why}")
            elif profile.name in names:
                self.problems.add(path, f"target {t!r} is listed twice")
            else:
                good.append(ref)
                names.append(profile.name)
        return good

    def models(self) -> list[ModelConfig]:
        from ..images import Preprocess

        raw = self.data.get("models", [])
        raw = [raw] if isinstance(raw, dict) else raw
        if not isinstance(raw, list):
            self.problems.add(("models",), "models must be an array of tables ([[models]])")
            raw = []
        known_pre = {f.name for f in dataclasses.fields(Preprocess)}
        models = []
        for i, m in enumerate(raw):
            where = ("models", i)
            if not isinstance(m, dict):
                self.problems.add(where, "each [[models]] entry must be a table")
                continue
            v = self.problems.read(m, MODEL_KEYS, where, "[[models]]")
            pre = self.problems.read(v["preprocess"], PREPROCESS_KEYS, where + ("preprocess",),
                                     "[models.preprocess]", known=known_pre, defaults=False)
            pre |= {k: x for k, x in v["preprocess"].items()
                    if k in known_pre and k not in pre}
            models.append(ModelConfig(
                path=self.file(where + ("path",), v["path"], "model") if "path" in m else None,
                name=v["name"], preprocess=pre,
                labels=self.file(where + ("labels",), v["labels"], "labels file")
                if "labels" in m else None))
        models = models or [ModelConfig()]
        if len({(m.path or "default", m.name) for m in models}) != len(models):
            self.problems.add(("models",), "the same model is listed twice")
        return models

    def images(self) -> tuple[list[str] | None, str | None]:
        """The image paths (None: the default images) and the reference labels file."""
        table = self.table("images")
        v = self.problems.read(table, IMAGES_KEYS, ("images",), "[images]")
        labels = self.file(("images", "labels"), v["labels"], "image labels file") \
            if "labels" in table else None
        if "paths" not in table:
            return None, labels
        value, path = _as_list(v["paths"]), ("images", "paths")
        if not isinstance(value, list) or not value:
            self.problems.add(path, "paths must be a non-empty list of image files or folders "
                                    "(omit it for the default images)")
            return None, labels
        paths = []
        for item in value:
            if not isinstance(item, str):
                self.problems.add(path, f"image path {item!r} is not a string")
                continue
            p = self.resolve(item)
            if not p.exists():
                self.value_problem(path, item, f"image path {item!r}: no such file or folder "
                                               f"({p})")
            paths.append(str(p))
        return paths, labels

    def operators(self) -> tuple[list[OperatorConfig], list[str]]:
        """Each selected operator's configuration, and the selected IDs."""
        from ..registry import get_operator, operators

        table = self.table("operators")
        ids = {s.id for s in operators()}
        own = {k.name for k in OPERATORS_KEYS}
        for key, value in table.items():
            if key in own:
                continue
            if key not in ids:
                near = difflib.get_close_matches(key, sorted(ids | own), n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                self.problems.add(("operators", key), f"unknown key or operator {key!r} in "
                                                      f"[operators]{hint}")
            elif not isinstance(value, dict):
                self.problems.add(("operators", key), f"[operators.{key}] must be a table")
        v = self.problems.read(table, OPERATORS_KEYS, ("operators",), "[operators]",
                               known=own | set(table))
        excluded = {s.id for s in self.operator_names(v["exclude"], "exclude")}
        selected = [s for s in self.operator_names(v["use"], "use") if s.id not in excluded]
        if not selected and not self.problems.items:
            self.problems.add(("operators",), "no operator is selected (check use and exclude)")
        defaults = {"mode": v["mode"], "sample": v["sample"],
                    "sites": _parse_sites(v["sites"], ("operators", "sites"), self.problems)}
        configured = {key: self.operator(get_operator(key), value, defaults)
                      for key, value in table.items()
                      if key in ids and isinstance(value, dict)}
        return ([configured.get(s.id) or OperatorConfig(s.id, s.level, s.category, **defaults)
                 for s in selected], [s.id for s in selected])

    def operator_names(self, names, key: str) -> list:
        """Operator specs named by IDs, categories or presets, in order, each once."""
        from ..registry import PRESETS, resolve_operator_names

        names = _as_list(names)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) \
                or (key == "use" and not names):
            self.problems.add(("operators", key), f"{key} must be a list of operator IDs, "
                                                  "category names or presets "
                                                  f"({', '.join(PRESETS)})")
            return []
        specs = {}
        for name in names:
            try:
                specs |= {s.id: s for s in resolve_operator_names([name]) if s.id not in specs}
            except MutateNNError as exc:
                self.value_problem(("operators", key), name, str(exc))
        return list(specs.values())

    def operator(self, spec, table: dict, defaults: dict) -> OperatorConfig:
        path = ("operators", spec.id)
        v = self.problems.read(table, PER_OPERATOR_KEYS, path, f"[operators.{spec.id}]",
                               defaults=False)
        sites = _parse_sites(v["sites"], path + ("sites",), self.problems) \
            if "sites" in v else defaults["sites"]
        kernels, phase = v.get("kernels"), v.get("phase")
        if spec.level == "graph":
            for k in ("kernels", "phase"):
                if k in table:
                    self.problems.add(path + (k,), f"{spec.id} is a graph-level operator: "
                                                   f"{k!r} applies to kernel-level operators "
                                                   "only")
            kernels = phase = None
        params = v.get("params", {})
        try:
            spec.resolve_params(params)
        except MutateNNError as exc:
            self.problems.add(path + ("params",), str(exc))
            params = {}
        return OperatorConfig(spec.id, spec.level, spec.category,
                              v.get("mode", defaults["mode"]), sites,
                              v.get("sample", defaults["sample"]), kernels, phase,
                              dict(params))


def parse_config(text: str, source: str = "<campaign>", base_dir: Path | None = None,
                 output_base: Path | None = None) -> CampaignConfig:
    """Validate campaign ``text``; every problem is reported in one `ConfigError`."""
    base = Path(base_dir or ".").resolve()
    reader = _Reader(text, source, base)
    c = reader.campaign()
    models = reader.models()
    images, image_labels = reader.images()
    operators, operator_names = reader.operators()
    reader.problems.raise_if_any()
    out = Path(c["output"]).expanduser()
    out = out if out.is_absolute() else Path(output_base or base) / out
    return CampaignConfig(
        name=c["name"], source=source, text=text, base_dir=base, output=out.resolve(),
        seed=c["seed"], workers=c["workers"], timeout=float(c["timeout"]),
        keep_artifacts=c["keep_artifacts"], targets=c["targets"], models=models,
        images=images, image_labels=image_labels, operators=operators,
        operator_names=operator_names, incremental=c["incremental"])


def load_config(path: str | Path | None = None) -> CampaignConfig:
    """Read and validate the campaign at ``path``; None means the embedded default."""
    if path is None:
        return parse_config(default_campaign_text(), EMBEDDED, Path.cwd())
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such campaign file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the campaign file ({exc})") from None
    return parse_config(text, str(p), p.resolve().parent)
