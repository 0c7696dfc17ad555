"""The command line's warnings are the report's own findings, found without drawing anything.

``report_findings`` (what ``smallvision run``, ``report`` and every study cell print) must give
exactly the findings of the built page, for a good run and for runs whose heads collapsed, and it
must not lay out a single figure: a study's per-cell cost would otherwise grow with every head.
"""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

import smallvision
from smallvision.report import html


def _findings(items) -> list[tuple[str, str, str]]:
    return [(f.level, f.title, f.text) for f in items]


def _fresh_findings(run_dir, monkeypatch) -> list[tuple[str, str, str]]:
    """report_findings with no page built in this process, failing if any figure is made."""
    html._FINDINGS.clear()

    def no_figures(*args, **kwargs):
        raise AssertionError("report_findings drew a figure")

    with monkeypatch.context() as m:
        m.setattr(Figure, "__init__", no_figures)
        return _findings(html.report_findings(run_dir))


@pytest.mark.parametrize("degenerate", [False, True])
def test_findings_equal_the_built_pages_without_drawing(make_run, monkeypatch, degenerate):
    run = make_run(degenerate=degenerate)
    fresh = _fresh_findings(run, monkeypatch)
    built = _findings(html.build_report(run).findings)
    assert fresh == built
    warned = [t for level, t, _ in fresh if level == "warning"]
    assert bool(warned) == degenerate  # the collapsed classifier is flagged, the good one is not


def test_findings_of_a_real_collapsed_run_with_a_data_card(tmp_path, monkeypatch):
    cfg = {
        "name": "collapse",
        "data": {"source": "builtin:digits"},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 1, "threads": 1, "progress": False, "optimizer": {"lr": 0.5}},
        "report": {"enabled": False},
    }
    result = smallvision.run(cfg, seed=0, output_dir=str(tmp_path))
    assert (result.dir / "data_card.npz").is_file()
    fresh = _fresh_findings(result.dir, monkeypatch)
    assert fresh == _findings(html.build_report(result.dir).findings)
    titles = [t for level, t, _ in fresh if level == "warning"]
    assert any(t.startswith("label: one class gets most predictions") for t in titles), titles
    assert any("no better than" in t for t in titles), titles
