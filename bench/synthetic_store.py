"""Campaign databases filled with synthetic results: the analysis and the reports of a
paper-size study, without building anything. Used by bench/report_scale.py and
tests/test_reports_at_scale.py (from the checkout: it plans `tests.campaign_inputs`'s tiny
campaign); not part of the installed package.

A study of tens of thousands of mutants takes days to build and run; its analysis and reports
must still take seconds, and that is measured (``bench/report_scale.py``) and tested on stores
written here. `fill_store` writes one through the real `Store` API and schema, holding what a
real campaign holds: several models, targets and operators (the registry's, with their
categories), sites numbered per model and operator, every status (planned ``not_applicable``
and ``equivalent``, duplicates sharing another mutant's result, failures with their errors,
mutants that cannot run here), and per image the top-5 classes, scores, digest, latency and
full output vector, shaped by `running.output_rows.image_rows` as a worker shapes them.

What a mutant that runs does to the outputs is drawn from a seeded mix (`BEHAVIOURS`:
unchanged, perturbed, some images flipped, degenerate, non-finite, scrambled), so every branch
of the analysis is taken. Targets differ the way real ones do: ``llvm-avx2`` computes the
softmax in float32 (outputs ~1e-8 off the others', below the cross-target tolerance), and a few
mutants flip an image or change status on one target only. IR diffs and site descriptions are
those the real planner made for a few operators on the tiny test model (`planned_examples`),
reused across mutants of the same level.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mutatenn_passes.campaign.planning.plan import Task
from mutatenn_passes.campaign.running.output_rows import image_rows
from mutatenn_passes.campaign.scoring.store import Store

TARGETS = ("llvm-x86-64", "llvm-avx2", "c")
MODELS = ("shufflenet", "mobilenet_v2", "resnet18")

#: What a mutant that runs does to the outputs, and how often (weights).
BEHAVIOURS = {
    "unchanged": 0.30,  # bit-identical outputs: survives
    "perturbed": 0.25,  # small noise on the logits: top-5 order may change, top-1 rarely
    "flips": 0.25,      # some images get another top-1
    "degenerate": 0.06,  # one class wins on every image
    "nonfinite": 0.02,  # NaN outputs
    "scrambled": 0.12,  # outputs unrelated to the original's
}
#: What happens to a mutant with a site (on every target unless `TARGET_DEPENDENT` says
#: otherwise; ``not_applicable`` mutants come from `NO_SITE`).
OUTCOMES = {
    "ok": 0.78, "equivalent": 0.05, "build_failed": 0.06, "crashed": 0.04, "timeout": 0.02,
    "duplicate": 0.03, "cannot_run_here": 0.01, "device_lost": 0.01,
}
#: Share of mutants whose status or one image's top-1 differs on one target.
TARGET_DEPENDENT = 0.03
#: Share of (model, operator) pairs where the operator finds no site (``not_applicable``).
NO_SITE = 0.05
#: The operators whose real diffs `planned_examples` collects (graph and kernel level).
EXAMPLE_OPERATORS = ("relu_to_sigmoid", "add_to_subtract", "exp_before_conv2d_dense",
                     "store_mul_epsilon", "loop_extent_inc", "cond_lt_to_le")

_ERRORS = {
    "build_failed": ("build", "TVMError: Check failed: (lhs.dtype() == rhs.dtype()) is false: "
                              "mismatched types: float16 vs float32"),
    "crashed": ("run", "the mutant's process died with SIGSEGV while running image img0"),
    "timeout": ("run", "exceeded the per-mutant timeout of 120 s (build + run)"),
    "cannot_run_here": ("run", "cuda-sm90 cannot run on this machine: no CUDA device"),
    "device_lost": ("run", "rpc device lost after 2 failovers"),
}


def planned_examples(folder: str | Path) -> list[dict]:
    """Real IR diffs and sites: the planner run on the tiny test model with
    `EXAMPLE_OPERATORS` (first site each; compiles nothing, takes a few seconds).

    Returns per mutant ``{"operator", "level", "diff", "sites"}``.
    """
    from mutatenn_passes.campaign.config.campaign_file import load_config
    from mutatenn_passes.campaign.planning.plan import make_plan
    from tests.campaign_inputs import tiny_campaign

    ops = ", ".join(f'"{o}"' for o in EXAMPLE_OPERATORS)
    plan = make_plan(load_config(tiny_campaign(folder, operators=f"use = [{ops}]\n"
                                                                 "sites = [0]")))
    return [{"operator": t.operator, "level": t.level, "diff": t.diff, "sites": t.sites}
            for t in plan.mutants() if t.diff]


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def _softmax(logits: np.ndarray, target: str) -> np.ndarray:
    """Softmax as a target computes it: in float32 on ``llvm-avx2``, else in float64."""
    x = logits.astype(np.float32 if target == "llvm-avx2" else np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class _Generator:
    """The seeded draws behind one synthetic campaign."""

    def __init__(self, seed: int, images: int, classes: int, models: tuple):
        self.rng = np.random.default_rng(seed)
        self.images, self.classes = images, classes
        # each model's logits per image: a clear winner among varied classes
        self.logits = {}
        for m in models:
            base = self.rng.normal(0, 2, (images, classes))
            base[np.arange(images), self.rng.integers(0, classes, images)] += 6
            self.logits[m] = base

    def choice(self, table: dict) -> str:
        names = list(table)
        weights = np.array([table[n] for n in names])
        return names[self.rng.choice(len(names), p=weights / weights.sum())]

    def mutant_logits(self, model: str) -> np.ndarray:
        """A mutant's logits: the model's, changed as a `BEHAVIOURS` draw says."""
        base = self.logits[model]
        behaviour = self.choice(BEHAVIOURS)
        if behaviour == "unchanged":
            return base
        if behaviour == "perturbed":
            return base + self.rng.normal(0, self.rng.uniform(0.01, 0.5), base.shape)
        if behaviour == "flips":
            out = base.copy()
            flipped = self.rng.choice(self.images, self.rng.integers(1, self.images + 1),
                                      replace=False)
            winners = self.rng.integers(0, self.classes, len(flipped))
            out[flipped, winners] = out[flipped].max(axis=1) + self.rng.uniform(0.5, 3,
                                                                               len(flipped))
            return out
        if behaviour == "degenerate":
            out = base.copy()
            out[:, self.rng.integers(0, self.classes)] += 50
            return out
        if behaviour == "nonfinite":
            return np.full_like(base, np.nan)
        return self.rng.normal(0, 2, base.shape)  # scrambled

    def rows(self, logits: np.ndarray, target: str) -> list[dict]:
        names = [f"img{i}" for i in range(self.images)]
        with np.errstate(invalid="ignore"):
            vectors = _softmax(logits, target)
        return image_rows(names, vectors, list(self.rng.uniform(1, 5, self.images)), 5)


def _sites_per_operator(gen: _Generator, models, operators, groups: int) -> dict:
    """Sites found per (model, operator): ``groups`` mutants spread unevenly (at least one
    per pair with sites), and a few pairs with none."""
    weights = gen.rng.uniform(0.2, 1.8, (len(models), len(operators)))
    weights[gen.rng.random(weights.shape) < NO_SITE] = 0
    counts = (weights > 0).astype(int)
    spare = max(0, groups - int(counts.sum()))
    counts += np.floor(weights / weights.sum() * spare).astype(int)
    counts.flat[np.argsort(-weights, axis=None)[:max(0, groups - int(counts.sum()))]] += 1
    return {(m, op.id): int(counts[i, j]) for i, m in enumerate(models)
            for j, op in enumerate(operators)}


def fill_store(folder: str | Path, mutants: int, examples: list[dict], *, seed: int = 0,
               images: int = 5, classes: int = 1000, models: tuple = MODELS,
               targets: tuple = TARGETS, operators: list | None = None,
               image_labels: bool = False) -> Store:
    """Write a finished campaign of ``mutants`` mutant tasks (mutant x target) over
    ``models`` and ``targets`` into ``folder``'s store and return it (open).

    ``examples`` are `planned_examples` (real diffs and sites, by level); ``operators`` are
    registry specs (default: every registered operator). With ``image_labels`` a labels file
    is written and named in the configuration (the first image's label is wrong), so the
    statistical kill uses labels instead of the original's top-1.
    """
    from mutatenn_passes.registry import operators as registered

    folder = Path(folder)
    operators = list(operators or registered())
    gen = _Generator(seed, images, classes, models)
    by_level = {}
    for e in examples:
        by_level.setdefault(e["level"], []).append(e)
    store = Store(folder)
    store.db.execute("PRAGMA synchronous=OFF")  # a throwaway store: no fsync per result
    config = {"name": f"synthetic-{mutants}", "source": str(folder / "campaign.toml"),
              "seed": seed, "targets": list(targets), "image_labels": None,
              "operators": [{"id": op.id, "level": op.level, "category": op.category,
                             "mode": "each", "sites": "all", "sample": 0, "kernels": None,
                             "phase": None, "params": {}} for op in operators]}
    if image_labels:
        labels = folder / "labels.csv"
        top1 = gen.logits[models[0]].argmax(axis=1)
        labels.write_text("# image,class\n" + "".join(
            f"img{i},{(c + 1) % classes if i == 0 else c}\n" for i, c in enumerate(top1)))
        config["image_labels"] = str(labels)
    config_text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items())
    store.set_meta(
        config=config, config_text=config_text, seed=seed, state="finished", runs=1,
        versions={"synthetic": f"bench.synthetic_store seed {seed}"},
        started_at=0.0, finished_at=0.0, last_run_seconds={}, plan_seconds={},
        sampling={op.id: {"mode": "each", "sites": "all", "sample": 0, "seed": None}
                  for op in operators},
        models=[{"index": i, "name": m, "source": f"synthetic:{m}", "digest": _key(m),
                 "labels_list": [f"class {c}" for c in range(classes)] if i == 0 else None}
                for i, m in enumerate(models)],
        images=[{"name": f"img{i}", "path": f"img{i}.png"} for i in range(images)],
        targets=[{"name": t} for t in targets])

    tasks: list[Task] = []
    results: list[tuple[str, str, dict]] = []  # (key, status, record() arguments)
    for mi, m in enumerate(models):
        digest = _key(m)
        for t in targets:
            key = _key(m, "original", t)
            tasks.append(Task(key=key, kind="original", model=m, model_index=mi,
                              model_digest=digest, target=t, target_ref=t,
                              group=_key(m, "original")))
            results.append((key, "ok", {"build_s": 2.0, "run_s": 0.05,
                                        "outputs": gen.rows(gen.logits[m], t)}))
    groups = -(-mutants // len(targets))
    sites = _sites_per_operator(gen, models, operators, groups)
    done_ok: dict[str, list[str]] = {t: [] for t in targets}  # keys a duplicate can share
    count = 0
    for mi, m in enumerate(models):
        digest = _key(m)
        for op in operators:
            found = sites[(m, op.id)]
            pool = by_level.get(op.level, examples)  # real diffs of the operator's level
            example = pool[len(tasks) % len(pool)]
            for site in (range(found) if found else [None]):
                group = _key(m, op.id, site)
                outcome = "not_applicable" if site is None else gen.choice(OUTCOMES)
                logits = gen.mutant_logits(m)
                odd_target = targets[gen.rng.integers(len(targets))] \
                    if gen.rng.random() < TARGET_DEPENDENT else None
                for t in targets:
                    if count == mutants:
                        break
                    count += 1
                    key = _key(m, op.id, site, t)
                    task = Task(
                        key=key, kind="mutant", model=m, model_index=mi, model_digest=digest,
                        target=t, target_ref=t, operator=op.id, level=op.level,
                        category=op.category, phase="" if op.level == "graph" else "s_tir",
                        params={}, mode="each", selection="all",
                        sites=[] if site is None else [dict(s, index=site)
                                                        for s in example["sites"]],
                        site_indices=[] if site is None else [site], sites_found=found,
                        group=group, ir_hash=_key("ir", m, op.id, site, t))
                    status = outcome
                    if t == odd_target and status == "ok":
                        status = "equivalent" if op.level == "kernel" else "ok"
                    if status in ("not_applicable", "equivalent"):
                        task.planned_status = status
                        task.note = "the operator finds no site in this model" \
                            if status == "not_applicable" else \
                            "mutated IR is structurally equal to the original's"
                        results.append((key, status, {"error": task.note}))
                    elif status == "duplicate" and done_ok[t]:
                        task.duplicate_of = done_ok[t][gen.rng.integers(len(done_ok[t]))]
                        task.note = "mutated IR equals another mutant's: built once"
                        task.diff = example["diff"]
                    else:
                        status = "ok" if status == "duplicate" else status
                        task.diff = example["diff"]
                        results.append((key, status, _result(gen, status, logits, t,
                                                             t == odd_target)))
                        if status == "ok":
                            done_ok[t].append(key)
                    tasks.append(task)
    store.save_plan(tasks)
    for key, status, values in results:
        store.record(key, status, **values)
    return store


def _result(gen: _Generator, status: str, logits: np.ndarray, target: str,
            odd: bool) -> dict:
    """``Store.record`` arguments of a mutant that was built (and ran, when ``ok``)."""
    values = {"build_s": float(gen.rng.uniform(0.5, 6)), "build_mode": "incremental",
              "ir_verified": True}
    if status != "ok":
        stage, error = _ERRORS[status]
        values.update(stage=stage, error=error,
                      signal="SIGSEGV" if status == "crashed" else "")
        return values
    if odd:  # one image gets another top-1 on this target only
        logits = logits.copy()
        logits[0, gen.rng.integers(gen.classes)] = logits[0].max() + 1
    values.update(load_s=float(gen.rng.uniform(0.05, 0.3)),
                  run_s=float(gen.rng.uniform(0.02, 0.2)), outputs=gen.rows(logits, target))
    return values
