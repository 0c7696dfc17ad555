"""Statistical tests for comparing trained variants: pure functions of saved values.

Inputs are metric values per seed (``(n_seeds,)``) and per-image scores (``(n_seeds, n_images)``,
whose mean over images is the metric: 1/0 correct for accuracy, ``|err|`` for MAE). The tests are
SciPy's, statsmodels' and scikit-posthocs' own; this module only chooses, combines and guards them
(degenerate data, too few seeds). The decision built on them lives in :mod:`.compare` and the rule
is written out in docs/statistics.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

CONFIDENCE = 0.95
# resamples for the image-level sign-flip test: its p-value cannot go below 1 / (N + 1)
N_PERMUTATIONS = 9999


@dataclass(frozen=True)
class Interval:
    """A confidence interval and how it was computed (BCa, percentile, wilson, degenerate)."""

    low: float
    high: float
    method: str


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired correctness.

    Attributes:
        a_only: pairs A gets right and B wrong.
        b_only: pairs B gets right and A wrong.
        pvalue: exact two-sided p (binomial on the discordant pairs).
        odds_ratio: ``a_only / b_only``, with 0.5 added to both when either is 0 (Haldane), so it
            stays finite; above 1 favours A.
    """

    a_only: int
    b_only: int
    pvalue: float
    odds_ratio: float


