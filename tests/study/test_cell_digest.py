"""Every study cell prints its test headline and its report's warnings as it finishes.

A cell that collapsed onto one class must say so in the study's log, next to its headline, while
a cell that learned prints its headline and no warning.
"""

from __future__ import annotations

import json

import numpy as np
import yaml
from typer.testing import CliRunner

from smallvision.cli import app

# lr 0.5 for one epoch on digits collapses cnn_small onto one class (one thread: deterministic on CPU)
BASE = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "builtin:digits"},
    "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
    "train": {"epochs": 1, "threads": 1, "progress": False, "optimizer": {"lr": 0.5}},
    "report": {"enabled": False},
}


def test_each_cell_prints_headline_and_warnings_as_it_finishes(tmp_path):
    study = {
        "name": "digest",
        "output_dir": str(tmp_path / "studies"),
        "base": BASE,
        "variants": {"collapse": {}, "fine": {"train.optimizer.lr": 0.01, "train.epochs": 3}},
        "seeds": [0],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study))
    out = CliRunner().invoke(app, ["study", str(path)])
    assert out.exit_code == 0, out.output
    (study_dir,) = (tmp_path / "studies").iterdir()
    lines = out.output.splitlines()
    for run_dir in sorted((study_dir / "runs").iterdir()):
        key = run_dir.name
        metrics = json.loads((run_dir / "metrics.json").read_text())
        acc = metrics["splits"]["test"]["label"]["accuracy"]
        mine = [line for line in lines if line.startswith(f"[w1] cell {key} ")]
        # done, then the headline with the figure metrics.json holds, then the warnings
        assert mine[0] == f"[w1] cell {key} done"
        assert mine[1].startswith(f"[w1] cell {key} test: label/accuracy {acc:.4f}  label/macro_f1 ")
        warnings = [line.split(" warning: ", 1)[1] for line in mine[2:]]
        assert len(mine) == 2 + len(warnings)
        pred = np.load(run_dir / "predictions.npz")["test/label/prob"].argmax(axis=1)
        top_share = np.bincount(pred).max() / len(pred)
        if yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["optimizer"]["lr"] == 0.5:
            assert top_share > 0.9  # it did collapse: the predictions say so
            assert any(w.startswith("label: one class gets most predictions") for w in warnings), mine
            assert any("no better than" in w for w in warnings), mine
        else:
            assert acc > 0.5 and top_share < 0.5 and warnings == [], mine
