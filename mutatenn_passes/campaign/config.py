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
from typing import Any

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

_CAMPAIGN_KEYS = {"name", "output", "seed", "workers", "timeout", "keep_artifacts", "targets",
                  "incremental"}
_MODEL_KEYS = {"path", "name", "labels", "preprocess"}
_IMAGE_KEYS = {"paths", "labels"}
_OPERATOR_KEYS = {"use", "exclude", "mode", "sites", "sample"}
_PER_OPERATOR_KEYS = {"mode", "sites", "sample", "kernels", "phase", "params"}
_TOP_KEYS = {"campaign", "models", "images", "operators"}

DEFAULTS = {"name": "campaign", "output": "mutatenn-campaign", "seed": 0, "workers": 2,
            "timeout": 300.0, "keep_artifacts": False, "incremental": True,
            "targets": ["llvm-x86-64"],
            "use": ["paper"], "mode": "each", "sites": "all", "sample": 0}


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
    def __init__(self, source: str, lines: KeyLines):
        self.source = source
        self.lines = lines
        self.items: list[tuple[int, str]] = []

    def add(self, path, message: str, line: int | None = None) -> None:
        self.items.append((line or self.lines.line_of(path), message))

    def unknown_keys(self, table: dict, known: set, path: tuple, where: str) -> None:
        for key in table:
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else \
                    f" (known: {', '.join(sorted(known))})"
                self.add(path + (key,), f"unknown key {key!r} in {where}{hint}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda item: item[0])
        head = f"{self.source}: {len(self.items)} problem(s) in the campaign file"
        body = "\n".join(f"  {self.source}:{line}: {msg}" for line, msg in self.items)
        raise ConfigError(f"{head}\n{body}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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


def _path_value(value, path, problems: _Problems, base: Path, what: str, *,
                must_be_file=True) -> str | None:
    if not isinstance(value, str) or not value:
        problems.add(path, f"{what} must be a non-empty string path, not {value!r}")
        return None
    p = Path(value).expanduser()
    p = p if p.is_absolute() else base / p
    if must_be_file and not p.is_file():
        problems.add(path, f"{what} {value!r}: no such file ({p})")
    elif not must_be_file and not p.exists():
        problems.add(path, f"{what} {value!r}: no such file or folder ({p})")
    return str(p)


def parse_config(text: str, source: str = "<campaign>", base_dir: Path | None = None,
                 output_base: Path | None = None) -> CampaignConfig:
    """Validate campaign ``text``; every problem is reported in one `ConfigError`."""
    from ..images import Preprocess
    from ..registry import get_operator, resolve_operator_names
    from ..mutation import KERNEL_PHASES
    from ..targets import get_profile

    base = Path(base_dir or ".").resolve()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    lines = KeyLines(text)
    problems = _Problems(source, lines)
    problems.unknown_keys(data, _TOP_KEYS, (), "the campaign file")

    def table(key) -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            problems.add((key,), f"{key} must be a table ([{key}])")
            return {}
        return value

    # [campaign]
    camp = table("campaign")
    problems.unknown_keys(camp, _CAMPAIGN_KEYS, ("campaign",), "[campaign]")
    get = lambda k: camp.get(k, DEFAULTS[k])  # noqa: E731
    name = get("name")
    if not isinstance(name, str) or not name:
        problems.add(("campaign", "name"), f"name must be a non-empty string, not {name!r}")
    output = get("output")
    if not isinstance(output, str) or not output:
        problems.add(("campaign", "output"), f"output must be a folder path, not {output!r}")
        output = DEFAULTS["output"]
    seed = get("seed")
    if not _is_int(seed) or seed < 0:
        problems.add(("campaign", "seed"), f"seed must be a non-negative integer, not {seed!r}")
        seed = 0
    workers = get("workers")
    if not _is_int(workers) or workers < 1:
        problems.add(("campaign", "workers"), f"workers must be an integer >= 1, not "
                                              f"{workers!r}")
        workers = 1
    timeout = get("timeout")
    if not _is_number(timeout) or timeout <= 0:
        problems.add(("campaign", "timeout"), f"timeout must be a positive number of seconds "
                                              f"(per mutant), not {timeout!r}")
        timeout = DEFAULTS["timeout"]
    keep = get("keep_artifacts")
    if not isinstance(keep, bool):
        problems.add(("campaign", "keep_artifacts"), f"keep_artifacts must be true or false, "
                                                     f"not {keep!r}")
        keep = False
    incremental = get("incremental")
    if not isinstance(incremental, bool):
        problems.add(("campaign", "incremental"), f"incremental must be true or false, not "
                                                  f"{incremental!r}")
        incremental = True
    targets = get("targets")
    if isinstance(targets, str):
        targets = [targets]
    good_targets = []
    if not isinstance(targets, list) or not targets:
        problems.add(("campaign", "targets"), f"targets must be a non-empty list of target "
                                              f"profile names, not {targets!r}")
    else:
        for t in targets:
            if not isinstance(t, str):
                problems.add(("campaign", "targets"), f"target {t!r} is not a string")
                continue
            ref = t
            if t.endswith(".toml") or "/" in t:
                p = Path(t).expanduser()
                ref = str(p if p.is_absolute() else base / p)
            try:
                profile = get_profile(ref)
            except MutateNNError as exc:
                problems.add(None, str(exc), lines.value_line(("campaign", "targets"),
                                                              f'"{t}"'))
                continue
            can, why = profile.can_build()
            if not can:
                problems.add(None, f"target {t!r} cannot be built on this machine: {why}",
                             lines.value_line(("campaign", "targets"), f'"{t}"'))
                continue
            if profile.name in [get_profile(g).name for g in good_targets]:
                problems.add(("campaign", "targets"), f"target {t!r} is listed twice")
                continue
            good_targets.append(ref)

    # [[models]]
    raw_models = data.get("models", [])
    models: list[ModelConfig] = []
    if isinstance(raw_models, dict):
        raw_models = [raw_models]
    if not isinstance(raw_models, list):
        problems.add(("models",), "models must be an array of tables ([[models]])")
        raw_models = []
    pre_fields = {f.name: f for f in dataclasses.fields(Preprocess)}
    for i, m in enumerate(raw_models):
        where = ("models", i)
        if not isinstance(m, dict):
            problems.add(where, "each [[models]] entry must be a table")
            continue
        problems.unknown_keys(m, _MODEL_KEYS, where, "[[models]]")
        path = _path_value(m["path"], where + ("path",), problems, base, "model") \
            if "path" in m else None
        labels = _path_value(m["labels"], where + ("labels",), problems, base,
                             "labels file") if "labels" in m else None
        mname = m.get("name")
        if mname is not None and (not isinstance(mname, str) or not mname):
            problems.add(where + ("name",), f"name must be a non-empty string, not {mname!r}")
            mname = None
        pre = m.get("preprocess", {})
        if not isinstance(pre, dict):
            problems.add(where + ("preprocess",), "preprocess must be a table")
            pre = {}
        problems.unknown_keys(pre, set(pre_fields), where + ("preprocess",),
                              "[models.preprocess]")
        pre = {k: v for k, v in pre.items() if k in pre_fields}
        for k, v in pre.items():
            kp = where + ("preprocess", k)
            if k in ("height", "width") and (not _is_int(v) or v < 1):
                problems.add(kp, f"{k} must be a positive integer, not {v!r}")
            elif k in ("mean", "std") and (not isinstance(v, list) or len(v) != 3
                                           or not all(_is_number(x) for x in v)
                                           or (k == "std" and any(x == 0 for x in v))):
                problems.add(kp, f"{k} must be three numbers{' (non-zero)' if k == 'std' else ''}"
                                 f", not {v!r}")
            elif k == "layout" and v not in ("NCHW", "NHWC"):
                problems.add(kp, f"layout must be \"NCHW\" or \"NHWC\", not {v!r}")
            elif k == "channel_order" and v not in ("RGB", "BGR"):
                problems.add(kp, f"channel_order must be \"RGB\" or \"BGR\", not {v!r}")
            elif k == "raw" and not isinstance(v, bool):
                problems.add(kp, f"raw must be true or false, not {v!r}")
            elif k == "scale" and (not _is_number(v) or v <= 0):
                problems.add(kp, f"scale must be a positive number, not {v!r}")
            elif k == "resample" and v not in ("bicubic", "bilinear", "nearest", "lanczos"):
                problems.add(kp, "resample must be one of bicubic, bilinear, nearest, "
                                 f"lanczos, not {v!r}")
            elif k == "dtype" and v not in ("float32", "float16", "uint8", "int8"):
                problems.add(kp, f"dtype must be float32, float16, uint8 or int8, not {v!r}")
        models.append(ModelConfig(path=path, name=mname, labels=labels, preprocess=pre))
    if not models:
        models = [ModelConfig()]
    names = [m.path or "default" for m in models]
    if len(set(zip(names, [m.name for m in models]))) != len(models):
        problems.add(("models",), "the same model is listed twice")

    # [images]
    imgs = table("images")
    problems.unknown_keys(imgs, _IMAGE_KEYS, ("images",), "[images]")
    image_paths = None
    if "paths" in imgs:
        value = imgs["paths"]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            problems.add(("images", "paths"), "paths must be a non-empty list of image files "
                                              "or folders (omit it for the default images)")
        else:
            image_paths = []
            for v in value:
                if not isinstance(v, str):
                    problems.add(("images", "paths"), f"image path {v!r} is not a string")
                    continue
                p = Path(v).expanduser()
                p = p if p.is_absolute() else base / p
                if not p.exists():
                    problems.add(None, f"image path {v!r}: no such file or folder ({p})",
                                 lines.value_line(("images", "paths"), f'"{v}"'))
                image_paths.append(str(p))
    image_labels = _path_value(imgs["labels"], ("images", "labels"), problems, base,
                               "image labels file") if "labels" in imgs else None

    # [operators]
    ops = table("operators")
    op_ids = set()
    try:
        from ..registry import operators as _all_ops
        op_ids = {s.id for s in _all_ops()}
    except MutateNNError as exc:  # pragma: no cover - registry import failure
        problems.add(("operators",), str(exc))
    for key, value in ops.items():
        if key in _OPERATOR_KEYS:
            continue
        if key not in op_ids:
            near = difflib.get_close_matches(key, sorted(op_ids | _OPERATOR_KEYS), n=1,
                                             cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.add(("operators", key), f"unknown key or operator {key!r} in "
                                             f"[operators]{hint}")
        elif not isinstance(value, dict):
            problems.add(("operators", key), f"[operators.{key}] must be a table")
    use = ops.get("use", DEFAULTS["use"])
    use = [use] if isinstance(use, str) else use
    selected = []
    if not isinstance(use, list) or not use or not all(isinstance(u, str) for u in use):
        problems.add(("operators", "use"), "use must be a list of operator IDs, category "
                                           "names or presets (paper, all, graph, kernel)")
    else:
        for u in use:
            try:
                selected += [s for s in resolve_operator_names([u])
                             if s.id not in [x.id for x in selected]]
            except MutateNNError as exc:
                problems.add(None, str(exc), lines.value_line(("operators", "use"), f'"{u}"'))
    exclude = ops.get("exclude", [])
    exclude = [exclude] if isinstance(exclude, str) else exclude
    excluded = set()
    if not isinstance(exclude, list) or not all(isinstance(u, str) for u in exclude):
        problems.add(("operators", "exclude"), "exclude must be a list of operator IDs, "
                                               "category names or presets")
    else:
        for u in exclude:
            try:
                excluded |= {s.id for s in resolve_operator_names([u])}
            except MutateNNError as exc:
                problems.add(None, str(exc), lines.value_line(("operators", "exclude"),
                                                              f'"{u}"'))
    selected = [s for s in selected if s.id not in excluded]
    if not selected and not any(p for p in problems.items):
        problems.add(("operators",), "no operator is selected (check use and exclude)")

    def check_mode(value, path):
        if value not in MODES:
            problems.add(path, f"mode must be one of {', '.join(MODES)}, not {value!r}")
            return "each"
        return value

    def check_sample(value, path):
        if not _is_int(value) or value < 0:
            problems.add(path, f"sample must be a non-negative integer (0 = every selected "
                               f"site), not {value!r}")
            return 0
        return value

    d_mode = check_mode(ops.get("mode", DEFAULTS["mode"]), ("operators", "mode"))
    d_sites = _parse_sites(ops.get("sites", DEFAULTS["sites"]), ("operators", "sites"),
                           problems)
    d_sample = check_sample(ops.get("sample", DEFAULTS["sample"]), ("operators", "sample"))
    configured = {}
    for key, value in ops.items():
        if key in _OPERATOR_KEYS or key not in op_ids or not isinstance(value, dict):
            continue
        path = ("operators", key)
        spec = get_operator(key)
        problems.unknown_keys(value, _PER_OPERATOR_KEYS, path, f"[operators.{key}]")
        mode = check_mode(value.get("mode", d_mode), path + ("mode",))
        sites = _parse_sites(value["sites"], path + ("sites",), problems) \
            if "sites" in value else d_sites
        sample = check_sample(value.get("sample", d_sample), path + ("sample",))
        kernels, phase = value.get("kernels"), value.get("phase")
        if spec.level == "graph":
            for k in ("kernels", "phase"):
                if k in value:
                    problems.add(path + (k,), f"{key} is a graph-level operator: {k!r} applies "
                                              "to kernel-level operators only")
            kernels = phase = None
        else:
            if kernels is not None and (not isinstance(kernels, str) or not kernels):
                problems.add(path + ("kernels",), f"kernels must be a glob over kernel names, "
                                                  f"not {kernels!r}")
                kernels = None
            if phase is not None and phase not in KERNEL_PHASES:
                problems.add(path + ("phase",), f"phase must be one of "
                                                f"{', '.join(KERNEL_PHASES)}, not {phase!r}")
                phase = None
        params = value.get("params", {})
        if not isinstance(params, dict):
            problems.add(path + ("params",), "params must be a table")
            params = {}
        try:
            spec.resolve_params(params)
        except MutateNNError as exc:
            problems.add(path + ("params",), str(exc))
            params = {}
        configured[key] = OperatorConfig(key, spec.level, spec.category, mode, sites, sample,
                                         kernels, phase, dict(params))
    operators_cfg = [configured.get(s.id) or OperatorConfig(
        s.id, s.level, s.category, d_mode, d_sites, d_sample) for s in selected]

    problems.raise_if_any()
    out = Path(output).expanduser()
    out = out if out.is_absolute() else Path(output_base or base) / out
    return CampaignConfig(
        name=name, source=source, text=text, base_dir=base, output=out.resolve(), seed=seed,
        workers=workers, timeout=float(timeout), keep_artifacts=keep, targets=good_targets,
        models=models, images=image_paths, image_labels=image_labels,
        operators=operators_cfg, operator_names=[s.id for s in selected],
        incremental=incremental)


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
