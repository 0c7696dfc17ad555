"""docs/results.md's generator on a tiny two-step domain study: every figure is the study's own."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import yaml

from smallvision.evaluate.compare import compare
from smallvision.study.compare_runs import study_variants, variant_result
from smallvision.study.results_doc import main, results_markdown
from smallvision.study.runner import run_study

STUDY = {
    "name": "shift",
    "seeds": [0, 1],
    "base": {
        "data": {
            "source": "multi:",
            "options": {"domains": {"A": "builtin:digits", "B": {"source": "builtin:digits", "shift": {"invert": True}}}},
            "split": {"method": "per_domain", "train": 0.6, "val": 0.2, "test": 0.2, "seed": 0},
        },
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 5, "batch_size": 32, "optimizer": {"lr": 0.01}, "progress": False, "threads": 1},
        "report": {"enabled": False},
    },
    "steps": [
        {"name": "source", "set": {"data.split.domains": {"train": "A", "val": "A"}},
         "variants": {"small": {}, "wide": {"model.params.hidden": 64}}},
        {"name": "tuned", "set": {"model.init": "@source.best(val/label/accuracy)",
                                  "model.params.hidden": "@source.best(val/label/accuracy).model.params.hidden",
                                  "data.split.domains": {"train": "B", "val": "B"}}},
    ],
    "claims": [
        {"claim": "tuning on B helps on B", "metric": "test:B/label/accuracy", "better": "tuned/tuned",
         "than": "source/small"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doc")
    (tmp / "shift.yaml").write_text(yaml.safe_dump(STUDY))
    return run_study(tmp / "shift.yaml", ["train.epochs=2", f"output_dir={tmp}"], progress=False)


@pytest.mark.slow
def test_the_page_states_the_command_budget_time_and_claims(study, tmp_path):
    d = study.dir
    text = results_markdown([d], "python -m smallvision.study.results_doc DIR")
    assert "**Reduced budgets** (shift)" in text and "`train.epochs=2`" in text
    saved = json.loads((d / "study.json").read_text())
    assert f"- Command: `smallvision study {saved['file']} train.epochs=2 output_dir=" in text
    timing = json.loads((d / "timings.json").read_text())
    assert len(timing) == 1 and f"- Wall time: {timing[0]['wall_seconds']:.0f} s" in text
    assert "- Cells: 6/6 completed" in text
    assert "**held** — tuning on B helps on B" in text or "**did not hold" in text
    # the before / after table: every step on the same held-out images of each domain
    assert (
        "### Every step side by side" in text
        and "| source/small | 2/2 |" in text
        and "| tuned/tuned | 2/2 |" in text
    )


@pytest.mark.slow
def test_the_tables_hold_the_studys_own_figures(study):
    d = study.dir
    text = results_markdown([d], "cmd")
    with (d / "results.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["step"] == "source" and r["variant"] == "wide"]
    acc = [float(r["test:B/label/accuracy"]) for r in rows]
    assert f"{statistics.mean(acc):.4f} ± {statistics.stdev(acc):.4f}" in text
    variants = [v for v in study_variants(d) if v.name.startswith("source/")]
    results, ref = [], None
    for v in variants:
        r, ref = variant_result(v, "test/label/accuracy", ref)
        r.name = v.name.removeprefix("source/")
        results.append(r)
    c = compare(results, "test/label/accuracy", True)
    top = c.rows[0]
    assert f"| 1 | {'**' + top.name + '**' if c.winner else top.name} | 2 |" in text
    assert f"[{top.ci.low:.4g}, {top.ci.high:.4g}]" in text and f"Verdict: {c.verdict}." in text


@pytest.mark.slow
def test_the_command_writes_the_file_and_refuses_a_run_directory(study, tmp_path, capsys):
    out = tmp_path / "results.md"
    assert main([str(study.dir), "--out", str(out)]) == 0
    assert out.read_text().startswith("# Results of the five studies")
    assert f"python -m smallvision.study.results_doc {study.dir} --out {out}" in out.read_text()
    run_dir = study.dir / "runs" / study.cells[0].key
    assert main([str(run_dir)]) == 2
    assert "not a finished study directory" in capsys.readouterr().err
