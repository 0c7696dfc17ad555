"""Family-specific behaviour: ResNet-18 stems and key names, autoencoder decoders, cnn_small depth."""

from __future__ import annotations

import pytest
import torch

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.build import build_model

LABEL = {"label": HeadConfig(classes=7)}
IMAGE = {"image": HeadConfig(kind="reconstruction")}


def test_resnet18_stems() -> None:
    small = build_model("resnet18", {}, (1, 48, 48), LABEL).backbone
    big = build_model("resnet18", {}, (3, 224, 224), LABEL).backbone
    assert small.stem_kind == "small" and small.conv1.kernel_size == (3, 3)
    assert big.stem_kind == "standard" and big.conv1.kernel_size == (7, 7)
    with torch.no_grad():
        assert big.eval()(torch.randn(2, 3, 224, 224)).shape == (2, 512)
    with pytest.raises(UserError, match="standard .* at least 32x32, got 16x16"):
        build_model("resnet18", {"stem": "standard"}, (1, 16, 16), LABEL)


def test_resnet18_uses_torchvision_key_names() -> None:
    """So that a ResNet-18 state dict the user has loads by key (its fc is the heads' job)."""
    state = build_model("resnet18", {"stem": "standard"}, (3, 224, 224), LABEL).backbone.state_dict()
    for key in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.bias",
        "layer4.1.bn2.num_batches_tracked",
    ):
        assert key in state
    assert sum(v.ndim == 4 for v in state.values()) == 20  # convs: 1 stem + 16 in blocks + 3 projections
    assert state["conv1.weight"].shape == (64, 3, 7, 7)


@pytest.mark.parametrize("name", ["autoencoder_dense", "autoencoder_conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 33, 45)])
def test_decoders_rebuild_the_input_shape(name: str, shape: tuple[int, int, int]) -> None:
    net = build_model(name, {}, shape, {**IMAGE, **LABEL}).eval()
    with torch.no_grad():
        out = net(torch.randn(2, *shape))
    assert out["image"].shape == (2, *shape)
    assert net.backbone.reconstruction_head() is not net.heads["image"], "each call builds a fresh decoder"


def test_autoencoder_learns_to_reconstruct() -> None:
    torch.manual_seed(0)
    net = build_model("autoencoder_conv", {"widths": [8, 16], "bottleneck": 32}, (1, 16, 16), IMAGE)
    x = torch.randn(32, 1, 16, 16).cumsum(dim=3) / 4  # smooth rows: structure a 32-d code can hold
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(net.train()(x)["image"], x)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_cnn_small_depth_and_study_003_variant() -> None:
    net = build_model(
        "cnn_small",
        {"channels": [32, 64, 128], "batch_norm": True, "hidden": 512, "dropout": 0.5},
        (1, 28, 28),
        {"label": HeadConfig(classes=6)},
    )
    assert [n for n, _ in net.stages()] == ["stem", "stage1", "stage2", "dense"]
    assert net.backbone.num_features == 512 and net.backbone.dense[2].in_features == 128 * 3 * 3
