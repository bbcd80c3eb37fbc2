"""Analysis: compare every mutant with the original on the same target, from the database.

Per mutant and target (images in the same order):

* ``top1_disagreement`` — share of images whose top-1 class differs from the original's;
* ``top5_overlap`` — mean |top-5(mutant) ∩ top-5(original)| / 5;
* ``rbo`` — mean rank-biased overlap of the top-5 lists (p = 0.9, extrapolated);
* ``kendall_tau`` — mean Kendall's tau-b of the top-5 rankings;
* ``max_abs_diff`` / ``mean_abs_diff`` — of the full output vectors;
* ``degenerate`` — at least 90% of the images get the same top-1 while the original's top-1
  classes are varied (its most frequent class covers less than 90% of the images);
* ``killed`` — some image's top-1 differs from the original's;
* ``stat_killed`` / ``p_value`` — DeepCrime-style statistical criterion: Fisher's exact test
  (two-sided, alpha 0.05) of the mutant's vs the original's agreement with a reference
  labelling: the campaign's image labels where given, otherwise the original's top-1 (then the
  original agrees with itself on every image). With fewer reference images than the test
  needs to reach alpha at all (`metrics.fisher_min_images`: 4), ``stat_killed`` is None (not
  assessed) and a note says so.

Mutation score = killed / (mutants − equivalent − not_applicable − not assessed − ignored −
pending), where "not assessed" are ``cannot_run_here`` and ``device_lost`` mutants (no outputs
to compare on this machine), "ignored" are those the campaign's ignore list names (`ignore`;
they keep their status and metrics, and count in no kill or failure), and "pending" are the
mutants of a partial campaign (stopped, or still running) without a stored result: the score
is over finished mutants, and `partial_note` says how many finished. ``score_with_failures`` also
counts ``build_failed``, ``crashed`` and ``timeout`` mutants as killed (detected by the compiler
or at run time), as Mull and PIT do. Scores are given per operator, category, model, target,
and overall. Cross-target (the paper's device evaluation, see `cross_target.cross_target`):
the original on each target against the original on every other, and each mutant (same
definition) across targets — top-1 disagreement, RBO, Kendall's tau — and a list of only the
pairs that differ (top-1, or max |output difference| above ``CROSS_TOLERANCE``), the
unmutated models' first.

The metrics of one pair are computed in `comparison`. A paper-size campaign compares tens of
thousands of mutants: `comparison.compare_many` measures many pairs at once with NumPy
(`metrics.rankings`), with the one-pair definitions' arithmetic, and `_measure` reads the
outputs of a batch of mutants at a time, so memory stays flat.

``reference``: per model and target whose original ran, how TVM's unmutated build compares
with the model's reference runtime (`reference_rows`: top-1 agreement, top-5 overlap, max |Δ|
and a verdict), or why there is no reference.

Per original: the top-1 classes by label, and ``ignores_input``, why its outputs look
independent of the input (`output_checks.ignores_input`; '' when nothing says so). The
campaign's ``notes`` are what a reader must know before trusting the numbers (a partial
campaign, such an original, a statistical test that cannot decide, ...), one line each.
"""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..config import image_labels
from . import metrics, run_history
from ..config.ignore import mark_ignored
from .lock import campaign_running
from .reference_rows import reference_rows
from .comparison import ALPHA, compare_many, finite_or_none, result_key, statistical_kill
from .cross_target import cross_target, mutants_across_targets, target_order
from .store import STATUSES, Store

NOT_ASSESSED = ("cannot_run_here", "device_lost")
FAILURES = ("build_failed", "crashed", "timeout")
#: Mutant tasks whose outputs are in memory at once (each ~20 KB for 5 images of 1000 classes):
#: the analysis' memory stays flat whatever the campaign's size.
BATCH_TASKS = 2000


#: The status of a mutant whose result is not stored yet (a partial campaign).
PENDING = "pending"


def partial_note(scores: dict) -> str:
    """``partial: N of M finished`` when some of the mutants ``scores`` count (`_score`) are
    pending; '' when all finished. Every report says it in these words."""
    if not scores.get("pending"):
        return ""
    return f"partial: {scores['mutants'] - scores['pending']} of {scores['mutants']} finished"


def read_image_labels(path: str | None, model_labels: list | None) -> dict:
    """``image_name,class`` lines (class = index or label text) -> {image: class index}
    (`image_labels`; the file was checked before the campaign ran)."""
    if not path:
        return {}
    return image_labels.reference(image_labels.read_rows(path), model_labels)


