"""A validated campaign as data: what `campaign_file` returns and the later stages read.

`CampaignConfig` holds the whole campaign; `ModelConfig` one model, `OperatorConfig` how one
operator's sites become mutants, `IgnoreEntry` one mutant kept out of the score.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    prefix_reuse: bool = False
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
                "prefix_reuse": self.prefix_reuse,
                "targets": list(self.targets), "fail_under": self.fail_under,
                "executor": self.executor, "ray_address": self.ray_address,
                "models": [m.as_dict() for m in self.models],
                "images": self.images, "image_labels": self.image_labels,
                "operator_names": list(self.operator_names),
                "operators": [o.as_dict() for o in self.operators],
                "ignore": [e.as_dict() for e in self.ignore]}
