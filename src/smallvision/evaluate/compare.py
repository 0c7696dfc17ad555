"""The decision a study summary prints: which variants differ, and whether one of them wins.

``compare(variants, metric, higher_is_better)`` runs every test of :mod:`.stats` that the saved data
allow and decides with one of them, chosen by the design (the rule is in docs/statistics.md):

- 6 seeds or more: the exact Wilcoxon signed-rank test over seeds decides (Demšar 2006); the paired
  t-test and the image-level tests are reported beside it.
- 5 seeds or fewer with per-image scores: an exact two-sided Wilcoxon cannot go below 2/2**n
  (0.0625 for 5), so the test over test images decides: exact McNemar with one seed (Dietterich
  1998), the sign-flip test over images on the seed-averaged differences with several.
- 5 seeds or fewer without per-image scores: Wilcoxon, which cannot reach significance; the verdict
  says so instead of naming a winner.
- 3 variants or more: a Friedman test at the same level (seeds or images) must reject first; then the
  pairs, Holm-corrected (Holm 1979). Nemenyi's p-values are reported beside them.

A winner is named only when it is significantly better than every other variant.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from smallvision.errors import UserError
from smallvision.evaluate import stats
from smallvision.evaluate.compare_text import jsonable, render_markdown, verdict_text

# the exact two-sided Wilcoxon on n pairs reaches p < 0.05 from n = 6 on (2 / 2**6 = 0.031)
MIN_SEEDS_FOR_WILCOXON = stats.min_pairs_for(0.05)


@dataclass
class VariantResult:
    """One variant's saved results, seeds in the same order as their rows.

    Attributes:
        name: the variant's name.
        seeds: the seed of each run.
        values: ``(n_seeds,)`` the metric of each seed's run (e.g. test accuracy).
        per_image: ``(n_seeds, n_images)`` per-image scores whose mean is the metric (1/0 correct
            for accuracy, ``|err|`` for MAE); the same image order in every variant.
        correct: ``(n_seeds, n_images)`` bool, for McNemar (classification). Given alone, it also
            serves as ``per_image`` (the metric is then accuracy).
    """

    name: str
    seeds: list[int]
    values: np.ndarray
    per_image: np.ndarray | None = None
    correct: np.ndarray | None = None


@dataclass
class Row:
    """One variant in the ranked table (rank 1 = best mean)."""

    name: str
    n_seeds: int
    mean: float
    std: float
    ci: stats.Interval | None
    rank: int
    avg_rank: float | None = None
    better_than: list[str] = field(default_factory=list)


@dataclass
class Omnibus:
    """The Friedman test over all variants, at the decision's level."""

    test: str
    level: str
    statistic: float
    pvalue: float
    n_blocks: int


@dataclass
class Pair:
    """One pair of variants: every test run on it and the decision.

    ``diff`` is mean(a) - mean(b) in the metric's units over the seeds all variants share; ``p``
    is the deciding test's raw p-value, ``p_holm`` the Holm-adjusted one; effect sizes are of
    a - b (positive: a larger; an odds ratio above 1: a more often right); ``direction`` is
    positive when the deciding test favours a; ``better`` names the better variant when
    ``significant``. ``tests`` holds every test run on the pair, by name.
    """

    a: str
    b: str
    diff: float
    test: str
    p: float
    p_holm: float
    effect_size: float
    effect_name: str
    p_a_beats_b: float
    significant: bool
    better: str | None
    direction: float = 0.0
    tests: dict[str, dict] = field(default_factory=dict)


@dataclass
class Comparison:
    """The result of :func:`compare`: table rows, omnibus test, pairs, winner and verdict."""

    metric: str
    higher_is_better: bool
    alpha: float
    seeds: list[int]
    level: str  # "seeds", "images" or "none": which evidence decides
    n_images: int | None
    rows: list[Row]
    omnibus: Omnibus | None
    pairs: list[Pair]
    winner: str | None
    verdict: str

    def to_markdown(self) -> str:
        """The ranked table with significance marks, the pairs and the verdict, as Markdown."""
        return render_markdown(self)

    def to_dict(self) -> dict:
        """A JSON-able dict (non-finite numbers become None)."""
        return jsonable(self)


@dataclass
class _Data:
    """Variants aligned on the seeds they share."""

    names: list[str]
    seeds: list[int]
    values: np.ndarray  # (k, n_seeds)
    per_image: np.ndarray | None  # (k, n_seeds, n_images)
    correct: np.ndarray | None  # (k, n_seeds, n_images) bool


