"""The run report end to end: fake run directories in, one self-contained HTML file out."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from smallvision.errors import UserError
from smallvision.report import render_report, write_report

WARNING_BOX = 'class="box warning"'


def _images(html: str) -> list[bytes]:
    return [
        base64.b64decode(b) for b in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    ]


def _test_accuracy(run: Path) -> float:
    with np.load(run / "predictions.npz") as npz:
        return float((npz["test/label/prob"].argmax(axis=1) == npz["test/label/y_true"]).mean())


def test_report_is_written_self_contained(good):
    run, html = good
    assert (run / "report.html").is_file()
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html
    pngs = _images(html)
    assert len(pngs) >= 6  # curves, confusion, mistakes, distribution, per-class, scatter, residuals
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert not list(run.glob(".report-*"))  # the temporary file was moved into place
    # readable like any other file the run writes (a bare mkstemp would make it owner-only)
    assert (run / "report.html").stat().st_mode & 0o777 == (run / "config.yaml").stat().st_mode & 0o777


def test_report_shows_recomputed_accuracy_and_passes_checks(good):
    run, html = good
    assert f"recomputed {_test_accuracy(run):.4f} ✓" in html
    assert WARNING_BOX not in html
    assert "All checks passed" in html


def test_report_shows_config_env_and_history(good):
    _, html = good
    assert "name: fake-run" in html
    assert "9.5 s" in html  # train time
    assert "abc123" in html and "package torch" in html
    assert 'class="best"' in html  # the best epoch's history row is highlighted
    for head in ("label", "value"):
        assert f"Head <code>{head}</code>" in html


def test_degenerate_classifier_gets_a_warning_box(make_run):
    html = render_report(make_run(degenerate=True))
    assert WARNING_BOX in html
    assert "one class gets most predictions" in html
    assert "macro-F1 far below accuracy" in html


def test_metrics_that_disagree_with_predictions_are_flagged(make_run):
    run = make_run()
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["test"]["label"]["accuracy"] = 0.999
    (run / "metrics.json").write_text(json.dumps(metrics))
    html = render_report(run)
    assert "label: test metrics disagree with predictions.npz" in html
    assert "✗ disagrees" in html and 'class="num bad"' in html


def test_best_epoch_history_that_disagrees_with_val_predictions_is_flagged(make_run):
    run = make_run()
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["best_epoch"] = 2  # history row 2 holds other figures than the saved val predictions
    (run / "metrics.json").write_text(json.dumps(metrics))
    html = render_report(run)
    assert "best epoch&#39;s validation figures differ" in html


def test_failed_run_without_predictions_renders(tmp_path):
    run = tmp_path / "failed"
    run.mkdir()
    (run / "config.yaml").write_text("name: broken\n")
    (run / "metrics.json").write_text(
        json.dumps({"status": "failed", "error": "RuntimeError: out of <memory>"})
    )
    path = write_report(run)
    html = path.read_text()
    assert "This run failed." in html
    assert "RuntimeError: out of &lt;memory&gt;" in html  # escaped, not markup
    assert "predictions.npz not found" in html and "history.csv not found" in html
    assert "<h1>broken</h1>" in html


def test_empty_and_corrupt_run_directory_renders(tmp_path):
    (tmp_path / "metrics.json").write_text("{not json")
    (tmp_path / "predictions.npz").write_bytes(b"garbage")
    html = render_report(tmp_path)
    assert "No result recorded" in html
    assert "metrics.json is not valid JSON" in html and "predictions.npz could not be read" in html


def test_missing_run_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        render_report(tmp_path / "nope")


def test_config_text_is_escaped(make_run):
    run = make_run()
    (run / "config.yaml").write_text("name: '<script>alert(1)</script>'\n")
    html = render_report(run)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_reconstruction_head_and_heads_inferred_without_metrics(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((12, 1, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "predictions.npz", **{"test/ae/y_true": images, "test/ae/y_pred": images * 0.9})
    html = render_report(tmp_path)
    assert 'Head <code>ae</code> <span class="muted">(reconstruction)</span>' in html
    assert "test originals and reconstructions" in html
    assert "ae: worst mistakes" in html  # the worst reconstructions, from the predictions alone
    assert len(_images(html)) == 3


def test_rewriting_replaces_the_report(make_run):
    run = make_run()
    (run / "report.html").write_text("old")
    write_report(run)
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_unusable_predictions_are_a_warning_not_a_crash(tmp_path):
    arrays = {"test/label/y_true": np.array([0, 1, 7]), "test/label/prob": np.eye(3)}
    np.savez(tmp_path / "predictions.npz", **arrays)
    html = render_report(tmp_path)
    assert "label: test predictions unusable" in html and "expected 0..2" in html
