"""A campaign's results as Python objects: what `api.run_campaign` and `api.open_campaign`
return.

Everything comes from the campaign's output folder (its database, ``results.db``), so a result
opened later, in another process or while the campaign still runs, reads the same as the one a
run hands back. The analysis (metrics, scores, cross-target tables: `analysis.analyse`) is
computed once, when first needed; a run hands over the one it made. A mutant's per-image
outputs and IR diff are read only when asked for, and once each. Tables are lists of records
(dicts), and DataFrames through `CampaignResult.to_pandas` when pandas is installed.
"""

from __future__ import annotations

from contextlib import closing
from functools import cached_property
from pathlib import Path

import numpy as np

from ...errors import MissingDependencyError, MutateNNError
from .store import Store

#: The tables `CampaignResult.to_pandas` makes DataFrames of.
TABLES = ("mutants", "originals", "summary", "cross_target", "cross_target_pairwise",
          "ignored")


class CampaignResult:
    """The results of the campaign in ``folder``: finished, or partial (interrupted, still
    running: mutants not run yet have status ``pending``)."""

    def __init__(self, folder: str | Path, analysis: dict | None = None, stats=None):
        self.folder = Path(folder)
        #: The run's counts (`engine.RunStats`: built, ran, skipped...); None when opened.
        self.stats = stats
        if analysis is not None:  # what `analysis` (a cached property) would compute
            self.__dict__["analysis"] = analysis
        self._outputs: dict[str, list[dict]] = {}
        self._diffs: dict[str, str] = {}

    def _store(self) -> closing:
        return closing(Store(self.folder, create=False))

    @cached_property
    def analysis(self) -> dict:
        """Everything the reports show (`analysis.analyse`), as one dict."""
        from .analysis import analyse

        with self._store() as store:
            return analyse(store)

    # -- the campaign ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.analysis["campaign"]["name"]

    @property
    def state(self) -> str:
        """``finished``, ``running``, ``interrupted`` or ``planning``; a campaign killed
        outright (SIGKILL), whose database still says ``running``, reads ``interrupted``."""
        return self.analysis["campaign"]["state"]

    @property
    def partial(self) -> str:
        """``partial: N of M finished`` while some mutants are ``pending``; '' when all
        finished. The scores count finished mutants only."""
        return self.analysis["campaign"]["partial"]

    @property
    def notes(self) -> list[str]:
        """What to know before trusting the numbers, one line each, as the reports say it (a
        partial campaign, an original whose outputs ignore the input, a statistical test
        that cannot decide with so few images, skipped image files)."""
        return self.analysis["campaign"]["notes"]

    @property
    def score(self) -> float | None:
        """The overall mutation score (None when no mutant was assessed)."""
        return self.analysis["summary"]["overall"]["mutation_score"]

    @property
    def fail_under(self) -> float | None:
        """The campaign's threshold (``[campaign] fail_under`` or the override it ran with)."""
        return self.analysis["campaign"]["config"].get("fail_under")

    def threshold_failure(self, fail_under: float | None = None) -> str | None:
        """One line naming the score and the threshold when the score is below
        ``fail_under`` (default: the campaign's); None when it is not or there is none."""
        from .gate import threshold_failure

        threshold = self.fail_under if fail_under is None else fail_under
        return threshold_failure(self.analysis["summary"]["overall"], threshold)

    @property
    def warnings(self) -> list[str]:
        """Ignore-list entries that matched no mutant, one line each."""
        from ..config.ignore import unmatched_warnings

        return unmatched_warnings(self.analysis["ignore"])

    # -- tables as lists of records ------------------------------------------------------
    @cached_property
    def mutants(self) -> list[dict]:
        """One record per mutant and target: plan, status, error, timings, ``killed``,
        ``ignored`` and its reason, and the metrics against the original (None when it did
        not run); ``site_ids`` are the IDs an ignore list names."""
        from .report_rows import METRICS

        records = []
        for r in self.analysis["mutants"]:
            record = {k: v for k, v in r.items() if k not in ("images", "metrics")}
            record["site_ids"] = [s["id"] for s in r["sites"]]
            record.update({k: (r["metrics"] or {}).get(k) for k in METRICS})
            records.append(record)
        return records

    @cached_property
    def originals(self) -> list[dict]:
        """One record per model and target: the unmutated build's status, timings, top-1
        class per image and accuracy against the image labels."""
        return [{k: v for k, v in o.items() if k != "images"}
                for o in self.analysis["originals"]]

    @cached_property
    def summary(self) -> list[dict]:
        """The scores overall and per operator, category, model and target (summary.csv)."""
        summary = self.analysis["summary"]
        return [{"group_by": "overall", "group": "all", **summary["overall"]}] + \
            [{"group_by": by, "group": name, **scores}
             for by in ("operator", "category", "model", "target")
             for name, scores in summary[by].items()]

    @cached_property
    def cross_target(self) -> list[dict]:
        """Every cross-target pair (cross_target.csv): the originals, then each mutant built
        for several targets, with ``differs`` and its ``reason``."""
        from .report_rows import cross_target_rows

        return cross_target_rows(self.analysis["cross_target"])

    @property
    def cross_target_pairwise(self) -> list[dict]:
        """Per model and target pair: the original's metrics and the means over mutants."""
        return self.analysis["cross_target"]["pairwise"]

    @property
    def ignored(self) -> list[dict]:
        """The ignore list's entries: ``id``, ``reason`` and how many mutants each matched."""
        return self.analysis["ignore"]

    def to_pandas(self, table: str = "mutants"):
        """``table`` (one of `TABLES`) as a pandas DataFrame; pandas is optional."""
        if table not in TABLES:
            raise MutateNNError(f"unknown table {table!r}; the tables are "
                                f"{', '.join(TABLES)}")
        try:
            import pandas
        except ImportError:
            raise MissingDependencyError(
                "to_pandas() needs pandas, which is not installed (pip install pandas); the "
                f"same table is a list of records in result.{table}") from None
        return pandas.DataFrame.from_records(getattr(self, table))

    # -- one mutant ------------------------------------------------------------------------
    @cached_property
    def _rows(self) -> dict[str, dict]:
        return {r["key"]: r for r in self.analysis["originals"] + self.analysis["mutants"]}

    def mutant(self, mutant: str | dict) -> dict:
        """The full analysis row of a mutant (or an original) given by its key or record,
        metrics and per-image top-5 included."""
        key = mutant.get("key") if isinstance(mutant, dict) else mutant
        row = self._rows.get(key)
        if row is None:
            raise MutateNNError(f"no mutant or original with key {key!r} in the campaign in "
                                f"{self.folder}")
        return row

    def _read_outputs(self, mutant) -> list[dict]:
        row = self.mutant(mutant)
        key = row.get("duplicate_of") or row["key"]  # a duplicate shares its source's run
        if key not in self._outputs:
            with self._store() as store:
                self._outputs[key] = store.outputs(key)
        return self._outputs[key]

    def predictions(self, mutant: str | dict) -> list[dict]:
        """Per image (in the campaign's order): its name, the top-1 and top-5 classes with
        their scores, the latency and the output vector's digest ([] when it did not run)."""
        return [{"image": o["image"], "top1": o["classes"][0], "classes": o["classes"],
                 "scores": o["scores"], "latency_ms": o["latency_ms"], "digest": o["digest"]}
                for o in self._read_outputs(mutant)]

    def outputs(self, mutant: str | dict) -> np.ndarray:
        """The full output vectors, one row per image (float32; shape (0, 0) when it did not
        run)."""
        outs = self._read_outputs(mutant)
        return np.stack([o["vector"] for o in outs]) if outs \
            else np.empty((0, 0), dtype=np.float32)

    def diff(self, mutant: str | dict) -> str:
        """The unified diff of the IR functions the mutant changed (original vs mutant; "" for
        an original or an equivalent mutant)."""
        key = self.mutant(mutant)["key"]
        if key not in self._diffs:
            with self._store() as store:
                self._diffs[key] = store.diff(key)
        return self._diffs[key]

    # -- CI ----------------------------------------------------------------------------------
    def write_junit(self, path: str | Path) -> Path:
        """A JUnit XML file with one test case per mutant (`junit`)."""
        from .junit import write_junit

        return write_junit(self.analysis, path)

    def __repr__(self) -> str:
        score = "n/a" if self.score is None else f"{self.score:.3f}"
        partial = f" ({self.partial})" if self.partial else ""
        return (f"<CampaignResult {self.name!r} in {self.folder}: {self.state}{partial}, "
                f"{len(self.analysis['mutants'])} mutant(s), score {score}>")
