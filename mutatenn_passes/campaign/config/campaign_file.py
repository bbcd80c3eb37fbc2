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

The schema (every key, its type, default and help) is `schema`; the checks of one document
are `reader.Reader`'s; the problems and where they are, `problems`.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

from ...errors import ConfigError
from .campaign_config import CampaignConfig
from .problems import KeyPaths, Overridden, TextLines
from .reader import Reader, as_list
from .schema import template

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EMBEDDED = "embedded:default"


def default_campaign_text() -> str:
    """The embedded default campaign (also what `mutatenn init` writes): `schema.template`."""
    return template()


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
                for t in as_list(overrides["targets"])]
        labels = {k: (override_labels or {}).get(k, f"override {k}") for k in overrides}
        locator = Overridden(locator, labels)
        data = copy.deepcopy(data)
        if isinstance(data.setdefault("campaign", {}), dict):
            data["campaign"].update(overrides)
    reader = Reader(data, locator, base)
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
        prefix_reuse=c["prefix_reuse"],
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
    return _read(data, text, source, TextLines(source, text), base_dir, overrides,
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
    return _read(data, text, source, KeyPaths(source), base_dir, overrides, override_labels)


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
