"""The tables of a study page, laid out from a Comparison and the study's records.

Every number comes from :class:`smallvision.evaluate.compare.Comparison` or from a file of the
study directory, formatted with ``compare_text.format_number`` as ``summary.md`` formats it, so
the page and the summary print the same digits.
"""

from __future__ import annotations

from typing import Any

from smallvision.evaluate.compare import Comparison
from smallvision.evaluate.compare_text import describe_test, images_word
from smallvision.evaluate.compare_text import format_number as num
from smallvision.evaluate.reference import reference_labels
from smallvision.report.study_data import StudyCell
from smallvision.report.tables import Cell, Table, format_value


def _kind(cells: list[StudyCell]) -> str:
    baseline = next((c.baseline for c in cells if c.baseline), None)
    return f"baseline: {baseline}" if baseline else "network"


def results_table(c: Comparison, groups: dict[str, list[StudyCell]], references: dict) -> Table:
    """Ranked variants: seeds, mean ± std over seeds, 95% interval over images, average rank,
    which others each is significantly better than; then the trivial predictors' scores."""
    name = c.metric.rpartition("/")[2]
    rows = []
    for r in c.rows:
        ci = f"[{num(r.ci.low)}, {num(r.ci.high)}]" if r.ci is not None else "–"
        better = ", ".join(r.better_than) or "–"
        cls = "best" if r.name == c.winner else ""
        rows.append([
            Cell(str(r.rank), cls=cls), Cell(r.name, cls=cls), Cell(_kind(groups.get(r.name, []))),
            Cell(str(r.n_seeds), cls="num"), Cell(f"{num(r.mean)} ± {num(r.std, '.2g')}", cls="num"),
            Cell(ci, cls="num"), Cell(num(r.avg_rank, ".3g"), cls="num"), Cell(better),
        ])  # fmt: skip
    for label, scores in references.items():
        if name in scores:
            empty = [Cell("")] * 3
            rows.append([Cell("·"), Cell(label), Cell("trivial predictor"), Cell("", cls="num"),
                         Cell(num(scores[name]), cls="num"), *empty])  # fmt: skip
    direction = "higher" if c.higher_is_better else "lower"
    images = images_word(c.metric)
    ci_note = f"over the {images} images, of the seed-averaged per-image scores" if c.n_images else "none"
    caption = (
        f"{c.metric} ({direction} is better): rank by mean; ± std over seeds; 95% bootstrap interval "
        f"{ci_note}; the · rows score the same {images} images with a trivial predictor"
    )
    columns = [
        "rank",
        "variant",
        "kind",
        "seeds",
        "mean ± std",
        "95% interval",
        "avg rank",
        "significantly better than",
    ]
    return Table(columns, rows, caption)


def references(cells: list[StudyCell], metric: str) -> dict[str, dict[str, float]]:
    """Chance, majority class or training mean of the metric's head, from the first run that has them."""
    head = metric.split("/")[1]
    for cell in cells:
        ref = cell.run.metrics.reference.get("test", {}).get(head) if cell.run and cell.run.metrics else None
        if ref:
            return reference_labels(ref)
    return {}


def significance_matrix(c: Comparison) -> Table | None:
    """Variants × variants: the Holm-adjusted p of the deciding test, * where significant."""
    if len(c.rows) < 2 or not c.pairs:
        return None
    names = [r.name for r in c.rows]
    pairs = {(p.a, p.b): p for p in c.pairs} | {(p.b, p.a): p for p in c.pairs}
    rows = []
    for rank, a in enumerate(names, start=1):
        cells = [Cell(f"{rank}. {a}")]
        for b in names:
            if a == b:
                cells.append(Cell("—", cls="num"))
                continue
            p = pairs[(a, b)]
            note = ("row better" if p.better == a else "column better") if p.significant else ""
            text = num(p.p_holm, ".3g") + (" *" if p.significant else "")
            cells.append(Cell(text, note=note, cls="num sig" if p.significant else "num"))
        rows.append(cells)
    test = describe_test(c.pairs[0].test, len(c.seeds), c.n_images, c.metric)
    caption = (
        f"Holm-adjusted p of {test} across the {len(c.pairs)} pairs (columns: the variants by rank); "
        f"* significant at {c.alpha:g}"
    )
    if c.omnibus is not None:
        gate = "passed" if c.omnibus.pvalue < c.alpha else "not passed: no pair counts as significant"
        caption += f", after the Friedman test over {c.omnibus.n_blocks} {c.omnibus.level} (p = {num(c.omnibus.pvalue, '.3g')}, {gate})"
    return Table(["", *[str(i) for i in range(1, len(names) + 1)]], rows, caption)


