"""Transfer learning from the config: model.init takes an earlier run's backbone, model.freeze fixes stages."""

import pytest
import torch

import smallvision
from smallvision.errors import UserError


def test_init_copies_backbone_and_freeze_keeps_it(tiny_config):
    source = smallvision.run(tiny_config)
    tiny_config["model"]["init"] = str(source.dir)
    tiny_config["model"]["freeze"] = ["stem"]
    tiny_config["train"]["optimizer"]["lr"] = 0.05
    tuned = smallvision.run(tiny_config)
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in source.model.stages()}
    after = {name: list(m.parameters()) for name, m in tuned.model.stages()}
    assert before["stem"] and all(
        torch.equal(a, b) for a, b in zip(before["stem"], after["stem"], strict=True)
    )
    assert not all(torch.equal(a, b) for a, b in zip(before["stage1"], after["stage1"], strict=True)), (
        "unfrozen stages keep training"
    )
    assert tuned.model.frozen_stages == ("stem",)


def test_init_from_another_model_is_refused(tiny_config, tmp_path):
    source = smallvision.run(tiny_config)
    tiny_config["model"] = {
        "name": "cnn_small",
        "params": {"channels": [4, 8], "hidden": 32},
        "init": str(source.dir),
    }
    with pytest.raises(UserError, match=r"model\.init .*does not fit model CNNSmall: 5 of another shape"):
        smallvision.run(tiny_config)


def test_init_from_missing_path_and_unknown_stage(tiny_config, tmp_path):
    tiny_config["model"]["init"] = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no checkpoint there"):
        smallvision.run(tiny_config)
    tiny_config["model"]["init"] = None
    tiny_config["model"]["freeze"] = ["stemm"]
    with pytest.raises(UserError, match=r"model\.freeze.*stemm"):
        smallvision.run(tiny_config)
