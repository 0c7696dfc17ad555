"""One section per head: metrics recomputed from predictions.npz, checks, figures and tables.

What a section holds depends on the head's kind: each kind's ``rescore`` and ``draw``
(:mod:`smallvision.heads`) fill it.

Every figure here is drawn from the saved predictions, never from metrics.json, so a report
cannot show a number that no model produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smallvision.heads.base import HeadKind
from smallvision.registry import HEAD_KINDS
from smallvision.report import checks as ck
from smallvision.report import sections
from smallvision.report.tables import Image, Table
from smallvision.rundir import MetricsRecord, Run

SPLITS = ("test", "val")


@dataclass
class HeadReport:
    """What the report shows for one head.

    Attributes:
        name, kind: the head and its kind's name (see ``HEAD_KINDS``).
        split: the split the figures were drawn from ("test", else "val"; "" when none).
        checks: split -> metric -> Check (reported in metrics.json vs recomputed).
        findings: warnings and notes about this head.
        images: figures, in page order.
        tables: tables shown under the figures (most confused pairs).
        details: longer tables shown folded (per-class figures).
    """

    name: str
    kind: str
    split: str = ""
    checks: dict[str, dict[str, ck.Check]] = field(default_factory=dict)
    findings: list[ck.Finding] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    details: list[Table] = field(default_factory=list)


def head_names(run: Run) -> list[str]:
    """Heads in the order metrics.json lists them, then any only found in predictions."""
    names: dict[str, None] = {}
    metrics = run.metrics or MetricsRecord("completed")
    for source in (metrics.heads, metrics.test, metrics.val):
        names.update((h, None) for h in source)
    for split in SPLITS:
        names.update((h, None) for h in (run.predictions.arrays.get(split, {}) if run.predictions else {}))
    return list(names)


def _arrays(run: Run, split: str, head: str) -> dict[str, np.ndarray]:
    return run.predictions.head(split, head) if run.predictions else {}


def _reported(run: Run, split: str, head: str) -> dict[str, Any] | None:
    return run.metrics.splits.get(split, {}).get(head) if run.metrics else None


def _head_info(run: Run, head: str) -> tuple[HeadKind, list[str] | None]:
    """(kind, class names) from metrics.json, else guessed from the prediction arrays."""
    info = run.metrics.heads.get(head) if run.metrics else None
    kind, classes = (info.kind, info.classes) if info else (None, None)
    if kind is None:  # guess from what was saved: probabilities, images, or the reported metrics
        arrays = next((a for s in SPLITS if (a := _arrays(run, s, head))), {})
        reported = next((m for s in SPLITS if (m := _reported(run, s, head))), {})
        kinds = [HEAD_KINDS.get(k) for k in HEAD_KINDS.list()]
        found = next((k for k in kinds if k.looks_like(arrays, reported)), None)
        kind = found.name if found else "regression"
    return HEAD_KINDS.get(kind), [str(c) for c in classes] if isinstance(classes, list) else None


def analyse_head(run: Run, head: str, draw: bool = True) -> HeadReport:
    """Recompute, check and draw one head from every split that has predictions.

    With ``draw=False`` only the checks and findings are made (the command line's warnings):
    no figure or table, and the findings are those of the drawn report.
    """
    kind, classes = _head_info(run, head)
    report = HeadReport(head, kind.name)
    best_epoch = run.metrics.best_epoch if run.metrics else None
    # reconstructions are saved standardised; pixel accuracy needs the run's normaliser
    data = run.metrics.data if run.metrics else None
    normalization = data.normalization if data else None
    for split in SPLITS:
        arrays = _arrays(run, split, head)
        if not arrays:
            continue
        try:
            scored = kind.rescore(arrays, normalization)
        except (ck.PredictionError, KeyError) as exc:
            missing = f"no {exc} array" if isinstance(exc, KeyError) else str(exc)
            report.findings.append(ck.Finding("warning", f"{head}: {split} predictions unusable", missing))
            continue
        report.checks[split] = ck.compare(_reported(run, split, head), scored.metrics, scored.bounds)
        report.findings += ck.mismatches(head, split, report.checks[split])
        if split == "val":
            report.findings += ck.check_history(head, run.history or {}, best_epoch, scored.metrics)
        if not report.split:  # figures and diagnoses from test, or from val when test is missing
            report.split = split
            report.findings += ck.non_finite(head, arrays.get(kind.npz_field))
            report.findings += kind.diagnose(report, arrays, scored.extra, classes)
            ctx = sections.head_context(run.metrics)
            if draw:
                kind.draw(report, arrays, scored.extra, classes)
                # intervals, ROC, calibration, residual shape, image quality (report/sections.py)
                sections.draw(report, arrays, classes, ctx)
            else:
                report.findings += sections.findings(report, arrays, classes, ctx)
    return report