def compare(
    variants: list[VariantResult],
    metric: str,
    higher_is_better: bool,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare variants on one metric and decide which differences are significant.

    Args:
        variants: the variants; paired tests use the seeds they all share.
        metric: the metric's name, for the table and the verdict.
        higher_is_better: the metric's direction.
        alpha: the family-wise significance level (after Holm's correction).
        n_boot: bootstrap resamples of the test images (intervals and P(A beats B)).
        seed: seed of every resampling, so the same inputs give the same comparison.

    Returns:
        The comparison; see :class:`Comparison`.

    Raises:
        UserError: no variants, duplicate names, shapes that disagree, or no seed shared by all.
    """
    data = _align(variants)
    level = _level(data)
    sign = 1.0 if higher_is_better else -1.0
    pairs = [
        _pair(data, i, j, level, sign, n_boot, seed)
        for i, j in itertools.combinations(range(len(data.names)), 2)
    ]
    omnibus, ranks, nemenyi = _omnibus(data, level, higher_is_better)
    if nemenyi is not None:
        for pair, (i, j) in zip(pairs, itertools.combinations(range(len(data.names)), 2), strict=True):
            pair.tests["nemenyi"] = {"p": float(nemenyi[i, j])}
    _decide(pairs, omnibus, alpha)
    rows = _rows(variants, data, ranks, pairs, sign, n_boot, seed)
    winner = _winner(data.names, pairs)
    n_images = data.per_image.shape[2] if data.per_image is not None else None
    comparison = Comparison(
        metric, higher_is_better, alpha, data.seeds, level, n_images, rows, omnibus, pairs, winner, ""
    )
    comparison.verdict = verdict_text(comparison, MIN_SEEDS_FOR_WILCOXON)
    return comparison


def _align(variants: list[VariantResult]) -> _Data:
    if not variants:
        raise UserError("compare: no variants given; expected at least one")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise UserError(f"compare: duplicate variant names {names}; expected unique names")
    for v in variants:
        _check_variant(v)
    shared = [s for s in variants[0].seeds if all(s in v.seeds for v in variants[1:])]
    if not shared:
        raise UserError(f"compare: no seed shared by all variants {names}; expected at least one common seed")
    rows = [[v.seeds.index(s) for s in shared] for v in variants]
    values = np.stack([np.asarray(v.values, dtype=float)[r] for v, r in zip(variants, rows, strict=True)])
    correct = _stack([v.correct for v in variants], rows, bool)
    per_image = _stack([v.per_image for v in variants], rows, float)
    if per_image is None and correct is not None:
        per_image = correct.astype(float)
    for arr, what in ((per_image, "per_image"), (correct, "correct")):
        if arr is not None and arr.ndim != 3:
            raise UserError(
                f"compare: {what} arrays have different numbers of images across variants {names}"
            )
    if per_image is not None and correct is not None and per_image.shape != correct.shape:
        raise UserError(
            f"compare: per_image shape {per_image.shape} differs from correct shape {correct.shape}"
        )
    return _Data(names, shared, values, per_image, correct)


def _check_variant(v: VariantResult) -> None:
    n = len(v.seeds)
    if n == 0 or len(set(v.seeds)) != n:
        raise UserError(f"compare: variant {v.name!r} seeds {v.seeds}; expected distinct seeds, at least one")
    if np.shape(v.values) != (n,):
        raise UserError(f"compare: variant {v.name!r} values shape {np.shape(v.values)}; expected ({n},)")
    for arr, what in ((v.per_image, "per_image"), (v.correct, "correct")):
        if arr is not None and (np.ndim(arr) != 2 or np.shape(arr)[0] != n):
            raise UserError(
                f"compare: variant {v.name!r} {what} shape {np.shape(arr)}; expected ({n}, n_images)"
            )


def _stack(arrays: list[np.ndarray | None], rows: list[list[int]], dtype: type) -> np.ndarray | None:
    # image-level tests need every variant's images: one variant without them disables them all
    if any(a is None for a in arrays):
        return None
    parts = [np.asarray(a, dtype=dtype)[r] for a, r in zip(arrays, rows, strict=True)]
    if len({p.shape[1] for p in parts}) != 1:
        return np.empty(0)  # reported by the caller with the variants' names
    return np.stack(parts)


def _level(data: _Data) -> str:
    n = len(data.seeds)
    if n >= MIN_SEEDS_FOR_WILCOXON or (data.per_image is None and n >= 2):
        return "seeds"
    return "images" if data.per_image is not None else "none"


def _pair(data: _Data, i: int, j: int, level: str, sign: float, n_boot: int, seed: int) -> Pair:
    va, vb = data.values[i], data.values[j]
    tests: dict[str, dict] = {}
    if len(va) >= 2:
        w, t = stats.wilcoxon_test(va, vb), stats.paired_t_test(va, vb)
        tests["wilcoxon"] = {"statistic": w.statistic, "p": w.pvalue, "rank_biserial": w.effect_size}
        tests["paired_t"] = {"statistic": t.statistic, "p": t.pvalue, "cohens_dz": t.effect_size}
    if data.correct is not None:
        _mcnemar_tests(tests, data.correct[i], data.correct[j])
    scores = (data.per_image[i], data.per_image[j]) if data.per_image is not None else (va, vb)
    if data.per_image is not None:
        d = data.per_image[i].mean(axis=0) - data.per_image[j].mean(axis=0)  # (n_images,)
        ci = stats.bootstrap_ci(d, n_boot=n_boot, seed=seed)
        tests["bootstrap_diff"] = {"low": ci.low, "high": ci.high, "method": ci.method}
        p_flip = stats.sign_flip_test(d, seed=seed)
        tests["sign_flip_images"] = {
            "p": p_flip,
            "mean_diff": float(d.mean()),
            "sd_diff": float(d.std(ddof=1)) if d.size > 1 else 0.0,
        }
    test, p, effect, effect_name, favour = _primary(tests, level, len(data.seeds))
    p_ab = stats.prob_a_beats_b(*scores, higher_is_better=sign > 0, n_boot=n_boot, seed=seed)
    diff = float(va.mean() - vb.mean())
    names = data.names[i], data.names[j]
    return Pair(*names, diff, test, p, p, effect, effect_name, p_ab, False, None, sign * favour, tests)


def _mcnemar_tests(tests: dict[str, dict], ca: np.ndarray, cb: np.ndarray) -> None:
    pooled = stats.mcnemar_exact(ca, cb)
    tests["mcnemar_pooled"] = {
        "p": pooled.pvalue,
        "a_only": pooled.a_only,
        "b_only": pooled.b_only,
        "odds_ratio": pooled.odds_ratio,
    }
    tests["mcnemar_per_seed"] = {"p": [stats.mcnemar_exact(a, b).pvalue for a, b in zip(ca, cb, strict=True)]}


def _primary(tests: dict[str, dict], level: str, n_seeds: int) -> tuple[str, float, float, str, float]:
    """The deciding test of a pair: (name, p, effect size, effect name, direction of a - b)."""
    if level == "seeds":
        w = tests["wilcoxon"]
        return "wilcoxon", w["p"], w["rank_biserial"], "rank_biserial", w["rank_biserial"]
    if level == "none":
        return "none", float("nan"), float("nan"), "", 0.0
    s = tests["sign_flip_images"]
    if n_seeds == 1 and "mcnemar_pooled" in tests:
        m = tests["mcnemar_pooled"]
        return "mcnemar", m["p"], m["odds_ratio"], "odds_ratio", s["mean_diff"]
    if "mcnemar_pooled" in tests:
        return "sign_flip_images", s["p"], tests["mcnemar_pooled"]["odds_ratio"], "odds_ratio", s["mean_diff"]
    d_z = s["mean_diff"] / s["sd_diff"] if s["sd_diff"] > 0 else 0.0
    return "sign_flip_images", s["p"], d_z, "cohens_dz_images", s["mean_diff"]


def _omnibus(
    data: _Data, level: str, higher_is_better: bool
) -> tuple[Omnibus | None, np.ndarray | None, np.ndarray | None]:
    """Friedman at the decision's level (blocks = seeds or images), average ranks, Nemenyi p's."""
    k = len(data.names)
    if level == "seeds":
        blocks = data.values.T  # (n_seeds, k)
    elif level == "images":
        blocks = data.per_image.mean(axis=1).T  # (n_images, k): seed-averaged per-image scores
    else:
        return None, None, None
    ranks = stats.average_ranks(blocks, higher_is_better)
    if k < 3:
        return None, ranks, None
    res = stats.friedman_nemenyi(blocks, higher_is_better)
    return Omnibus("friedman", level, res.statistic, res.pvalue, res.n_blocks), ranks, res.nemenyi


def _decide(pairs: list[Pair], omnibus: Omnibus | None, alpha: float) -> None:
    adjusted, _ = stats.holm(np.array([p.p for p in pairs]), alpha)
    gate = omnibus is None or omnibus.pvalue < alpha
    for pair, p_holm in zip(pairs, adjusted, strict=True):
        pair.p_holm = float(p_holm)
        pair.significant = bool(gate and pair.test != "none" and p_holm < alpha and pair.direction != 0)
        pair.better = (pair.a if pair.direction > 0 else pair.b) if pair.significant else None


def _rows(variants, data: _Data, ranks, pairs: list[Pair], sign: float, n_boot: int, seed: int) -> list[Row]:
    by_name = {v.name: v for v in variants}
    order = sorted(
        range(len(data.names)), key=lambda i: -sign * float(np.mean(by_name[data.names[i]].values))
    )
    rows = []
    for rank, i in enumerate(order, start=1):
        v = by_name[data.names[i]]
        ci = (
            stats.bootstrap_ci(data.per_image[i].mean(axis=0), n_boot, seed=seed)
            if data.per_image is not None
            else None
        )
        values = np.asarray(v.values, dtype=float)
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        better = [p.b if p.a == v.name else p.a for p in pairs if p.better == v.name]
        avg = float(ranks[i]) if ranks is not None else None
        rows.append(Row(v.name, values.size, float(values.mean()), std, ci, rank, avg, better))
    return rows


def _winner(names: list[str], pairs: list[Pair]) -> str | None:
    if len(names) < 2:
        return None
    for name in names:
        mine = [p for p in pairs if name in (p.a, p.b)]
        if all(p.better == name for p in mine):
            return name
    return None
