"""Kill a run (SIGKILL mid-epoch, Ctrl-C), resume it in its own directory: the same numbers as never stopped."""

import copy
import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from smallvision.config import build_config
from smallvision.errors import UserError
from smallvision.rundir import load_run
from smallvision.study.resume import resume
from smallvision.study.run import run_config
from smallvision.train.checkpoint import load_checkpoint
from smallvision.train.events import Callback

# every random stream in play: shuffling, rotation, MixUp, dropout; and every stateful part:
# cosine with warmup, EMA, uncertainty log-variances, early stopping
RECIPE = {
    "name": "resumable",
    "seed": 5,
    "data": {
        "source": "builtin:digits",
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        "augment": {"rotate": {"degrees": 10}},
    },
    "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32, "batch_norm": True}},
    "train": {
        "epochs": 4,
        "batch_size": 64,
        "optimizer": {"lr": 0.01},
        "schedule": {"name": "cosine", "warmup_epochs": 1, "alpha": 0.1},
        "mix": {"name": "mixup", "alpha": 0.4},
        "ema": 0.9,
        "loss_weighting": "uncertainty",
        "early_stopping": {"monitor": "val/label/accuracy", "patience": 3},
        "threads": 1,
        "progress": False,
    },
    "report": {"enabled": False},
}

KILLER = textwrap.dedent(
    """
    import json, os, signal, sys
    from smallvision.config import build_config
    from smallvision.study.run import run_config
    from smallvision.train.events import Callback

    class KillMidEpoch(Callback):
        def after_batch(self, trainer, batch):
            if batch.epoch == 3 and batch.index == 3:  # inside epoch 3, after last.pt of epoch 2
                if sys.argv[2] == "landed":  # the background writer has put epoch 2's files on disk
                    for c in trainer.hooks.callbacks:
                        getattr(c, "wait", lambda: None)()
                os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[2] == "writing":  # a slow disk: killed while epoch 2's last.pt is being written
        import time
        from smallvision.train import callbacks
        write = callbacks.write_atomic
        def slow(payload, path):
            if path.name == "last.pt" and os.path.exists(path):
                time.sleep(30)
            write(payload, path)
        callbacks.write_atomic = slow

    run_config(build_config(json.loads(sys.argv[1])), callbacks=[KillMidEpoch()])
    """
)


def _config(tmp_path, name):
    cfg = copy.deepcopy(RECIPE)
    cfg["output_dir"] = str(tmp_path / name)
    return cfg


def _only_run(root):
    (run_dir,) = list(root.iterdir())
    return run_dir


