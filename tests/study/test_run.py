"""End to end: one tiny run writes a complete run directory with honest, reproducible figures."""

import csv
import json

import numpy as np
import pytest
import torch

import smallvision
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics
from smallvision.evaluate.predict import predict, to_outputs
from smallvision.rundir import SCHEMA_VERSION, load_run
from smallvision.train.checkpoint import load_checkpoint


def test_tiny_run_writes_the_whole_run_directory(tiny_config):
    result = smallvision.run(tiny_config)
    d = result.dir
    for name in (
        "config.yaml",
        "env.json",
        "history.csv",
        "metrics.json",
        "predictions.npz",
        "checkpoints/best.pt",
    ):
        assert (d / name).is_file(), name
    on_disk = json.loads((d / "metrics.json").read_text())
    assert (on_disk["schema_version"], on_disk["kind"], on_disk["status"]) == (
        SCHEMA_VERSION,
        "run",
        "completed",
    )
    metrics = load_run(d).metrics
    assert metrics.to_dict() == on_disk and metrics == result.metrics
    assert set(metrics.test) == {"label"}
    acc = metrics.test["label"]["accuracy"]
    assert 0.5 < acc <= 1.0  # 8x8 digits: far above the 10% of chance after 3 epochs
    assert metrics.train_seconds > 0
    inference = metrics.inference  # timed on its own, on a batch of test images
    assert inference["split"] == "test" and inference["images"] == min(256, metrics.data.sizes["test"])
    assert 0 < inference["seconds_per_image"] <= inference["median_seconds_per_image"]
    assert inference["repeats"] == 5 and inference["threads"] == torch.get_num_threads()
    env = json.loads((d / "env.json").read_text())
    assert env["seed"] == 3 and len(env["data_fingerprint"]) == 64 and env["packages"]["torch"]
    with (d / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == metrics.epochs_run == 3
    assert {"train/loss", "val/loss", "val/label/accuracy", "lr", "seconds"} <= set(rows[0])
    # the saved predictions reproduce the saved accuracy
    p = np.load(d / "predictions.npz")
    assert np.isclose((p["test/label/prob"].argmax(1) == p["test/label/y_true"]).mean(), acc)
    assert not set(p["test/index"]) & set(p["val/index"])


def test_best_epoch_val_figure_equals_a_fresh_evaluation(tiny_config):
    tiny_config["train"]["epochs"] = 4
    result = smallvision.run(tiny_config)
    with (result.dir / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    best = rows[result.metrics.best_epoch - 1]
    logged = float(best["val/label/accuracy"])
    assert logged == max(float(r["val/label/accuracy"]) for r in rows)
    assert np.isclose(result.metrics.val["label"]["accuracy"], logged)
    # and again from the checkpoint on disk, through the public predict/metrics code
    ckpt = load_checkpoint(result.dir / "checkpoints" / "best.pt")
    model = result.model
    model.load_state_dict(ckpt["model"])
    p = np.load(result.dir / "predictions.npz")
    from smallvision.data.load import load_source
    from smallvision.data.normalize import Normalizer

    data = load_source("builtin:digits")
    idx = torch.as_tensor(p["val/index"])
    norm = Normalizer.from_dict(ckpt["normalizer"])
    raw = predict(model, data.images[idx], norm, ["label"])
    fresh = compute_metrics(
        {"label": "classification"},
        {"label": data.targets["label"][idx].numpy()},
        to_outputs(raw, {"label": "classification"}),
    )
    assert np.isclose(fresh["label"]["accuracy"], logged)


def test_same_seed_same_numbers_and_no_overwrite(tiny_config):
    a = smallvision.run(tiny_config)
    b = smallvision.run(tiny_config)
    assert a.dir != b.dir and a.dir.exists() and b.dir.exists()
    assert a.metrics.test == b.metrics.test
    assert a.metrics.val == b.metrics.val


def test_overrides_as_keyword_arguments(tiny_config):
    result = smallvision.run(tiny_config, **{"train.epochs": 1, "name": "kw"})
    assert result.metrics.epochs_run == 1 and result.dir.name.startswith("kw-")


def test_label_outside_declared_classes_is_a_user_error(tiny_config):
    tiny_config["heads"] = {"label": {"kind": "classification", "classes": 5}}
    with pytest.raises(UserError, match=r"heads\.label\.classes: 5 classes but target 'label' has label 9"):
        smallvision.run(tiny_config)


def test_unknown_source_is_a_user_error(tiny_config):
    tiny_config["data"]["source"] = "builtin:mnist-6k"
    with pytest.raises(UserError, match="unknown builtin dataset 'mnist-6k'; did you mean 'mnist-5k'"):
        smallvision.run(tiny_config)


def test_time_inference_takes_the_fastest_repeat_per_image(monkeypatch):
    from smallvision.evaluate import predict as predict_module

    clock = iter([0.0, 3.0, 10.0, 12.0, 20.0, 24.0])  # repeats of 3, 2 and 4 seconds
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    calls = []
    record = predict_module.time_inference(lambda: calls.append(1), images=10, repeats=3, split="test")
    assert len(calls) == 4  # one warm-up, then the timed repeats
    assert record["seconds_per_image"] == pytest.approx(0.2) and record["median_seconds_per_image"] == 0.3
    assert (record["images"], record["repeats"], record["split"]) == (10, 3, "test")
