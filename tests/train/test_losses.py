"""Each loss against a value computed by hand (or by torch's own reference where it has one)."""

import math

import pytest
import torch
import torch.nn.functional as F

from smallvision.config import HeadConfig, build_config
from smallvision.errors import UserError
from smallvision.train.losses import (
    balanced_class_weights,
    build_losses,
    head_loss,
    pixel_loss,
    soft_cross_entropy,
)
from smallvision.train.weighting import LossWeighting

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
LABELS = torch.tensor([0, 2])


def _logp(row, k):
    z = LOGITS[row]
    return float(z[k] - torch.logsumexp(z, 0))


def test_cross_entropy_by_hand():
    expected = -(_logp(0, 0) + _logp(1, 2)) / 2
    assert soft_cross_entropy(LOGITS, LABELS).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_by_hand_and_like_torch():
    eps, k = 0.1, 3
    per_row = [
        -sum(((1 - eps) * (c == y) + eps / k) * _logp(i, c) for c in range(k)) for i, y in enumerate([0, 2])
    ]
    got = soft_cross_entropy(LOGITS, LABELS, smoothing=eps).item()
    assert got == pytest.approx(sum(per_row) / 2, rel=1e-6)
    assert got == pytest.approx(F.cross_entropy(LOGITS, LABELS, label_smoothing=eps).item(), rel=1e-6)


def test_soft_targets_equal_the_mixture_of_hard_losses():
    # a MixUp target lam * onehot(a) + (1 - lam) * onehot(b): the loss is the same mixture of CEs
    lam = 0.3
    soft = lam * F.one_hot(LABELS, 3).float() + (1 - lam) * F.one_hot(torch.tensor([1, 1]), 3).float()
    expected = lam * F.cross_entropy(LOGITS, LABELS) + (1 - lam) * F.cross_entropy(
        LOGITS, torch.tensor([1, 1])
    )
    assert soft_cross_entropy(LOGITS, soft).item() == pytest.approx(expected.item(), rel=1e-6)


def test_class_weights_by_hand_and_like_torch():
    w = torch.tensor([1.0, 2.0, 4.0])
    expected = -(1.0 * _logp(0, 0) + 4.0 * _logp(1, 2)) / (1.0 + 4.0)
    got = soft_cross_entropy(LOGITS, LABELS, weight=w).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(F.cross_entropy(LOGITS, LABELS, weight=w).item(), rel=1e-6)
    # weights and smoothing together still match torch's definition
    both = soft_cross_entropy(LOGITS, LABELS, smoothing=0.2, weight=w).item()
    assert both == pytest.approx(
        F.cross_entropy(LOGITS, LABELS, weight=w, label_smoothing=0.2).item(), rel=1e-6
    )


def test_balanced_class_weights_follow_sklearn_formula():
    labels = torch.tensor([0, 0, 0, 1])  # n=4, K=3: 4/(3*3), 4/(3*1), class 2 absent counts as 1
    assert balanced_class_weights(labels, 3).tolist() == pytest.approx([4 / 9, 4 / 3, 4 / 3])


def test_build_losses_uses_training_labels_for_balanced_weights():
    heads = {"y": HeadConfig(kind="classification", classes=3, class_weights="balanced")}
    train = {"y": torch.tensor([0, 0, 0, 1])}
    fn = build_losses(heads, train)["y"]
    w = balanced_class_weights(train["y"], 3)
    assert fn(LOGITS, LABELS).item() == pytest.approx(
        F.cross_entropy(LOGITS, LABELS, weight=w).item(), rel=1e-6
    )


