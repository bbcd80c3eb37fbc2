"""The campaign reader: one campaign document (parsed TOML, or a dict in its schema), table
by table, into a `CampaignConfig`. Values are checked against `schema`'s declared types;
what the schema cannot say (files that must exist, target profiles that must build here,
operator names, site selections) is checked here against the world.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from ...errors import MutateNNError
from .campaign_config import IgnoreEntry, ModelConfig, OperatorConfig
from .problems import Problems
from .schema import (CAMPAIGN_KEYS, IGNORE_FORM, IGNORE_KEYS, IMAGES_KEYS, MODEL_KEYS,
                     OPERATORS_KEYS, PER_OPERATOR_KEYS, PREPROCESS_KEYS, TOP_KEYS, is_int,
                     nonempty_str)


def parse_sites(value, path, problems: Problems):
    """``"all"``, an index, a list of indices, or ``{start, stop, step}`` -> selection."""
    if value == "all":
        return "all"
    if is_int(value):
        if value < 0:
            problems.add(path, f"site index {value} is negative")
        return [value]
    if isinstance(value, list):
        bad = [v for v in value if not is_int(v) or v < 0]
        if bad or not value:
            problems.add(path, "sites must be \"all\", an index, a non-empty list of "
                               f"non-negative indices or {{start, stop[, step]}}, not {value!r}")
            return "all"
        return list(value)
    if isinstance(value, dict):
        unknown = set(value) - {"start", "stop", "step"}
        start, stop, step = value.get("start", 0), value.get("stop"), value.get("step", 1)
        if unknown or not all(is_int(v) for v in (start, stop, step)) or start < 0 \
                or step < 1 or stop <= start:
            problems.add(path, "a site range is {start = A, stop = B[, step = C]} with "
                               f"0 <= A < B and C >= 1, not {value!r}")
            return "all"
        return range(start, stop, step)
    problems.add(path, f"sites must be \"all\", an index, a list of indices or "
                       f"{{start, stop[, step]}}, not {value!r}")
    return "all"


def as_list(value):
    return [value] if isinstance(value, str) else value


class Reader:
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
        self.problems.unknown_keys(self.data, TOP_KEYS, (), "the campaign file")

    def table(self, key: str) -> dict:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.problems.add((key,), f"{key} must be a table ([{key}])")
            return {}
        return value

    def file(self, where: tuple, value, what: str) -> str | None:
        """An existing file's path, resolved against the campaign file's folder."""
        if not nonempty_str(value):
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
        targets = as_list(targets)
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
        value, path = as_list(v["paths"]), ("images", "paths")
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
                    "sites": parse_sites(v["sites"], ("operators", "sites"), self.problems)}
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
            self.problems.add(path, f"ignore must be a list of {IGNORE_FORM} tables")
            return []
        ids = sorted(s.id for s in operators())
        out: dict[str, IgnoreEntry] = {}
        for i, entry in enumerate(entries):
            where = path + (i,)
            if not isinstance(entry, dict):
                self.problems.add(where, f"ignore entry {entry!r} must be a table "
                                         f"{IGNORE_FORM}: every entry needs a reason")
                continue
            v = self.problems.read(entry, IGNORE_KEYS, where, "an ignore entry")
            if v["id"] is None or v["reason"] is None:
                missing = [k for k in ("id", "reason") if k not in entry]
                if missing:
                    self.problems.add(where, f"ignore entry lacks {' and '.join(missing)}: "
                                             f"each is {IGNORE_FORM}")
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

        names = as_list(names)
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
        sites = parse_sites(v["sites"], path + ("sites",), self.problems) \
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
