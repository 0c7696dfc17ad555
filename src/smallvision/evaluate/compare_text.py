"""Words and tables for a :class:`~smallvision.evaluate.compare.Comparison`: verdict, Markdown, JSON.

Kept apart from the decision so that compare.py reads as the rule alone. Numbers are formatted
here and nowhere else, so the summary, the report and the JSON say the same thing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from smallvision.evaluate.stats import min_attainable_p

_TESTS = {
    "wilcoxon": "the Wilcoxon signed-rank test over {n} seeds",
    "mcnemar": "the exact McNemar test on the {images} {split} images",
    "sign_flip_images": "the sign-flip test over the {images} {split} images, each averaged over {n} seeds",
    "none": "no test",
}


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON-able values: dataclasses as dicts, NumPy as Python, inf/NaN as None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer | int):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return float(obj) if math.isfinite(obj) else None
    return obj


def format_number(x: float | None, spec: str = ".4g") -> str:
    """A number as every comparison output writes it (``–`` for None, NaN and infinity)."""
    if x is None or not math.isfinite(x):
        return "–"
    return format(x, spec)


_num = format_number


def images_word(metric: str) -> str:
    """Which images a metric is scored on, in words: ``val`` for ``val/...``, ``eval:X`` for an
    evaluation set, ``test`` otherwise (``test/...``, the domain parts ``test:B/...`` and a bare
    metric name such as ``acc``, which compare() is given for test figures)."""
    split = metric.split("/", 1)[0] if "/" in metric else "test"
    return split if split == "val" or split.startswith("eval:") else "test"


def describe_test(test: str, n_seeds: int, n_images: int | None, metric: str = "test/") -> str:
    """The deciding test in words, e.g. 'the exact McNemar test on the 1000 test images' (val
    images when ``metric`` is a val metric, as in a study without a test split)."""
    return _TESTS[test].format(n=n_seeds, images=n_images, split=images_word(metric))


def verdict_text(c: Any, min_seeds: int) -> str:
    """The verdict in plain words: the winner or why there is none, and which test decided."""
    n = len(c.seeds)
    if len(c.rows) == 1:
        return f"only one variant ({c.rows[0].name}): nothing to compare"
    if c.level == "none":
        return (
            "no test possible: one seed per variant and no per-image scores saved; save per-image "
            f"predictions or train at least {min_seeds} seeds"
        )
    test = c.pairs[0].test
    how = describe_test(test, n, c.n_images, c.metric)
    significant = [p for p in c.pairs if p.significant]
    if c.winner:
        worst = max(p.p_holm for p in c.pairs if c.winner in (p.a, p.b))
        others = [r.name for r in c.rows if r.name != c.winner]
        than = others[0] if len(others) == 1 else f"every other variant ({', '.join(others)})"
        head = (
            f"{c.winner} is best on {c.metric}: significantly better than {than} "
            f"by {how} (Holm-adjusted p <= {_num(worst, '.3g')})"
        )
    elif significant:
        listed = ", ".join(f"{p.better} > {p.b if p.better == p.a else p.a}" for p in significant)
        head = f"no single winner on {c.metric}; significant after Holm: {listed}, by {how}"
    else:
        head = f"no significant difference on {c.metric}"
    return head + "".join(f"; {r}" for r in _reasons(c, how, min_seeds))


def _reasons(c: Any, how: str, min_seeds: int) -> list[str]:
    n = len(c.seeds)
    reasons = []
    if c.omnibus is not None and c.omnibus.pvalue >= c.alpha:
        reasons.append(
            f"Friedman over {c.omnibus.n_blocks} {c.level} finds no difference among the "
            f"{len(c.rows)} variants (p = {_num(c.omnibus.pvalue, '.3g')})"
        )
    if n == 1 and c.level == "images":
        reasons.append(
            f"one seed per variant, so the test over {images_word(c.metric)} images decides (Dietterich 1998)"
        )
    elif n < min_seeds:
        floor = min_attainable_p("wilcoxon", n)
        line = f"{n} seed{'s' if n != 1 else ''} cannot reach p < {c.alpha:g} with an exact Wilcoxon (minimum p = {floor:.4g})"
        if c.level == "images":
            line += f", so the test over {images_word(c.metric)} images decides"
        else:
            line += f"; save per-image predictions or train at least {min_seeds} seeds"
        reasons.append(line)
    if len(c.pairs) == 1 and not c.pairs[0].significant:
        pair = c.pairs[0]
        extra = ""
        if "mcnemar_pooled" in pair.tests and pair.test != "mcnemar":
            extra = f" (McNemar on the pooled seed-image pairs: p = {_num(pair.tests['mcnemar_pooled']['p'], '.3g')})"
        reasons.append(f"by {how}, p = {_num(pair.p, '.3g')}{extra}")
    return reasons


def render_markdown(c: Any) -> str:
    """The ranked table, the pairs, the omnibus test and the verdict, as Markdown."""
    direction = "higher" if c.higher_is_better else "lower"
    lines = [
        f"### {c.metric} ({direction} is better)",
        "",
        "| rank | variant | seeds | mean ± std | 95% CI over images | avg rank | significantly better than |",
        "|---:|---|---:|---|---|---:|---|",
    ]
    for r in c.rows:
        ci = f"[{_num(r.ci.low)}, {_num(r.ci.high)}]" if r.ci is not None else "–"
        name = f"**{r.name}**" if r.name == c.winner else r.name
        better = ", ".join(f"{b}*" for b in r.better_than) or "–"
        lines.append(
            f"| {r.rank} | {name} | {r.n_seeds} | {_num(r.mean)} ± {_num(r.std, '.2g')} | {ci} "
            f"| {_num(r.avg_rank, '.3g')} | {better} |"
        )
    if c.pairs:
        lines += [
            "",
            f"Pairs: * = significant at {c.alpha:g} after Holm's correction across {len(c.pairs)} pairs.",
            "",
        ]
        lines += _pair_table(c)
    if c.omnibus is not None:
        o = c.omnibus
        lines += [
            "",
            f"Friedman over {o.n_blocks} {o.level}: χ² = {_num(o.statistic, '.4g')}, p = {_num(o.pvalue, '.3g')}.",
        ]
    lines += ["", f"**Verdict:** {c.verdict}.", ""]
    return "\n".join(lines)


def _pair_table(c: Any) -> list[str]:
    lines = [
        "| A | B | A − B | test | p | p (Holm) | effect | P(A beats B) | Wilcoxon p | paired t p | |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for p in c.pairs:
        w = p.tests.get("wilcoxon", {}).get("p")
        t = p.tests.get("paired_t", {}).get("p")
        effect = f"{p.effect_name} {_num(p.effect_size, '.3g')}" if p.effect_name else "–"
        lines.append(
            f"| {p.a} | {p.b} | {_num(p.diff)} | {p.test} | {_num(p.p, '.3g')} | {_num(p.p_holm, '.3g')} "
            f"| {effect} | {_num(p.p_a_beats_b, '.2f')} | {_num(w, '.3g')} | {_num(t, '.3g')} "
            f"| {'*' if p.significant else ''} |"
        )
    return lines
