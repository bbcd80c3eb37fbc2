"""Ranking and prediction metrics, and the exact test used by the kill criterion.

* `rbo` — rank-biased overlap (Webber, Moffat & Zobel, "A similarity measure for indefinite
  rankings", ACM TOIS 28(4), 2010), the extrapolated point estimate RBO_ext (their eq. 32,
  which reduces to eq. 30 for lists of equal length). No maintained library computes it, so
  it is written here.
* `kendall_tau` — Kendall's tau-b (`scipy.stats.kendalltau`) of two top-k lists over the union
  of their items, an item missing from a list ranked after all of its items (tied).
* `fisher_exact` — two-sided Fisher's exact test (`scipy.stats.fisher_exact`), and
  `fisher_min_images`, the fewest images with which it can reach a significance level.
* `top_k_overlap` and `output_differences`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats


def _agreements(s: Sequence, t: Sequence, depth: int) -> list[int]:
    """X_d, the size of the overlap of the two prefixes of length d, for d = 1..depth."""
    seen_s, seen_t, out, x = set(), set(), [], 0
    for d in range(depth):
        a = s[d] if d < len(s) else None
        b = t[d] if d < len(t) else None
        if a is not None and b is not None and a == b:
            x += 1
        else:
            if a is not None and a in seen_t:
                x += 1
            if b is not None and b in seen_s:
                x += 1
        if a is not None:
            seen_s.add(a)
        if b is not None:
            seen_t.add(b)
        out.append(x)
    return out


def rbo(s: Sequence, t: Sequence, p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap RBO_ext of two rankings (no duplicates in either).

    1 for identical lists, 0 for disjoint ones; for lists of different lengths the shorter is
    ``S`` (length ``s``) and the longer ``L`` (length ``l``), and (Webber et al., eq. 32)::

        RBO_ext = (1-p)/p * ( sum_{d=1..l} X_d/d p^d + sum_{d=s+1..l} X_s (d-s)/(s d) p^d )
                  + ( (X_l - X_s)/l + X_s/s ) p^l
    """
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    S, L = (list(s), list(t)) if len(s) <= len(t) else (list(t), list(s))
    n_s, n_l = len(S), len(L)
    if n_l == 0:
        return 1.0
    if n_s == 0:
        return 0.0
    X = _agreements(S, L, n_l)
    x_s, x_l = X[n_s - 1], X[n_l - 1]
    total = sum(X[d - 1] / d * p ** d for d in range(1, n_l + 1))
    total += sum(x_s * (d - n_s) / (n_s * d) * p ** d for d in range(n_s + 1, n_l + 1))
    return (1 - p) / p * total + ((x_l - x_s) / n_l + x_s / n_s) * p ** n_l


def top_k_overlap(s: Sequence, t: Sequence) -> float:
    """|S ∩ T| / k for two top-k lists (k = the longer length)."""
    k = max(len(s), len(t))
    return len(set(s) & set(t)) / k if k else 1.0


def kendall_tau(s: Sequence, t: Sequence) -> float:
    """Kendall's tau-b of two top-k rankings over the union of their items.

    Each list ranks its items 1..k; an item it lacks gets rank k+1 (all such items tied).
    1 for identical lists, -1 for reversed ones. When a list is entirely ties tau-b is
    undefined; the value is then 0 (no association). SciPy's floating-point arithmetic gives
    1 - 2e-16 for identical lists, so the value is rounded to 12 decimals.
    """
    items = list(dict.fromkeys(list(s) + list(t)))
    k = max(len(s), len(t))
    rs = {x: i for i, x in enumerate(s)}
    rt = {x: i for i, x in enumerate(t)}
    tau = stats.kendalltau([rs.get(x, k) for x in items], [rt.get(x, k) for x in items],
                           variant="b").statistic
    return 0.0 if math.isnan(tau) else round(float(tau), 12)


def fisher_exact(table) -> float:
    """Two-sided p-value of Fisher's exact test on a 2x2 table [[a, b], [c, d]] (1 for an
    empty table)."""
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def fisher_min_images(alpha: float) -> int:
    """The fewest images with which `fisher_exact` can compare two agreement counts at
    p < ``alpha``. With n images per row the most extreme table, [[n, 0], [0, n]] (one side
    right on every image, the other on none), has the smallest p-value, 2 / C(2n, n): 4
    images for alpha = 0.05 (p = 0.029; 3 give 0.1). With fewer, no mutant can be killed
    statistically, whatever it does."""
    n = 1
    while fisher_exact([[n, 0], [0, n]]) >= alpha:
        n += 1
    return n


def output_differences(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Max and mean absolute difference of two output arrays (NaN when either has NaN)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("nan"), float("nan")
    diff = np.abs(a - b)
    return float(diff.max()) if diff.size else 0.0, float(diff.mean()) if diff.size else 0.0
