"""Ranking metrics and the exact test used by the campaign analysis (fast, no build)."""

import random

import pytest

from mutatenn_passes.campaign.scoring.metrics import fisher_exact, kendall_tau, rbo, top_k_overlap


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


def test_rbo_uneven_lengths_matches_even_when_prefix_agrees():
    # eq. 32 with the longer list's extra items absent from the shorter: extrapolation
    # from X_s keeps the same value as if the shorter list continued without agreement.
    assert rbo([1, 2, 3], [1, 2, 3, 4]) <= 1.0
    assert rbo([1, 2, 3], [1, 2, 3, 4]) == pytest.approx(rbo([1, 2, 3, 4], [1, 2, 3]))
    assert rbo([1], [1, 2, 3]) == pytest.approx(1.0)  # X_s / s = 1 extrapolated


def test_top_k_overlap():
    assert top_k_overlap([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == 1.0
    assert top_k_overlap([1, 2, 3, 4, 5], [1, 2, 6, 7, 8]) == 0.4


def test_kendall_tau_worked_values():
    assert kendall_tau([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # one adjacent swap in five: 9 concordant pairs, 1 discordant -> 8/10
    assert kendall_tau([1, 2, 3, 4, 5], [2, 1, 3, 4, 5]) == pytest.approx(0.8)
    # items missing from a list rank after its items, tied: s = 1 2 | 3 4 (ranks 0 1 2 2),
    # t = 3 4 | 1 2 (ranks 2 2 0 1): 4 discordant pairs, one tie in each -> -4/sqrt(5*5)
    assert kendall_tau([1, 2], [3, 4]) == pytest.approx(-0.8)
    # a single common item followed by different ones: 2 concordant, 1 discordant of 3
    assert kendall_tau([1, 2], [1, 3]) == pytest.approx(1 / 3)


def test_fisher_exact_worked_values():
    # Fisher's tea-tasting experiment: 3 of 4 right, one-sided 17/70; two-sided 34/70.
    assert fisher_exact([[3, 1], [1, 3]]) == pytest.approx(34 / 70)
    # 5 images: original right on all 5, mutant on 1 -> p = 2 * (5/252 + 1/252)... exactly:
    assert fisher_exact([[5, 0], [1, 4]]) == pytest.approx(0.047619047619, abs=1e-12)
    assert fisher_exact([[5, 0], [5, 0]]) == pytest.approx(1.0)
    assert fisher_exact([[0, 0], [0, 0]]) == 1.0  # no images: nothing to test


def test_fisher_exact_equals_scipys_on_every_table_of_up_to_twelve_images():
    from scipy import stats

    for n in range(13):  # n images: each side right on 0..n of them
        for o_ok in range(n + 1):
            for m_ok in range(n + 1):
                table = [[o_ok, n - o_ok], [m_ok, n - m_ok]]
                expected = stats.fisher_exact(table, alternative="two-sided").pvalue
                assert fisher_exact(table) == pytest.approx(expected, rel=1e-12, abs=0), table


@pytest.mark.filterwarnings("ignore:One or more sample arguments is too small")  # SciPy, k < 2
def test_rankings_of_many_pairs_equal_the_definitions_bit_for_bit():
    """`rankings` (NumPy, all pairs at once) against `top_k_overlap`, `rbo` and `kendall_tau`
    (SciPy's kendalltau) one pair at a time: equal floats, on random top-k lists of equal and
    of different lengths, disjoint, identical and reversed ones among them."""
    import numpy as np

    from mutatenn_passes.campaign.scoring.metrics import rankings

    rng = np.random.default_rng(5)
    for ks, kt, classes in [(5, 5, 8), (5, 5, 1000), (3, 5, 6), (5, 2, 7), (1, 1, 3),
                            (0, 3, 4), (4, 4, 4)]:
        s = np.array([rng.permutation(classes)[:ks] for _ in range(80)]).reshape(80, ks)
        t = np.array([rng.permutation(classes)[:kt] for _ in range(80)]).reshape(80, kt)
        if ks == kt:  # identical, reversed and disjoint rows too
            t[0], t[1] = s[0], s[1][::-1]
        overlap, rbos, taus = rankings(s, t, 0.9)
        for i in range(80):
            a, b = s[i].tolist(), t[i].tolist()
            assert overlap[i] == top_k_overlap(a, b), (a, b)
            assert rbos[i] == rbo(a, b, 0.9), (a, b, rbos[i], rbo(a, b, 0.9))
            assert taus[i] == kendall_tau(a, b), (a, b, taus[i], kendall_tau(a, b))
    # the worked values above, through the vectorized path
    _, _, taus = rankings(np.array([[1, 2], [1, 2]]), np.array([[3, 4], [1, 3]]))
    assert taus.tolist() == [pytest.approx(-0.8), pytest.approx(1 / 3)]
