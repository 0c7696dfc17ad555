"""The statistics of evaluate/stats.py against SciPy, statsmodels and scikit-posthocs on fixed inputs,
and the bootstrap intervals' coverage on synthetic data whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scikit_posthocs as sp
from scipy import stats as st
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from smallvision.evaluate import stats as S

A = np.array([0.912, 0.905, 0.921, 0.899, 0.917, 0.908, 0.915])
# differences without ties or zeros, so SciPy's automatic method is the exact one
B = A - np.array([0.011, -0.002, 0.013, 0.006, 0.012, 0.009, 0.003])


def test_wilcoxon_matches_scipy_and_is_exact():
    res = S.wilcoxon_test(A, B)
    ref = st.wilcoxon(A, B, method="exact")
    assert res.pvalue == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)
    # one negative difference, the smallest: W- = 1 of 28, rank-biserial = (27 - 1) / 28
    assert res.effect_size == pytest.approx(26 / 28)


def test_wilcoxon_identical_is_p_one():
    res = S.wilcoxon_test(A, A)
    assert res.pvalue == 1.0 and res.effect_size == 0.0


def test_paired_t_matches_scipy_with_dz():
    res = S.paired_t_test(A, B)
    ref = st.ttest_rel(A, B)
    d = A - B
    assert res.pvalue == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)
    assert res.effect_size == pytest.approx(d.mean() / d.std(ddof=1))


def test_paired_t_constant_difference():
    assert S.paired_t_test(A, A).pvalue == 1.0
    res = S.paired_t_test(A + 0.01, A)
    assert res.pvalue == 0.0 and math.isinf(res.effect_size)


def test_rank_biserial_extremes_and_ties():
    assert S.rank_biserial(np.array([1.0, 2.0, 3.0])) == 1.0
    assert S.rank_biserial(np.array([-1.0, -2.0, 0.0])) == -1.0
    assert S.rank_biserial(np.array([1.0, -1.0])) == 0.0


def _correct_pair(seed=0, n=400):
    rng = np.random.default_rng(seed)
    return rng.random(n) < 0.85, rng.random(n) < 0.80


def test_mcnemar_matches_statsmodels_and_binomtest():
    a, b = _correct_pair()
    res = S.mcnemar_exact(a, b)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert res.pvalue == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert res.pvalue == pytest.approx(st.binomtest(res.a_only, res.a_only + res.b_only, 0.5).pvalue)
    assert res.odds_ratio == pytest.approx(res.a_only / res.b_only)


def test_mcnemar_pools_seeds_and_handles_no_discordance():
    a1, b1 = _correct_pair(1)
    a2, b2 = _correct_pair(2)
    pooled = S.mcnemar_exact(np.stack([a1, a2]), np.stack([b1, b2]))
    assert pooled.a_only == S.mcnemar_exact(a1, b1).a_only + S.mcnemar_exact(a2, b2).a_only
    same = S.mcnemar_exact(a1, a1)
    assert same.pvalue == 1.0 and same.odds_ratio == 1.0
    assert S.mcnemar_exact(np.ones(5, bool), np.zeros(5, bool)).odds_ratio == pytest.approx(5.5 / 0.5)


def test_sign_flip_on_one_seed_is_exact_mcnemar():
    rng = np.random.default_rng(3)
    a, b = rng.random(300) < 0.9, rng.random(300) < 0.88
    a[:12], b[:12] = True, False  # a few more discordant pairs for A
    m = S.mcnemar_exact(a, b)
    # few discordant pairs: SciPy enumerates all sign flips, so the two agree exactly
    few = a.astype(float) - b
    few[np.flatnonzero(few)[14:]] = 0
    exact = S.mcnemar_exact(few > 0, few < 0)
    assert S.sign_flip_test(few, n_resamples=2**16) == pytest.approx(exact.pvalue)
    # many: Monte Carlo, within its error
    assert S.sign_flip_test(a.astype(float) - b) == pytest.approx(m.pvalue, abs=0.01)
    assert S.sign_flip_test(np.zeros(10)) == 1.0
    # one discordant image: McNemar's exact p is 1, and SciPy's permutation test refuses one value
    lone = np.zeros(30)
    lone[4] = 1.0
    assert S.sign_flip_test(lone) == S.mcnemar_exact(lone > 0, lone < 0).pvalue == 1.0


@pytest.mark.parametrize("m", [5, 12, 40, 300])
def test_sign_flip_equals_scipys_permutation_test(m):
    """Exact enumeration agrees with SciPy exactly; Monte Carlo within its error."""
    from scipy.stats import permutation_test

    rng = np.random.default_rng(m)
    d = np.round(rng.normal(0.15, 1.0, m), 2)  # rounded: ties in the null distribution, as with 0/1 scores
    theirs = permutation_test(
        (d,), lambda x, axis: np.sum(x, axis=axis), permutation_type="samples", n_resamples=9999,
        vectorized=True, alternative="two-sided", rng=np.random.default_rng(0),
    ).pvalue  # fmt: skip
    ours = S.sign_flip_test(d)
    if 2**m <= 9999:
        assert ours == pytest.approx(theirs, rel=1e-12)
    else:  # two Monte Carlo estimates of one p-value, 9999 resamples each
        assert ours == pytest.approx(theirs, abs=4 * np.sqrt(theirs * (1 - theirs) / 9999) + 1e-3)
    assert S.sign_flip_test(d, seed=1) == pytest.approx(ours, abs=0.05) and S.sign_flip_test(d) == ours


def test_wilson_matches_statsmodels():
    iv = S.wilson_interval(83, 100)
    low, high = proportion_confint(83, 100, alpha=0.05, method="wilson")
    assert (iv.low, iv.high, iv.method) == (pytest.approx(low), pytest.approx(high), "wilson")
    with pytest.raises(ValueError):
        S.wilson_interval(5, 3)


def test_holm_matches_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    adjusted, reject = S.holm(p, 0.05)
    ref_reject, ref_adj, _, _ = multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(adjusted, ref_adj)
    np.testing.assert_array_equal(reject, ref_reject)
    assert S.holm(np.array([np.nan, 0.001]))[0][0] == 1.0


def test_friedman_nemenyi_matches_scipy_and_scikit_posthocs():
    rng = np.random.default_rng(4)
    scores = rng.random((8, 4)) + np.array([0.0, 0.1, 0.4, 0.5])
    res = S.friedman_nemenyi(scores, higher_is_better=True)
    ref = st.friedmanchisquare(*scores.T)
    assert res.pvalue == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)
    np.testing.assert_allclose(res.nemenyi, sp.posthoc_nemenyi_friedman(scores).to_numpy())
    np.testing.assert_allclose(res.avg_ranks, st.rankdata(-scores, axis=1).mean(axis=0))
    assert res.avg_ranks[3] < res.avg_ranks[0]  # the best column has the smallest rank


def test_friedman_drops_tied_blocks_and_degenerates_to_p_one():
    scores = np.array([[1, 0, 0], [1, 1, 1], [1, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=float)
    res = S.friedman_nemenyi(scores, higher_is_better=True)
    ref = st.friedmanchisquare(*scores.T)  # the tie-corrected statistic ignores tied blocks anyway
    assert res.statistic == pytest.approx(ref.statistic) and res.n_blocks == 5
    flat = S.friedman_nemenyi(np.ones((4, 3)), higher_is_better=True)
    assert flat.pvalue == 1.0 and np.all(flat.nemenyi == 1)


def test_min_attainable_p():
    assert S.min_attainable_p("wilcoxon", 5) == 0.0625
    assert S.min_attainable_p("wilcoxon", 5) == pytest.approx(
        st.wilcoxon(np.arange(1.0, 6.0), method="exact").pvalue
    )
    assert S.min_attainable_p("mcnemar", 3) == 0.25
    assert S.min_attainable_p("t", 2) == 0.0 and S.min_attainable_p("t", 1) == 1.0
    assert S.min_pairs_for(0.05) == 6 and S.min_pairs_for(0.01) == 8
    with pytest.raises(ValueError, match="unknown test"):
        S.min_attainable_p("anova", 5)


def test_bootstrap_ci_degenerate_and_deterministic():
    assert S.bootstrap_ci(np.ones(50)) == S.Interval(1.0, 1.0, "degenerate")
    x = np.random.default_rng(5).random(200)
    iv = S.bootstrap_ci(x, n_boot=500, seed=1)
    assert iv == S.bootstrap_ci(x, n_boot=500, seed=1) and iv.method == "BCa"
    assert iv.low < x.mean() < iv.high


def test_bootstrap_ci_covers_truth_at_about_nominal_rate():
    rng = np.random.default_rng(6)
    covered = 0
    reps = 200
    for r in range(reps):
        correct = (rng.random(300) < 0.8).astype(float)  # accuracy of a model on 300 images, truth 0.8
        iv = S.bootstrap_ci(correct, n_boot=500, seed=r)
        covered += iv.low <= 0.8 <= iv.high
    assert 0.90 <= covered / reps <= 0.99


def test_paired_difference_interval_covers_truth():
    rng = np.random.default_rng(7)
    covered = 0
    reps = 200
    for r in range(reps):
        err_a = rng.exponential(1.0, 200)  # |err| of two regressors, true mean difference 0.2
        err_b = err_a * 0.8 + rng.normal(0, 0.05, 200)
        iv = S.bootstrap_ci(err_a - err_b, n_boot=500, seed=r)
        covered += iv.low <= 0.2 <= iv.high
    assert 0.90 <= covered / reps <= 0.99


def test_resample_counts_sum_to_the_test_set():
    counts = S.resample_counts(1000, 2000, seed=0)
    assert counts.shape == (2000, 1000) and np.all(counts.sum(axis=1) == 1000)
    np.testing.assert_array_equal(counts, S.resample_counts(1000, 2000, seed=0))


def test_prob_a_beats_b():
    rng = np.random.default_rng(8)
    per_image = (rng.random((5, 500)) < 0.9).astype(float)
    assert S.prob_a_beats_b(per_image, per_image, True) == 0.5
    better = (rng.random((5, 500)) < 0.99).astype(float)
    assert S.prob_a_beats_b(better, per_image, True, n_boot=500) > 0.99
    assert S.prob_a_beats_b(better, per_image, False, n_boot=500) < 0.01
    # same distribution, independent draws: near one half
    other = (rng.random((5, 500)) < 0.9).astype(float)
    assert 0.2 < S.prob_a_beats_b(other, per_image, True, n_boot=500) < 0.8
    assert S.prob_a_beats_b(np.array([1.0, 2, 3]), np.array([0.0, 2, 4]), True) == 0.5
