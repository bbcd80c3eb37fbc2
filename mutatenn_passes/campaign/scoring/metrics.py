"""Ranking and prediction metrics, and the exact test used by the kill criterion.

* `rbo` — rank-biased overlap (Webber, Moffat & Zobel, "A similarity measure for indefinite
  rankings", ACM TOIS 28(4), 2010), the extrapolated point estimate RBO_ext (their eq. 32,
  which reduces to eq. 30 for lists of equal length). No maintained library computes it, so
  it is written here.
* `kendall_tau` — Kendall's tau-b (`scipy.stats.kendalltau`) of two top-k lists over the union
  of their items, an item missing from a list ranked after all of its items (tied).
* `fisher_exact` — two-sided Fisher's exact test, `scipy.stats.fisher_exact`'s p-value
  computed in integers (the hypergeometric weights of the tables with the observed margins),
  and `fisher_min_images`, the fewest images with which it can reach a significance level.
  Every campaign's analysis tests each mutant, and importing ``scipy.stats`` for it took
  0.8 s of the default campaign's 1 s of analysis; the tests hold it equal to SciPy's.
* `top_k_overlap` — the share of classes two top-k lists have in common.

`rbo`, `kendall_tau` and `top_k_overlap` take one pair of lists and are the definitions;
`rankings` computes all three for many pairs at once with NumPy (a paper-size campaign compares
hundreds of thousands of pairs: SciPy's ``kendalltau`` costs ~0.4 ms a call, 100 s at 50k
mutants x 5 images), doing the same floating-point operations in the same order, so its values
equal theirs bit for bit (tests check this against the definitions on random rankings).
"""

from __future__ import annotations

import math
from functools import lru_cache
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
    from scipy import stats  # the definition only: campaigns use `rankings`

    tau = stats.kendalltau([rs.get(x, k) for x in items], [rt.get(x, k) for x in items],
                           variant="b").statistic
    return 0.0 if math.isnan(tau) else round(float(tau), 12)


def rankings(s: np.ndarray, t: np.ndarray, p: float = 0.9
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`top_k_overlap`, `rbo` (at ``p``) and `kendall_tau` of row i of ``s`` against row i of
    ``t``, for every row: two integer arrays of shape (pairs, k_s) and (pairs, k_t), one
    ranking per row, no item twice in a row. Returns three float arrays of length pairs."""
    s, t = np.asarray(s), np.asarray(t)
    pairs, ks, kt = s.shape[0], s.shape[1], t.shape[1]
    k = max(ks, kt)
    if k == 0:
        return np.ones(pairs), np.ones(pairs), np.zeros(pairs)
    eq = s[:, :, None] == t[:, None, :]  # eq[i, a, b]: s[i, a] is t[i, b]
    in_t = eq.any(axis=2)  # each item of s: also in t?
    common = in_t.sum(axis=1)
    return common / k, _rbo_many(eq if ks <= kt else eq.transpose(0, 2, 1), p), \
        _kendall_many(eq, in_t, common, ks, kt)


def _rbo_many(eq: np.ndarray, p: float) -> np.ndarray:
    """`rbo` of many pairs; ``eq[i, a, b]``: item a of the shorter list S is item b of the
    longer L (the arithmetic is `rbo`'s, step for step)."""
    pairs, n_s, n_l = eq.shape
    if n_s == 0:
        return np.zeros(pairs)
    # X_d = |S[:d] ∩ L[:d]| (S has no items beyond n_s), for d = 1..n_l
    X = [eq[:, :min(d, n_s), :d].sum(axis=(1, 2)) for d in range(1, n_l + 1)]
    x_s, x_l = X[n_s - 1], X[n_l - 1]
    total = 0
    for d in range(1, n_l + 1):
        total = total + X[d - 1] / d * p ** d
    extra = 0
    for d in range(n_s + 1, n_l + 1):
        extra = extra + x_s * (d - n_s) / (n_s * d) * p ** d
    total = total + extra
    return (1 - p) / p * total + ((x_l - x_s) / n_l + x_s / n_s) * p ** n_l


def _kendall_many(eq: np.ndarray, in_t: np.ndarray, common: np.ndarray, ks: int,
                  kt: int) -> np.ndarray:
    """`kendall_tau` of many pairs, with SciPy's tau-b arithmetic: (concordant − discordant)
    / sqrt(n0 − x ties) / sqrt(n0 − y ties), clipped to [-1, 1], undefined (0) when either
    ranking is all ties, rounded to 12 decimals."""
    pairs, k = eq.shape[0], max(ks, kt)
    # The union of the items: those of s (ranked 0..ks-1 in s), then those only in t (ranked
    # k in s, all tied). Their ranks in t: the position there, or k when absent.
    x = np.concatenate([np.broadcast_to(np.arange(ks), (pairs, ks)),
                        np.full((pairs, kt), k)], axis=1)
    y = np.concatenate([np.where(in_t, eq.argmax(axis=2), k),
                        np.broadcast_to(np.arange(kt), (pairs, kt))], axis=1)
    valid = np.concatenate([np.ones((pairs, ks), bool), ~eq.any(axis=1)], axis=1)
    signs = np.sign(x[:, :, None] - x[:, None, :]) * np.sign(y[:, :, None] - y[:, None, :])
    con_minus_dis = (signs * (valid[:, :, None] & valid[:, None, :])).sum(axis=(1, 2)) // 2
    m = ks + kt - common  # items in the union
    only_t, only_s = m - ks, m - kt  # tied at rank k in s, in t
    total = m * (m - 1) // 2
    x_ties, y_ties = only_t * (only_t - 1) // 2, only_s * (only_s - 1) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = con_minus_dis / np.sqrt(total - x_ties) / np.sqrt(total - y_ties)
    tau = np.where((x_ties == total) | (y_ties == total), np.nan, np.clip(tau, -1.0, 1.0))
    return np.array([0.0 if math.isnan(v) else round(v, 12) for v in tau.tolist()])


#: SciPy's relative tolerance for a table as likely as the observed one (``1 + 1e-14``).
_TIE = 10 ** 14


@lru_cache(maxsize=4096)
def _fisher(a: int, b: int, c: int, d: int) -> float:
    """The probability, with the table's margins fixed, of a table no more likely than
    [[a, b], [c, d]]: the tables' hypergeometric weights C(a+b, x) C(c+d, a+c-x) summed
    exactly over those at most the observed one's (within SciPy's tolerance)."""
    row, other, column = a + b, c + d, a + c
    if row + other == 0:
        return 1.0
    weights = [math.comb(row, x) * math.comb(other, column - x)
               for x in range(max(0, column - other), min(row, column) + 1)]
    observed = math.comb(row, a) * math.comb(other, c)
    tail = sum(w for w in weights if w * _TIE <= observed * (_TIE + 1))
    return min(1.0, tail / math.comb(row + other, column))


def fisher_exact(table) -> float:
    """Two-sided p-value of Fisher's exact test on a 2x2 table [[a, b], [c, d]] (1 for an
    empty table). Memoized: a campaign's tables repeat (counts out of the same images)."""
    (a, b), (c, d) = table
    return _fisher(int(a), int(b), int(c), int(d))


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

