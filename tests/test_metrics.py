"""Ranking metrics and exact tests used by the campaign analysis (pure Python, fast)."""

import math
import random

import pytest

from mutatenn_passes.campaign.metrics import (binomial_test, fisher_exact, kendall_tau, rbo,
                                              rbo_max, rbo_min, rbo_weight, top_k_overlap)


def test_rbo_weight_of_top_ten_ranks_is_86_percent_at_p_09():
    # Webber et al. 2010, section 4.2: "the first 10 ranks have 86% of the weight" (p=0.9).
    assert rbo_weight(0.9, 10) == pytest.approx(0.8556, abs=5e-5)
    # and a longer prefix carries more of the weight
    assert rbo_weight(0.9, 1) < rbo_weight(0.9, 5) < rbo_weight(0.9, 10) < 1


def test_rbo_worked_values():
    assert rbo([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert rbo([1, 2, 3], [4, 5, 6]) == 0.0
    # S = 1 2 3, T = 1 3 2, p = 0.9: A_1 = 1, A_2 = 1/2, A_3 = 1 (eq. 30):
    # (1-p)/p * (0.9 + 0.5 * 0.81 + 0.729) + 1 * 0.729 = 2.034 / 9 + 0.729 = 0.955
    assert rbo([1, 2, 3], [1, 3, 2], 0.9) == pytest.approx(0.955, abs=1e-12)
    # Swapping the top two: A = 0, 1, 1 -> (0.81 + 0.729)/9 + 0.729 = 0.900
    assert rbo([1, 2, 3], [2, 1, 3], 0.9) == pytest.approx(0.9, abs=1e-12)
    # disagreement at the top weighs more than at the bottom
    assert rbo([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) < rbo([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])
    # symmetric
    assert rbo([1, 2, 3, 4], [4, 2, 9, 1]) == pytest.approx(rbo([4, 2, 9, 1], [1, 2, 3, 4]))


def test_rbo_ext_equals_the_infinite_sum_when_the_rankings_agree_beyond_k():
    # For rankings that are permutations of the same k items and then continue identically,
    # the agreement at every depth d > k is X_k/k = 1, exactly what RBO_ext extrapolates; so
    # the definition (1-p) sum_d p^(d-1) A_d, summed far enough, must equal RBO_ext.
    rng = random.Random(3)
    for _ in range(20):
        k = rng.randint(1, 8)
        head = list(range(k))
        other = head[:]
        rng.shuffle(other)
        tail = list(range(100, 600))
        s, t = head + tail, other + tail
        p = rng.choice([0.5, 0.8, 0.9, 0.95])
        total, seen_s, seen_t = 0.0, set(), set()
        x = 0
        for d in range(len(s)):
            a, b = s[d], t[d]
            x += (a == b) + (a != b and a in seen_t) + (a != b and b in seen_s)
            seen_s.add(a)
            seen_t.add(b)
            total += (1 - p) * p ** d * x / (d + 1)
        assert rbo(head, other, p) == pytest.approx(total, abs=1e-9)


def test_rbo_min_closed_form_and_bounds():
    rng = random.Random(7)
    for _ in range(50):
        k = rng.randint(1, 7)
        s = rng.sample(range(12), k)
        t = rng.sample(range(12), k)
        lo, ext, hi = rbo_min(s, t), rbo(s, t), rbo_max(s, t)
        assert lo - 1e-12 <= ext <= hi + 1e-9
        # RBO_min's closed form (eq. 11) equals the sum assuming no further agreement
        x = [len(set(s[:d]) & set(t[:d])) for d in range(1, k + 1)]
        summed = (1 - 0.9) / 0.9 * (sum(x[d - 1] / d * 0.9 ** d for d in range(1, k + 1))
                                    + sum(x[-1] / d * 0.9 ** d for d in range(k + 1, 3000)))
        assert lo == pytest.approx(summed, abs=1e-9)
    assert rbo_max([1, 2], [3, 4]) > 0  # two disjoint items may still match later


def test_rbo_uneven_lengths_matches_even_when_prefix_agrees():
    # eq. 32 with the longer list's extra items absent from the shorter: extrapolation
    # from X_s keeps the same value as if the shorter list continued without agreement.
    assert rbo([1, 2, 3], [1, 2, 3, 4]) <= 1.0
    assert rbo([1, 2, 3], [1, 2, 3, 4]) == pytest.approx(rbo([1, 2, 3, 4], [1, 2, 3]))
    assert rbo([1], [1, 2, 3]) == pytest.approx(1.0)  # X_s / s = 1 extrapolated


def test_top_k_overlap():
    assert top_k_overlap([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == 1.0
    assert top_k_overlap([1, 2, 3, 4, 5], [1, 2, 6, 7, 8]) == 0.4


def test_kendall_tau_properties_and_against_scipy():
    assert kendall_tau([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(11)
    for _ in range(40):
        s = rng.sample(range(9), 5)
        t = rng.sample(range(9), 5)
        items = list(dict.fromkeys(s + t))
        a = [s.index(x) if x in s else 5 for x in items]
        b = [t.index(x) if x in t else 5 for x in items]
        expected = stats.kendalltau(a, b).statistic  # tau-b
        assert kendall_tau(s, t) == pytest.approx(expected, abs=1e-12)


def test_fisher_exact_worked_values():
    # Fisher's tea-tasting experiment: 3 of 4 right, one-sided 17/70; two-sided 34/70.
    assert fisher_exact([[3, 1], [1, 3]]) == pytest.approx(34 / 70)
    # 5 images: original right on all 5, mutant on 1 -> p = 2 * (5/252 + 1/252)... exactly:
    assert fisher_exact([[5, 0], [1, 4]]) == pytest.approx(0.047619047619, abs=1e-12)
    assert fisher_exact([[5, 0], [5, 0]]) == pytest.approx(1.0)
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(5)
    for _ in range(30):
        table = [[rng.randint(0, 9), rng.randint(0, 9)], [rng.randint(0, 9), rng.randint(0, 9)]]
        assert fisher_exact(table) == pytest.approx(stats.fisher_exact(table).pvalue,
                                                    rel=1e-9, abs=1e-12)


def test_binomial_test():
    assert binomial_test(5, 10, 0.5) == pytest.approx(1.0)
    assert binomial_test(0, 10, 0.5) == pytest.approx(2 / 1024)
    stats = pytest.importorskip("scipy.stats")
    for k, n, p in [(3, 10, 0.5), (1, 7, 0.3), (9, 9, 0.8), (2, 20, 0.05)]:
        assert binomial_test(k, n, p) == pytest.approx(stats.binomtest(k, n, p).pvalue)
    assert math.isclose(binomial_test(0, 0, 0.5), 1.0)
