"""Study 001 as study files on a tiny budget: the autoencoder sweeps are axes, and the frozen encoder's
downstream step crosses heads with label fractions on one fixed test set."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from smallvision.rundir import load_run
from smallvision.study.runner import run_study

pytestmark = pytest.mark.slow
BASE = {
    "data": {"source": "builtin:digits", "split": {"train": 0.8, "val": 0.1, "test": 0.1}},
    "model": {"name": "autoencoder_dense", "params": {"hidden": [32]}},
    "heads": {"image": {"kind": "reconstruction"}},
    "train": {"epochs": 1, "batch_size": 64, "threads": 1, "progress": False},
    "report": {"enabled": False},
}


def run_file(tmp_path, doc: dict) -> dict[str, list[dict]]:
    doc = {"output_dir": str(tmp_path / "studies"), "base": BASE, "seeds": [0], **doc}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    result = run_study(tmp_path / "s.yaml", progress=False)
    assert not result.failed and not result.unfinished
    rows: dict[str, list[dict]] = {}
    with (result.dir / "results.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            row["run"] = load_run(result.dir / "runs" / row["cell_id"])
            rows.setdefault(row["step"], []).append(row)
    return rows


def test_bottleneck_split_masking_and_denoising_sweeps_run_from_one_file(tmp_path):
    rows = run_file(
        tmp_path,
        {
            "name": "ae",
            "steps": [
                {
                    "name": "bottleneck",
                    "axes": {"model.params.bottleneck": [16, 8]},
                    "zip": {"data.split.train": [0.8, 0.7], "data.split.val": [0.1, 0.2]},
                    "select": "val/image/mse",
                },
                {
                    "name": "corruption",
                    "set": {"model.params.bottleneck": "@bottleneck.best.model.params.bottleneck"},
                    "variants": {
                        "pixels": {"data.augment": {"mask_pixels": {"ratio": 0.6}}},
                        "patches": {"data.augment": {"mask_patches": {"ratio": 0.4, "patch": 2}}},
                        "noise": {"data.augment": {"noise": {"std": 0.1}}},
                    },
                    "axes": {"heads.image.masked_only": [False, True]},
                },
            ],
        },
    )
    sweep = rows["bottleneck"]
    assert len(sweep) == 4 and len(rows["corruption"]) == 6
    shares = {
        (r["run"].config.model.params["bottleneck"], round(r["run"].metrics.data.sizes["val"] / 1797, 1))
        for r in sweep
    }
    assert shares == {(16, 0.1), (16, 0.2), (8, 0.1), (8, 0.2)}  # 80/10/10 and 70/20/10 per bottleneck
    best = min(sweep, key=lambda r: float(r["val/image/mse"]))["run"].config.model.params["bottleneck"]
    for row in rows["corruption"]:
        run = row["run"]
        assert run.config.model.params["bottleneck"] == best
        assert {"mse", "mae", "psnr", "ssim", "pixel_accuracy"} <= set(run.metrics.test["image"])
        corrupted = run.predictions.head("test", "image")["corrupted"]
        assert corrupted.shape == run.predictions.head("test", "image")["y_true"].shape
    by_variant: dict[str, list] = {}
    for row in rows["corruption"]:
        by_variant.setdefault(row["variant"], []).append(
            row["run"].predictions.head("test", "image")["corrupted"]
        )
    for name, (a, b) in by_variant.items():  # masked_only changes the loss, never the inputs scored
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_frozen_encoder_heads_by_label_fraction_share_one_test_set_and_one_feature_cache(tmp_path):
    rows = run_file(
        tmp_path,
        {
            "name": "downstream",
            "steps": [
                {"name": "ae", "set": {"model.params.bottleneck": 16}},
                {
                    "name": "probe",
                    "set": {
                        "model.init": "@ae",
                        "heads": None,  # the base's reconstruction head gives way to the data's label
                        "train.early_stopping.monitor": "val/label/accuracy",
                    },
                    "variants": {
                        "mlp3": {"features": {"hidden": [32, 16, 8]}},
                        "mlp5": {"features": {"hidden": [32, 16, 8, 8, 8]}},
                        "logreg": {"features": {"head": "logistic_regression"}},
                    },
                    "axes": {"data.split.fraction": [0.1, 1.0]},
                },
            ],
        },
    )
    probe = rows["probe"]
    assert len(probe) == 6
    runs = [r["run"] for r in probe]
    test = runs[0].predictions.index["test"]
    trains = {}
    for run in runs:
        np.testing.assert_array_equal(run.predictions.index["test"], test)
        np.testing.assert_array_equal(run.predictions.index["val"], runs[0].predictions.index["val"])
        assert run.metrics.features["encoder"]["params"]["bottleneck"] == 16
        trains[run.config.data.split.fraction] = run.metrics.data.sizes["train"]
    assert trains[0.1] == pytest.approx(0.1 * trains[1.0], abs=10)  # one sample per class at most
    hits = [run.metrics.features["cache"]["data"]["hit"] for run in runs]
    assert hits.count(False) == 1  # the first probe extracted, the five others read the cache
    assert len({run.metrics.features["cache"]["data"]["path"] for run in runs}) == 1
