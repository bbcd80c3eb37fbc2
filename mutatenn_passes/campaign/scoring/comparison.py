"""Comparison of one program's outputs with another's, image by image: the metrics of a
mutant against its original (`compare`, `compare_many`) and the statistical kill test
(`statistical_kill`). The definitions are in `analysis`'s docstring; the ranking arithmetic is
`metrics.rankings`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from . import metrics

ALPHA = 0.05
DEGENERATE_SHARE = 0.9
#: Output differences (float64) computed at once by `compare_many`.
DIFF_ELEMENTS = 1 << 22


def finite_or_none(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def compare(mutant: list[dict], original: list[dict]) -> dict:
    """Metrics of a mutant's per-image results against the original's (images in the same
    order; ``{}`` when either has none)."""
    return compare_many([(mutant, original)])[0]


def compare_many(pairs: list[tuple[list[dict], list[dict]]]) -> list[dict]:
    """`compare` of many (mutant, original) pairs: pairs with the same number of images, of
    top-k classes and of outputs are stacked and measured together with NumPy, a slice of at
    most `DIFF_ELEMENTS` output differences at a time."""
    out: list[dict] = [{} for _ in pairs]
    shapes = defaultdict(list)
    for i, (m, o) in enumerate(pairs):
        n = min(len(m), len(o))
        if n:
            shapes[(n, len(m[0]["classes"]), len(o[0]["classes"]), np.size(m[0]["vector"]),
                    np.size(o[0]["vector"]))].append(i)
    for shape, members in shapes.items():
        step = max(1, DIFF_ELEMENTS // (shape[0] * max(shape[3], 1)))
        for start in range(0, len(members), step):
            chunk = members[start:start + step]
            for i, m in zip(chunk, _compare_stacked(shape, [pairs[i] for i in chunk])):
                out[i] = m
    return out


def _compare_stacked(shape: tuple, pairs: list) -> list[dict]:
    """`compare` of pairs of one shape (images, mutant k, original k, mutant outputs,
    original outputs), with `compare`'s arithmetic (see `metrics.rankings`)."""
    n, km, ko, cm, co = shape
    b = len(pairs)
    mc = np.array([[r["classes"] for r in m[:n]] for m, _ in pairs], np.int64).reshape(b, n, km)
    oc = np.array([[r["classes"] for r in o[:n]] for _, o in pairs], np.int64).reshape(b, n, ko)
    m_top1, o_top1 = mc[:, :, 0], oc[:, :, 0]
    differ = m_top1 != o_top1
    overlap, rbos, taus = (v.reshape(b, n) for v in metrics.rankings(
        mc.reshape(b * n, km), oc.reshape(b * n, ko), 0.9))
    mv = np.stack([r["vector"] for m, _ in pairs for r in m[:n]]).reshape(b, n, cm)
    ov = np.stack([r["vector"] for _, o in pairs for r in o[:n]]).reshape(b, n, co)
    if cm != co:
        max_d = mean_d = [math.nan] * b
    elif cm == 0:
        max_d = mean_d = [0.0] * b
    else:
        diff = np.abs(np.subtract(mv, ov, dtype=np.float64)).reshape(b, n * cm)
        max_d, mean_d = diff.max(axis=1).tolist(), diff.mean(axis=1).tolist()
    finite = np.isfinite(mv).reshape(b, -1).all(axis=1).tolist()
    disagreement = differ.sum(axis=1).tolist()
    overlap, rbos, taus = (a.mean(axis=1).tolist() for a in (overlap, rbos, taus))
    out = []
    for i in range(b):
        m_share = Counter(m_top1[i].tolist()).most_common(1)[0][1] / n
        o_share = Counter(o_top1[i].tolist()).most_common(1)[0][1] / n
        d = differ[i].tolist()
        out.append({
            "images": n,
            "top1_differs": d,
            "top1_disagreement": disagreement[i] / n,
            "top5_overlap": overlap[i],
            "rbo": rbos[i],
            "kendall_tau": taus[i],
            "max_abs_diff": finite_or_none(max_d[i]),
            "mean_abs_diff": finite_or_none(mean_d[i]),
            "nonfinite_outputs": not finite[i],
            "degenerate": bool(m_share >= DEGENERATE_SHARE and o_share < DEGENERATE_SHARE),
            "killed": any(d),
        })
    return out


def statistical_kill(mutant: list[dict], original: list[dict], reference: dict) -> dict:
    """Fisher's exact test of agreement with the reference labelling (see module doc)."""
    if reference:
        pairs = [(m, o, reference[m["image"]]) for m, o in zip(mutant, original)
                 if m["image"] in reference]
        source = "image labels"
    else:
        pairs = [(m, o, o["classes"][0]) for m, o in zip(mutant, original)]
        source = "original top-1"
    n = len(pairs)
    if n == 0:
        return {"reference": source, "p_value": None, "stat_killed": False}
    o_ok = sum(o["classes"][0] == ref for _, o, ref in pairs)
    m_ok = sum(m["classes"][0] == ref for m, _, ref in pairs)
    p = metrics.fisher_exact([[o_ok, n - o_ok], [m_ok, n - m_ok]])
    return {"reference": source, "reference_images": n, "original_agreement": o_ok / n,
            "mutant_agreement": m_ok / n, "p_value": p, "stat_killed": p < ALPHA}


def result_key(r: dict) -> str:
    """The key whose results a mutant shows (a duplicate shows those of the mutant it
    duplicates)."""
    return r["duplicate_of"] or r["key"]
