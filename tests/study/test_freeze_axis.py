"""Study 004's transfer-depth axis from one file: resnet18 with none / layer1 / layer1+2 / layer1+2+3 /
all conv stages frozen (the stem goes with layer1: freezing runs from the input side)."""

import pytest
import yaml
from torch import nn

from smallvision.config import HeadConfig, build_config
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.models.transfer import apply_transfer
from smallvision.study.spec import load_study, resolve_cell
from smallvision.train.optim import stage_multipliers
from smallvision.train.unfreeze import Unfreezing, check_stage_keys

DEPTHS = [[], ["stem", "layer1"], ["stem", "layer1", "layer2"], ["stem", "layer1", "layer2", "layer3"], ["*"]]
# what each depth must fix, by torchvision's parameter names (conv1/bn1 are the stem)
FROZEN_PREFIXES = [
    (),
    ("conv1.", "bn1.", "layer1."),
    ("conv1.", "bn1.", "layer1.", "layer2."),
    ("conv1.", "bn1.", "layer1.", "layer2.", "layer3."),
    ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."),
]
BASE = {
    "data": {"source": "builtin:digits"},
    "model": {"name": "resnet18"},
    "train": {"epochs": 2, "progress": False},
    "report": {"enabled": False},
}


def _network(cfg):
    net = build_model(cfg.model.name, cfg.model.params, (1, 8, 8), {"label": HeadConfig(classes=10)})
    apply_transfer(net, cfg.model.init, cfg.model.freeze)
    check_stage_keys(net, cfg.train)
    return net


def _assert_frozen_exactly(net, prefixes):
    for name, p in net.backbone.named_parameters():
        assert p.requires_grad != name.startswith(prefixes), name
    assert all(p.requires_grad for p in net.heads.parameters())
    net.train()
    for name, m in net.backbone.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.training != f"{name}.".startswith(prefixes), name


@pytest.mark.parametrize(("freeze", "prefixes"), list(zip(DEPTHS, FROZEN_PREFIXES, strict=True)))
def test_each_freeze_depth_fixes_exactly_its_stages(freeze, prefixes):
    _assert_frozen_exactly(
        _network(build_config({**BASE, "model": {"name": "resnet18", "freeze": freeze}})), prefixes
    )


def test_a_study_file_with_a_freeze_axis_expands_into_five_valid_cells(tmp_path):
    path = tmp_path / "depth.yaml"
    path.write_text(
        yaml.safe_dump({"name": "depth", "base": BASE, "seeds": [0], "axes": {"model.freeze": DEPTHS}})
    )
    spec = load_study(path)
    cells = spec.steps[0].cells
    assert len(cells) == 5
    assert cells[1].label == 'model.freeze=["stem","layer1"] seed=0'
    for cell, freeze, prefixes in zip(cells, DEPTHS, FROZEN_PREFIXES, strict=True):
        cfg = resolve_cell(spec, cell, lambda step: [])
        assert cfg.model.freeze == freeze
        _assert_frozen_exactly(_network(cfg), prefixes)


def test_a_depth_axis_shares_one_unfreeze_schedule_and_lr_multipliers():
    """Each depth fine-tuned gradually: all released at epoch 2, the layers at a tenth of the head's lr
    ("none" included: releasing a stage that trains already changes nothing)."""
    step = {"set": {"train.unfreeze": [{"epoch": 2, "stages": ["*"]}], "train.lr_mult": {"layer*": 0.1}}}
    spec = load_study({"name": "depth", "base": BASE, "seeds": [0], "axes": {"model.freeze": DEPTHS}, **step})
    layers = {f"layer{i}": 0.1 for i in range(1, 5)}
    for cell, prefixes in zip(spec.steps[0].cells, FROZEN_PREFIXES, strict=True):
        cfg = resolve_cell(spec, cell, lambda step: [])
        net = _network(cfg)
        assert stage_multipliers(net, cfg.train.lr_mult) == layers
        plan = Unfreezing(net, cfg.train.unfreeze)
        assert plan.apply(net, 1) == []
        _assert_frozen_exactly(net, prefixes)
        plan.apply(net, 2)
        _assert_frozen_exactly(net, ())


def test_a_misspelt_stage_in_a_freeze_axis_is_a_one_line_error():
    spec = load_study(
        {"name": "depth", "base": BASE, "seeds": [0], "axes": {"model.freeze": [["stem", "layr1"]]}}
    )
    with pytest.raises(
        UserError,
        match=r"model\.freeze: no stage named 'layr1'; did you mean 'layer1'\? \(stages: stem, layer1",
    ):
        _network(resolve_cell(spec, spec.steps[0].cells[0], lambda step: []))
