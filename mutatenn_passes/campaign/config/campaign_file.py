"""Campaign files: parse a TOML campaign, validate all of it, report every problem at once.

A campaign names the models, images, targets and mutation operators to test, how each
operator's sites become mutants, and how the work runs (workers, per-mutant timeout, seed,
output folder). `load_config` reads and checks the whole file before any work starts: unknown
keys, unknown operators or targets, missing files and bad values are collected and raised
together as one `ConfigError`, one line per problem, each with its line number in the file.
Relative paths are resolved against the campaign file's folder (the embedded default campaign
resolves them against the current folder).

The same reader checks a campaign given as TOML text (`parse_config`) or as a dict in the
file's schema (`config_from_dict`, for Python callers; its problems name key paths such as
``campaign.workers`` instead of lines), and values that override ``[campaign]`` keys (the
command line's flags, `api.run_campaign`'s keywords; their problems name the override).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ...errors import ConfigError, MutateNNError
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


def _fraction(v) -> bool:
    return _is_number(v) and 0 <= v <= 1


def is_ray_address(v) -> bool:
    """``auto`` or ``HOST:PORT`` (a Ray head's GCS address, as `ray start --head` prints)."""
    if v == "auto":
        return True
    host, _, port = v.rpartition(":") if isinstance(v, str) else ("", "", "")
    return bool(host) and not any(c.isspace() or c == "/" for c in host) \
        and port.isdigit() and 0 < int(port) < 65536


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
    Key("fail_under", None, _fraction, "a mutation score between 0 and 1"),
    Key("executor", "local", _one_of("local", "ray"), '"local" or "ray"'),
    Key("ray_address", None, is_ray_address,
        'a Ray cluster address: "auto" or HOST:PORT (what `ray start --head` prints)'),
)
MODEL_KEYS = (
    Key("path"),
    Key("name", None, _nonempty_str, "a non-empty string"),
    Key("labels"),
    Key("label_offset", None, _is_int,
        "an integer (line n + label_offset of the labels file names class n)"),
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
                  _SAMPLE, Key("ignore", []))
PER_OPERATOR_KEYS = (
    _MODE, Key("sites"), _SAMPLE,
    Key("kernels", None, _nonempty_str, "a glob over kernel names"),
    Key("phase", None, _one_of("s_tir", "lowered"), "one of s_tir, lowered"),
    Key("params", {}, lambda v: isinstance(v, dict), "a table"),
)
#: One entry of ``[operators] ignore``.
IGNORE_KEYS = (
    Key("id", None, lambda v: _nonempty_str(v) and ":" in v.strip(":"),
        '"<operator>:<site id>" (the IDs `mutatenn mutants` lists)'),
    Key("reason", None, lambda v: _nonempty_str(v) and bool(v.strip()),
        "a non-empty string saying why the mutant is ignored"),
)
_IGNORE_FORM = '{id = "<operator>:<site id>", reason = "why"}'


@dataclass(frozen=True)
class ModelConfig:
    """One model of the campaign: a file, or the embedded default when ``path`` is None."""

    path: str | None = None
    name: str | None = None
    labels: str | None = None
    preprocess: dict = field(default_factory=dict)
    label_offset: int | None = None  # None: not given (a label count mismatch is refused)

    def overrides(self) -> dict:
        out = dict(self.preprocess)
        if self.name:
            out["name"] = self.name
        if self.labels:
            out["labels"] = self.labels
        if self.label_offset is not None:
            out["label_offset"] = self.label_offset
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