def pairs_table(c: Comparison) -> Table | None:
    """Every pair with every test run on it: the deciding one, its raw and Holm p, effect size,
    P(A beats B), Wilcoxon and t over seeds, pooled McNemar counts, the paired bootstrap interval."""
    if not c.pairs:
        return None
    rows = []
    for p in c.pairs:
        t = p.tests
        mc = t.get("mcnemar_pooled")
        boot = t.get("bootstrap_diff")
        rows.append([
            Cell(p.a), Cell(p.b), Cell(num(p.diff), cls="num"), Cell(p.test),
            Cell(num(p.p, ".3g"), cls="num"), Cell(num(p.p_holm, ".3g"), cls="num sig" if p.significant else "num"),
            Cell(f"{p.effect_name} {num(p.effect_size, '.3g')}" if p.effect_name else "–"),
            Cell(num(p.p_a_beats_b, ".2f"), cls="num"),
            Cell(num(t.get("wilcoxon", {}).get("p"), ".3g"), cls="num"),
            Cell(num(t.get("paired_t", {}).get("p"), ".3g"), cls="num"),
            Cell(f"{num(mc['p'], '.3g')} ({mc['a_only']} / {mc['b_only']})" if mc else "–", cls="num"),
            Cell(f"[{num(boot['low'])}, {num(boot['high'])}]" if boot else "–", cls="num"),
        ])  # fmt: skip
    columns = ["A", "B", "A − B", "deciding test", "p", "p (Holm)", "effect", "P(A beats B)",
               "Wilcoxon p", "paired t p", "McNemar pooled p (A only / B only)", "bootstrap 95% of A − B"]  # fmt: skip
    return Table(columns, rows, "every pair and every test run on it (A − B: mean over the shared seeds)")


def selection_table(sel: dict) -> Table:
    """The groups a ``best(...)`` chose among, best first, the chosen one highlighted."""
    means = sel.get("group_means") or {}
    higher = bool(sel.get("higher_is_better"))
    chosen = (sel.get("chosen") or {}).get("group")
    order = sorted(means.items(), key=lambda kv: (kv[1] is None, -(kv[1] or 0) if higher else (kv[1] or 0)))
    rows = []
    for group, mean in order:
        cls = "best" if group == chosen else ""
        rows.append(
            [Cell(group, cls=cls), Cell(num(mean), cls=f"num {cls}".strip()), Cell("chosen" if cls else "")]
        )
    caption = f"mean {sel.get('metric')} over each group's finished seeds ({'higher' if higher else 'lower'} is better)"
    return Table(["group", f"mean {sel.get('metric')}", ""], rows, caption)


def search_table(best: dict[str, Any]) -> Table:
    """A step's Optuna search record (best.json): metric, direction, trials, states, the best trial."""
    items: dict[str, Any] = {k: best.get(k) for k in ("metric", "direction", "trials") if k in best}
    states = best.get("states")
    if isinstance(states, dict):
        items["trial states"] = ", ".join(f"{k} {v}" for k, v in states.items())
    top = best.get("best")
    if isinstance(top, dict):
        items["best trial"] = top.get("number")
        items["best value"] = top.get("value")
        for key, value in (top.get("params") or {}).items():
            items[f"best {key}"] = value
    else:
        items["best trial"] = "none completed"
    rows = [[Cell(str(k)), Cell(format_value(v))] for k, v in items.items()]
    return Table(["", ""], rows, "search (search/<step>/best.json)")
