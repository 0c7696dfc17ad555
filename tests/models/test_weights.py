"""model.init from a torchvision / timm state dict on disk: mapped by key names, every misfit one line."""

from __future__ import annotations

import sys

import pytest
import torch
import yaml

from smallvision.cli import main
from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.models.resnet18 import ResNet18
from smallvision.models.transfer import load_backbone

HEADS = {"label": HeadConfig(kind="classification", classes=10)}
WIDTHS = (8, 8, 16, 16)  # torchvision's key names at a test-sized width


def torchvision_state_dict(seed: int = 7, widths=WIDTHS) -> dict[str, torch.Tensor]:
    """What ``torch.save(torchvision.models.resnet18().state_dict())`` holds, by torchvision's names:
    ImageNet's 7x7 RGB conv1, an ``fc`` of 1000 classes, and no ``num_batches_tracked`` buffers
    (torchvision's released weights lack them)."""
    torch.manual_seed(seed)
    net = ResNet18((3, 224, 224), stem="standard", widths=widths)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    for k, v in state.items():
        if k.endswith("running_var"):
            v.uniform_(0.5, 2.0)  # distinguishable from a fresh model's ones
    state["fc.weight"] = torch.randn(1000, widths[-1])
    state["fc.bias"] = torch.randn(1000)
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.bias"} <= set(state)
    return state


def model(channels: int = 3, stem: str = "standard"):
    torch.manual_seed(0)
    return build_model("resnet18", {"stem": stem, "widths": list(WIDTHS)}, (channels, 64, 64), HEADS)


def test_torchvision_state_dict_loads_by_key_names_and_never_the_fc(tmp_path):
    state = torchvision_state_dict()
    torch.save(state, tmp_path / "resnet18.pth")
    net = model()
    head_before = {k: v.clone() for k, v in net.heads.state_dict().items()}
    backbone_before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    loaded = load_backbone(net, tmp_path / "resnet18.pth")
    after = net.backbone.state_dict()
    assert loaded == len(state) - 2  # every tensor but fc.weight / fc.bias
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(after[key], value), key
    assert not torch.equal(backbone_before["layer2.0.conv1.weight"], after["layer2.0.conv1.weight"])
    assert all(torch.equal(v, net.heads.state_dict()[k]) for k, v in head_before.items())


def test_grey_model_sums_the_rgb_conv1_and_a_wrapped_dataparallel_file_loads(tmp_path):
    state = torchvision_state_dict()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 90}
    torch.save(wrapped, tmp_path / "timm-checkpoint.pth.tar")
    net = model(channels=1)
    load_backbone(net, tmp_path / "timm-checkpoint.pth.tar")
    conv1 = net.backbone.conv1.weight.detach()
    assert conv1.shape == (8, 1, 7, 7)
    assert torch.allclose(conv1, state["conv1.weight"].sum(dim=1, keepdim=True))
    # a grey image repeated to RGB gives the RGB conv1 the same response as the summed kernel
    grey = torch.rand(2, 1, 16, 16)
    rgb_out = torch.nn.functional.conv2d(grey.expand(-1, 3, -1, -1), state["conv1.weight"], padding=3)
    assert torch.allclose(torch.nn.functional.conv2d(grey, conv1, padding=3), rgb_out, atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda s: {k: v for k, v in s.items() if not k.startswith("layer4.")},
            r"\d+ missing \(layer4\.0\.conv1\.weight, .*in all\)",
        ),
        (lambda s: {**s, "extra.weight": torch.zeros(3)}, r"1 unexpected \(extra\.weight\)"),
        (
            lambda s: {**s, "bn1.weight": torch.zeros(5)},
            r"1 of another shape \(bn1\.weight: 5 in the file vs 8\)",
        ),
        (
            lambda s: {"epoch": 3, "arch": "resnet18"},
            r"holds a dict of arch, epoch, not a state dict of tensors",
        ),
    ],
)
def test_a_state_dict_that_does_not_fit_names_its_keys(tmp_path, make, message):
    torch.save(make(torchvision_state_dict()), tmp_path / "w.pth")
    with pytest.raises(UserError, match=message) as info:
        load_backbone(model(), tmp_path / "w.pth")
    assert "\n" not in str(info.value) and "w.pth" in str(info.value)


def test_imagenet_stem_on_the_small_stem_says_how_to_fix_it(tmp_path):
    torch.save(torchvision_state_dict(), tmp_path / "w.pth")
    with pytest.raises(
        UserError, match=r"conv1\.weight: 8x3x7x7 in the file vs 8x3x3x3.*model\.params\.stem: standard"
    ):
        load_backbone(model(stem="small"), tmp_path / "w.pth")


def cli_run(tmp_path, monkeypatch, capsys, init: str) -> tuple[int, str]:
    """``smallvision run`` in this process (the CLI's own main, so UserError -> exit 2): (code, stderr)."""
    cfg = {
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": "builtin:digits", "size": [32, 32], "channels": 3, "normalize": "imagenet"},
        "model": {"name": "resnet18", "params": {"stem": "standard", "widths": list(WIDTHS)}, "init": init},
        "train": {"epochs": 1, "progress": False},
        "report": {"enabled": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setattr(sys, "argv", ["smallvision", "run", str(tmp_path / "c.yaml")])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def test_cli_refuses_unfit_files_in_one_line_with_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.pth").write_text("these are not weights\n")
    state = torchvision_state_dict()
    del state["layer1.0.bn1.weight"]
    torch.save(state, tmp_path / "short.pth")
    torch.save({"conv1.weight": torch.zeros(8, 3, 5, 5)}, tmp_path / "odd.pth")
    for name, expected in [
        ("notes.pth", "not a PyTorch weights file"),
        ("short.pth", "1 missing (layer1.0.bn1.weight)"),
        ("odd.pth", "conv1.weight: 8x3x5x5 in the file vs 8x3x7x7"),
    ]:
        code, err = cli_run(tmp_path, monkeypatch, capsys, str(tmp_path / name))
        assert code == 2 and err.strip().count("\n") == 0, err
        assert err.startswith("error: model.init") and expected in err and name in err
