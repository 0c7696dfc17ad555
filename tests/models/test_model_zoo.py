"""The contract every registered model keeps: build, shapes per head, gradients, stages, freezing, config."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from smallvision.config import HeadConfig, RunConfig, build_config, to_yaml
from smallvision.errors import UserError
from smallvision.models.base import Backbone
from smallvision.models.build import build_model
from smallvision.models.freeze import freeze
from smallvision.registry import MODELS

SIZES = [(1, 28, 28), (1, 32, 32), (3, 96, 96)]
HEADS = {
    "label": HeadConfig(kind="classification", classes=10),
    "angle": HeadConfig(kind="regression", hidden=[16], activation="sigmoid"),
}
# non-default parameters, written as YAML gives them (lists, not tuples), for the config round-trip
EXAMPLE_PARAMS = {
    "cnn_small": {"channels": [16, 32, 64], "batch_norm": True, "hidden": 64, "dropout": 0.5},
    "cnn_bn": {"widths": [16, 32, 64], "hidden": 32},
    "resnet_small": {"widths": [16, 32], "blocks": 1},
    "se_cnn": {"widths": [16, 32, 64], "ratio": 4, "convs": 2},
    "densenet_small": {"growth": 8, "layers": [2, 2, 2], "widths": [16, 24, 32]},
    "preact_resnet": {"widths": [16, 32], "strides": [1, 2], "separable": True},
    "dualstream": {"frequency": False, "widths": [16, 32], "strides": [1, 2], "fusion_width": 32},
    "resnet18": {"stem": "small", "widths": [8, 16, 32, 64]},
    "mlp": {"hidden": [64, 32], "dropout": 0.2, "batch_norm": True},
    "autoencoder_dense": {"hidden": [64], "bottleneck": 16},
    "autoencoder_conv": {"widths": [8, 16], "bottleneck": 16},
}


def has_decoder(name: str) -> bool:
    return MODELS.get(name).reconstruction_head is not Backbone.reconstruction_head


def heads_for(name: str) -> dict[str, HeadConfig]:
    extra = {"image": HeadConfig(kind="reconstruction")} if has_decoder(name) else {}
    return {**HEADS, **extra}


def supported(name: str, shape: tuple[int, int, int]) -> bool:
    return min(shape[1:]) >= MODELS.get(name).min_size


@pytest.mark.parametrize("shape", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS.list())
def test_forward_backward(name: str, shape: tuple[int, int, int]) -> None:
    if not supported(name, shape):
        with pytest.raises(UserError):
            build_model(name, {}, shape, heads_for(name))
        return
    torch.manual_seed(0)
    net = build_model(name, {}, shape, heads_for(name)).train()
    x = torch.randn(2, *shape)
    out = net(x)
    assert out["label"].shape == (2, 10)
    assert out["angle"].shape == (2, 1) and bool(((out["angle"] > 0) & (out["angle"] < 1)).all())
    if has_decoder(name):
        assert out["image"].shape == x.shape
    assert net.forward_features(x).shape == (2, net.backbone.num_features)
    sum(o.float().pow(2).mean() for o in out.values()).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"


@pytest.mark.parametrize("name", MODELS.list())
def test_stages_cover_the_backbone(name: str) -> None:
    net = build_model(name, {}, (1, 28, 28), heads_for(name))
    names = [n for n, _ in net.stages()]
    assert names and len(set(names)) == len(names)
    in_stages = {id(p) for _, m in net.stages() for p in m.parameters()}
    assert in_stages == {id(p) for p in net.backbone.parameters()}, "every backbone weight belongs to a stage"
    counts = net.param_counts()
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


@pytest.mark.parametrize("name", MODELS.list())
def test_min_size_is_truthful(name: str) -> None:
    """The declared minimum builds and runs; one pixel less is a UserError at build time."""
    size = MODELS.get(name).min_size
    net = build_model(name, {}, (1, size, size), heads_for(name)).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, size, size))["label"].shape == (2, 10)
    if size > 1:
        with pytest.raises(UserError, match=f"{size - 1}x{size - 1}"):
            build_model(name, {}, (1, size - 1, size - 1), heads_for(name))


@pytest.mark.parametrize("name", MODELS.list())
def test_frozen_stages_do_not_change(name: str) -> None:
    torch.manual_seed(0)
    net = build_model(name, {}, (1, 28, 28), heads_for(name))
    stages = net.stages()
    frozen = [stages[0][0], stages[-1][0]]
    freeze(net, frozen)
    before = {n: {k: v.clone() for k, v in dict(stages)[n].state_dict().items()} for n in frozen}
    heads_before = [p.clone() for p in net.heads.parameters()]
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    net.train()  # must not wake the frozen batch-norm layers
    for _ in range(2):
        out = net(torch.randn(4, 1, 28, 28))
        loss = sum(o.pow(2).mean() for o in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n in frozen:
        for key, value in dict(stages)[n].state_dict().items():
            assert torch.equal(value, before[n][key]), f"{name}: frozen {n}.{key} changed"
        norms = [m for m in dict(stages)[n].modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert all(not m.training for m in norms)
    assert any(not torch.equal(a, b) for a, b in zip(heads_before, net.heads.parameters(), strict=True))


@pytest.mark.parametrize("name", MODELS.list())
def test_config_round_trip(name: str) -> None:
    """name + params -> YAML -> config -> model twice: same parameter count and state-dict keys."""
    params = EXAMPLE_PARAMS.get(name, {})
    cfg = RunConfig(model={"name": name, "params": params})
    again = build_config(yaml.safe_load(to_yaml(cfg)))
    assert again.model == cfg.model
    a = build_model(cfg.model.name, cfg.model.params, (1, 28, 28), heads_for(name))
    b = build_model(again.model.name, again.model.params, (1, 28, 28), heads_for(name))
    assert a.param_counts() == b.param_counts()
    assert list(a.state_dict()) == list(b.state_dict())
    if params:
        default = build_model(name, {}, (1, 28, 28), heads_for(name))
        assert default.param_counts()["total"] != a.param_counts()["total"], "the params took effect"
    with torch.no_grad():
        assert a.eval()(torch.randn(2, 1, 28, 28))["label"].shape == (2, 10)


def test_every_model_has_example_params() -> None:
    assert set(MODELS.list()) <= set(EXAMPLE_PARAMS), "add the new family to EXAMPLE_PARAMS"


def test_unknown_or_bad_params_are_user_errors() -> None:
    with pytest.raises(UserError, match="model.params.widht: unknown parameter; did you mean 'widths'"):
        build_model("cnn_bn", {"widht": [8, 8, 8]}, (1, 28, 28), HEADS)
    with pytest.raises(UserError, match="stem 'huge'"):
        build_model("resnet18", {"stem": "huge"}, (1, 28, 28), HEADS)
    with pytest.raises(UserError, match="5 pooled conv layers"):
        build_model("cnn_small", {"channels": [8] * 5}, (1, 28, 28), HEADS)
    with pytest.raises(UserError, match="channels"):
        build_model("cnn_bn", {}, (2, 28, 28), HEADS)
    with pytest.raises(UserError, match="has no decoder"):
        build_model("cnn_bn", {}, (1, 28, 28), {"image": HeadConfig(kind="reconstruction")})