def _score(rows: list[dict]) -> dict:
    counts = Counter(r["status"] for r in rows)
    n = len(rows)
    excluded = counts["equivalent"] + counts["not_applicable"]
    not_assessed = sum(counts[s] for s in NOT_ASSESSED)
    pending = counts[PENDING]  # not finished yet: out of the score until they are
    ignored = [r for r in rows if r.get("ignored")]
    counted = [r for r in rows if not r.get("ignored")]
    denominator = n - excluded - not_assessed - pending - sum(
        1 for r in ignored
        if r["status"] not in ("equivalent", "not_applicable", PENDING) + NOT_ASSESSED)
    killed = sum(1 for r in counted if r.get("killed"))
    failures = sum(1 for r in counted if r["status"] in FAILURES)
    # None where Fisher's test cannot reach significance with so few images (`_stat_possible`)
    stat = sum(1 for r in counted if r.get("stat_killed")) \
        if any(r.get("stat_possible", True) for r in rows) or not rows else None
    dis = [r["metrics"]["top1_disagreement"] for r in rows if r.get("metrics")]
    rbos = [r["metrics"]["rbo"] for r in rows if r.get("metrics")]
    return {
        "mutants": n, **{s: counts.get(s, 0) for s in STATUSES}, "pending": pending,
        "killed": killed, "survived": sum(1 for r in counted if r["status"] == "ok"
                                          and not r.get("killed")),
        "ignored": len(ignored),
        "stat_killed": stat,
        "denominator": denominator,
        "mutation_score": killed / denominator if denominator else None,
        "score_with_failures": (killed + failures) / denominator if denominator else None,
        "mean_top1_disagreement": float(np.mean(dis)) if dis else None,
        "mean_rbo": float(np.mean(rbos)) if rbos else None,
    }


def _images(outs: list[dict]) -> list[dict]:
    """Per-image results without the output vectors."""
    return [{"image": o["image"], "classes": o["classes"],
             "scores": [finite_or_none(s) for s in o["scores"]], "digest": o["digest"],
             "latency_ms": o["latency_ms"]} for o in outs]


def _original_row(t: dict, res: dict, outs: list[dict], reference: dict) -> dict:
    acc = None
    labelled = [o for o in outs if o["image"] in reference]
    if labelled:
        acc = sum(o["classes"][0] == reference[o["image"]] for o in labelled) / len(labelled)
    return {"key": t["key"], "model": t["model"], "model_index": t["model_index"],
            "target": t["target"], "status": res.get("status", "pending"), "error": res.get("error") or "",
            "build_s": res.get("build_s"), "run_s": res.get("run_s"), "images": _images(outs),
            "top1": [o["classes"][0] for o in outs], "accuracy": acc}


def _mutant_row(t: dict, res: dict) -> dict:
    """One mutant on one target: its plan and its result (`_measure` adds its outputs and
    metrics)."""
    return {
        "key": t["key"], "model": t["model"], "model_index": t["model_index"],
        "target": t["target"],
        "operator": t["operator"], "level": t["level"], "category": t["category"],
        "phase": t["phase"] or "", "mode": t["mode"], "selection": t["selection"],
        "site_indices": t["site_indices"], "sites": t["sites"],
        "sites_found": t["sites_found"], "params": t["params"], "group": t["group"],
        "ir_hash": t["ir_hash"], "duplicate_of": t["duplicate_of"], "note": t["note"],
        "status": res.get("status", "pending"), "error": res.get("error") or "",
        "stage": res.get("stage") or "",
        "exit_code": res.get("exit_code"), "signal": res.get("signal") or "",
        "build_s": res.get("build_s"), "load_s": res.get("load_s"),
        "run_s": res.get("run_s"),
        "ir_verified": None if res.get("ir_verified") is None else bool(res["ir_verified"]),
        "artifact": res.get("artifact") or "", "has_diff": bool(t["diff"]),
        "build_mode": res.get("build_mode") or "",
        "metrics": None, "killed": False, "stat_killed": False, "p_value": None,
        "images": [],
    }


