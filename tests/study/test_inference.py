"""`smallvision predict`: new files through the run's own preprocessing."""

import csv
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import smallvision
from smallvision.data.load import load_source
from smallvision.errors import UserError
from smallvision.study.inference import load_model, predict_images, predictions_csv


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inference")
    cfg = {
        "name": "inf",
        "seed": 1,
        "output_dir": str(tmp / "runs"),
        "data": {"source": "builtin:digits"},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"lr": 0.01}, "progress": False},
        "report": {"enabled": False},
    }
    return smallvision.run(cfg)


def test_loaded_run_reproduces_saved_test_predictions(finished_run):
    loaded = load_model(finished_run.dir)
    data = load_source("builtin:digits")
    saved = np.load(finished_run.dir / "predictions.npz")
    idx = saved["test/index"]
    out = predict_images(loaded, data.images[idx])
    np.testing.assert_allclose(out["label"], saved["test/label/prob"], atol=1e-5)
    assert loaded.class_names["label"] == [str(i) for i in range(10)]


def test_predict_cli_on_png_and_npy_files(finished_run, tmp_path):
    data = load_source("builtin:digits")
    imgs = data.images[:3, 0].numpy()
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(tmp_path / f"d{i}.png")
    np.save(tmp_path / "stack.npy", imgs)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "smallvision.cli",
            "predict",
            str(finished_run.dir),
            str(tmp_path / "d0.png"),
            str(tmp_path / "d1.png"),
            str(tmp_path / "stack.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 5
    assert set(rows[0]) == {"file", "label", *(f"label:p({i})" for i in range(10))}
    # the same image read from PNG and from the .npy stack gets the same prediction
    assert rows[0]["label"] == rows[2]["label"] and rows[1]["label"] == rows[3]["label"]
    for r in rows:
        assert abs(sum(float(r[f"label:p({i})"]) for i in range(10)) - 1) < 1e-4


def test_unreadable_file_is_named(finished_run, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    out = subprocess.run(
        [sys.executable, "-m", "smallvision.cli", "predict", str(finished_run.dir), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "broken.png" in out.stderr and out.stderr.strip().count("\n") == 0


def test_missing_run_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "nope")


def test_csv_layout_for_regression_heads(finished_run):
    loaded = load_model(finished_run.dir)
    text = predictions_csv(
        loaded, ["a", "b"], {"label": np.array([[0.9] + [0.1 / 9] * 9, [0.0] * 9 + [1.0]])}
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][:2] == ["a", "0"] and rows[2][:2] == ["b", "9"]


def test_fixed_permutation_is_applied_to_new_images(tmp_path):
    """Study 004: a run trained on permuted pixels must see permuted pixels at prediction too."""
    cfg = {
        "name": "perm",
        "seed": 1,
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": "builtin:digits", "augment": {"permute": {"seed": 5}}},
        "model": {"name": "mlp", "params": {"hidden": [32]}},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"lr": 0.01}, "progress": False},
        "report": {"enabled": False},
    }
    result = smallvision.run(cfg)
    loaded = load_model(result.dir)
    saved = np.load(result.dir / "predictions.npz")
    data = load_source("builtin:digits")
    out = predict_images(loaded, data.images[saved["test/index"]])
    np.testing.assert_allclose(out["label"], saved["test/label/prob"], atol=1e-5)


def test_predict_reads_a_chw_npy_as_npyfolder_trains_on_it(tmp_path):
    """A (3, H, W) .npy is one RGB image to ``npyfolder:`` and so to ``predict``, not three grey ones."""
    from typer.testing import CliRunner

    from smallvision.cli import app

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(12):
            np.save(tmp_path / "data" / c / f"{i}.npy", rng.integers(0, 256, (3, 8, 8), dtype=np.uint8))
    cfg = {
        "name": "chw",
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": f"npyfolder:{tmp_path / 'data'}"},
        "model": {"name": "mlp", "params": {"hidden": [8]}},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "report": {"enabled": False},
    }
    result = smallvision.run(cfg)
    assert load_model(result.dir).input_shape == (3, 8, 8)
    out = CliRunner().invoke(app, ["predict", str(result.dir), str(tmp_path / "data" / "a" / "0.npy")])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert [r["file"] for r in rows] == ["0.npy"]
