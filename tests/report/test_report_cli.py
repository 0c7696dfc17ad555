"""``smallvision report DIR`` and the warnings the command line prints beside the headline.

A run killed mid-write or a failed cell leaves missing, half-written or corrupt files: the report
renders what it can, names each bad file, and the command still exits 0; only a directory that is
no run directory at all is an error (exit 2).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smallvision.cli", *args], capture_output=True, text=True, timeout=180
    )


def test_report_command_prints_headline_and_one_class_warning(make_run):
    run = make_run(degenerate=True)
    out = cli("report", str(run))
    assert out.returncode == 0, out.stderr
    assert f"report: {run / 'report.html'}" in out.stdout
    assert "test: label/accuracy 0.2500" in out.stdout
    lines = out.stdout.splitlines()
    assert any(line.startswith("warning: label: one class gets most predictions") for line in lines)
    assert any("no better than" in line for line in lines if line.startswith("warning: label"))


def test_good_run_prints_no_warning(make_run):
    out = cli("report", str(make_run()))
    assert out.returncode == 0 and "warning" not in out.stdout


def test_report_command_names_metrics_that_disagree(make_run):
    import json

    run = make_run()
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["test"]["label"]["accuracy"] = 0.123
    (run / "metrics.json").write_text(json.dumps(metrics))
    out = cli("report", str(run))
    assert "warning: label: test metrics disagree with predictions.npz" in out.stdout


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("predictions.npz", "truncate"),
        ("predictions.npz", "delete"),
        ("metrics.json", "truncate"),
        ("history.csv", "garbage"),
        ("env.json", "delete"),
    ],
)
def test_damaged_file_is_named_and_the_rest_renders(make_run, name, damage):
    run = make_run()
    path = run / name
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":  # killed mid-write: the first half of the bytes
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"\x00\xff not a csv \x00")
    out = cli("report", str(run))
    assert out.returncode == 0, out.stderr
    assert name in out.stdout  # the command says which file
    html = (run / "report.html").read_text()
    assert name in html and "name: fake-run" in html  # the page names it and shows the rest
    if name != "predictions.npz":
        assert "Head <code>label</code>" in html and "<img" in html


def test_not_a_run_directory_is_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    out = cli("report", str(tmp_path))
    assert out.returncode == 2
    assert "is not a run directory" in out.stderr and out.stderr.strip().count("\n") == 0
    missing = cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not found" in missing.stderr


@pytest.mark.slow
def test_one_epoch_run_that_predicts_one_class_prints_a_warning(tmp_path):
    # lr 0.5 for one epoch on digits collapses the network onto one class (deterministic on CPU)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": "collapse",
                "seed": 0,
                "output_dir": str(tmp_path / "runs"),
                "data": {"source": "builtin:digits"},
                "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
                "train": {"epochs": 1, "progress": False, "optimizer": {"lr": 0.5}},
                "report": {"enabled": False},
            }
        )
    )
    out = cli("run", str(cfg))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    headline = next(i for i, line in enumerate(lines) if line.startswith("test: "))
    warnings = [line for line in lines[headline + 1 :] if line.startswith("warning: label: ")]
    assert any("one class gets most predictions" in w for w in warnings), out.stdout
