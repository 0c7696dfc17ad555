"""TensorBoard and MLflow tracking: what they hold equals the run directory's own files.

Read back with the libraries' own readers (TensorBoard's EventAccumulator, MLflow's client on the
SQLite store), never with our code, and compared with ``history.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from smallvision.config import build_config
from smallvision.config_training import training_keys
from smallvision.errors import UserError
from smallvision.evaluate.metrics import scalar_metrics
from smallvision.rundir import load_run
from smallvision.study.resume import resume
from smallvision.study.run import run_config
from smallvision.train.events import Callback

pytest.importorskip("tensorboard", reason="the track extra is not installed (pip install -e '.[track]')")
pytest.importorskip("mlflow", reason="the track extra is not installed (pip install -e '.[track]')")

from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

EPOCHS = 2
IMAGES = 6


def config(tmp_path, **track):
    return build_config(
        {
            "name": "tracked",
            "seed": 5,
            "output_dir": str(tmp_path / "runs"),
            "data": {"source": "builtin:digits", "augment": {"shift": {"fraction": 0.25, "p": 1.0}}},
            "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
            "train": {"epochs": EPOCHS, "batch_size": 64, "optimizer": {"lr": 0.01}, "progress": False},
            "report": {"enabled": False},
            "track": {"images": IMAGES, **track},
        }
    )


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One run with both trackers on: (run directory, its history rows, metrics.json)."""
    root = tmp_path_factory.mktemp("tracked")
    result = run_config(config(root, tensorboard=True, mlflow=True))
    with (result.dir / "history.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return result.dir, rows, json.loads((result.dir / "metrics.json").read_text())


def _final(metrics_json: dict) -> dict[str, float]:
    """metrics.json's scalar figures as ``final/<split>/<head>/<metric>``, read from the JSON."""
    return {
        f"final/{split}/{k}": v
        for split, heads in metrics_json["splits"].items()
        for k, v in scalar_metrics(heads).items()
    }


def events(run_dir):
    acc = EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0}
    )
    acc.Reload()
    return acc


