"""The trainer's recipes on tiny runs: early stopping, the NaN guard, EMA, bf16, loss weighting, masking."""

import copy
import csv
import sys

import numpy as np
import pytest
import torch

from smallvision.config import build_config
from smallvision.rundir import load_run
from smallvision.study.run import TrainingFailed, make_trainer, prepare, run_config
from smallvision.train.checkpoint import load_checkpoint
from smallvision.train.events import Callback


def _history(run_dir):
    with (run_dir / "history.csv").open() as f:
        return list(csv.DictReader(f))


class Snapshots(Callback):
    """Copies of the evaluated weights after each epoch."""

    def __init__(self):
        self.states = {}

    def after_epoch(self, trainer, record):
        self.states[record.epoch] = copy.deepcopy(trainer.eval_state())


def test_early_stopping_restores_the_best_epoch(tiny_config):
    # min_delta 2 is more than accuracy can improve: epoch 1 stays best and patience 2 stops at 3
    tiny_config["train"].update(
        epochs=6, early_stopping={"monitor": "val/label/accuracy", "patience": 2, "min_delta": 2}
    )
    snaps = Snapshots()
    result = run_config(build_config(tiny_config), callbacks=[snaps])
    m = result.metrics
    assert (m.best_epoch, m.epochs_run, m.stopped_early) == (1, 3, True)
    final = result.model.state_dict()
    assert all(torch.equal(final[k], snaps.states[1][k]) for k in final)
    assert not all(torch.equal(final[k], snaps.states[3][k]) for k in final)
    best = load_checkpoint(result.dir / "checkpoints" / "best.pt")
    assert best["epoch"] == 1 and all(torch.equal(best["model"][k], final[k]) for k in final)
    assert m.val["label"]["accuracy"] == pytest.approx(float(_history(result.dir)[0]["val/label/accuracy"]))


def test_early_stopping_on_a_loss_stops_when_it_stops_falling(tiny_config):
    tiny_config["train"].update(
        epochs=8, early_stopping={"monitor": "val/label/loss", "patience": 1, "min_delta": 10}
    )
    result = run_config(build_config(tiny_config))
    assert (result.metrics.best_epoch, result.metrics.epochs_run) == (1, 2)


class PoisonHead(Callback):
    """Makes the label head's output NaN from the third batch of epoch 2 on."""

    def before_batch(self, trainer, batch):
        if batch.epoch == 2 and batch.index == 2:
            with torch.no_grad():
                trainer.model.heads["label"][-1].bias.fill_(float("nan"))


def test_nan_guard_stops_names_the_head_and_keeps_the_last_good_checkpoint(tiny_config):
    cfg = build_config(tiny_config)
    steps = len(prepare(cfg).split_data["train"]) // cfg.train.batch_size
    with pytest.raises(TrainingFailed, match=rf"head 'label' at epoch 2, step {steps + 3}") as info:
        run_config(cfg, callbacks=[PoisonHead()])
    run_dir = info.value.dir
    record = load_run(run_dir).metrics
    assert record.status == "failed" and record.failure.head == "label" and record.failure.epoch == 2
    assert "non-finite training loss" in record.error
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert len(_history(run_dir)) == 1


def test_a_diverging_run_exits_with_code_2_from_the_cli(tiny_config, tmp_path, monkeypatch, capsys):
    import yaml

    from smallvision import cli

    tiny_config["train"]["optimizer"] = {"name": "sgd", "lr": 1e30}
    path = tmp_path / "diverge.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    monkeypatch.setattr(sys, "argv", ["smallvision", "run", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite training loss" in err[0] and "head 'label'" in err[0]


def test_ema_weights_are_evaluated_and_checkpointed(tiny_config):
    tiny_config["train"]["ema"] = 0.9
    snaps = Snapshots()
    result = run_config(build_config(tiny_config), callbacks=[snaps])
    best = load_checkpoint(result.dir / "checkpoints" / "best.pt")
    last = load_checkpoint(result.dir / "checkpoints" / "last.pt")
    assert best["ema"] is True and last["ema"]["updates"] == last["step"]
    # the best checkpoint and the final model hold the EMA of the best epoch, not the raw weights
    epoch = result.metrics.best_epoch
    assert all(torch.equal(best["model"][k], snaps.states[epoch][k]) for k in best["model"])
    raw_last = last["model"]
    shadow_last = last["ema"]["shadow"]
    assert any(
        not torch.equal(raw_last[k], shadow_last[k]) for k in raw_last if raw_last[k].is_floating_point()
    )
    assert result.metrics.test["label"]["accuracy"] > 0.3


