"""The LR range test: the sweep, the smoothing, the suggestion, and the command's files."""

import json
import sys

import numpy as np
import pytest
import yaml

from smallvision.train.lrfind import lr_schedule, smooth, suggest


def test_schedule_is_exponential_between_the_ends():
    lrs = lr_schedule(1e-6, 1.0, 7)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    assert np.allclose(lrs[1:] / lrs[:-1], 10.0)


def test_smoothing_is_a_bias_corrected_moving_average():
    out = smooth([4.0, 2.0], beta=0.5)
    assert out[0] == pytest.approx(4.0)  # bias correction: the first value is itself
    assert out[1] == pytest.approx((0.5 * 0.5 * 4 + 0.5 * 2) / (1 - 0.25))


def test_suggestions_steepest_descent_and_minimum_over_ten():
    lrs = list(lr_schedule(1e-5, 1e1, 7))  # one decade apart: the slope is a plain difference
    curve = [2.0, 1.95, 1.9, 1.0, 0.8, 0.7, 3.0]  # steepest fall between 1e-3 and 1e-2, minimum at 1e0
    steepest, min_over_10 = suggest(lrs, curve)
    # slopes per decade up to the minimum (central differences inside, one-sided at the ends):
    # -0.05, -0.05, -0.475, -0.55, -0.15, -0.1 -> the steepest is at index 3 (lr 1e-2)
    assert steepest == pytest.approx(lrs[3])
    assert min_over_10 == pytest.approx(1e-1)
    assert suggest(lrs[:3], [1.0, 2.0, 3.0]) == (None, pytest.approx(1e-6))  # minimum first: no slope


def test_lr_find_command_writes_plot_table_and_suggestion(tiny_config, tmp_path, monkeypatch, capsys):
    from smallvision import cli

    tiny_config["data"]["augment"] = {"rotate": {"degrees": 5}}
    tiny_config["train"]["mix"] = {"name": "mixup"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    monkeypatch.setattr(
        sys, "argv", ["smallvision", "lr-find", str(path), "train.batch_size=32", "--steps", "40"]
    )
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("tiny-lrfind-")
    assert f"lr-find directory: {run_dir}" in out and "suggested lr:" in out
    record = json.loads((run_dir / "lr_find.json").read_text())
    assert 1e-7 <= record["suggestion"] <= 10 and 5 <= record["steps_run"] <= 40
    assert f"{record['suggestion']:.2e}" in out
    png = (run_dir / "lr_find.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (run_dir / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "lr,loss,smoothed" and len(rows) == record["steps_run"] + 1


def test_lr_find_stops_when_the_loss_diverges(tiny_config):
    from smallvision.study.lrfind import lr_find

    tiny_config["train"]["optimizer"] = {"name": "sgd", "lr": 0.1}
    _, result = lr_find(tiny_config, steps=60, start_lr=1e-4, end_lr=1e4)
    assert len(result.lrs) < 60  # SGD at lr 1e4 blows up long before the end of the sweep
    assert result.lrs[-1] < 1e4


def test_bad_sweep_is_a_user_error(tiny_config):
    from smallvision.errors import UserError
    from smallvision.study.lrfind import lr_find

    with pytest.raises(UserError, match="start_lr < end_lr"):
        lr_find(tiny_config, start_lr=1.0, end_lr=0.1)
