"""Bad input around the run directory, through the CLI: one line, exit code 2, nothing lost."""

import json
import sys
from types import SimpleNamespace

import pytest
import yaml

from smallvision import cli as cli_module
from smallvision.rundir import load_run


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(config_path)`` -> (returncode, stderr) of ``smallvision run``, in this process (fast)."""

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["smallvision", "run", *args])
        with pytest.raises(SystemExit) as done:
            cli_module.main()
        return SimpleNamespace(returncode=done.value.code or 0, stderr=capsys.readouterr().err)

    return run


def _config(tmp_path, **changes):
    cfg = {
        "name": "bad",
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 1, "progress": False},
        "report": {"enabled": False},
    }
    cfg |= changes
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line(out):
    return out.returncode == 2 and out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: ")


def test_output_dir_that_is_a_file_is_refused_and_the_file_kept(tmp_path, cli):
    existing = tmp_path / "results.txt"
    existing.write_text("earlier results\n")
    out = cli(str(_config(tmp_path, output_dir=str(existing))))
    assert _one_line(out), out.stderr
    assert f"output_dir {str(existing)!r} is an existing file" in out.stderr
    assert existing.read_text() == "earlier results\n"


def test_unknown_monitor_is_refused_before_any_directory_exists(tmp_path, cli):
    train = {"epochs": 1, "progress": False, "early_stopping": {"monitor": "val/nonsense"}}
    for extra in ({}, {"seeds": [1, 2]}):  # a single run and a seed group
        out = cli(str(_config(tmp_path, train=train, **extra)))
        assert _one_line(out), out.stderr
        assert "train.early_stopping.monitor 'val/nonsense'" in out.stderr
        assert "val/label/accuracy" in out.stderr  # the columns it could have named
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_monitor_without_a_direction_is_refused_before_any_directory_exists(tmp_path, cli):
    train = {"epochs": 1, "progress": False, "early_stopping": {"monitor": "train/nonsense"}}
    out = cli(str(_config(tmp_path, train=train)))
    assert _one_line(out), out.stderr
    assert "'nonsense' is not a known metric" in out.stderr and "train.early_stopping.mode" in out.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_run_rejected_during_training_records_why(tmp_path, cli):
    # a known metric (its direction is in the table) but no train column of that name: only the
    # trainer can tell, after the directory exists
    train = {"epochs": 1, "progress": False, "early_stopping": {"monitor": "train/nope/loss"}}
    out = cli(str(_config(tmp_path, train=train)))
    assert _one_line(out), out.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = load_run(run_dir).metrics
    assert record.status == "failed" and "train/nope/loss" in record.error
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"