def test_ema_update_by_hand():
    from smallvision.train.ema import EMA

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay min(0.9, 2/11)
    assert ema.shadow["weight"].item() == pytest.approx(1 - 2 / 11)
    ema.update(model)  # decay min(0.9, 3/12)
    assert ema.shadow["weight"].item() == pytest.approx(1 - (2 / 11) * (3 / 12))


def test_bf16_autocast_trains(tiny_config):
    tiny_config["train"]["precision"] = "bf16"
    result = run_config(build_config(tiny_config))
    assert result.metrics.test["label"]["accuracy"] > 0.3  # chance is 0.1


def test_uncertainty_weighting_learns_log_variances_and_logs_weighted_losses(tiny_config):
    tiny_config["train"]["loss_weighting"] = "uncertainty"
    tiny_config["heads"] = {"label": {"kind": "classification", "weight": 2.0}}
    result = run_config(build_config(tiny_config))
    rows = _history(result.dir)
    assert {
        "train/label/loss",
        "train/label/weighted_loss",
        "train/label/log_var",
        "val/label/weighted_loss",
    } <= set(rows[0])
    log_vars = [float(r["train/label/log_var"]) for r in rows]
    assert log_vars[-1] != 0.0 and len(set(log_vars)) == len(log_vars)  # trained by the optimiser
    last = rows[-1]
    loss, s = float(last["val/label/loss"]), float(last["train/label/log_var"])
    assert float(last["val/label/weighted_loss"]) == pytest.approx(
        np.exp(-s) * 2.0 * loss + 0.5 * s, rel=1e-5
    )


def test_static_weights_scale_the_logged_weighted_loss(tiny_config):
    tiny_config["heads"] = {"label": {"kind": "classification", "weight": 2.5}}
    rows = _history(run_config(build_config(tiny_config)).dir)
    for r in rows:
        assert float(r["train/label/weighted_loss"]) == pytest.approx(
            2.5 * float(r["train/label/loss"]), rel=1e-6
        )
        assert float(r["val/loss"]) == pytest.approx(2.5 * float(r["val/label/loss"]), rel=1e-6)


def test_history_lr_follows_the_cosine_floor(tiny_config):
    tiny_config["train"]["schedule"] = {"name": "cosine", "alpha": 0.1}
    cfg = build_config(tiny_config)
    rows = _history(run_config(cfg).dir)
    # after the last step the cosine has reached its floor: lr * alpha
    assert float(rows[-1]["lr"]) == pytest.approx(0.01 * 0.1, rel=1e-6)


def test_reconstruction_target_is_clean_and_masked_loss_uses_the_mask(tiny_config, tmp_path):
    tiny_config.update(
        model={"name": "autoencoder_dense", "params": {"hidden": [32], "bottleneck": 8}},
        heads={"image": {"kind": "reconstruction", "masked_only": True}},
    )
    tiny_config["data"]["augment"] = {"shift": {"fraction": 0.1}, "mask_pixels": {"ratio": 0.5}}
    tiny_config["train"]["early_stopping"] = {"monitor": "val/loss"}
    p = prepare(build_config(tiny_config))
    t = make_trainer(p, tmp_path)
    x, targets, mask = t.prepare_batch(p.split_data["train"], torch.arange(8))
    assert mask is not None and mask.shape == (8, 1, 8, 8) and mask.float().mean() == pytest.approx(0.5)
    hidden = p.normalizer.standardize(torch.zeros(1, 1, 1, 1)).item()  # a hidden pixel: value 0, standardised
    assert torch.allclose(x[mask.expand_as(x)], torch.tensor(hidden))
    target = targets["image"]
    assert not torch.allclose(target[mask.expand_as(x)], torch.tensor(hidden))  # the target keeps them
    assert torch.equal(x[~mask.expand_as(x)], target[~mask.expand_as(x)])  # visible pixels: the same
    result = run_config(build_config(tiny_config))
    assert result.metrics.test["image"]["mse"] < 1.0  # standardised pixels: predicting 0 gives ~1