def test_focal_loss_by_hand():
    gamma = 2.0
    terms = []
    for i, y in enumerate([0, 2]):
        p = math.exp(_logp(i, y))
        terms.append(-((1 - p) ** gamma) * math.log(p))
    fn = head_loss("y", HeadConfig(kind="classification", classes=3, loss="focal", focal_gamma=gamma))
    assert fn(LOGITS, LABELS).item() == pytest.approx(sum(terms) / 2, rel=1e-6)
    # gamma 0 is plain cross-entropy
    plain = head_loss("y", HeadConfig(kind="classification", classes=3, loss="focal", focal_gamma=0.0))
    assert plain(LOGITS, LABELS).item() == pytest.approx(F.cross_entropy(LOGITS, LABELS).item(), rel=1e-6)


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("mse", (0.25 + 4.0 + 0.0) / 3),
        ("mae", (0.5 + 2.0 + 0.0) / 3),
        ("huber", (0.5 * 0.25 + (2.0 - 0.5) + 0.0) / 3),  # delta 1: quadratic below, linear above
    ],
)
def test_regression_losses_by_hand(loss, expected):
    fn = head_loss("c", HeadConfig(kind="regression", loss=loss))
    out = torch.tensor([[0.5], [3.0], [1.0]])  # (B, 1) as a head gives it
    target = torch.tensor([0.0, 1.0, 1.0])
    assert fn(out, target).item() == pytest.approx(expected, rel=1e-6)


def test_reconstruction_loss_on_masked_pixels_only():
    target = torch.zeros(1, 2, 2, 2)
    out = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]], [[3.0, 0.0], [0.0, 4.0]]]])
    mask = torch.tensor([[[[True, False], [False, True]]]])  # (B, 1, H, W): hides 2 pixels x 2 channels
    masked = head_loss("img", HeadConfig(kind="reconstruction", masked_only=True))
    everywhere = head_loss("img", HeadConfig(kind="reconstruction"))
    assert masked(out, target, mask).item() == pytest.approx((1 + 0 + 9 + 16) / 4)
    assert everywhere(out, target, mask).item() == pytest.approx((1 + 4 + 9 + 16) / 8)
    l1 = head_loss("img", HeadConfig(kind="reconstruction", loss="l1", masked_only=True))
    assert l1(out, target, mask).item() == pytest.approx((1 + 0 + 3 + 4) / 4)
    # no mask (validation, or no masking op): every pixel counts
    assert pixel_loss(out, target, "mse", None).item() == pytest.approx(30 / 8)


def test_a_loss_of_the_wrong_kind_is_a_user_error():
    with pytest.raises(UserError, match=r"heads\.c\.loss: 'ce' is not a regression loss"):
        build_config({"heads": {"c": {"kind": "regression", "loss": "ce"}}})  # at load time
    # a config changed in code skips validation; the loss still refuses it
    bad = HeadConfig(kind="regression").model_copy(update={"loss": "ce"})
    with pytest.raises(UserError, match=r"heads\.c\.loss: 'ce' is not a regression loss"):
        head_loss("c", bad)


def test_static_weights_and_uncertainty_weighting_by_hand():
    heads = {
        "a": HeadConfig(kind="classification", classes=3, weight=1.0),
        "c": HeadConfig(kind="regression", weight=10.0),
    }
    losses = {"a": torch.tensor(2.0), "c": torch.tensor(0.5)}
    total, terms = LossWeighting(heads, "static")(losses)
    assert terms["a"].item() == 2.0 and terms["c"].item() == 5.0 and total.item() == 7.0
    unc = LossWeighting(heads, "uncertainty")
    with torch.no_grad():
        unc.log_vars["a"].fill_(math.log(2.0))
        unc.log_vars["c"].fill_(0.0)
    total, terms = unc(losses)
    # classification: exp(-s) * w * L + s / 2; regression: exp(-s) * w * L / 2 + s / 2
    assert terms["a"].item() == pytest.approx(0.5 * 2.0 + 0.5 * math.log(2.0))
    assert terms["c"].item() == pytest.approx(0.5 * 5.0)
    assert total.item() == pytest.approx(terms["a"].item() + terms["c"].item())
    total.backward()
    assert unc.log_vars["a"].grad is not None
