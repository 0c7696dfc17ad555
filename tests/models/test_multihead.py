"""Several heads on one backbone (study 000): a few dozen Adam steps lower every head's loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smallvision.config import HeadConfig
from smallvision.models.build import build_model

# study 000's heads: A 10-way, B 32-way with 256 units and dropout 0.5, C regression in [0, 1]
HEADS = {
    "a": HeadConfig(kind="classification", classes=10, hidden=[128]),
    "b": HeadConfig(kind="classification", classes=32, hidden=[256], dropout=0.5),
    "c": HeadConfig(kind="regression", hidden=[64], activation="sigmoid"),
}


def three_head_batch(n: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random 32x32 images with targets computed from them, so every head has something to learn."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 32, 32, generator=g)
    bands = x[:, 0, :30].reshape(n, 10, 3 * 32).mean(dim=2)  # 10 bands of 3 rows
    targets = {
        "a": bands.argmax(dim=1),  # the brightest band
        "b": x[:, 0].mean(dim=1).argmax(dim=1),  # the brightest of 32 columns
        "c": torch.sigmoid(32 * x.mean(dim=(1, 2, 3)))[:, None],  # overall brightness in (0, 1)
    }
    return x, targets


def losses(out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        "a": nn.functional.cross_entropy(out["a"], targets["a"]),
        "b": nn.functional.cross_entropy(out["b"], targets["b"]),
        "c": nn.functional.mse_loss(out["c"], targets["c"]),
    }


def shapes_multitask_batch(n: int = 32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The first images of the builtin ``shapes-multitask`` set (digit, grating, rotation), standardised."""
    from smallvision.data.load import load_source

    data = load_source("builtin:shapes-multitask", {"n": n})
    x = data.images.float()
    x = (x - x.mean()) / x.std()
    return x, {"a": data.targets["A"], "b": data.targets["B"], "c": data.targets["C"][:, None].float()}


@pytest.mark.parametrize(
    "batch", [three_head_batch, shapes_multitask_batch], ids=["synthetic", "shapes-multitask"]
)
def test_adam_steps_lower_every_head_loss(batch) -> None:
    torch.manual_seed(0)
    # study 000's network, narrowed so the test stays fast on a 2-core CPU
    params = {"widths": [16, 16, 32, 32], "strides": [1, 2, 2, 1], "freq_widths": [8, 16], "fusion_width": 64}
    net = build_model("dualstream", params, (1, 32, 32), HEADS)
    x, targets = batch()
    with torch.no_grad():
        before = {k: v.item() for k, v in losses(net.eval()(x), targets).items()}
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    weights = {"a": 1.0, "b": 2.5, "c": 10.0}  # study 000's loss weights
    net.train()
    for _ in range(40):
        parts = losses(net(x), targets)
        loss = sum(weights[k] * v for k, v in parts.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = {k: v.item() for k, v in losses(net.eval()(x), targets).items()}
    for head in HEADS:
        assert after[head] < 0.8 * before[head], f"head {head}: {before[head]:.4f} -> {after[head]:.4f}"
