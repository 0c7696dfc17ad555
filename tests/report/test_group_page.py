"""The seed-group page of a tiny real group: members and ensemble recomputed with scikit-learn from
predictions.npz, the gain over the best and mean member, every seed's curves, damaged files named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from page_tables import table, text
from sklearn.metrics import accuracy_score, f1_score

SEEDS = [1, 2]


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Path:
    """A group trained with reports on (the members' run reports skipped: slow, tested elsewhere),
    so its report.html is the one the group run itself wrote."""
    from smallvision.report import html
    from smallvision.study.group import run_group
    from smallvision.study.run import resolve_config

    tmp = tmp_path_factory.mktemp("group")
    cfg = resolve_config({
        "name": "grp", "seeds": SEEDS, "output_dir": str(tmp / "runs"),
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 2, "batch_size": 64, "threads": 1, "progress": False, "optimizer": {"lr": 0.01}},
    })  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(html, "write_report", lambda run_dir: None)
        return run_group(cfg).dir


def _test(d: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(d / "predictions.npz") as z:
        return z["test/label/y_true"], z["test/label/prob"]


def test_members_and_ensemble_equal_scikit_learn_on_their_predictions(group):
    page = (group / "report.html").read_text()
    members = table(page, "test metrics of each member")
    assert [r[0][0] for r in members.rows] == [f"seed-{s}" for s in SEEDS] + ["ensemble"]
    probs = []
    for row in members.rows:
        y, prob = _test(group / row[0][0])
        probs.append(prob)
        cells = dict(zip(members.header, row, strict=True))
        assert cells["label/accuracy"][0] == f"{accuracy_score(y, prob.argmax(1)):.4f}"
        assert cells["label/macro_f1"][0] == f"{f1_score(y, prob.argmax(1), average='macro'):.4f}"
        low, high = (float(x) for x in cells["label/accuracy"][1].strip("[]").split(", "))
        assert low <= float(cells["label/accuracy"][0]) <= high
    ensemble = np.mean(probs[:-1], axis=0)  # soft voting over the members
    np.testing.assert_allclose(ensemble, probs[-1], atol=1e-6)
    y = _test(group / "seed-1")[0]
    accs = [accuracy_score(y, p.argmax(1)) for p in probs[:-1]]
    acc = accuracy_score(y, ensemble.argmax(1))
    gain = table(page, "ensemble/metrics.json: gain").row("label/accuracy")
    expected = [acc, max(accs), np.mean(accs), acc - max(accs), acc - np.mean(accs)]
    assert [
        gain[k][0] for k in ("ensemble", "best member", "mean member", "gain over best", "gain over mean")
    ] == [f"{v:.4f}" for v in expected]


def test_learning_curves_of_every_seed_and_no_external_resource(group):
    page = (group / "report.html").read_text()
    assert 'alt="learning curves of every seed"' in page
    assert "Missing or unreadable files" not in page
    assert 'src="http' not in page and 'href="http' not in page


def test_damaged_group_renders_and_names_each_bad_file(group, tmp_path):
    from smallvision.report.group_page import build_group_report

    d = tmp_path / "grp"
    shutil.copytree(group, d, ignore=shutil.ignore_patterns("checkpoints"))
    (d / "seed-2" / "history.csv").unlink()
    (d / "ensemble" / "metrics.json").write_text('{"status": ')
    built = build_group_report(d)
    assert "seed-2/history.csv not found" in built.problems
    assert any(p.startswith("ensemble/metrics.json is not valid JSON") for p in built.problems)
    words = text(built.path.read_text())
    assert "No ensemble record" in words and "learning curves of every seed" in words  # seed-1's curve


def test_report_command_tells_a_group_from_its_members(group, tmp_path):
    from typer.testing import CliRunner

    from smallvision.cli import app

    d = tmp_path / "grp"
    shutil.copytree(group, d, ignore=shutil.ignore_patterns("checkpoints"))
    (d / "report.html").unlink()
    out = CliRunner().invoke(app, ["report", str(d)])
    assert out.exit_code == 0 and f"group report: {d / 'report.html'}" in out.output
    assert (d / "report.html").is_file() and not (d / "seed-1" / "report.html").exists()
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["kind"] == "group" and metrics["status"] == "completed"