@dataclass(frozen=True)
class PairedTest:
    """A paired test over seeds: its statistic, p-value and effect size."""

    name: str
    statistic: float
    pvalue: float
    effect_size: float
    effect_name: str


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman omnibus test with Nemenyi post-hoc p-values and average ranks (1 = best)."""

    statistic: float
    pvalue: float
    avg_ranks: np.ndarray  # (k,)
    nemenyi: np.ndarray  # (k, k) p-values, 1 on the diagonal
    n_blocks: int


def bootstrap_ci(
    scores: np.ndarray, n_boot: int = 2000, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Bootstrap interval of the mean of per-image scores, resampling images.

    BCa (Efron 1987) where it is defined; the percentile interval where BCa degenerates (e.g. a
    statistic whose resamples barely vary); a zero-width interval for constant data.

    Args:
        scores: per-image scores, any shape (flattened); for several seeds pass their mean per image.
        n_boot: number of bootstrap resamples.
        confidence: confidence level.
        seed: seed of the resampling, so the same scores give the same interval.

    Returns:
        The interval and the method that produced it.
    """
    x = np.asarray(scores, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one score")
    if x.size == 1 or np.ptp(x) == 0:
        return Interval(float(x[0]), float(x[0]), "degenerate")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            # SciPy warns (DegenerateDataWarning) and returns NaN where BCa fails: we fall back
            warnings.simplefilter("ignore")
            res = st.bootstrap(
                (x,),
                np.mean,
                n_resamples=n_boot,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
                vectorized=True,
            )
        low, high = res.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return Interval(float(low), float(high), method)
    mean = float(x.mean())
    return Interval(mean, mean, "degenerate")


def wilson_interval(n_correct: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson (1927) score interval for an accuracy of ``n_correct / n``."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0 or not 0 <= n_correct <= n:
        raise ValueError(f"wilson_interval needs 0 <= n_correct <= n and n > 0, got {n_correct}/{n}")
    low, high = proportion_confint(n_correct, n, alpha=1 - confidence, method="wilson")
    return Interval(float(low), float(high), "wilson")


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """Exact McNemar test (statsmodels) on paired correctness; 2-D inputs are pooled.

    Pass one seed's ``(n_images,)`` arrays for a per-seed test, or ``(n_seeds, n_images)`` arrays
    for the test pooled over seeds (every seed-image pair counted once).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar_exact needs equal shapes, got {a.shape} and {b.shape}")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    table = [[int(np.sum(a & b)), a_only], [b_only, int(np.sum(~a & ~b))]]
    pvalue = float(mcnemar(table, exact=True).pvalue) if a_only + b_only else 1.0
    return McNemarResult(a_only, b_only, min(pvalue, 1.0), _odds_ratio(a_only, b_only))


def _odds_ratio(a_only: int, b_only: int) -> float:
    if a_only == 0 or b_only == 0:
        return (a_only + 0.5) / (b_only + 0.5)
    return a_only / b_only


def sign_flip_test(diffs: np.ndarray, n_resamples: int = N_PERMUTATIONS, seed: int = 0) -> float:
    """Two-sided paired randomisation test that per-image differences have mean zero.

    Under the null, A and B are exchangeable on each image, so the sign of each image's difference
    (averaged over seeds) is flipped at random. An image is one unit however many seeds saw it, so
    images that one variant gets right in every seed are not counted as independent evidence. On one
    seed's 1/0 correctness it is the exact McNemar test; exact enumeration of all ``2**m`` sign
    vectors whenever ``2**m <= n_resamples`` for ``m`` non-zero differences, Monte Carlo otherwise.

    The p-value is SciPy's ``permutation_test(..., permutation_type="samples")`` for the sum: twice
    the smaller one-sided p, the observed statistic counted once among the Monte Carlo resamples.
    Computed here as one matrix product of random signs and differences per chunk: the same
    definition at a small fraction of SciPy's generic resampling time, which dominated every study
    summary and report (one test per pair of groups).

    Returns:
        The p-value.
    """
    d = np.asarray(diffs, dtype=float).ravel()
    d = d[d != 0]  # zero differences do not change under a sign flip
    if d.size <= 1:  # both signs of a lone difference are as extreme: p = 1
        return 1.0
    m, observed = d.size, d.sum()
    if 2**m <= n_resamples:
        signs = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2.0 - 1.0  # (2^m, m) every vector
        null, adjustment = signs @ d, 0
    else:
        rng = np.random.default_rng(seed)
        chunk = max(1, 2**22 // m)  # about 4 M signs at a time
        null = np.concatenate([
            (rng.integers(0, 2, (min(chunk, n_resamples - i), m), dtype=np.int8) * 2 - 1) @ d
            for i in range(0, n_resamples, chunk)
        ])  # fmt: skip
        adjustment = 1
    gamma = abs(observed) * np.finfo(float).eps * 100  # SciPy's tolerance for ties in floating point
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (len(null) + adjustment)
    greater = (np.count_nonzero(null >= observed - gamma) + adjustment) / (len(null) + adjustment)
    return float(min(1.0, 2 * min(less, greater)))


def rank_biserial(diffs: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014) of paired differences, in [-1, 1]."""
    d = np.asarray(diffs, dtype=float).ravel()
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = st.rankdata(np.abs(d))
    plus, minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((plus - minus) / (plus + minus))


def wilcoxon_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Wilcoxon signed-rank test of ``a - b`` over seeds (SciPy; exact when possible).

    SciPy's ``method="auto"`` is exact for up to 50 pairs without ties or zero differences. The
    effect size is the matched-pairs rank-biserial correlation (positive: ``a`` larger).
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not np.any(d):
        return PairedTest("wilcoxon", 0.0, 1.0, 0.0, "rank_biserial")
    res = st.wilcoxon(a, b)
    return PairedTest("wilcoxon", float(res.statistic), float(res.pvalue), rank_biserial(d), "rank_biserial")


def paired_t_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Paired t-test of ``a - b`` over seeds (SciPy) with Cohen's d_z = mean(d) / sd(d)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2:
        raise ValueError("paired_t_test needs at least 2 pairs")
    sd = d.std(ddof=1)
    mean = float(d.mean())
    # every seed differs by the same amount (up to rounding: accuracies are k / n_images, and
    # equal differences of them need not be equal floats): t is 0 or infinite (p = 0)
    if sd <= 1e-12 * max(1.0, abs(mean)):
        zero = abs(mean) <= 1e-12
        t = 0.0 if zero else math.copysign(math.inf, mean)
        return PairedTest("paired_t", t, 1.0 if zero else 0.0, t, "cohens_dz")
    res = st.ttest_rel(a, b)
    return PairedTest("paired_t", float(res.statistic), float(res.pvalue), float(d.mean() / sd), "cohens_dz")


def average_ranks(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Average rank of each column over the rows (blocks), 1 = best; ties share their mean rank."""
    s = np.asarray(scores, dtype=float)
    return st.rankdata(-s if higher_is_better else s, axis=1).mean(axis=0)


def friedman_nemenyi(scores: np.ndarray, higher_is_better: bool) -> FriedmanResult:
    """Friedman test (SciPy) with the Nemenyi post-hoc (scikit-posthocs) on a blocks × variants table.

    Blocks where every variant scores the same are dropped first: they change neither the
    tie-corrected Friedman statistic nor the ranks' order, but would dilute Nemenyi's mean ranks
    (an image every variant gets right says nothing about their difference).

    Args:
        scores: ``(n_blocks, k)``, k >= 3; blocks are seeds or test images.
        higher_is_better: the direction of the average ranks (1 = best).
    """
    import scikit_posthocs as sp

    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[1] < 3:
        raise ValueError(f"friedman_nemenyi needs a (n_blocks, k >= 3) table, got shape {s.shape}")
    ranks = average_ranks(s, higher_is_better)
    informative = s[np.ptp(s, axis=1) > 0]
    k = s.shape[1]
    if informative.shape[0] < 2:
        return FriedmanResult(0.0, 1.0, ranks, np.ones((k, k)), s.shape[0])
    res = st.friedmanchisquare(*informative.T)
    nemenyi = sp.posthoc_nemenyi_friedman(informative).to_numpy(dtype=float)
    return FriedmanResult(float(res.statistic), float(res.pvalue), ranks, nemenyi, s.shape[0])


def holm(pvalues: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm (1979) step-down correction (statsmodels); NaN p-values count as 1.

    Returns:
        ``(adjusted p-values, reject)``, both in the input order.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.nan_to_num(np.asarray(pvalues, dtype=float), nan=1.0)
    if p.size == 0:
        return p, np.zeros(0, dtype=bool)
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return adjusted, reject


def resample_counts(n_images: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each image appears in each bootstrap resample: ``(n_boot, n_images)`` counts.

    Counts instead of index arrays let a metric over all resamples be one matrix product
    (``per_image @ counts.T / n_images``) rather than ``n_boot`` gathers.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_images, size=(n_boot, n_images))
    flat = idx + np.arange(n_boot)[:, None] * n_images
    return np.bincount(flat.ravel(), minlength=n_boot * n_images).reshape(n_boot, n_images)


def prob_a_beats_b(
    a: np.ndarray, b: np.ndarray, higher_is_better: bool, n_boot: int = 2000, seed: int = 0
) -> float:
    """P(A beats B) (Bouthillier et al., 2021) over seeds × bootstrap-resampled test sets.

    With per-image scores ``(n_seeds, n_images)``, seed ``s`` of A meets seed ``s`` of B on the same
    resampled test set, for every seed and resample; with per-seed values ``(n_seeds,)`` only the
    seeds vary. Ties count one half, so identical variants give exactly 0.5.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"prob_a_beats_b needs equal shapes, got {a.shape} and {b.shape}")
    if a.ndim == 2:
        counts = resample_counts(a.shape[1], n_boot, seed).T.astype(float)  # (n_images, n_boot)
        a, b = a @ counts, b @ counts  # (n_seeds, n_boot): metric sums, same scale for both
    diff = a - b if higher_is_better else b - a
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


def min_attainable_p(test: str, n: int, k: int = 2) -> float:
    """The smallest p-value a design can produce, to say when it cannot reach significance.

    Args:
        test: ``"wilcoxon"`` or ``"sign"`` (exact two-sided on ``n`` pairs: ``2 / 2**n``),
            ``"mcnemar"`` (exact, ``n`` discordant pairs: ``2 / 2**n``), ``"friedman"``
            (asymptotic chi-square, ``n`` blocks all ranking the ``k`` variants alike) or
            ``"t"`` (no floor with 2 pairs or more).
        n: pairs, discordant pairs or blocks.
        k: variants (Friedman only).
    """
    if n < 1:
        return 1.0
    if test in ("wilcoxon", "sign", "mcnemar"):
        return min(1.0, 2.0 / 2.0**n)
    if test == "friedman":
        return float(st.chi2.sf(n * (k - 1), k - 1))
    if test == "t":
        return 0.0 if n >= 2 else 1.0
    raise ValueError(
        f"min_attainable_p: unknown test {test!r}; expected wilcoxon, sign, mcnemar, friedman, t"
    )


def min_pairs_for(alpha: float, test: str = "wilcoxon") -> int:
    """The fewest pairs (seeds) with which an exact two-sided ``test`` can give ``p < alpha``."""
    n = 1
    while min_attainable_p(test, n) >= alpha:
        n += 1
    return n