def _history(run_dir):
    with (run_dir / "history.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def assert_same_run(a, b):
    """Identical figures: metrics, history (but the timings) and predictions."""
    ma, mb = (load_run(d).metrics for d in (a, b))
    assert ma.status == mb.status == "completed"
    for key in ("splits", "best_epoch", "epochs_run", "stopped_early"):
        assert getattr(ma, key) == getattr(mb, key), key
    assert _history(a) == _history(b)
    with np.load(a / "predictions.npz") as pa, np.load(b / "predictions.npz") as pb:
        assert sorted(pa.files) == sorted(pb.files)
        assert all(np.array_equal(pa[k], pb[k]) for k in pa.files)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    return run_config(build_config(_config(root, "runs"))).dir


@pytest.mark.parametrize("when", ["landed", "writing"])
def test_sigkill_mid_epoch_then_resume_gives_identical_metrics(uninterrupted, tmp_path, when):
    cfg = _config(tmp_path, "runs")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, json.dumps(cfg), when], capture_output=True, env=env, timeout=300
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    run_dir = _only_run(tmp_path / "runs")
    assert not (run_dir / "metrics.json").exists()  # it really died before finishing
    # killed while epoch 2's checkpoint was being written: epoch 1's is whole, and resume starts there
    epoch = 2 if when == "landed" else 1
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == epoch
    resumed = subprocess.run(
        [sys.executable, "-m", "smallvision.cli", "resume", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"run directory: {run_dir}" in resumed.stdout
    assert_same_run(uninterrupted, run_dir)
    env_json = json.loads((run_dir / "env.json").read_text())
    assert env_json["resumed"][0]["from_epoch"] == epoch


class Interrupt(Callback):
    """Ctrl-C in the middle of epoch ``epoch + 1``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def after_batch(self, trainer, batch):
        if batch.epoch == self.epoch + 1 and batch.index == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("epoch", [1, 0])  # 0: interrupted before the first checkpoint
def test_ctrl_c_saves_a_record_and_resume_finishes_identically(uninterrupted, tmp_path, epoch, capsys):
    with pytest.raises(KeyboardInterrupt):
        run_config(build_config(_config(tmp_path, "runs")), callbacks=[Interrupt(epoch)])
    run_dir = _only_run(tmp_path / "runs")
    record = load_run(run_dir).metrics
    assert (record.status, record.epochs_run) == ("interrupted", epoch)
    assert record.resume == f"smallvision resume {run_dir}" and not record.splits
    assert "smallvision resume" in capsys.readouterr().err
    assert (run_dir / "checkpoints" / "last.pt").exists() == (epoch > 0)
    torch.manual_seed(1234)  # whatever ran before in this process must not matter
    result = resume(run_dir)
    assert result.dir == run_dir
    assert_same_run(uninterrupted, run_dir)


def test_resume_refuses_finished_failed_and_foreign_directories(uninterrupted, tmp_path):
    with pytest.raises(UserError, match="already completed"):
        resume(uninterrupted)
    with pytest.raises(UserError, match="is not a run directory"):
        resume(tmp_path)
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "config.yaml").write_text((uninterrupted / "config.yaml").read_text())
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "error": "non-finite loss"}))
    with pytest.raises(UserError, match=r"failed \(non-finite loss\); resuming would repeat it"):
        resume(failed)


def test_resume_refuses_a_checkpoint_of_another_config(uninterrupted, tmp_path):
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(uninterrupted, copy_dir)
    (copy_dir / "metrics.json").unlink()
    text = (copy_dir / "config.yaml").read_text().replace("batch_size: 64", "batch_size: 32")
    (copy_dir / "config.yaml").write_text(text)
    with pytest.raises(UserError, match=r"train\.batch_size is 64 there but 32 here"):
        resume(copy_dir)


# transfer learning: stem and stage1 frozen, stem released at epoch 2 and stage1 at 3, each stage
# at its own lr, cosine with warmup and ReduceLROnPlateau together
FINETUNE = {
    "model": {**RECIPE["model"], "freeze": ["stem", "stage1"]},
    "train": {
        **RECIPE["train"],
        "unfreeze": [{"epoch": 2, "stages": ["stem"]}, {"epoch": 3, "stages": ["stage1"]}],
        "lr_mult": {"stem": 0.1, "stage1": 0.3},
        "schedule": {"name": "cosine", "warmup_epochs": 1, "plateau": {"patience": 0, "factor": 0.5}},
    },
}


@pytest.fixture(scope="module")
def uninterrupted_finetune(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    return run_config(build_config({**_config(root, "runs"), **FINETUNE})).dir


@pytest.mark.parametrize("epoch", [1, 3])  # last.pt before the first unfreeze, and after both
def test_resume_across_an_unfreeze_epoch_gives_identical_metrics(uninterrupted_finetune, tmp_path, epoch):
    cfg = build_config({**_config(tmp_path, "runs"), **FINETUNE})
    with pytest.raises(KeyboardInterrupt):
        run_config(cfg, callbacks=[Interrupt(epoch)])
    run_dir = _only_run(tmp_path / "runs")
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == epoch
    groups = [g["group"] for g in last["optimizer"]["param_groups"]]
    assert groups == ["default", "stem", "stage1", "extra"]  # extra: the uncertainty log-variances
    result = resume(run_dir)
    assert result.model.frozen_stages == ()
    assert_same_run(uninterrupted_finetune, run_dir)
