"""eval: further evaluation sets read at the run's shape, labels mapped by class name onto the run's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smallvision.config import build_config
from smallvision.data.evalsets import load_eval_sets
from smallvision.data.load import load_data
from smallvision.errors import UserError


def config(eval_sets, **data):
    return build_config({"data": {"source": "builtin:digits", "size": [10, 10], **data}, "eval": eval_sets})


def test_an_eval_set_comes_at_the_runs_shape_and_shifted():
    cfg = config(
        {
            "D28": {"source": "builtin:digits-28"},
            "INV": {"source": "builtin:digits", "shift": {"invert": True}},
        }
    )
    data = load_data(cfg.data)
    sets = load_eval_sets(cfg.eval, data, cfg.data, ["label"])
    assert set(sets) == {"eval:D28", "eval:INV"}
    assert sets["eval:D28"].shape == (1, 10, 10) and len(sets["eval:D28"]) == 1797
    assert torch.equal(sets["eval:INV"].images, 255 - data.images)
    assert torch.equal(sets["eval:INV"].targets["label"], data.targets["label"])


def test_labels_map_by_name_and_unknown_used_classes_are_refused(tmp_path):
    x = np.zeros((3, 8, 8), np.uint8)
    np.savez(tmp_path / "e.npz", x=x, y=np.array([0, 1, 1]))
    cfg = config(
        {"E": {"source": f"npz:{tmp_path / 'e.npz'}", "options": {"classes": {"label": ["9", "3", "x"]}}}}
    )
    data = load_data(cfg.data)
    assert load_eval_sets(cfg.eval, data, cfg.data, ["label"])["eval:E"].targets["label"].tolist() == [
        9,
        3,
        3,
    ]
    np.savez(tmp_path / "e.npz", x=x, y=np.array([0, 2, 1]))
    with pytest.raises(UserError, match=r"eval\.E: classes x of 'label' are not among the run's classes"):
        load_eval_sets(cfg.eval, data, cfg.data, ["label"])


def test_eval_set_errors(tmp_path):
    np.savez(tmp_path / "u.npz", x=np.zeros((3, 8, 8), np.uint8))
    cfg = config({"U": {"source": f"npz:{tmp_path / 'u.npz'}"}})
    with pytest.raises(UserError, match=r"eval\.U: .* has no target 'label' that the run predicts"):
        load_eval_sets(cfg.eval, load_data(cfg.data), cfg.data, ["label"])
    cfg = config({"A:B": {"source": "builtin:digits"}})
    with pytest.raises(UserError, match=r"set name 'A:B'"):
        load_eval_sets(cfg.eval, load_data(cfg.data), cfg.data, ["label"])
    with pytest.raises(UserError, match=r"eval\.X\.shfit: unknown key; did you mean 'shift'\?"):
        build_config({"eval": {"X": {"source": "builtin:digits", "shfit": {"blur": 1}}}})
