"""load_data: the one data path of run, resume, lr-find and data preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smallvision.config import build_config
from smallvision.data.load import load_data, load_source
from smallvision.data.prepare import prepare_images
from smallvision.errors import UserError


def test_load_data_makes_seeded_builtins_with_the_split_seed_then_sizes_them():
    cfg = build_config(
        {
            "seed": 3,
            "data": {
                "source": "builtin:glyphs",
                "options": {"n": 40},
                "split": {"seed": 1},
                "size": [12, 12],
                "channels": 3,
            },
        }
    )
    data = load_data(cfg.data)
    assert data.shape == (3, 12, 12) and data.images.dtype == torch.uint8
    by_split_seed = prepare_images(load_source("builtin:glyphs", {"n": 40}, seed=1), (12, 12), 3)
    by_run_seed = prepare_images(load_source("builtin:glyphs", {"n": 40}, seed=3), (12, 12), 3)
    assert data.fingerprint() == by_split_seed.fingerprint() != by_run_seed.fingerprint()


def test_load_data_passes_skip_bad_to_the_reader(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((6, 6), 30 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "b" / "cut.png").write_bytes(b"\x89PNG broken")
    raw = {"data": {"source": f"folder:{tmp_path}"}}
    with pytest.raises(UserError, match=r"cut.png: not a readable image"):
        load_data(build_config(raw).data)
    raw["data"]["skip_bad"] = True
    data = load_data(build_config(raw).data)
    assert len(data) == 6 and data.meta["skipped"] == 1