@dataclass(frozen=True)
class IgnoreEntry:
    """A mutant kept out of the mutation score (known equivalent, or an accepted survivor):
    the operator's first-order mutant at the site with ID ``site``, on every model and target
    (see `ignore.mark_ignored`)."""

    operator: str
    site: str
    reason: str

    @property
    def id(self) -> str:
        return f"{self.operator}:{self.site}"

    def as_dict(self) -> dict:
        return {"id": self.id, "reason": self.reason}


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
    fail_under: float | None = None
    ignore: list[IgnoreEntry] = field(default_factory=list)
    executor: str = "local"
    ray_address: str | None = None
    #: Where the keys and array elements that `inputs.check_inputs` checks later are written:
    #: key path (``("images", "paths", 0)``, ``("models", 1, "labels")``) -> (line, location
    #: text), so that problems found in the files they name point into the campaign.
    locations: dict = field(default_factory=dict, repr=False, compare=False)

    def locate(self, path: tuple) -> tuple[int, str]:
        """Where key ``path`` is written (the campaign's source when it was not recorded)."""
        return self.locations.get(tuple(path), (0, self.source))

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "output": str(self.output),
                "seed": self.seed, "workers": self.workers, "timeout": self.timeout,
                "keep_artifacts": self.keep_artifacts, "incremental": self.incremental,
                "targets": list(self.targets), "fail_under": self.fail_under,
                "executor": self.executor, "ray_address": self.ray_address,
                "models": [m.as_dict() for m in self.models],
                "images": self.images, "image_labels": self.image_labels,
                "operator_names": list(self.operator_names),
                "operators": [o.as_dict() for o in self.operators],
                "ignore": [e.as_dict() for e in self.ignore]}


def default_campaign_text() -> str:
    """The embedded default campaign (also what `mutatenn init` writes)."""
    return resources.files(__package__).joinpath(DEFAULT_CAMPAIGN).read_text(encoding="utf-8")


class _Lines:
    """Where a problem is in a TOML text: the line of its key, or of one element of an array
    (``value``)."""

    what = "campaign file"

    def __init__(self, source: str, text: str):
        self.source = source
        self.lines = KeyLines(text)

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        line = self.lines.line_of(path) if value is None \
            else self.lines.value_line(path, f'"{value}"')
        return line, f"{self.source}:{line}"


class _KeyPaths:
    """Where a problem is in a dict: its key path (``models[0].path``), for a campaign that
    has no text to point into."""

    what = "campaign"

    def __init__(self, source: str):
        self.source = source

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return 0, f"{self.source}: {dotted.lstrip('.') or 'top level'}"


class _Overridden:
    """Problems of ``[campaign]`` keys given as overrides are located at the override (a
    command-line flag or a keyword), the others by ``inner``."""

    def __init__(self, inner, labels: dict[str, str]):
        self.inner, self.labels = inner, labels
        self.source, self.what = inner.source, inner.what

    def where(self, path: tuple, value=None) -> tuple[int, str]:
        if len(path) >= 2 and path[0] == "campaign" and path[1] in self.labels:
            return 0, self.labels[path[1]]
        return self.inner.where(path, value)


#: Sort key offset of problems in other files than the campaign's: after all of its lines.
_OTHER_FILE = 10 ** 9


class Problems:
    """Every problem found in a campaign, each with where it is (see `_Lines`, `_KeyPaths`)."""

    def __init__(self, locator):
        self.locator = locator
        self.items: list[tuple[int, str, str]] = []

    def add(self, path, message: str, value=None) -> None:
        """A problem at key ``path`` (at the element ``value`` of an array, when given)."""
        self.items.append((*self.locator.where(tuple(path or ()), value), message))

    def add_in_file(self, path, line: int, message: str) -> None:
        """A problem at ``line`` of another file (one the campaign names, such as the image
        labels file), listed after the campaign's own problems, in line order."""
        self.items.append((_OTHER_FILE + line, f"{path}:{line}", message))

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
        """One `ConfigError`: a single problem on one line, several one per line under a
        heading, in the order of the text (overrides first)."""
        if not self.items:
            return
        self.items.sort(key=lambda item: item[0])
        if len(self.items) == 1:
            _, where, msg = self.items[0]
            raise ConfigError(f"{where}: {msg}")
        head = f"{self.locator.source}: {len(self.items)} problem(s) in the " \
               f"{self.locator.what}"
        body = "\n".join(f"  {where}: {msg}" for _, where, msg in self.items)
        raise ConfigError(f"{head}\n{body}")


