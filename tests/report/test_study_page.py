"""The study report of a tiny real study: every number on it recomputed here with SciPy and
statsmodels from results.csv and predictions.npz, the figures present, the page self-contained.

The study: step ``width`` sweeps model.params.hidden over two seeds; step ``final`` takes the best
width on val/loss and compares two networks with a logistic-regression baseline.
"""

from __future__ import annotations

import csv
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml
from page_tables import table, text
from scipy import stats as st
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

METRIC = "test/label/accuracy"
BASE = {
    "name": "tiny",
    "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
    "train": {"epochs": 1, "batch_size": 64, "threads": 1, "progress": False, "optimizer": {"lr": 0.01}},
}
STEPS = [
    {"name": "width", "axes": {"model.params.hidden": [16, 48]}},
    {
        "name": "final",
        "set": {"model.params.hidden": "@width.best(val/loss).model.params.hidden"},
        "variants": {
            "cnn": {},
            "fast": {"train.optimizer.lr": 0.03},
            "logreg": {"baseline": "logistic_regression"},
        },
    },
]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """The study run once with reports on; the run reports are skipped (slow, not tested here),
    so report.html in the study directory is the runner's own study report."""
    from smallvision.report import html
    from smallvision.study.runner import run_study

    tmp = tmp_path_factory.mktemp("study")
    raw = {"name": "tiny", "output_dir": str(tmp / "studies"), "base": BASE, "seeds": [1, 2], "steps": STEPS}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(html, "write_report", lambda run_dir: None)
        result = run_study(raw, progress=False)
    assert not result.failed
    return result.dir


@pytest.fixture(scope="module")
def page(study) -> str:
    return (study / "report.html").read_text()


