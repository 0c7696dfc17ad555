"""compare(): the decision a study summary prints. Winners only where the tests say so."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from smallvision.errors import UserError
from smallvision.evaluate import stats
from smallvision.evaluate.compare import VariantResult, compare


def _seeds_only(name, mean, n_seeds, rng, sd=0.005):
    return VariantResult(name, list(range(n_seeds)), rng.normal(mean, sd, n_seeds))


def _classifier(name, accuracy, n_seeds, rng, n_images=1000):
    correct = rng.random((n_seeds, n_images)) < accuracy
    return VariantResult(name, list(range(n_seeds)), correct.mean(axis=1), correct=correct)


def test_equal_variants_over_many_seeds_have_no_winner():
    rng = np.random.default_rng(0)
    c = compare([_seeds_only(n, 0.9, 20, rng) for n in ("a", "b", "c")], "acc", True)
    assert c.level == "seeds" and c.winner is None
    assert not any(p.significant for p in c.pairs)
    assert c.verdict.startswith("no significant difference")


def test_equal_classifiers_with_images_have_no_winner():
    rng = np.random.default_rng(1)
    c = compare([_classifier("a", 0.9, 3, rng), _classifier("b", 0.9, 3, rng)], "acc", True, n_boot=500)
    assert c.level == "images" and c.winner is None and not c.pairs[0].significant
    assert 0.1 < c.pairs[0].p_a_beats_b < 0.9


def test_clearly_better_over_seeds_wins_by_wilcoxon():
    rng = np.random.default_rng(2)
    base, big = _seeds_only("base", 0.90, 8, rng), _seeds_only("big", 0.93, 8, rng)
    c = compare([base, big], "acc", True)
    assert c.winner == "big" and c.pairs[0].test == "wilcoxon"
    assert c.pairs[0].p == pytest.approx(stats.wilcoxon_test(base.values, big.values).pvalue)
    assert c.pairs[0].p == pytest.approx(2 / 2**8)  # every seed agrees: the exact test's floor
    assert c.pairs[0].p_a_beats_b == 0.0 and c.rows[0].name == "big"
    assert "big is best on acc: significantly better than base by the Wilcoxon" in c.verdict


def test_five_seeds_without_images_never_name_a_winner():
    rng = np.random.default_rng(3)
    c = compare(
        [_seeds_only("a", 0.90, 5, rng, sd=0.001), _seeds_only("b", 0.95, 5, rng, sd=0.001)], "acc", True
    )
    pair = c.pairs[0]
    assert pair.tests["paired_t"]["p"] < 1e-6  # the t-test would call it: it does not decide
    assert pair.p == pytest.approx(0.0625) and not pair.significant and c.winner is None
    assert "minimum p = 0.0625" in c.verdict and "5 seeds cannot reach p < 0.05" in c.verdict


def test_few_seeds_with_images_decide_on_the_images():
    rng = np.random.default_rng(4)
    c = compare([_classifier("a", 0.90, 3, rng), _classifier("b", 0.95, 3, rng)], "acc", True, n_boot=500)
    pair = c.pairs[0]
    assert pair.test == "sign_flip_images" and pair.significant and c.winner == "b"
    assert pair.tests["wilcoxon"]["p"] >= 0.25  # 3 seeds: the seed-level check cannot reach 0.05
    assert "so the test over test images decides" in c.verdict and "minimum p = 0.25" in c.verdict
    assert c.rows[0].ci.low < c.rows[0].mean < c.rows[0].ci.high


def test_five_seeds_with_equal_images_say_the_floor_and_the_image_p():
    rng = np.random.default_rng(5)
    c = compare([_classifier("a", 0.9, 5, rng), _classifier("b", 0.9, 5, rng)], "acc", True, n_boot=500)
    assert c.winner is None
    assert "minimum p = 0.0625" in c.verdict and "McNemar on the pooled seed-image pairs" in c.verdict


def test_one_seed_uses_exact_mcnemar():
    rng = np.random.default_rng(6)
    a, b = _classifier("a", 0.85, 1, rng), _classifier("b", 0.92, 1, rng)
    c = compare([a, b], "acc", True, n_boot=500)
    pair = c.pairs[0]
    assert pair.test == "mcnemar" and "wilcoxon" not in pair.tests
    assert pair.p == pytest.approx(stats.mcnemar_exact(a.correct[0], b.correct[0]).pvalue)
    assert c.winner == "b" and "Dietterich" in c.verdict


def test_one_variant_has_nothing_to_compare():
    c = compare([VariantResult("a", [0, 1], np.array([0.9, 0.91]))], "acc", True)
    assert c.pairs == [] and c.winner is None and c.verdict == "only one variant (a): nothing to compare"
    assert c.rows[0].std == pytest.approx(np.std([0.9, 0.91], ddof=1))


def test_one_seed_without_images_is_no_test():
    rng = np.random.default_rng(7)
    c = compare([_seeds_only("a", 0.9, 1, rng), _seeds_only("b", 0.99, 1, rng)], "acc", True)
    assert c.level == "none" and c.winner is None and "no test possible" in c.verdict


def test_three_variants_friedman_gate_nemenyi_and_holm():
    rng = np.random.default_rng(8)
    variants = [
        _seeds_only("a", 0.90, 10, rng),
        _seeds_only("b", 0.90, 10, rng),
        _seeds_only("c", 0.80, 10, rng),
    ]
    c = compare(variants, "acc", True)
    assert c.omnibus is not None and c.omnibus.pvalue < 0.05 and c.omnibus.level == "seeds"
    _, ref, _, _ = multipletests([p.p for p in c.pairs], method="holm")
    np.testing.assert_allclose([p.p_holm for p in c.pairs], ref)
    assert all("nemenyi" in p.tests for p in c.pairs)
    assert c.winner is None and "no single winner" in c.verdict
    row_c = next(r for r in c.rows if r.name == "c")
    assert row_c.rank == 3 and row_c.avg_rank == 3.0
    assert sorted(next(r for r in c.rows if r.name == "a").better_than) == ["c"]


def test_three_equal_variants_stop_at_friedman():
    rng = np.random.default_rng(9)
    c = compare([_seeds_only(n, 0.9, 8, rng) for n in "abc"], "acc", True)
    assert c.omnibus.pvalue >= 0.05 and not any(p.significant for p in c.pairs)
    assert "Friedman over 8 seeds finds no difference" in c.verdict


def test_lower_is_better_for_errors():
    rng = np.random.default_rng(10)
    err_a = np.abs(rng.normal(0, 1.0, (8, 300)))
    err_b = np.abs(rng.normal(0, 0.5, (8, 300)))
    variants = [
        VariantResult("wide", list(range(8)), err_a.mean(axis=1), per_image=err_a),
        VariantResult("narrow", list(range(8)), err_b.mean(axis=1), per_image=err_b),
    ]
    c = compare(variants, "mae", higher_is_better=False, n_boot=500)
    assert c.winner == "narrow" and c.rows[0].name == "narrow" and c.pairs[0].p_a_beats_b < 0.01
    assert "bootstrap_diff" in c.pairs[0].tests and "mcnemar_pooled" not in c.pairs[0].tests


def test_seeds_are_aligned_by_value():
    rng = np.random.default_rng(11)
    a = _seeds_only("a", 0.9, 7, rng)
    b = VariantResult("b", a.seeds[::-1] + [99], np.r_[a.values[::-1] + 0.01, 0.0])
    c = compare([a, b], "acc", True)
    assert c.seeds == a.seeds and c.winner == "b" and c.pairs[0].diff == pytest.approx(-0.01)


def test_markdown_and_json():
    rng = np.random.default_rng(12)
    c = compare(
        [_classifier(n, acc, 2, rng, 300) for n, acc in (("a", 0.9), ("b", 0.8), ("c", 0.7))],
        "acc",
        True,
        n_boot=300,
    )
    md = c.to_markdown()
    assert "| rank | variant |" in md and f"**Verdict:** {c.verdict}." in md and "| **a** |" in md
    assert c.winner == "a" and "better than every other variant (b, c)" in c.verdict
    data = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert data["winner"] == "a" and len(data["pairs"]) == 3 and data["rows"][0]["ci"]["method"] == "BCa"


def test_same_inputs_same_comparison():
    def run():
        rng = np.random.default_rng(13)
        return compare(
            [_classifier("a", 0.9, 2, rng, 300), _classifier("b", 0.88, 2, rng, 300)], "acc", True, n_boot=300
        )

    assert run().to_dict() == run().to_dict()


@pytest.mark.parametrize(
    ("variants", "match"),
    [
        ([], "no variants"),
        ([VariantResult("a", [0], np.ones(1)), VariantResult("a", [0], np.ones(1))], "duplicate"),
        ([VariantResult("a", [0, 1], np.ones(3))], "values shape"),
        ([VariantResult("a", [0], np.ones(1), correct=np.ones((2, 5), bool))], "correct shape"),
        ([VariantResult("a", [0], np.ones(1)), VariantResult("b", [1], np.ones(1))], "no seed shared"),
        (
            [
                VariantResult("a", [0], np.ones(1), per_image=np.ones((1, 5))),
                VariantResult("b", [0], np.ones(1), per_image=np.ones((1, 6))),
            ],
            "different numbers of images",
        ),
        (
            [VariantResult("a", [0], np.ones(1), per_image=np.ones((1, 5)), correct=np.ones((1, 4), bool))],
            "differs from correct shape",
        ),
    ],
)
def test_bad_input_is_a_user_error(variants, match):
    with pytest.raises(UserError, match=match):
        compare(variants, "acc", True)