def _measure(store: Store, rows: list[dict], originals: dict, references: dict,
             order: dict) -> list[dict]:
    """Fill in each mutant row's outputs and metrics against the original on its target, and
    return the cross-target entries of the mutants built for several targets (see
    `cross_target.cross_target`). Works through whole mutants (all targets of one
    ``group``) in batches of about `BATCH_TASKS` tasks, reading each batch's outputs in one
    query: only one batch's output vectors are in memory at a time."""
    groups = defaultdict(list)
    for r in rows:
        groups[r["group"]].append(r)
    entries, batch, size = [], [], 0
    for members in groups.values():
        batch.append(members)
        size += len(members)
        if size >= BATCH_TASKS:
            entries += _measure_batch(store, batch, originals, references, order)
            batch, size = [], 0
    if batch:
        entries += _measure_batch(store, batch, originals, references, order)
    return entries


def _measure_batch(store: Store, batch: list[list[dict]], originals: dict,
                   references: dict, order: dict) -> list[dict]:
    ran = [r for members in batch for r in members if r["status"] == "ok"]
    outs = store.outputs_of({result_key(r) for r in ran})
    compared = []
    for r in ran:
        mine = outs.get(result_key(r), [])
        orig = originals.get((r["model_index"], r["target"])) or []
        r["images"] = _images(mine)
        if orig and mine:
            compared.append((r, mine, orig))
        else:
            r["note"] = (r["note"] + "; " if r["note"] else "") + \
                "no original results on this target to compare with"
    for (r, mine, orig), m in zip(compared, compare_many([(m, o) for _, m, o in compared])):
        r["metrics"] = {k: v for k, v in m.items() if k != "killed"}
        r["killed"] = m["killed"]
        st = statistical_kill(mine, orig, references.get(r["model_index"]) or {})
        r.update(stat_killed=st["stat_killed"], p_value=st["p_value"],
                 reference=st["reference"])
    return mutants_across_targets(batch, order, outs)


