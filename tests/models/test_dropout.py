"""The zoo's dropout: nn.Dropout's behaviour, with a mask cut from 64-bit random words on the CPU."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smallvision.config import HeadConfig
from smallvision.models.blocks import Dropout, dropout_mask
from smallvision.models.build import build_model
from smallvision.registry import MODELS


@pytest.mark.parametrize("p", [0.05, 0.25, 0.5, 0.9])
def test_drops_each_element_with_probability_p_and_keeps_the_mean(p: float) -> None:
    torch.manual_seed(0)
    n = 400_000
    x = torch.ones(n)
    y = Dropout(p).train()(x)
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - p) < 6 * math.sqrt(p * (1 - p) / n)  # six binomial standard errors
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4)  # p rounded to 1/65536
    assert abs(y.double().mean().item() - 1) < 6 * math.sqrt(p / (1 - p) / n)


def test_neighbouring_elements_are_independent() -> None:
    """Four int16 lanes share a 64-bit word: their drops must not be correlated."""
    torch.manual_seed(1)
    keep, _ = dropout_mask(torch.empty(800_000), 0.5)
    lanes = keep.view(-1, 4).double()  # one row per random word
    corr = torch.corrcoef(lanes.T)
    off_diagonal = corr[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 6 / math.sqrt(lanes.shape[0])


def test_backward_is_the_same_mask_and_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 16, 9, 9, requires_grad=True)
    y = Dropout(0.3).train()(x)
    grad = torch.randn_like(y)
    y.backward(grad)
    kept = y.detach() != 0
    scale = 65536 / (65536 - round(0.3 * 65536))  # 1 / (1 - p), p rounded to a multiple of 1/65536
    assert torch.allclose(y.detach()[kept], x.detach()[kept] * scale)
    assert torch.allclose(x.grad, grad * kept * scale)


def test_channels_last_stays_channels_last_and_strided_input_works() -> None:
    torch.manual_seed(3)
    x = torch.randn(8, 32, 7, 7).contiguous(memory_format=torch.channels_last)
    y = Dropout(0.25).train()(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y != 0, (y != 0) & (x != 0))  # zeros only where dropped
    strided = torch.randn(10, 20).t()  # not contiguous in any format
    out = Dropout(0.5).train()(strided)
    assert out.shape == (20, 10)
    assert torch.equal((out != 0), (out != 0) & (strided != 0))


def test_same_seed_same_mask_whatever_the_thread_count() -> None:
    x = torch.randn(128, 32, 14, 14)
    masks = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            masks.append(Dropout(0.25).train()(x) != 0)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(masks[0], masks[1])
    torch.manual_seed(8)
    assert not torch.equal(masks[0], Dropout(0.25).train()(x) != 0)


def test_behaves_as_nn_dropout_elsewhere() -> None:
    x = torch.randn(4, 10)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    inplace = Dropout(0.5, inplace=True).train()
    y = x.clone()
    assert inplace(y) is y  # nn.Dropout's in-place path
    assert isinstance(Dropout(0.1), nn.Dropout)
    assert Dropout(0.1).state_dict() == {}


def test_every_family_uses_it() -> None:
    for name in MODELS.list("*"):
        heads = (
            {"image": HeadConfig(kind="reconstruction")}
            if name.startswith("autoencoder")
            else {"label": HeadConfig(classes=3, hidden=[8], dropout=0.2)}
        )
        net = build_model(name, {}, (1, 28, 28), heads)
        plain = [n for n, m in net.named_modules() if type(m) is nn.Dropout]
        assert not plain, f"{name}: {plain}"
