"""Ranking and prediction metrics, and the exact tests used by the kill criterion.

Pure Python (plus NumPy for output vectors), no SciPy needed:

* `rbo` — rank-biased overlap (Webber, Moffat & Zobel, "A similarity measure for indefinite
  rankings", ACM TOIS 28(4), 2010), the extrapolated point estimate RBO_ext (their eq. 32,
  which reduces to eq. 30 for lists of equal length), with the bounds `rbo_min` (eq. 11) and
  `rbo_max` (= RBO_min + RBO_res) and the weight `rbo_weight` of the top ``d`` ranks (eq. 21).
* `kendall_tau` — Kendall's tau-b of two top-k lists over the union of their items, an item
  missing from a list ranked after all of its items (tied).
* `top_k_overlap`, `fisher_exact` (two-sided, as in R and SciPy) and `binomial_test`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


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


def rbo_min(s: Sequence, t: Sequence, p: float = 0.9) -> float:
    """The lower bound RBO_min for lists of equal length k (eq. 11)::

        (1-p)/p * ( sum_{d=1..k} (X_d - X_k)/d p^d - X_k ln(1-p) )
    """
    if len(s) != len(t):
        raise ValueError("rbo_min is defined here for lists of equal length")
    k = len(s)
    if k == 0:
        return 1.0
    X = _agreements(s, t, k)
    x_k = X[-1]
    return (1 - p) / p * (sum((X[d - 1] - x_k) / d * p ** d for d in range(1, k + 1))
                          - x_k * math.log(1 - p))


def rbo_max(s: Sequence, t: Sequence, p: float = 0.9, tail: float = 1e-12) -> float:
    """The upper bound RBO_min + RBO_res for lists of equal length k: every item after depth
    k is assumed to match (X_d = min(d, X_k + 2 (d - k))); summed until the tail is below
    ``tail``."""
    k = len(s)
    if k != len(t):
        raise ValueError("rbo_max is defined here for lists of equal length")
    X = _agreements(s, t, k)
    total = sum(X[d - 1] / d * p ** d for d in range(1, k + 1))
    x_k = X[-1] if X else 0
    d = k
    while p ** d > tail:
        d += 1
        total += min(d, x_k + 2 * (d - k)) / d * p ** d
    return (1 - p) / p * total


def rbo_weight(p: float, d: int) -> float:
    """The weight RBO gives the first ``d`` ranks (eq. 21)::

        1 - p^(d-1) + (1-p)/p * d * ( ln(1/(1-p)) - sum_{i=1..d-1} p^i / i )

    With p = 0.9 the top 10 ranks carry about 86% of the weight, as the paper notes.
    """
    return 1 - p ** (d - 1) + (1 - p) / p * d * (
        math.log(1 / (1 - p)) - sum(p ** i / i for i in range(1, d)))


def top_k_overlap(s: Sequence, t: Sequence) -> float:
    """|S ∩ T| / k for two top-k lists (k = the longer length)."""
    k = max(len(s), len(t))
    return len(set(s) & set(t)) / k if k else 1.0


def kendall_tau(s: Sequence, t: Sequence) -> float:
    """Kendall's tau-b of two top-k rankings over the union of their items.

    Each list ranks its items 1..k; an item it lacks gets rank k+1 (all such items tied).
    tau-b = (concordant - discordant) / sqrt((n0 - ties_s) (n0 - ties_t)); 1 for identical
    lists, -1 for reversed ones. When a list is entirely ties (possible only for disjoint
    one-item lists) the value is 0.
    """
    items = list(dict.fromkeys(list(s) + list(t)))
    k = max(len(s), len(t))
    rs = {x: i for i, x in enumerate(s)}
    rt = {x: i for i, x in enumerate(t)}
    a = [rs.get(x, k) for x in items]
    b = [rt.get(x, k) for x in items]
    n = len(items)
    conc = disc = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0:
                ties_a += 1
            if db == 0:
                ties_b += 1
            if da == 0 or db == 0:
                continue
            if (da > 0) == (db > 0):
                conc += 1
            else:
                disc += 1
    n0 = n * (n - 1) // 2
    denom = math.sqrt((n0 - ties_a) * (n0 - ties_b))
    return (conc - disc) / denom if denom else 0.0


def _hypergeom_pmf(a: int, row1: int, col1: int, n: int) -> float:
    return math.comb(col1, a) * math.comb(n - col1, row1 - a) / math.comb(n, row1)


def fisher_exact(table) -> float:
    """Two-sided p-value of Fisher's exact test on a 2x2 table [[a, b], [c, d]]: the
    probability, given the margins, of a table at most as likely as the observed one."""
    (a, b), (c, d) = table
    row1, col1, n = a + b, a + c, a + b + c + d
    if n == 0:
        return 1.0
    lo, hi = max(0, row1 + col1 - n), min(row1, col1)
    observed = _hypergeom_pmf(a, row1, col1, n)
    p = sum(q for x in range(lo, hi + 1)
            if (q := _hypergeom_pmf(x, row1, col1, n)) <= observed * (1 + 1e-7))
    return min(1.0, p)


def binomial_test(successes: int, trials: int, p0: float) -> float:
    """Two-sided exact binomial test of ``successes`` in ``trials`` against rate ``p0``."""
    if trials == 0:
        return 1.0
    pmf = [math.comb(trials, i) * p0 ** i * (1 - p0) ** (trials - i)
           for i in range(trials + 1)]
    observed = pmf[successes]
    return min(1.0, sum(q for q in pmf if q <= observed * (1 + 1e-7)))


def output_differences(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Max and mean absolute difference of two output arrays (NaN when either has NaN)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("nan"), float("nan")
    diff = np.abs(a - b)
    return float(diff.max()) if diff.size else 0.0, float(diff.mean()) if diff.size else 0.0