def test_tensorboard_scalars_equal_history_csv(tracked):
    run_dir, rows, metrics_json = tracked
    acc = events(run_dir)
    columns = [c for c in rows[0] if c != "epoch"]
    assert set(columns) <= set(acc.Tags()["scalars"])
    for column in columns:
        logged = acc.Scalars(column)
        assert [e.step for e in logged] == [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
        # TensorBoard keeps float32
        np.testing.assert_allclose([e.value for e in logged], [float(r[column]) for r in rows], rtol=1e-6)
    for key, value in _final(metrics_json).items():
        (event,) = acc.Scalars(key)
        assert event.step == metrics_json["epochs_run"] and math.isclose(event.value, value, rel_tol=1e-6)


def test_tensorboard_images_and_hparams(tracked):
    run_dir, _, metrics_json = tracked
    acc = events(run_dir)
    grids = {}
    for tag in ("samples/raw", "samples/augmented"):
        (image,) = acc.Images(tag)
        with Image.open(io.BytesIO(image.encoded_image_string)) as im:
            grids[tag] = np.asarray(im.convert("L"), dtype=np.float64)
        # IMAGES digits of 8x8 pixels in one grid
        assert grids[tag].size >= IMAGES * 8 * 8 and grids[tag].std() > 0
    assert grids["samples/raw"].shape == grids["samples/augmented"].shape
    assert not np.array_equal(grids["samples/raw"], grids["samples/augmented"])  # shifted
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    cfg = load_run(run_dir).config
    assert hparams["train.optimizer.lr"].number_value == cfg.train.optimizer.lr == 0.01
    assert hparams["seed"].number_value == 5 and hparams["data.source"].string_value == "builtin:digits"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == set(_final(metrics_json))


def test_mlflow_run_holds_params_metrics_and_files(tracked):
    run_dir, rows, metrics_json = tracked
    where = json.loads((run_dir / "tracking.json").read_text())["mlflow"]
    # the default store: mlruns.db beside the folder of run directories
    assert where["uri"] == f"sqlite:///{(run_dir.parent.parent / 'mlruns.db').resolve().as_posix()}"
    client = MlflowClient(where["uri"])
    run = client.get_run(where["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert client.get_experiment(run.info.experiment_id).name == "tracked"
    cfg = load_run(run_dir).config
    expected = {"name": "tracked", **{k: str(v) for k, v in training_keys(cfg).items()}}
    assert run.data.params == expected
    final = _final(metrics_json)
    assert {k: run.data.metrics[k] for k in final} == final  # exactly: MLflow keeps float64
    for column in (c for c in rows[0] if c != "epoch"):
        history = client.get_metric_history(where["run_id"], column)
        assert [(m.step, m.value) for m in history] == [(int(r["epoch"]), float(r[column])) for r in rows]
    names = {a.path for a in client.list_artifacts(where["run_id"])}
    assert {"config.yaml", "metrics.json", "history.csv", "predictions.npz", "env.json"} <= names


class Interrupt(Callback):
    """Ctrl-C during the second epoch."""

    def after_batch(self, trainer, batch):
        if batch.epoch == 2 and batch.index == 1:
            raise KeyboardInterrupt


def test_an_interrupted_run_is_killed_in_mlflow_and_resume_logs_on_in_the_same_runs(tmp_path):
    cfg = config(tmp_path, tensorboard=True, mlflow={"experiment": "resumed"})
    with pytest.raises(KeyboardInterrupt):
        run_config(cfg, callbacks=[Interrupt()])
    (run_dir,) = (tmp_path / "runs").iterdir()
    where = json.loads((run_dir / "tracking.json").read_text())["mlflow"]
    client = MlflowClient(where["uri"])
    assert client.get_run(where["run_id"]).info.status == "KILLED"
    resume(run_dir)
    assert json.loads((run_dir / "tracking.json").read_text())["mlflow"] == where
    (run,) = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    assert run.info.run_id == where["run_id"] and run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(where["run_id"], "train/loss")]
    assert steps == [1, 2]  # epoch 1 from the first session, epoch 2 from the resumed one
    assert [e.step for e in events(run_dir).Scalars("train/loss")] == [1, 2]


def test_a_failed_run_is_failed_in_mlflow(tmp_path):
    from smallvision.study.run import TrainingFailed

    cfg = config(tmp_path, mlflow=True)
    cfg = build_config({**cfg.model_dump(mode="json"), "train": {**cfg.train.model_dump(mode="json"),
                        "optimizer": {"name": "sgd", "lr": 1000.0}}})  # fmt: skip
    with pytest.raises(TrainingFailed):
        run_config(cfg)
    (run_dir,) = (tmp_path / "runs").iterdir()
    where = json.loads((run_dir / "tracking.json").read_text())["mlflow"]
    assert MlflowClient(where["uri"]).get_run(where["run_id"]).info.status == "FAILED"


@pytest.mark.parametrize(("key", "module", "package"), [("tensorboard", "tensorboard", "'tensorboard'"),
                                                         ("mlflow", "mlflow", "'mlflow-skinny'")])  # fmt: skip
def test_a_tracker_without_its_package_is_one_line_before_anything_is_written(
    tmp_path, monkeypatch, key, module, package
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    with pytest.raises(UserError) as err:
        run_config(config(tmp_path, **{key: True}))
    message = str(err.value)
    assert f"track.{key} is switched on" in message and package in message and "\n" not in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("track", "expected"),
    [
        ({"tensorbord": True}, "track.tensorbord: unknown key; did you mean 'tensorboard'?"),
        ({"mlflow": {"url": "x"}}, "track.mlflow.url: unknown key; did you mean 'uri'?"),
        ({"mlflow": 3}, "track.mlflow: expected true, false or a mapping"),
    ],
)
def test_track_config_errors_are_one_line(track, expected):
    with pytest.raises(UserError) as err:
        build_config({"track": track})
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_tracking_does_not_change_the_training_fingerprint():
    from smallvision.config_training import training_fingerprint

    assert training_fingerprint(build_config({"track": {"mlflow": True}})) == training_fingerprint(
        build_config({})
    )


def _open_store(uri: str) -> int:
    from smallvision.track.mlflow_logger import _client

    client = _client(uri)
    return len(client.search_experiments())


def test_workers_opening_one_new_store_together_all_succeed(tmp_path):
    import multiprocessing

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with multiprocessing.get_context("spawn").Pool(3) as pool:  # as a study's worker processes
        assert pool.map(_open_store, [uri] * 3) == [1, 1, 1]  # each sees the store's Default experiment


def test_a_features_mode_run_is_tracked_without_images(tmp_path):
    import smallvision

    common = {"seed": 3, "output_dir": str(tmp_path / "runs"), "data": {"source": "builtin:digits"},
              "train": {"epochs": 1, "batch_size": 64, "progress": False}, "report": {"enabled": False}}  # fmt: skip
    encoder = smallvision.run(
        {
            **common,
            "model": {"name": "autoencoder_dense", "params": {"hidden": [32], "bottleneck": 16}},
            "heads": {"image": {"kind": "reconstruction"}},
        }  # fmt: skip
    ).dir
    result = smallvision.run(
        {**common, "model": {"init": str(encoder)}, "features": {}, "track": {"tensorboard": True}}
    )
    acc = events(result.dir)
    assert acc.Tags()["images"] == []  # its splits hold feature vectors, not images
    with (result.dir / "history.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert math.isclose(acc.Scalars("train/loss")[0].value, float(row["train/loss"]), rel_tol=1e-6)