def rows(study: Path) -> list[dict]:
    with (study / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def groups(study: Path, step: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows(study):
        if r["step"] == step:
            out.setdefault(r["label"].removesuffix(f" seed={r['seed']}"), []).append(r)
    return out


def correct(study: Path, cells: list[dict]) -> np.ndarray:
    """(n_seeds, n_images) test correctness from each cell's predictions.npz."""
    out = []
    for r in cells:
        with np.load(study / "runs" / r["cell_id"] / "predictions.npz") as z:
            out.append(z["test/label/prob"].argmax(1) == z["test/label/y_true"])
    return np.array(out)


def section(page: str, step: str) -> str:
    return re.search(rf'<section id="step-{step}">(.*?)</section>', page, re.S).group(1)


def by_variant(results, name: str) -> dict[str, tuple[str, str]]:
    (row,) = [r for r in results.rows if r[1][0] == name]
    return dict(zip(results.header, row, strict=True))


def g(x: float, spec: str = ".4g") -> str:
    return format(x, spec)


@pytest.mark.parametrize("step", ["width", "final"])
def test_results_table_equals_scipy_on_results_csv_and_predictions(study, page, step):
    results = table(section(page, step), f"{METRIC} (higher is better)")
    for name, cells in groups(study, step).items():
        row = by_variant(results, name)
        values = [float(r[METRIC]) for r in cells]
        assert row["mean ± std"][0] == f"{g(statistics.mean(values))} ± {g(statistics.stdev(values), '.2g')}"
        per_image = correct(study, cells).mean(axis=0)
        ci = st.bootstrap(
            (per_image,),
            np.mean,
            n_resamples=2000,
            method="BCa",
            rng=np.random.default_rng(0),
            vectorized=True,
        ).confidence_interval
        assert row["95% interval"][0] == f"[{g(ci.low)}, {g(ci.high)}]"
        assert row["seeds"][0] == "2"
    assert by_variant(results, "chance (1/K)")["mean ± std"][0] == "0.1"  # 1/K of the 10 digits
    kinds = dict(zip(results.column("variant"), results.column("kind"), strict=True))
    if step == "final":
        assert kinds["logreg"] == "baseline: logistic_regression" and kinds["cnn"] == "network"


def test_pairs_holm_friedman_and_ranks_equal_scipy_and_statsmodels(study, page):
    final = section(page, "final")
    groups_ = groups(study, "final")
    scores = {name: correct(study, cells) for name, cells in groups_.items()}
    pairs = table(final, "every pair and every test")
    raw = []
    for row in pairs.rows:
        a, b = row[0][0], row[1][0]
        ca, cb = scores[a].ravel(), scores[b].ravel()
        tab = [[np.sum(ca & cb), np.sum(ca & ~cb)], [np.sum(~ca & cb), np.sum(~ca & ~cb)]]
        expected = f"{g(mcnemar(tab, exact=True).pvalue, '.3g')} ({tab[0][1]} / {tab[1][0]})"
        assert row[pairs.header.index("McNemar pooled p (A only / B only)")][0] == expected
        # 2 seeds: the sign-flip test over images decides (seed-averaged per-image differences)
        d = scores[a].mean(0) - scores[b].mean(0)
        d = d[d != 0]
        p = st.permutation_test(
            (d,), lambda x, axis: np.sum(x, axis=axis), permutation_type="samples",
            n_resamples=9999, vectorized=True, rng=np.random.default_rng(0),
        ).pvalue  # fmt: skip
        shown = float(row[pairs.header.index("p")][0])
        assert row[pairs.header.index("deciding test")][0] == "sign_flip_images"
        if 2 ** len(d) <= 9999:  # every sign vector enumerated: the exact p, SciPy's own
            assert shown == float(g(min(p, 1.0), ".3g"))
        else:  # Monte Carlo with another random stream than SciPy's: equal within 4 standard errors
            assert abs(shown - min(p, 1.0)) <= 4 * np.sqrt(p * (1 - p) / 9999) + 1e-3
        raw.append(shown)
        w = st.wilcoxon([float(r[METRIC]) for r in groups_[a]], [float(r[METRIC]) for r in groups_[b]])
        assert row[pairs.header.index("Wilcoxon p")][0] == g(w.pvalue, ".3g")
    holm = multipletests(raw, method="holm")[1]
    shown_holm = [float(v) for v in pairs.column("p (Holm)")]
    assert shown_holm == pytest.approx(holm, rel=0.01, abs=1e-3)  # of the shown (rounded) raw p's
    blocks = np.stack([scores[n].mean(0) for n in scores], axis=1)  # (images, variants)
    informative = blocks[np.ptp(blocks, axis=1) > 0]
    friedman = st.friedmanchisquare(*informative.T).pvalue
    matrix = table(final, "Holm-adjusted p of")
    assert f"Friedman test over {len(blocks)} images (p = {g(friedman, '.3g')}" in matrix.caption
    ranks = st.rankdata(-blocks, axis=1).mean(axis=0)
    results = table(final, f"{METRIC} (higher is better)")
    for name, rank in zip(scores, ranks, strict=True):
        assert by_variant(results, name)["avg rank"][0] == g(rank, ".3g")
    # the matrix holds the same Holm p's, marked where significant
    for row in pairs.rows:
        a, b, p_holm = row[0][0], row[1][0], row[pairs.header.index("p (Holm)")][0]
        cell = next(r for r in matrix.rows if r[0][0].endswith(f". {a}"))
        j = results.column("variant").index(b) + 1
        assert cell[j][0].removesuffix(" *") == p_holm


@pytest.mark.parametrize("step", ["width", "final"])
def test_verdict_is_the_summary_and_names_a_winner_only_when_every_pair_supports_it(study, page, step):
    part = section(page, step)
    verdict = re.search(r"Verdict (.*?)\. ", text(part)).group(1)
    assert f"**Verdict:** {verdict}." in (study / "summary.md").read_text()  # the same as summary.md
    top = table(part, "Holm-adjusted p of").rows[0]
    beats_all = all(cell[1] == "row better" for cell in top[2:])
    name = top[0][0].split(". ", 1)[1]
    assert verdict.startswith(f"{name} is best on {METRIC}") == beats_all
    if not beats_all:
        assert " is best on " not in verdict


def test_selection_rule_and_chosen_cell_of_the_second_step(study, page):
    final = text(section(page, "final"))
    means = {
        name: statistics.mean(float(r["val/loss"]) for r in cells)
        for name, cells in groups(study, "width").items()
    }
    best = min(means, key=means.get)
    assert "Selection: @width.best(val/loss) (6 cells)" in final
    assert f"chosen: {best} (mean val/loss {g(means[best])} over 2 seeds)" in final
    assert "best mean over seeds of the metric on validation" in final
    chosen = table(section(page, "final"), "mean val/loss over each group")
    assert chosen.row(best)[""][0] == "chosen"


def test_figures_sweep_cd_and_disagreement_pictures(study, page):
    width, final = section(page, "width"), section(page, "final")
    assert f'alt="{METRIC} against model.params.hidden"' in width
    assert 'alt="critical-difference diagram"' in final and 'alt="critical-difference diagram"' not in width
    names = table(final, f"{METRIC} (higher is better)").column("variant")[:2]
    a, b = (correct(study, groups(study, "final")[n]) for n in names)
    words = text(final)
    pooled_a, pooled_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (
        f"{names[0]} right, {names[1]} wrong: {pooled_a} test image–seed pairs; the reverse: {pooled_b}"
        in words
    )
    more = int((a.mean(0) > b.mean(0)).sum())
    assert f"test images {names[0]} gets right more often than {names[1]}: {more}" in words
    assert f'alt="{names[0]} right, {names[1]} wrong"' in final
    for r in rows(study):  # networks and the baseline store their test images, as predicted
        from smallvision.rundir import load_run

        run = load_run(study / "runs" / r["cell_id"])
        assert (
            run.test_images.aligned(run.predictions.index["test"])
            and run.test_images.images.dtype == np.uint8
        )


def test_page_is_self_contained_and_links_each_cell_report(study, page):
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:|file:|//)', page)
    r = rows(study)[0]
    (study / "runs" / r["cell_id"] / "report.html").write_text("<html></html>")
    from smallvision.report.study_page import render_study_report

    again = render_study_report(study)
    assert f'href="runs/{r["cell_id"]}/report.html"' in again
    assert all(f"<code>{x['cell_id']}</code>" in again for x in rows(study))


def test_study_resume_writes_the_report_again(study):
    from smallvision.study.runner import resume_study

    (study / "report.html").unlink()
    resume_study(study, progress=False)
    assert (study / "report.html").is_file()


def _copy(study: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / study.name
    shutil.copytree(study, target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


def test_damaged_study_renders_and_names_each_bad_file(study, tmp_path):
    from smallvision.report.study_page import build_study_report

    d = _copy(study, tmp_path)
    table_ = rows(d)
    (d / "results.csv").unlink()
    truncated, garbled, failed = (r["cell_id"] for r in (table_[0], table_[1], table_[-1]))  # -1: logreg
    preds = d / "runs" / truncated / "predictions.npz"
    preds.write_bytes(preds.read_bytes()[:200])
    (d / "runs" / garbled / "metrics.json").write_text('{"status": "compl')
    (d / "runs" / failed / "metrics.json").write_text(
        '{"status": "failed", "error": "loss is NaN at epoch 1"}'
    )
    (d / "runs" / failed / "error.json").write_text('{"error": "loss is NaN at epoch 1"}')
    built = build_study_report(d)
    assert "results.csv not found" in built.problems
    assert any(p.startswith(f"runs/{truncated}/predictions.npz could not be read") for p in built.problems)
    assert any(p.startswith(f"runs/{garbled}/metrics.json is not valid JSON") for p in built.problems)
    words = text(built.path.read_text())
    assert "Failed cells (1)" in words and "loss is NaN at epoch 1" in words
    assert "Left out of the comparison" in words and "Verdict" in words


def test_without_resolved_yaml_cells_come_from_results_csv_then_from_runs(study, tmp_path):
    from smallvision.report.study_page import build_study_report

    d = _copy(study, tmp_path)
    (d / "study.resolved.yaml").write_text("steps: [unclosed")
    built = build_study_report(d)
    assert any(p.startswith("study.resolved.yaml is not valid YAML") for p in built.problems)
    page = built.path.read_text()
    assert f'alt="{METRIC} against model.params.hidden"' in section(page, "width")  # typed from the csv
    (d / "results.csv").unlink()
    built = build_study_report(d)
    assert {"results.csv not found"} <= set(built.problems)
    words = text(built.path.read_text())
    assert "Step (unknown step)" in words and all(r["cell_id"] in words for r in rows(study))


def test_report_command_tells_a_study_and_prints_its_verdicts(study, tmp_path):
    from typer.testing import CliRunner

    from smallvision.cli import app

    d = _copy(study, tmp_path)
    (d / "selections.json").write_text("[")
    out = CliRunner().invoke(app, ["report", str(d)])
    assert out.exit_code == 0, out.output
    assert f"study report: {d / 'report.html'}" in out.output
    assert f"  width {METRIC}: " in out.output and f"  final {METRIC}: " in out.output
    assert "warning: selections.json is not valid JSON" in out.output
    resolved = yaml.safe_load((d / "study.resolved.yaml").read_text())
    assert [s["name"] for s in resolved["steps"]] == ["width", "final"]
