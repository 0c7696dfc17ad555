"""freeze / unfreeze: names, patterns, errors, and batch-norm layers that stay in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.models.freeze import freeze, resolve_stages, unfreeze

HEADS = {"label": HeadConfig(classes=6)}


def norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_unknown_stage_is_a_user_error_with_a_suggestion() -> None:
    net = build_model("resnet18", {}, (1, 28, 28), HEADS)
    with pytest.raises(UserError, match=r"transfer.freeze: no stage named 'layr1'; did you mean 'layer1'\?"):
        freeze(net, ["layer1", "layr1"], where="transfer.freeze")
    assert net.frozen_stages == () and all(p.requires_grad for p in net.parameters()), "nothing half-frozen"


def test_patterns_pick_stages_in_order() -> None:
    net = build_model("dualstream", {}, (1, 32, 32), HEADS)
    assert resolve_stages(net, ["fusion", "spatial_*"]) == [
        "spatial_stem",
        "spatial_stage1",
        "spatial_stage2",
        "spatial_stage3",
        "spatial_stage4",
        "fusion",
    ]


def test_freeze_sets_requires_grad_and_keeps_batch_norm_in_eval() -> None:
    net = build_model("cnn_bn", {}, (1, 28, 28), HEADS)
    assert freeze(net, ["stem", "stage1"]) == ["stem", "stage1"]
    stages = dict(net.stages())
    for name in ("stem", "stage1"):
        assert not any(p.requires_grad for p in stages[name].parameters())
    assert all(p.requires_grad for p in stages["stage2"].parameters())
    assert all(p.requires_grad for p in net.heads.parameters())
    for mode in (True, False, True):
        net.train(mode)
        assert all(not m.training for m in norms(stages["stem"]) + norms(stages["stage1"]))
        assert all(m.training == mode for m in norms(stages["stage2"]))
    running = stages["stem"][1].running_mean.clone()
    net(torch.randn(8, 1, 28, 28) * 3 + 1)  # a training-mode forward would move the running mean
    assert torch.equal(stages["stem"][1].running_mean, running)


def test_freeze_accumulates_and_unfreeze_releases() -> None:
    net = build_model("resnet18", {}, (1, 28, 28), HEADS).train()
    freeze(net, ["layer1"])
    freeze(net, ["stem"])
    assert net.frozen_stages == ("stem", "layer1")
    unfreeze(net, ["layer1"])
    assert net.frozen_stages == ("stem",)
    layer1 = dict(net.stages())["layer1"]
    assert all(p.requires_grad for p in layer1.parameters()) and all(m.training for m in norms(layer1))
    unfreeze(net)
    assert net.frozen_stages == () and all(p.requires_grad for p in net.parameters())


def test_frozen_encoder_with_a_new_head_trains_only_the_head() -> None:
    """Study 001's downstream task: autoencoder encoder frozen, classification head on the code."""
    torch.manual_seed(0)
    net = build_model("autoencoder_conv", {}, (3, 16, 16), {"image": HeadConfig(kind="reconstruction")})
    net.reset_heads({"label": HeadConfig(classes=10, hidden=[32])})
    freeze(net, ["*"])
    encoder = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(net.train()(x)["label"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, encoder[key]), key
