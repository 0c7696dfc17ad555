"""metrics.json agrees with the metrics recomputed from predictions.npz, for tiny real runs."""

from __future__ import annotations

import numpy as np
import pytest

from smallvision.config import build_config
from smallvision.evaluate.metrics import compute_metrics, scalar_metrics
from smallvision.registry import HEAD_KINDS
from smallvision.report.heads import analyse_head
from smallvision.rundir import read_run
from smallvision.study.run import run_config


def _recomputed(run_dir, split: str) -> dict:
    """The split's metrics from the raw npz keys, ``<split>/<head>/<kind's npz_field>``."""
    metrics = read_run(run_dir).metrics
    kinds = {h: v.kind for h, v in metrics.heads.items()}
    with np.load(run_dir / "predictions.npz") as z:
        y_true = {h: z[f"{split}/{h}/y_true"] for h in kinds}
        outputs = {h: z[f"{split}/{h}/{HEAD_KINDS.get(k).npz_field}"] for h, k in kinds.items()}
    return compute_metrics(kinds, y_true, outputs, metrics.data.normalization)


@pytest.mark.parametrize("task", ["classification", "reconstruction"])
def test_metrics_json_equals_metrics_from_predictions(tiny_config, task):
    if task == "reconstruction":
        tiny_config.update(
            model={"name": "autoencoder_dense", "params": {"hidden": [32], "bottleneck": 8}},
            heads={"image": {"kind": "reconstruction"}},
        )
        tiny_config["train"]["early_stopping"] = {"monitor": "val/image/pixel_accuracy"}
    tiny_config["train"]["epochs"] = 2
    run_dir = run_config(build_config(tiny_config)).dir
    run = read_run(run_dir)
    metrics = run.metrics
    for split in ("val", "test"):
        fresh = _recomputed(run_dir, split)
        assert scalar_metrics(fresh) == pytest.approx(
            scalar_metrics(metrics.splits[split]), rel=1e-6, abs=1e-9
        )
    for head in metrics.heads:
        report = analyse_head(run, head)
        assert report.checks["test"] and all(c.ok for c in report.checks["test"].values())
        assert not [f for f in report.findings if "disagree" in f.title]
    if task == "reconstruction":
        # the [0, 1] scale: a decoder 2 epochs in gets a fair share of pixels within 0.1
        assert 0.05 < metrics.test["image"]["pixel_accuracy"] <= 1.0
    else:
        assert "balanced_accuracy" in metrics.test["label"]
