"""Campaigns from Python, notebooks and CI scripts: `run_campaign` and `open_campaign`.

`run_campaign(config, **overrides)` is `mutatenn run` as a function. ``config`` is a campaign
file's path, TOML text, a dict in the file's schema, or None for the embedded default; it is
validated by the code that checks files (`config`), with the same errors (a dict's name key
paths, an override's name the override). ``overrides`` replace ``[campaign]`` keys as the
command's flags do (`FLAGS`). The campaign runs, or resumes, in the engine
(`engine.execute_campaign`) and the result is a `CampaignResult`. `open_campaign(folder)` reads
a finished or partial campaign without running anything. Run without a terminal (a notebook),
progress shows as a `tqdm.auto` bar; on a terminal, as `mutatenn run` shows it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .scoring.campaign_result import CampaignResult
from .config.campaign_config import CampaignConfig
from .config.campaign_file import config_from_dict, load_config, parse_config

#: The ``[campaign]`` keys `mutatenn run` overrides, and its flag for each (a Python caller
#: may override any ``[campaign]`` key).
FLAGS = {"output": "--output", "workers": "--workers", "timeout": "--timeout",
         "targets": "--targets", "keep_artifacts": "--keep-artifacts",
         "prefix_reuse": "--prefix-reuse",
         "fail_under": "--fail-under", "executor": "--ray", "ray_address": "--ray"}


def load_campaign(config=None, *, overrides: dict | None = None,
                  override_labels: dict[str, str] | None = None) -> CampaignConfig:
    """A validated campaign from a path, TOML text (a string with a newline or an ``=``), a
    dict, or None (the embedded default); relative paths in text or a dict are resolved
    against the current folder, in a file against the file's folder. A `CampaignConfig` is
    taken as it is."""
    options = {"overrides": overrides, "override_labels": override_labels}
    if isinstance(config, CampaignConfig):
        if any(v is not None for v in (overrides or {}).values()):
            raise ConfigError("overrides apply to a campaign path, text or dict; a "
                              "CampaignConfig is already validated (use dataclasses.replace)")
        return config
    if config is None:
        return load_config(None, **options)
    if isinstance(config, dict):
        return config_from_dict(config, "<dict>", Path.cwd(), **options)
    if isinstance(config, str) and ("\n" in config or "=" in config):
        return parse_config(config, "<string>", Path.cwd(), **options)
    if isinstance(config, (str, os.PathLike)):
        return load_config(config, **options)
    raise ConfigError(f"a campaign is a file path, TOML text, a dict or None, not "
                      f"{type(config).__name__}")


def run_campaign(config=None, *, progress=None, quiet: bool = False,
                 **overrides) -> CampaignResult:
    """Run (or resume) a campaign and return its results.

    ``overrides`` replace ``[campaign]`` keys: ``output`` (a relative one is resolved against
    the current folder, like ``--output``), ``workers``, ``timeout``, ``targets``,
    ``keep_artifacts``, ``fail_under``, ``seed``, ``incremental``, ``prefix_reuse``, ``name``,
    ``executor`` (``"local"`` or ``"ray"``) and ``ray_address`` (``"auto"`` or ``HOST:PORT``; see
    docs/cluster.md); None leaves a key as the campaign has it. ``quiet`` shows only the final summary; ``progress`` replaces the
    display (see `progress.CampaignUI`). The threshold does not raise: check
    `CampaignResult.threshold_failure`. Inputs the campaign cannot use (an undecodable image,
    a label file that does not match its model, ...) raise `ConfigError` before any work;
    Ctrl-C raises `errors.CampaignInterrupted` saying how many results were saved.
    """
    from .running.engine import execute_campaign
    from .running.progress import CampaignUI

    validated = load_campaign(config, overrides=overrides)
    ui = progress or (CampaignUI(quiet=True) if quiet else None)
    outcome = execute_campaign(validated, progress=ui)
    return CampaignResult(validated.output, analysis=outcome["analysis"],
                          stats=outcome["stats"])


def open_campaign(folder: str | Path) -> CampaignResult:
    """The results of the campaign whose output folder is ``folder``, finished or not; runs
    nothing. A folder without a campaign database raises `MutateNNError`."""
    from .scoring.store import Store

    Store(folder, create=False).close()  # raises when there is no database
    return CampaignResult(folder)
