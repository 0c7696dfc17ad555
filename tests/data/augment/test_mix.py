"""MixUp / CutMix: soft targets sum to 1, targets follow the images, draws are reproducible."""

import pytest
import torch

from smallvision.data.augment.mix import cutmix_box, mix_batch, sample_lambda
from smallvision.errors import UserError

SPEC = {"cls": ("classification", 5), "reg": ("regression", None), "img": ("reconstruction", None)}


def _batch(n=16):
    labels = torch.arange(n) % 5
    # each image is constant and equal to its label: the mixed image's mean tells the mix it got
    x = labels.float().view(n, 1, 1, 1).expand(n, 1, 8, 8).clone()
    return x, {"cls": labels, "reg": labels.float(), "img": x.clone()}


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_targets_follow_the_images_and_soft_targets_sum_to_one(name):
    x, targets = _batch()
    mixed, out = mix_batch(x, targets, SPEC, name, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert out["cls"].shape == (16, 5) and out["cls"].dtype == torch.float32
    assert torch.allclose(out["cls"].sum(1), torch.ones(16))
    assert (out["cls"] >= 0).all()
    image_means = mixed.mean(dim=(1, 2, 3))
    # the regression target and the soft label's expected class equal the share of each image kept
    assert torch.allclose(out["reg"], image_means, atol=1e-5)
    assert torch.allclose(out["cls"] @ torch.arange(5.0), image_means, atol=1e-5)
    assert torch.allclose(out["img"], mixed)  # a reconstruction target gets the same blend or box
    assert not torch.equal(mixed, x)


def test_cutmix_lambda_is_corrected_to_the_clipped_box():
    gen = torch.Generator().manual_seed(3)
    for _ in range(50):
        lam = float(torch.rand(1, generator=gen))
        y0, y1, x0, x1 = cutmix_box(10, 12, lam, gen)
        assert 0 <= y0 <= y1 <= 10 and 0 <= x0 <= x1 <= 12
        assert (y1 - y0) * (x1 - x0) <= round(10 * (1 - lam) ** 0.5 + 1) * round(12 * (1 - lam) ** 0.5 + 1)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_same_seed_same_mix_and_another_seed_another(name):
    x, targets = _batch()
    a = mix_batch(x, targets, SPEC, name, 0.2, 1.0, torch.Generator().manual_seed(7))
    b = mix_batch(x, targets, SPEC, name, 0.2, 1.0, torch.Generator().manual_seed(7))
    c = mix_batch(x, targets, SPEC, name, 0.2, 1.0, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and all(torch.equal(a[1][k], b[1][k]) for k in SPEC)
    assert not torch.equal(a[0], c[0])


def test_lambda_is_beta_distributed():
    gen = torch.Generator().manual_seed(0)
    draws = torch.tensor([sample_lambda(0.2, gen) for _ in range(2000)])
    assert ((draws >= 0) & (draws <= 1)).all()
    assert draws.mean().item() == pytest.approx(0.5, abs=0.03)  # Beta(a, a) is symmetric
    assert ((draws < 0.1) | (draws > 0.9)).float().mean() > 0.5  # alpha 0.2: mostly near 0 or 1


def test_prob_zero_or_none_leaves_the_batch_alone():
    x, targets = _batch()
    for name, prob in (("mixup", 0.0), ("none", 1.0)):
        mixed, out = mix_batch(x, targets, SPEC, name, 0.2, prob, torch.Generator().manual_seed(0))
        assert torch.equal(mixed, x) and torch.equal(out["cls"], targets["cls"])


def test_soft_targets_are_mixed_again():
    x, targets = _batch()
    soft = torch.softmax(torch.randn(16, 5), dim=1)
    _, out = mix_batch(x, {"cls": soft}, SPEC, "mixup", 1.0, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(out["cls"].sum(1), torch.ones(16))


def test_unknown_mix_is_a_user_error():
    x, targets = _batch()
    with pytest.raises(UserError, match="train.mix.name"):
        mix_batch(x, targets, SPEC, "mosaic", 0.2, 1.0, torch.Generator())