@contextmanager
def _cyclic_gc_paused():
    """The analysis builds millions of small dicts and lists and no reference cycles: the
    cyclic garbage collector would only rescan them over and over (~30% of the analysis of
    10k mutants)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyse(store: Store) -> dict:
    """Everything a report shows, computed from the database alone."""
    with _cyclic_gc_paused():
        return _analyse(store)


def _analyse(store: Store) -> dict:
    meta = store.meta()
    keys = meta.get("plan", [])
    tasks = store.tasks(keys)
    results = store.results()
    models = {m["index"]: m for m in meta.get("models", [])}
    config = meta.get("config", {})
    references = {}
    for index, m in models.items():
        references[index] = read_image_labels(config.get("image_labels"),
                                              m.get("labels_list"))

    originals = {}  # (model index, target) -> the original's outputs there
    original_rows = []
    for t in tasks:
        if t["kind"] == "original":
            res = results.get(t["key"], {})
            outs = store.outputs(t["key"]) if res.get("status") == "ok" else []
            originals[(t["model_index"], t["target"])] = outs
            row = _original_row(t, res, outs, references.get(t["model_index"]) or {})
            row.update(_original_checks(outs, models.get(t["model_index"], {}),
                                        meta.get("images", [])))
            original_rows.append(row)
    reference_runs = reference_rows(store, tasks, results, originals)
    rows = [_mutant_row(t, results.get(t["duplicate_of"] or t["key"]) or {})
            for t in tasks if t["kind"] == "mutant"]
    order = target_order(originals, rows)
    across = _measure(store, rows, originals, references, order)

    ignore = mark_ignored(rows, config.get("ignore") or [])

    def group_by(field):
        groups = defaultdict(list)
        for r in rows:
            groups[r[field]].append(r)
        return {k: _score(v) for k, v in groups.items()}

    statistics = _stat_possible(rows, references, meta.get("images", []), models)
    summary = {"overall": _score(rows), "operator": group_by("operator"),
               "category": group_by("category"), "model": group_by("model"),
               "target": group_by("target")}
    cross = cross_target(original_rows, originals, across, order)
    reference = "image labels" if any(references.values()) else \
        "original top-1 (no image labels given)"
    running = campaign_running(store.folder)
    state = meta.get("state")
    killed = state in ("planning", "running") and not running
    state = "interrupted" if killed else state
    finish_times = [r["finished_at"] for r in results.values() if r["finished_at"]]
    wall = run_history.wall_times(meta.get(run_history.KEY, []), finish_times, running)
    notes = _notes(summary["overall"], killed, original_rows, statistics, models.values(),
                   meta.get("images_skipped", []))
    return {
        "campaign": {"name": config.get("name"), "config": config,
                     "config_text": meta.get("config_text", ""), "seed": meta.get("seed"),
                     "versions": meta.get("versions", {}), "state": state,
                     "partial": partial_note(summary["overall"]), "wall_time": wall,
                     "statistics": statistics, "notes": notes,
                     "images_skipped": meta.get("images_skipped", []),
                     "runs": meta.get("runs"), "sampling": meta.get("sampling", {}),
                     "started_at": meta.get("started_at"),
                     "finished_at": meta.get("finished_at"),
                     "seconds": meta.get("last_run_seconds", {}),
                     "plan_seconds": meta.get("plan_seconds", {}),
                     "models": [{k: v for k, v in m.items() if k != "labels_list"}
                                for m in models.values()],
                     "images": meta.get("images", []), "targets": meta.get("targets", []),
                     "reference": reference, "alpha": ALPHA},
        "reference": reference_runs,
        "originals": original_rows,
        "mutants": rows,
        "summary": summary,
        "cross_target": cross,
        "ignore": ignore,
    }


def _original_checks(outs: list[dict], model: dict, images: list[dict]) -> dict:
    """The original's top-1 classes by label (when the model has labels) and why its
    outputs look independent of the input ('' when nothing says so;
    `output_checks.ignores_input`). Images with the same pixels count once."""
    from ...output_checks import ignores_input

    labels = model.get("labels_list") or []
    names = [labels[c] if 0 <= c < len(labels) else "" for c in
             (o["classes"][0] for o in outs)] if labels else []
    digests = {i["name"]: i.get("digest") or i["name"] for i in images}
    distinct = {digests.get(o["image"], o["image"]): o["vector"] for o in outs}
    why = ignores_input(np.stack(list(distinct.values()))) if distinct else ""
    return {"top1_labels": names, "ignores_input": why}


def _stat_possible(rows: list[dict], references: dict, images: list[dict],
                   models: dict) -> dict:
    """Whether Fisher's exact test can reach ``ALPHA`` on each model's reference images (all
    images, or those the image labels name); where it cannot, the mutants' ``stat_killed``
    is None (not assessed) instead of a false that no mutant could ever escape."""
    needed = metrics.fisher_min_images(ALPHA)
    names = [i["name"] for i in images]
    counts = {}  # model index -> its reference images
    for index in models:
        ref = references.get(index) or {}
        counts[index] = sum(1 for n in names if n in ref) if ref else len(names)
    short = {index: n for index, n in counts.items() if n < needed}
    for r in rows:
        r["stat_possible"] = r["model_index"] not in short
        if not r["stat_possible"]:
            r["stat_killed"] = None
    note = ""
    if short:
        having = "; ".join(f"{n} for {models[index]['name']}" for index, n in short.items())
        note = (f"statistical kills not assessed: Fisher's exact test (two-sided) cannot reach "
                f"p < {ALPHA:g} with fewer than {needed} reference images ({having}); the "
                "campaign needs more (labelled) images")
    return {"test": "Fisher's exact test (two-sided)", "alpha": ALPHA,
            "min_images": needed,
            "reference_images": {models[i]["name"]: n for i, n in counts.items()},
            "note": note}


def _notes(overall: dict, killed: bool, originals: list[dict], statistics: dict, models,
           skipped: list[str]) -> list[str]:
    """What a reader must know before trusting the numbers, one line each, as every report
    says it: a partial campaign, outputs that ignore the input, a statistical test that
    cannot decide, labels used with an offset that still leaves a mismatch, skipped files."""
    from ...images import skipped_summary

    notes = []
    partial = partial_note(overall)
    if partial:
        notes.append(f"{partial}: the {overall['pending']} pending mutant(s) are left out of "
                     "the scores; rerun the campaign to resume"
                     + (" (its last run was killed before it could record it)" if killed
                        else ""))
    for o in originals:
        if o.get("ignores_input"):
            notes.append(f"model {o['model']} on {o['target']}: {o['ignores_input']}; its "
                         "mutants' kills and survivals say nothing about the compiler")
    if statistics["note"]:
        notes.append(statistics["note"])
    for m in models:
        if m.get("label_mismatch"):
            notes.append(f"model {m['name']}: {m['label_mismatch']}")
    if skipped:
        notes.append(skipped_summary([Path(p) for p in skipped]))
    return notes
