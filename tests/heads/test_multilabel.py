"""The multilabel kind: its metrics against scikit-learn, its loss learning, its data check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, hamming_loss

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics, higher_is_better
from smallvision.models.build import build_model
from smallvision.registry import HEAD_KINDS


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random((50, 5)) < 0.3).astype(np.float32)
    prob = rng.random((50, 5))
    m = compute_metrics({"tags": "multilabel"}, {"tags": y}, {"tags": prob})["tags"]
    pred = (prob >= 0.5).astype(int)
    assert m["label_accuracy"] == pytest.approx(1 - hamming_loss(y, pred))
    assert m["exact_match"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["per_label"]["f1"] == pytest.approx(f1_score(y, pred, average=None, zero_division=0))
    assert higher_is_better("val/tags/label_accuracy") and higher_is_better("exact_match")


def test_bce_steps_learn_the_labels():
    torch.manual_seed(0)
    kind = HEAD_KINDS.get("multilabel")
    cfg = HeadConfig(kind="multilabel", classes=3)
    net = build_model("mlp", {"hidden": [16]}, (1, 4, 4), {"tags": cfg})
    x = torch.randn(64, 1, 4, 4)
    y = kind.train_target(torch.stack([x[:, 0, 0, 0] > 0, x[:, 0, 1, 1] > 0, x[:, 0, 2, 2] > 0], dim=1))
    loss_fn = kind.loss_fn(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    first = float(loss_fn(net(x)["tags"], y).detach())
    for _ in range(60):
        opt.zero_grad()
        loss_fn(net(x)["tags"], y).backward()
        opt.step()
    prob = kind.to_output(net(x)["tags"].detach().numpy())
    assert float(loss_fn(net(x)["tags"], y).detach()) < 0.5 * first
    assert compute_metrics({"t": "multilabel"}, {"t": y.numpy()}, {"t": prob})["t"]["label_accuracy"] > 0.9


def test_resolve_fills_the_label_count_and_refuses_1d_targets():
    kind = HEAD_KINDS.get("multilabel")
    cfg = kind.resolve("tags", HeadConfig(kind="multilabel"), torch.zeros(10, 4), None)
    assert cfg.classes == 4
    with pytest.raises(
        UserError, match=r"heads\.tags: a multilabel target is \(N, None\) 0/1 values, got \(10,\)"
    ):
        kind.resolve("tags", HeadConfig(kind="multilabel"), torch.zeros(10), None)
