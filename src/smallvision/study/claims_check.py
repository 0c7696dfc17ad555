"""A study's ``claims:``: what the original report said, and whether it held on this study's runs.

A claim names two groups of cells (``<step>/<group label>``, the label without the seed) and a
metric, and says one is better than the other, or that they do not differ; or it says a group
beats chance (1/K) or the majority class. :func:`parse_claims` checks them with the study file,
before anything trains; :func:`check_claims` decides them from the study directory with the same
statistics as every comparison (``evaluate.compare``: its deciding test, Holm, alpha 0.05), so a
claim "holds" only when the test says so. The results page (``study.results_doc``) prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smallvision.errors import UserError

if TYPE_CHECKING:
    from smallvision.study.spec import Step

CLAIM_KEYS = ("claim", "metric", "better", "than", "same")
REFERENCES = ("chance", "majority")  # what ``than:`` may name instead of a group
ALPHA = 0.05


@dataclass(frozen=True)
class Claim:
    """One claim: ``better`` beats ``than`` on ``metric``, or the two groups of ``same`` do not differ."""

    text: str
    metric: str
    groups: tuple[str, str]  # (better, than) or the two of same; than may be chance / majority
    kind: str  # "better" or "same"


@dataclass(frozen=True)
class ClaimResult:
    """A decided claim: ``outcome`` is held, not shown, contradicted or consistent; ``detail`` the figures."""

    claim: Claim
    outcome: str
    detail: str

    def sentence(self) -> str:
        return f"**{self.outcome}** — {self.claim.text} ({self.claim.metric}): {self.detail}"


def parse_claims(value: Any, steps: list[Step], origin: str) -> tuple[Claim, ...]:
    """The study's ``claims:`` list, each checked: its keys, metric, and groups that exist."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UserError(f"{origin}: claims: expected a list of claims (claim, metric, better/than or same)")
    groups = {f"{s.name}/{c.group}" for s in steps for c in s.cells}
    groups |= {f"{s.name}/search-best" for s in steps if s.search is not None}
    return tuple(_claim(c, i, groups, origin) for i, c in enumerate(value))


def _claim(raw: Any, i: int, groups: set[str], origin: str) -> Claim:
    where = f"{origin}: claims[{i}]"
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: expected a mapping with claim, metric and better/than or same")
    unknown = [k for k in raw if k not in CLAIM_KEYS]
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; expected {', '.join(CLAIM_KEYS)}")
    text, metric = raw.get("claim"), raw.get("metric")
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: claim: expected the claim's text, got {text!r}")
    if not isinstance(metric, str) or len(metric.split("/")) != 3:
        raise UserError(
            f"{where}: metric: expected <split>/<head>/<metric>, e.g. test/label/accuracy, got {metric!r}"
        )
    if "same" in raw:
        same = raw["same"]
        if "better" in raw or "than" in raw or not isinstance(same, list) or len(same) != 2:
            raise UserError(f"{where}: same: expected two groups [step/group, step/group] and no better/than")
        pair, kind = (same[0], same[1]), "same"
    elif "better" in raw and "than" in raw:
        pair, kind = (raw["better"], raw["than"]), "better"
    else:
        raise UserError(f"{where}: expected better: and than:, or same: [group, group]")
    for j, group in enumerate(pair):
        if kind == "better" and j == 1 and group in REFERENCES:
            if group == "chance" and not metric.endswith("/accuracy"):
                raise UserError(f"{where}: than: chance needs an accuracy metric, got {metric!r}")
            continue
        if group not in groups:
            close = sorted(groups)[:8]
            raise UserError(f"{where}: group {group!r}: no such step/group; groups: {', '.join(close)}")
    return Claim(text.strip(), metric, (str(pair[0]), str(pair[1])), kind)


def check_claims(claims: tuple[Claim, ...] | list[Claim], study_dir: Path) -> list[ClaimResult]:
    """Every claim decided from the study directory's completed cells."""
    from smallvision.study.compare_runs import study_variants

    variants = {v.name: v for v in study_variants(Path(study_dir))} if claims else {}
    out = []
    for c in claims:
        try:
            out.append(_decide(c, variants))
        except UserError as exc:  # e.g. a test metric of a study run without a test split
            out.append(ClaimResult(c, "not tested", str(exc)))
    return out


def _decide(claim: Claim, variants: dict) -> ClaimResult:
    from smallvision.evaluate.compare import compare
    from smallvision.evaluate.metrics import higher_is_better
    from smallvision.study.compare_runs import variant_result

    missing = [g for g in claim.groups if g not in variants and g not in REFERENCES]
    if missing:
        return ClaimResult(claim, "not tested", f"no completed cell of {missing[0]}")
    a, reference = variant_result(variants[claim.groups[0]], claim.metric, None)
    if claim.groups[1] == "chance":
        return _against_chance(claim, variants[claim.groups[0]], a)
    if claim.groups[1] == "majority":
        b = _majority(variants[claim.groups[0]], claim.metric, a)
    else:
        b, _ = variant_result(variants[claim.groups[1]], claim.metric, reference)
    hib = higher_is_better(claim.metric)
    c = compare([a, b], claim.metric, hib, alpha=ALPHA)
    pair = c.pairs[0]
    figures = (
        f"{claim.groups[0]} {a.values.mean():.4f} vs {claim.groups[1]} {b.values.mean():.4f} "
        f"over {len(c.seeds)} seed(s); {pair.test} p = {pair.p:.3g}"
    )
    if claim.kind == "same":
        outcome = "contradicted" if pair.significant else "consistent"
        return ClaimResult(claim, outcome, f"{figures}; {c.verdict}")
    if not pair.significant:
        return ClaimResult(claim, "not shown", f"{figures}; {c.verdict}")
    outcome = "held" if pair.better == a.name else "contradicted"
    return ClaimResult(claim, outcome, f"{figures}; {c.verdict}")


def _majority(variant, metric: str, a):
    """Always predicting the training split's most frequent class, as a variant on the same images."""
    from smallvision.evaluate.compare import VariantResult

    split, head, name = metric.split("/")
    run = variant.runs[0]
    if name != "accuracy":
        raise UserError(f"claim than: majority: expected an accuracy metric, got {metric!r}")
    majority = run.metrics.reference[split][head]["majority_class"]
    correct = run.predictions.head(split, head)["y_true"] == majority
    rows = np.tile(correct, (len(a.seeds), 1))
    return VariantResult("majority", list(a.seeds), rows.mean(axis=1), correct=rows)


def _against_chance(claim: Claim, variant, a) -> ClaimResult:
    """Each seed's correct count against 1/K: exact one-sided binomial tests, Holm over the seeds."""
    from scipy.stats import binomtest
    from statsmodels.stats.multitest import multipletests

    split, head, _ = claim.metric.split("/")
    chance = variant.runs[0].metrics.reference[split][head]["chance"]["accuracy"]
    if a.correct is None:
        return ClaimResult(claim, "not tested", "no per-image predictions saved")
    n = a.correct.shape[1]
    ps = [binomtest(int(row.sum()), n, chance, alternative="greater").pvalue for row in a.correct]
    holm = multipletests(ps, alpha=ALPHA, method="holm")[1]
    figures = (
        f"{claim.groups[0]} {a.values.mean():.4f} vs chance {chance:.4f} on {n} images, "
        f"{len(ps)} seed(s); exact binomial test per seed, largest Holm p = {max(holm):.3g}"
    )
    return ClaimResult(claim, "held" if all(p < ALPHA for p in holm) else "not shown", figures)