def _parse_sites(value, path, problems: Problems):
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
    """Reads one campaign document (parsed TOML, or a dict in its schema) table by table into
    a `CampaignConfig`; ``locator`` says where each problem is."""

    def __init__(self, data: dict, locator, base: Path):
        self.data = data
        self.problems = Problems(locator)
        self.base = base
        self.locations: dict[tuple, tuple[int, str]] = {}

    def remember(self, key: tuple, path: tuple, value=None) -> None:
        """Record where ``path`` (the element ``value`` of an array) is, as ``key``."""
        self.locations[key] = self.problems.locator.where(path, value)
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
        self.problems.add(path, message, value)

    def campaign(self) -> dict:
        values = self.problems.read(self.table("campaign"), CAMPAIGN_KEYS, ("campaign",),
                                    "[campaign]")
        values["targets"] = self.targets(values["targets"])
        if values["ray_address"] is not None and values["executor"] != "ray":
            self.problems.add(("campaign", "ray_address"),
                              'ray_address applies to executor = "ray" only')
        return values

    def targets(self, targets) -> list[str]:
        """Profile names or files that exist and can be built here, each once."""
        from ...targets import get_profile

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
        from ...images import Preprocess

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
            for key in ("path", "labels", "label_offset"):
                self.remember(where + (key,), where + (key,) if key in m else where)
            models.append(ModelConfig(
                path=self.file(where + ("path",), v["path"], "model") if "path" in m else None,
                name=v["name"], preprocess=pre,
                labels=self.file(where + ("labels",), v["labels"], "labels file")
                if "labels" in m else None, label_offset=v["label_offset"]))
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
        self.remember(("images", "labels"), ("images", "labels"))
        self.remember(("images", "paths"), ("images", "paths"))
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
            self.remember(path + (len(paths),), path, item)
            paths.append(str(p))
        return paths, labels

    def operators(self) -> tuple[list[OperatorConfig], list[str]]:
        """Each selected operator's configuration, and the selected IDs."""
        from ...registry import get_operator, operators

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

    def ignore_list(self) -> list[IgnoreEntry]:
        """``[operators] ignore``: ``{id = "<operator>:<site id>", reason = "..."}`` tables
        (inline, or ``[[operators.ignore]]``), each with a known operator and a reason, each
        ID once."""
        from ...registry import operators

        path = ("operators", "ignore")
        table = self.data.get("operators", {})
        entries = table.get("ignore", []) if isinstance(table, dict) else []
        if not isinstance(entries, list):
            self.problems.add(path, f"ignore must be a list of {_IGNORE_FORM} tables")
            return []
        ids = sorted(s.id for s in operators())
        out: dict[str, IgnoreEntry] = {}
        for i, entry in enumerate(entries):
            where = path + (i,)
            if not isinstance(entry, dict):
                self.problems.add(where, f"ignore entry {entry!r} must be a table "
                                         f"{_IGNORE_FORM}: every entry needs a reason")
                continue
            v = self.problems.read(entry, IGNORE_KEYS, where, "an ignore entry")
            if v["id"] is None or v["reason"] is None:
                missing = [k for k in ("id", "reason") if k not in entry]
                if missing:
                    self.problems.add(where, f"ignore entry lacks {' and '.join(missing)}: "
                                             f"each is {_IGNORE_FORM}")
                continue
            operator, _, site = v["id"].partition(":")
            if operator not in ids:
                near = difflib.get_close_matches(operator, ids, n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                self.problems.add(where + ("id",), f"ignore entry {v['id']!r}: unknown "
                                                   f"mutation operator {operator!r}{hint}")
            elif v["id"] in out:
                self.problems.add(where + ("id",), f"ignore entry {v['id']!r} is listed twice")
            else:
                out[v["id"]] = IgnoreEntry(operator, site, v["reason"].strip())
        return list(out.values())

    def operator_names(self, names, key: str) -> list:
        """Operator specs named by IDs, categories or presets, in order, each once."""
        from ...registry import PRESETS, resolve_operator_names

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


def _read(data: dict, text: str, source: str, locator, base_dir, overrides,
          override_labels) -> CampaignConfig:
    """Validate ``data`` (a campaign document) with ``overrides`` of its ``[campaign]`` keys
    applied; every problem is reported in one `ConfigError`."""
    base = Path(base_dir or ".").resolve()
    overrides = {k: _plain(v) for k, v in (overrides or {}).items() if v is not None}
    if overrides:
        # Paths given as overrides are relative to the current folder, like a command
        # line's, not to the campaign file's.
        if isinstance(overrides.get("output"), str):
            overrides["output"] = str(Path(overrides["output"]).expanduser().resolve())
        if isinstance(overrides.get("targets"), (str, list)):
            overrides["targets"] = [
                str(Path(t).expanduser().resolve())
                if isinstance(t, str) and (t.endswith(".toml") or "/" in t) else t
                for t in _as_list(overrides["targets"])]
        labels = {k: (override_labels or {}).get(k, f"override {k}") for k in overrides}
        locator = _Overridden(locator, labels)
        data = copy.deepcopy(data)
        if isinstance(data.setdefault("campaign", {}), dict):
            data["campaign"].update(overrides)
    reader = _Reader(data, locator, base)
    c = reader.campaign()
    models = reader.models()
    images, image_labels = reader.images()
    operators, operator_names = reader.operators()
    ignore = reader.ignore_list()
    reader.problems.raise_if_any()
    out = Path(c["output"]).expanduser()
    out = out if out.is_absolute() else base / out
    return CampaignConfig(
        name=c["name"], source=source, text=text, base_dir=base, output=out.resolve(),
        seed=c["seed"], workers=c["workers"], timeout=float(c["timeout"]),
        keep_artifacts=c["keep_artifacts"], targets=c["targets"], models=models,
        images=images, image_labels=image_labels, operators=operators,
        operator_names=operator_names, incremental=c["incremental"],
        fail_under=None if c["fail_under"] is None else float(c["fail_under"]),
        ignore=ignore, locations=reader.locations, executor=c["executor"],
        ray_address=c["ray_address"])


def parse_config(text: str, source: str = "<campaign>", base_dir: Path | None = None, *,
                 overrides: dict | None = None,
                 override_labels: dict[str, str] | None = None) -> CampaignConfig:
    """Validate campaign ``text`` (relative paths against ``base_dir``, default: the current
    folder), with ``overrides`` of ``[campaign]`` keys (their problems are located by
    ``override_labels``, e.g. ``{"workers": "--workers"}``; default ``override <key>``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return _read(data, text, source, _Lines(source, text), base_dir, overrides,
                 override_labels)


def config_from_dict(data: dict, source: str = "<dict>", base_dir: Path | None = None, *,
                     overrides: dict | None = None,
                     override_labels: dict[str, str] | None = None) -> CampaignConfig:
    """Validate a campaign given as a dict in the file's schema (``{"campaign": {...},
    "models": [{...}], ...}``) exactly as a file is checked; problems name key paths.
    ``pathlib.Path`` values are taken as their text and tuples as lists."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a campaign dict must be a dict, not "
                          f"{type(data).__name__}")
    data = _plain(data)
    text = json.dumps(data, indent=1, default=repr)
    return _read(data, text, source, _KeyPaths(source), base_dir, overrides, override_labels)


def _plain(value):
    """``value`` with paths as strings and tuples as lists, the types TOML gives."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | Path | None = None, *, overrides: dict | None = None,
                override_labels: dict[str, str] | None = None) -> CampaignConfig:
    """Read and validate the campaign at ``path``; None means the embedded default."""
    if path is None:
        return parse_config(default_campaign_text(), EMBEDDED, Path.cwd(),
                            overrides=overrides, override_labels=override_labels)
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such campaign file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the campaign file ({exc})") from None
    return parse_config(text, str(p), p.resolve().parent, overrides=overrides,
                        override_labels=override_labels)
