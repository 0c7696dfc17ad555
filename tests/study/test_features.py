"""Frozen-encoder mode (study 001): an autoencoder's encoder extracts features once, cached in its run
directory; an MLP or a logistic regression trains on them and writes the files of any run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import smallvision
import smallvision.study.features as features_mode
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.rundir import RunPaths

pytestmark = pytest.mark.slow
SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def base(root) -> dict:
    return {
        "name": "run",
        "seed": 3,
        "output_dir": str(root / "runs"),
        "data": {"source": "builtin:digits", "split": dict(SPLIT)},
        "train": {"epochs": 2, "batch_size": 64, "progress": False},
        "report": {"enabled": False},
    }


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    """A dense autoencoder on the 8x8 digits (2 epochs): the encoder of every test here."""
    root = tmp_path_factory.mktemp("ae")
    cfg = base(root) | {
        "model": {"name": "autoencoder_dense", "params": {"hidden": [32], "bottleneck": 16}},
        "heads": {"image": {"kind": "reconstruction"}},
    }
    return smallvision.run(cfg).dir


def downstream(encoder, root, **features) -> dict:
    cfg = base(root) | {"model": {"init": str(encoder)}, "features": features}
    cfg["train"] |= {"early_stopping": {"monitor": "val/label/accuracy"}}
    return cfg


@pytest.fixture
def counted(monkeypatch):
    """How often the encoder really runs (the cache is read otherwise)."""
    calls = []
    real = features_mode.extract_features

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(features_mode, "extract_features", counting)
    return calls


def test_features_are_extracted_once_and_reused_by_every_later_run(encoder_run, tmp_path, counted):
    first = smallvision.run(downstream(encoder_run, tmp_path, hidden=[32]))
    cache = first.metrics.features["cache"]["data"]
    assert cache["hit"] is False and len(counted) == 1
    path = RunPaths(encoder_run).features / f"{cache['path'].rsplit('/', 1)[-1]}"
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    other = downstream(encoder_run, tmp_path, head="logistic_regression")
    other["data"]["split"]["fraction"] = 0.2  # another head, another label fraction: the same features
    second = smallvision.run(other)
    assert second.metrics.features["cache"]["data"] == {"path": str(path), "hit": True}
    assert len(counted) == 1 and path.stat().st_mtime_ns == stamp
    with np.load(path) as npz:
        assert npz["features"].shape == (1797, 16)  # every image of the data, once


def test_mlp_and_logistic_regression_write_the_files_of_any_run(encoder_run, tmp_path):
    mlp = smallvision.run(downstream(encoder_run, tmp_path, hidden=[32, 16]))
    logreg = smallvision.run(downstream(encoder_run, tmp_path, head="logistic_regression"))
    a, b = smallvision.load_run(mlp.dir), smallvision.load_run(logreg.dir)
    np.testing.assert_array_equal(a.predictions.index["test"], b.predictions.index["test"])
    for run in (a, b):
        assert run.status == "completed" and run.predictions.head("test", "label")["prob"].shape[1] == 10
        assert {"accuracy", "macro_f1"} <= set(run.metrics.test["label"])
        assert run.metrics.reference["test"]["label"]["chance"]["accuracy"] == pytest.approx(0.1)
        assert run.metrics.features["encoder"]["name"] == "autoencoder_dense"
        assert run.metrics.features["dim"] == 16
    assert a.paths.history.is_file() and a.paths.best.is_file() and len(a.history["epoch"]) == 2
    assert a.metrics.params["layer1"] == 16 * 32 + 32 and a.metrics.features["head"] == "mlp"
    assert not b.paths.history.exists() and b.metrics.baseline["estimator"] == "LogisticRegression"
    assert b.metrics.test["label"]["accuracy"] > 0.5  # 16 features of the digits separate them well


def test_logistic_regression_equals_scikit_learn_on_the_cached_features(encoder_run, tmp_path):
    cfg = downstream(encoder_run, tmp_path, head="logistic_regression", C=0.5)
    result = smallvision.run(cfg)
    with np.load(result.metrics.features["cache"]["data"]["path"]) as npz:
        feats = npz["features"].astype(np.float64)
    from smallvision.study.run import prepare_data

    d = prepare_data(result.config)
    y = d.data.targets["label"].numpy()
    train, test = d.splits["train"], d.splits["test"]
    direct = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=3))
    direct.fit(feats[train], y[train])
    saved = smallvision.load_run(result.dir).predictions.head("test", "label")["prob"]
    np.testing.assert_allclose(saved, direct.predict_proba(feats[test]), atol=1e-6)
    assert result.metrics.test["label"]["accuracy"] == pytest.approx(direct.score(feats[test], y[test]))


def test_predict_runs_images_through_the_encoder_and_the_mlp(encoder_run, tmp_path):
    from smallvision.study.inference import load_model, predict_images
    from smallvision.study.run import prepare_data

    result = smallvision.run(downstream(encoder_run, tmp_path, hidden=[16]))
    d = prepare_data(result.config)
    test = torch.as_tensor(d.splits["test"])
    out = predict_images(load_model(result.dir), d.data.images[test])
    saved = smallvision.load_run(result.dir).predictions.head("test", "label")["prob"]
    np.testing.assert_allclose(out["label"], saved, atol=1e-5)


def test_a_torchvision_style_state_dict_is_an_encoder_with_the_configs_architecture(tmp_path):
    torch.manual_seed(0)
    net = build_model("cnn_small", {"channels": [4, 8], "hidden": 16}, (1, 8, 8), {})
    weights = tmp_path / "weights" / "encoder.pth"
    weights.parent.mkdir()
    torch.save(net.backbone.state_dict(), weights)  # plain keys, no smallvision checkpoint around them
    cfg = base(tmp_path) | {
        "model": {"name": "cnn_small", "params": {"channels": [4, 8], "hidden": 16}, "init": str(weights)},
        "features": {"head": "logistic_regression"},
    }
    result = smallvision.run(cfg)
    assert result.metrics.features["encoder"]["kind"] == "state dict"
    assert result.metrics.features["cache"]["data"]["path"].startswith(str(tmp_path / "weights" / "features"))


def test_what_features_mode_cannot_use_is_a_one_line_error(encoder_run, tmp_path):
    no_init = base(tmp_path) | {"features": {}}
    with pytest.raises(UserError, match=r"^config: model\.init: features mode needs the encoder"):
        smallvision.run(no_init)
    augmented = downstream(encoder_run, tmp_path)
    augmented["data"]["augment"] = {"hflip": {}}
    with pytest.raises(UserError, match=r"data\.augment: not with features mode"):
        smallvision.run(augmented)
    mixed = downstream(encoder_run, tmp_path, head="logistic_regression", hidden=[8])
    with pytest.raises(UserError, match=r"features\.hidden: \[8\] fits head mlp only"):
        smallvision.run(mixed)
    resized = downstream(encoder_run, tmp_path)
    resized["data"]["size"] = [12, 12]
    with pytest.raises(UserError, match=r"trained on 1x8x8 images but the data are 1x12x12; set data\.size"):
        smallvision.run(resized)
    reconstruct = downstream(encoder_run, tmp_path)
    reconstruct["heads"] = {"image": {"kind": "reconstruction"}}
    with pytest.raises(
        UserError, match=r"heads\.image\.kind: 'reconstruction' does not fit features\.head mlp"
    ):
        smallvision.run(reconstruct)
    assert not (tmp_path / "runs").exists()  # refused before any run directory
