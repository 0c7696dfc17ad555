"""Study 000's recipe, a few epochs on builtin:shapes-multitask: three heads, each better than chance."""

import csv

import numpy as np
import pytest

import smallvision
from smallvision.config import load_config

EXAMPLE = "examples/study000_multitask.yaml"


def test_the_example_file_holds_study_000s_recipe():
    cfg = load_config(EXAMPLE)
    assert cfg.data.source == "builtin:shapes-multitask" and cfg.model.name == "dualstream"
    assert [cfg.heads[h].weight for h in "ABC"] == [1.0, 2.5, 10.0]
    assert cfg.heads["A"].label_smoothing == cfg.heads["B"].label_smoothing == 0.1
    assert (cfg.train.mix.name, cfg.train.mix.alpha) == ("mixup", 0.2)
    assert (cfg.train.schedule.name, cfg.train.schedule.alpha, cfg.train.optimizer.lr) == (
        "cosine",
        0.1,
        1e-3,
    )
    assert cfg.train.early_stopping.patience == 15 and cfg.seeds == [42, 43, 44]
    assert cfg.data.split.stratify == "B"


def test_study_000_recipe_improves_every_head_on_chance(tmp_path):
    result = smallvision.run(
        EXAMPLE,
        **{
            "seeds": None,  # one seed here; tests/study/test_ensemble.py covers the seed group
            "output_dir": str(tmp_path / "runs"),
            "report.enabled": False,
            "train.progress": False,
            "data.options.n": 1200,
            "train.epochs": 4,
            "train.batch_size": 32,
            "train.optimizer.lr": 0.003,
            "model.params": {"widths": [16, 16, 32, 32], "strides": [2, 1, 2, 1], "freq_widths": [16, 32],
                             "fusion_width": 128},
        },
    )  # fmt: skip
    test = result.metrics.test
    with np.load(result.dir / "predictions.npz") as p:
        majority = {h: np.bincount(p[f"test/{h}/y_true"]).max() / len(p[f"test/{h}/y_true"]) for h in "AB"}
        c_true = p["test/C/y_true"]
    # regression chance: always predicting the mean of the targets (optimistic: the test set's own mean)
    constant_mae = float(np.abs(c_true - c_true.mean()).mean())
    assert test["A"]["accuracy"] > majority["A"] + 0.1, test["A"]["accuracy"]
    assert test["B"]["accuracy"] > majority["B"] + 0.1, test["B"]["accuracy"]
    assert test["C"]["mae"] < 0.9 * constant_mae and test["C"]["r2"] > 0.1, test["C"]
    with (result.dir / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    for head, weight in (("A", 1.0), ("B", 2.5), ("C", 10.0)):
        r = rows[-1]
        assert float(r[f"train/{head}/weighted_loss"]) == pytest.approx(
            weight * float(r[f"train/{head}/loss"])
        )
    assert float(rows[-1]["lr"]) == pytest.approx(0.003 * 0.1)  # cosine decayed to its floor
